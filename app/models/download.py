"""Download a GGUF file from the Hugging Face hub into the HF cache: resumable and verified.

Why our own HTTP on huggingface-hub's metadata, and not `hf_hub_download`: that call has no
progress hook for one file and no cancel, and its current versions write each attempt to a new
temporary file, so an interrupted 20 GB download starts again from zero. Here huggingface-hub
answers the questions (the file's sha256, size, commit and where to fetch it, via
`get_hf_file_metadata`), and the bytes come over plain HTTP Range requests:
- the partial file is `blobs/<sha256>.incomplete` in the HF cache; a later call, after a cancel,
  a dropped connection or an app restart, continues from its end;
- the hub's sha256 is computed while the bytes arrive (the partial part is hashed once on
  resume), so the file is read once; a mismatch deletes the file;
- the GGUF header is checked before the file is moved into place;
- only then the blob is renamed and the snapshot link made, exactly where huggingface-hub puts
  them (so other tools find our downloads, and we find theirs), under the same lock file, so
  that two downloads of one file (ours or huggingface-hub's) never write it at once.
Files that the hub stores with Xet are fetched through the same resolve URL over HTTP; the Xet
protocol itself is not used, and the tests cover the plain HTTP path only.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.atomic import write_atomic
from app.models import gguf_file

log = logging.getLogger("llamadesk.download")

CHUNK = 1 << 20
DISK_MARGIN = 200_000_000   # leave this much free after the download
HTML_START = (b"<!doctype", b"<html", b"<head", b"<?xml")
# What the hub's headers may hold before they name a folder or a file in the cache.
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")


class DownloadError(Exception):
    """The download cannot go on; the message is one line for the user."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # whatever it quotes, one line


class DownloadCancelled(DownloadError):
    pass


@dataclass
class RemoteFile:
    repo: str
    filename: str
    revision: str
    commit: str
    sha256: str
    size: int
    url: str
    send_auth: bool


@dataclass
class DownloadProgress:
    done: int
    total: int
    speed: float          # bytes per second, recent
    eta_s: float | None
    stage: str            # checking, downloading, verifying, done


@dataclass
class Policy:
    attempts: int = 8          # consecutive failures without progress before giving up
    backoff_s: float = 1.0     # first wait; doubles up to backoff_max_s
    backoff_max_s: float = 60.0
    stall_s: float = 30.0      # no byte for this long: reconnect
    poll_s: float = 1.0        # socket timeout: how often a blocked read looks at cancel
    connect_s: float = 15.0


def storage_dir(repo: str, cache: Path | None = None) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    base = Path(cache or constants.HF_HUB_CACHE)
    return base / repo_folder_name(repo_id=repo, repo_type="model")


def lock_path(repo: str, sha: str, cache: Path | None = None) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    base = Path(cache or constants.HF_HUB_CACHE)
    return base / ".locks" / repo_folder_name(repo_id=repo, repo_type="model") / f"{sha}.lock"


def resolve(repo: str, filename: str, revision: str = "main", token: str | bool | None = None,
            endpoint: str | None = None) -> RemoteFile:
    """The hub's metadata for one file (retrying 429/5xx), via huggingface-hub."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    check_names(repo, filename, revision)
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    url = hf_hub_url(repo, filename, revision=revision, endpoint=endpoint)
    try:
        with _hub_warnings_to_log():
            meta = get_hf_file_metadata(url, token=token, endpoint=endpoint, retry_on_errors=True)
    except (RepositoryNotFoundError, EntryNotFoundError):
        raise DownloadError(f"{repo}/{filename} was not found on the hub") from None
    except HfHubHTTPError as exc:
        raise DownloadError(f"the hub refused {repo}/{filename}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # connection errors are httpx's or requests' depending on the version
        log.warning("metadata request for %s failed", url, exc_info=True)
        raise DownloadError(f"cannot reach the hub for {repo}/{filename}: {_first_line(exc)}") from None
    if not meta.etag or meta.size is None or not meta.commit_hash:
        raise DownloadError(f"the hub gave no sha256 and size for {repo}/{filename} (not an LFS file?)")
    # Both name paths in the cache (blobs/<sha256>, snapshots/<commit>): a hostile hub or mirror
    # must not be able to point them anywhere else.
    if not SHA256_RE.fullmatch(meta.etag):
        raise DownloadError(f"the hub's ETag for {repo}/{filename} is not a sha256 "
                            f"({meta.etag[:80]!r}; not an LFS file, or not a real hub?)")
    if not COMMIT_RE.fullmatch(meta.commit_hash):
        raise DownloadError(f"the hub's commit for {repo}/{filename} is not a commit hash "
                            f"({meta.commit_hash[:80]!r}); not downloading")
    same_host = urllib.parse.urlsplit(meta.location).netloc == urllib.parse.urlsplit(url).netloc
    return RemoteFile(repo, filename, revision, meta.commit_hash, meta.etag, meta.size,
                      meta.location, send_auth=same_host)


def check_names(repo: str, filename: str, revision: str = "main") -> None:
    """Refuse names that could leave the cache folder or that the hub could never hold."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError:
        raise DownloadError(f"{repo!r} is not a repository name (expected OWNER/NAME)") from None
    for what, value in (("file name", filename), ("revision", revision)):
        parts = value.replace("\\", "/").split("/")
        if not value or value.startswith("/") or re.match(r"[A-Za-z]:", value) \
                or any(p in ("", ".", "..") for p in parts):
            raise DownloadError(f"{value!r} is not a valid {what} in a repository")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _hub_warnings_to_log():
    """huggingface-hub prints a warning per retry on stderr; the user gets our one line, and the
    retries go to the log: to the root logger's handlers (the app's log file), and nowhere when
    there are none (the NullHandler keeps logging's last-resort stderr printer out)."""
    hub = logging.getLogger("huggingface_hub")
    saved = hub.handlers[:], hub.propagate
    hub.handlers = [logging.NullHandler()]
    hub.propagate = True
    try:
        yield
    finally:
        hub.handlers, hub.propagate = saved


def cached_path(repo: str, filename: str, revision: str = "main", cache: Path | None = None) -> Path | None:
    """The snapshot path of a complete file in the HF cache, if there is one (offline)."""
    storage = storage_dir(repo, cache)
    ref = storage / "refs" / revision
    try:
        check_names("x/y", filename, revision)
        commit = ref.read_text().strip() if ref.is_file() else revision
    except (DownloadError, OSError, UnicodeError):
        return None
    if not COMMIT_RE.fullmatch(commit) and commit != revision:
        return None  # a damaged or planted ref names no snapshot
    p = storage / "snapshots" / commit / filename
    return p if p.exists() else None


class _NoAuthOffHost(urllib.request.HTTPRedirectHandler):
    """Redirects keep the Authorization header only on the same host (never to a CDN)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def _opener():
    try:
        import certifi

        ctx = ssl.create_default_context(cafile=certifi.where())
    except ImportError:
        ctx = ssl.create_default_context()
    return urllib.request.build_opener(urllib.request.ProxyHandler(),
                                       urllib.request.HTTPSHandler(context=ctx), _NoAuthOffHost())


class _Retry(Exception):
    def __init__(self, why: str, wait: float | None = None):
        super().__init__(why)
        self.wait = wait


class Downloader:
    def __init__(self, remote: RemoteFile, *, cache: Path | None = None, token: str | None = None,
                 policy: Policy | None = None, cancel: threading.Event | None = None,
                 progress: Callable[[DownloadProgress], None] | None = None):
        if not (SHA256_RE.fullmatch(remote.sha256) and COMMIT_RE.fullmatch(remote.commit)):
            raise DownloadError(f"refusing {remote.filename}: its sha256 or commit is not a hash")
        check_names(remote.repo, remote.filename, remote.revision)
        self.r = remote
        self.cache = cache
        self.token = token
        self.policy = policy or Policy()
        self.cancel = cancel or threading.Event()
        self.progress = progress
        self.storage = storage_dir(remote.repo, cache)
        self.blob = self.storage / "blobs" / remote.sha256
        self.partial = self.blob.with_name(remote.sha256 + ".incomplete")
        self.pointer = self.storage / "snapshots" / remote.commit / remote.filename
        self.bytes_fetched = 0     # over the network in this call (the tests and benchmark read it)
        self._speed = _Speed()

    # --- public ------------------------------------------------------------------------------
    def run(self) -> Path:
        """Download (or find) the file; returns the snapshot path of a verified GGUF file."""
        import filelock

        lock = lock_path(self.r.repo, self.r.sha256, self.cache)
        lock.parent.mkdir(parents=True, exist_ok=True)
        guard = filelock.FileLock(str(lock))
        while True:  # wait for another download of the same file, but stay cancellable
            try:
                guard.acquire(timeout=0.5)
                break
            except filelock.Timeout:
                self._check_cancel()
                self._report("waiting", 0)
        try:
            if not self.blob.exists():
                self._download()
            self._link()
        finally:
            guard.release()
        self._report("done", self.r.size)
        return self.pointer

    # --- steps -------------------------------------------------------------------------------
    def _download(self) -> None:
        self.blob.parent.mkdir(parents=True, exist_ok=True)
        have = self.partial.stat().st_size if self.partial.exists() else 0
        if have > self.r.size:
            self.partial.unlink()
            have = 0
        free = shutil.disk_usage(self.blob.parent).free
        need = self.r.size - have
        if free < need + DISK_MARGIN:
            raise DownloadError(f"not enough disk space for {self.r.filename}: it needs "
                                f"{need / 1e9:.2f} GB more, {free / 1e9:.2f} GB free in {self.blob.parent}")
        self.digest = hashlib.sha256()
        if have:
            self._report("checking", 0)
            with open(self.partial, "rb") as fh:
                while block := fh.read(CHUNK * 8):
                    self.digest.update(block)
                    self._check_cancel()
        failures = 0
        wait = self.policy.backoff_s
        self.have = have
        while self.have < self.r.size:
            self._check_cancel()
            before = self.have
            try:
                self._fetch()
            except _Retry as why:
                have = self.have
                if have > before:
                    failures, wait = 0, self.policy.backoff_s
                failures += 1
                if failures >= self.policy.attempts:
                    raise DownloadError(f"download of {self.r.filename} failed {failures} times in a row "
                                        f"({why}); run it again to resume from {have / 1e6:.0f} MB") from None
                self._sleep(why.wait if why.wait is not None else wait)
                wait = min(wait * 2, self.policy.backoff_max_s)
        self._report("verifying", self.have)
        got = self.digest.hexdigest()
        if got != self.r.sha256:
            self.partial.unlink(missing_ok=True)
            raise DownloadError(f"checksum mismatch for {self.r.filename}: expected {self.r.sha256[:16]}…, "
                                f"got {got[:16]}…; the file was deleted")
        try:
            gguf_file.inspect(self.partial)
        except gguf_file.GGUFError as exc:
            self.partial.unlink(missing_ok=True)
            raise DownloadError(f"{self.r.filename} is not a usable GGUF file ({exc}); it was deleted") from None
        os.replace(self.partial, self.blob)

    def _start_over(self) -> None:
        """Drop the partial file, its byte count and its digest together (they describe one file)."""
        self.partial.unlink(missing_ok=True)
        self.have = 0
        self.digest = hashlib.sha256()

    def _fetch(self) -> None:
        """One HTTP request from self.have on; appends to the partial file and the digest in step."""
        offset = self.have
        headers = {"Range": f"bytes={offset}-", "Accept-Encoding": "identity",
                   "User-Agent": "llamadesk"}
        if self.token and self.r.send_auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.r.url, headers=headers)
        try:
            resp = _opener().open(req, timeout=self.policy.connect_s)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                self._start_over()  # our partial is longer than the server's file
                raise _Retry("the partial file did not match the server's; starting over", 0)
            if 300 <= exc.code < 400:  # urllib gives up on a redirect loop with a 3xx HTTPError
                log.warning("redirects for %s: %s", self.r.url, exc)
                raise DownloadError(f"the server's redirects for {self.r.filename} go round in a loop "
                                    f"(HTTP {exc.code}); not downloading") from None
            if exc.code == 429 or exc.code >= 500:
                retry_after = exc.headers.get("Retry-After")
                raise _Retry(f"HTTP {exc.code}", float(retry_after) if retry_after and retry_after.isdigit() else None)
            raise DownloadError(f"HTTP {exc.code} for {self.r.filename}: {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            log.info("request for %s failed: %s", self.r.url, exc)
            raise _Retry(f"connection failed: {getattr(exc, 'reason', exc)}") from None
        done = threading.Event()
        watcher = threading.Thread(target=self._watch_cancel, args=(resp, done), daemon=True)
        watcher.start()
        try:
            with resp:
                self._read_body(resp, offset)
        finally:
            done.set()

    def _watch_cancel(self, resp, done: threading.Event) -> None:
        # A read blocks up to stall_s; a cancel must not wait that long: shut the socket under it.
        while not done.wait(self.policy.poll_s):
            if self.cancel.is_set():
                sock = _socket_of(resp)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return

    def _read_body(self, resp, offset: int) -> None:
        ctype = resp.headers.get("Content-Type", "")
        if resp.status == 200 and offset:
            self._start_over()  # the server ignored Range and sends the whole file
            offset = 0
        elif resp.status not in (200, 206):
            raise _Retry(f"unexpected HTTP {resp.status}")
        # The stall rule holds for every read: a timeout on the socket is a stall, never a
        # poll (a socket file that timed out once refuses every later read).
        sock = _socket_of(resp)
        if sock is not None:
            sock.settimeout(self.policy.stall_s)
        first = True
        mode = "ab" if offset else "wb"
        with open(self.partial, mode) as out:
            while offset < self.r.size:
                self._check_cancel()
                try:
                    block = resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
                except (socket.timeout, TimeoutError):
                    self._check_cancel()
                    raise _Retry(f"no data for {self.policy.stall_s:g} s (stalled)") from None
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    self._check_cancel()
                    raise _Retry(f"connection lost: {exc}") from None
                if not block:
                    self._check_cancel()
                    raise _Retry(f"connection closed at {offset} of {self.r.size} bytes")
                if first and offset == 0:
                    first = False
                    if "text/html" in ctype or block.lstrip()[:9].lower().startswith(HTML_START):
                        out.close()
                        self.partial.unlink(missing_ok=True)
                        raise DownloadError(f"the server sent an HTML page instead of {self.r.filename} "
                                            f"(a login or error page?)")
                block = block[: self.r.size - offset]
                try:
                    out.write(block)
                except OSError as exc:
                    raise DownloadError(f"cannot write {self.partial}: {exc.strerror or exc} "
                                        f"(the part downloaded so far is kept)") from None
                self.digest.update(block)
                offset += len(block)
                self.have = offset
                self.bytes_fetched += len(block)
                self._report("downloading", offset)

    def _link(self) -> None:
        """Snapshot pointer and ref, as huggingface-hub makes them."""
        self.pointer.parent.mkdir(parents=True, exist_ok=True)
        if not self.pointer.exists():
            rel = os.path.relpath(self.blob, self.pointer.parent)
            try:
                os.symlink(rel, self.pointer)
            except OSError:  # Windows without symlink rights: huggingface-hub copies too
                shutil.copyfile(self.blob, self.pointer)
        refs = self.storage / "refs"
        refs.mkdir(parents=True, exist_ok=True)
        if self.r.revision != self.r.commit:
            ref = refs / self.r.revision
            ref.parent.mkdir(parents=True, exist_ok=True)  # revisions like refs/pr/1
            write_atomic(ref, self.r.commit)

    # --- helpers -----------------------------------------------------------------------------
    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise DownloadCancelled(f"download of {self.r.filename} cancelled; run it again to resume")

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            self._check_cancel()

    def _report(self, stage: str, done: int) -> None:
        if not self.progress:
            return
        speed = self._speed.update(self.bytes_fetched)
        eta = (self.r.size - done) / speed if speed > 0 and stage == "downloading" else None
        self.progress(DownloadProgress(done, self.r.size, speed, eta, stage))


def _socket_of(resp) -> socket.socket | None:
    try:
        return resp.fp.raw._sock
    except AttributeError:
        return None


class _Speed:
    """Bytes per second over the last few seconds."""

    def __init__(self, window_s: float = 3.0):
        self.window = window_s
        self.samples: list[tuple[float, int]] = []

    def update(self, total: int) -> float:
        now = time.monotonic()
        self.samples.append((now, total))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.pop(0)
        t0, b0 = self.samples[0]
        return (total - b0) / (now - t0) if now > t0 else 0.0


def download(repo: str, filename: str, revision: str = "main", **kw) -> Path:
    """Resolve on the hub and download; keyword arguments go to Downloader."""
    remote = resolve(repo, filename, revision, token=kw.get("token"))
    return Downloader(remote, **kw).run()
