"""Downloads against a loopback server that speaks the hub's protocol, with real GGUF files."""
import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.models import download as d
from app.models import local
from tests.helpers import run_cli
from tests.hubserver import Fault

REPO = "test/models"
FAST = d.Policy(backoff_s=0.02, backoff_max_s=0.1, stall_s=1.0, poll_s=0.2, attempts=4)


def fetch(hub, cache, name, policy=FAST, **kw):
    remote = d.resolve(REPO, name, endpoint=hub.endpoint)
    dl = d.Downloader(remote, cache=cache, policy=policy, **kw)
    return dl, dl.run()


def no_model_left(cache: Path) -> bool:
    """Nothing a model list would pick up: no blob, no snapshot file."""
    return [m for m in local.hf_cache_models(cache)] == [] and not list(cache.rglob("blobs/*[!e]"))


def test_download_completes_verifies_and_is_not_repeated(hub, tmp_path, smollm):
    data = smollm.read_bytes()
    f = hub.state.add(REPO, "smol.Q4_1.gguf", data)
    dl, path = fetch(hub, tmp_path, "smol.Q4_1.gguf")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
    assert path.is_symlink() and path.resolve().name == f.sha256
    assert dl.bytes_fetched == len(data) == hub.state.served[f.sha256]
    dl2, path2 = fetch(hub, tmp_path, "smol.Q4_1.gguf")
    assert path2 == path and dl2.bytes_fetched == 0
    assert hub.state.served[f.sha256] == len(data)
    models = local.hf_cache_models(tmp_path)
    assert [(m.repo, m.name, m.usable) for m in models] == [(REPO, "smol.Q4_1.gguf", True)]


def test_dropped_connections_resume_and_fetch_only_missing_bytes(hub, tmp_path, small_gguf):
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    n = len(small_gguf)
    hub.state.fault(f.sha256, Fault("drop", at=n // 10), Fault("drop", at=n // 3),
                    Fault("drop", at=n // 2), Fault("drop", at=n - 100))
    dl, path = fetch(hub, tmp_path, "m.gguf")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
    assert hub.state.served[f.sha256] == n, "resumes must not fetch bytes twice"
    ranges = [r for (_, p, r) in hub.state.requests if p.startswith("/cdn/")]
    assert ranges == ["bytes=0-", f"bytes={n // 10}-", f"bytes={n // 3}-", f"bytes={n // 2}-", f"bytes={n - 100}-"]


def test_wrong_bytes_are_rejected_and_deleted(hub, tmp_path, small_gguf):
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("corrupt", at=1000))
    with pytest.raises(d.DownloadError, match="checksum mismatch"):
        fetch(hub, tmp_path, "m.gguf")
    assert no_model_left(tmp_path)
    assert not list(tmp_path.rglob("*.incomplete"))


def test_truncated_body_is_resumed(hub, tmp_path, small_gguf):
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("truncate", at=len(small_gguf) // 2))
    dl, path = fetch(hub, tmp_path, "m.gguf")
    assert path.read_bytes() == small_gguf and hub.state.served[f.sha256] == len(small_gguf)


def test_body_that_keeps_breaking_gives_up_and_keeps_the_partial(hub, tmp_path, small_gguf):
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, *[Fault("status", status=503)] * 10)
    with pytest.raises(d.DownloadError, match="failed 4 times"):
        fetch(hub, tmp_path, "m.gguf")
    assert no_model_left(tmp_path)


def test_html_page_instead_of_the_file(hub, tmp_path, small_gguf):
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("html"))
    with pytest.raises(d.DownloadError, match="HTML page"):
        fetch(hub, tmp_path, "m.gguf")
    assert no_model_left(tmp_path) and not list(tmp_path.rglob("*.incomplete"))


def test_not_found(hub, tmp_path):
    with pytest.raises(d.DownloadError, match="not found"):
        d.resolve(REPO, "missing.gguf", endpoint=hub.endpoint)


@pytest.mark.parametrize("status,retry_after", [(500, None), (429, "0"), (502, None)])
def test_server_errors_then_success(hub, tmp_path, small_gguf, status, retry_after):
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("status", status=status, retry_after=retry_after),
                    Fault("status", status=status, retry_after=retry_after))
    dl, path = fetch(hub, tmp_path, "m.gguf")
    assert path.read_bytes() == small_gguf


def test_stalled_body_reconnects(hub, tmp_path, small_gguf):
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("stall", at=len(small_gguf) // 4, seconds=4))
    dl, path = fetch(hub, tmp_path, "m.gguf")
    assert path.read_bytes() == small_gguf
    cdn = [r for (_, p, r) in hub.state.requests if p.startswith("/cdn/")]
    assert len(cdn) == 2 and cdn[1] != "bytes=0-", "a stall must end in a resumed request"


def test_not_a_gguf_file_is_refused(hub, tmp_path):
    hub.state.add(REPO, "fake.gguf", b"PK\x03\x04" + os.urandom(100_000))
    with pytest.raises(d.DownloadError, match="not a usable GGUF"):
        fetch(hub, tmp_path, "fake.gguf")
    assert no_model_left(tmp_path)


def test_cancel_then_resume_later(hub, tmp_path, smollm):
    data = smollm.read_bytes()
    f = hub.state.add(REPO, "m.gguf", data)
    cancel = threading.Event()

    def progress(p):
        if p.done > len(data) // 3:
            cancel.set()

    with pytest.raises(d.DownloadCancelled):
        fetch(hub, tmp_path, "m.gguf", policy=d.Policy(), cancel=cancel, progress=progress)
    partial = next(tmp_path.rglob("*.incomplete"))
    kept = partial.stat().st_size
    assert len(data) // 3 < kept < len(data)
    assert no_model_left(tmp_path)
    dl, path = fetch(hub, tmp_path, "m.gguf")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
    assert dl.bytes_fetched == len(data) - kept
    # what the cancelled request had in flight (socket buffers) is the only extra
    assert hub.state.served[f.sha256] - len(data) < socket_buffers_max() + 2**20


def socket_buffers_max() -> int:
    """The most a loopback connection can hold in flight: the kernel's largest TCP receive and
    send buffers (receive autotuning goes up to 32 MiB on some machines, so no fixed figure fits)."""
    try:
        rmem = int(Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[2])
        wmem = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 8 * 2**20
    return rmem + wmem


def test_two_downloads_of_one_file_at_once(hub, tmp_path, smollm):
    data = smollm.read_bytes()
    f = hub.state.add(REPO, "smol.gguf", data)
    results = []

    def one():
        results.append(fetch(hub, tmp_path, "smol.gguf")[1])

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2 and results[0] == results[1]
    assert hashlib.sha256(results[0].read_bytes()).hexdigest() == f.sha256
    assert hub.state.served[f.sha256] == len(data)


def test_huggingface_hub_finds_our_download(hub, tmp_path, small_gguf):
    from huggingface_hub import hf_hub_download

    f = hub.state.add(REPO, "m.gguf", small_gguf)
    _, ours = fetch(hub, tmp_path, "m.gguf")
    theirs = hf_hub_download(REPO, "m.gguf", cache_dir=tmp_path, endpoint=hub.endpoint)
    assert Path(theirs) == ours and hub.state.served[f.sha256] == len(small_gguf)


def test_not_enough_disk_space(hub, tmp_path, small_gguf):
    hub.state.add(REPO, "m.gguf", small_gguf)
    cache = tmp_path / "tiny"
    cache.mkdir()
    cmd = [sys.executable, "-m", "app", "models", "download", REPO, "m.gguf"]
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_ENDPOINT": hub.endpoint}
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(cache)], check=True)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
            left = [p.name for p in cache.rglob("*") if p.is_file()]
        finally:
            subprocess.run(["umount", str(cache)], check=True)
    else:  # a user namespace gives an unprivileged user a small filesystem of its own
        # the tmpfs vanishes with the namespace: list what is left in it before leaving
        listing = tmp_path / "left.txt"
        script = (f"mount -t tmpfs -o size=4m tmpfs {cache} && \"$@\"; rc=$?; "
                  f"find {cache} -type f -printf '%f\\n' > {listing}; exit $rc")
        r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", *cmd],
                           capture_output=True, text=True, env=env, timeout=120)
        left = listing.read_text().split()
    assert r.returncode == 2, r.stderr
    assert "not enough disk space" in r.stderr and "Traceback" not in r.stderr
    assert not [n for n in left if not n.endswith(".lock")]


def test_cli_download_and_local(hub, tmp_path, small_gguf):
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf"), "HF_ENDPOINT": hub.endpoint}
    r = run_cli("models", "download", REPO, "m.gguf", env=env)
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.read_bytes() == small_gguf
    assert "downloading" in r.stderr or "done" in r.stderr
    r = run_cli("models", "local", "--json", env=env)
    listed = [m for m in __import__("json").loads(r.stdout) if m["source"] == "hf-cache"]
    assert [m["repo"] for m in listed] == [REPO] and listed[0]["problem"] is None


# --- issue 11: hostile or broken servers ------------------------------------------------------

def cdn_ranges(hub):
    return [r for (_, p, r) in hub.state.requests if p.startswith("/cdn/")]


def test_server_that_ignores_range_on_resume_gives_a_verified_file(hub, tmp_path, small_gguf):
    """Item 11: a whole file sent (200) to a resume request is hashed with a fresh hasher."""
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("drop", at=len(small_gguf) // 3))
    hub.state.ignore_range = True
    dl, path = fetch(hub, tmp_path, "m.gguf")
    assert path.read_bytes() == small_gguf
    assert cdn_ranges(hub) == ["bytes=0-", f"bytes={len(small_gguf) // 3}-"]


def test_416_starts_over_with_count_and_digest_reset(hub, tmp_path, small_gguf):
    """Item 12: after a 416 the partial file, its byte count and its digest all start from zero."""
    n = len(small_gguf)
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("drop", at=n // 2), Fault("status", status=416))
    dl, path = fetch(hub, tmp_path, "m.gguf")
    assert path.read_bytes() == small_gguf
    assert cdn_ranges(hub) == ["bytes=0-", f"bytes={n // 2}-", "bytes=0-"]


def test_first_byte_late_after_the_headers_is_not_a_stall(hub, tmp_path, small_gguf):
    """Item 13: a read that waits less than stall_s is not an error, whichever read it is."""
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("stall", at=0, seconds=1.5))
    policy = d.Policy(backoff_s=0.02, backoff_max_s=0.1, stall_s=6.0, poll_s=0.2, attempts=4)
    dl, path = fetch(hub, tmp_path, "m.gguf", policy=policy)
    assert path.read_bytes() == small_gguf
    assert cdn_ranges(hub) == ["bytes=0-"], "one request: the late first byte was waited for"


def test_cancel_during_a_long_wait_for_bytes_is_prompt(hub, tmp_path, small_gguf):
    """Item 13: with reads allowed to wait stall_s, a cancel still ends the wait at once."""
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, Fault("stall", at=len(small_gguf) // 2, seconds=20))
    cancel = threading.Event()
    policy = d.Policy(stall_s=60.0, poll_s=0.1)

    def progress(p):
        if p.done >= len(small_gguf) // 2:
            threading.Timer(0.5, cancel.set).start()

    outcome = []

    def run():
        try:
            fetch(hub, tmp_path, "m.gguf", policy=policy, cancel=cancel, progress=progress)
            outcome.append("finished")
        except d.DownloadError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "cancel did not end a read that was waiting for bytes"
    assert isinstance(outcome[0], d.DownloadCancelled), outcome


@pytest.mark.parametrize("commit,etag", [("../../../escape", None), ("a" * 40, "../" * 21 + "a"),
                                         ("a" * 40, "..%2F" * 12 + "abcd")])
def test_hostile_commit_or_etag_names_no_path(hub, tmp_path, small_gguf, commit, etag):
    """Item 10: the hub's commit and ETag are checked before they name a folder or file."""
    cache = tmp_path / "cache"
    f = hub.state.add(REPO, "m.gguf", small_gguf, commit=commit)
    f.etag = etag
    with pytest.raises(d.DownloadError) as err:
        fetch(hub, cache, "m.gguf")
    assert "\n" not in str(err.value)
    assert {p.name for p in tmp_path.iterdir()} <= {"cache"}
    assert not list(tmp_path.rglob("escape"))


def test_refs_file_is_replaced_not_written_through(hub, tmp_path, small_gguf):
    """Item 8: the refs file is written atomically: a link planted there is replaced, and the
    file it pointed at is untouched."""
    hub.state.add(REPO, "m.gguf", small_gguf)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    refs = d.storage_dir(REPO, tmp_path / "cache") / "refs"
    refs.mkdir(parents=True)
    (refs / "main").symlink_to(victim)
    fetch(hub, tmp_path / "cache", "m.gguf")
    assert victim.read_text() == "precious"
    assert not (refs / "main").is_symlink() and (refs / "main").read_text() == "a" * 40


def _one_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip() and not l.startswith(("checking", "downloading"))]
    return r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr


def test_cli_refused_connection_is_one_line(tmp_path):
    """Item 13: no retry warnings on the terminal, one line at the end."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    r = run_cli("models", "download", REPO, "m.gguf", env=env)
    assert _one_line(r), r.stderr
    assert "cannot reach the hub" in r.stderr


def test_cli_redirect_loop_is_one_line(hub, tmp_path, small_gguf):
    """Item 13: a CDN that redirects to itself."""
    f = hub.state.add(REPO, "m.gguf", small_gguf)
    hub.state.fault(f.sha256, *[Fault("loop")] * 50)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf"), "HF_ENDPOINT": hub.endpoint}
    r = run_cli("models", "download", REPO, "m.gguf", env=env)
    assert _one_line(r), r.stderr
    assert "loop" in r.stderr


@pytest.mark.parametrize("what", [("../../etc", "passwd"), ("test/models", "../../etc/passwd"),
                                  ("test/models", "/etc/passwd")])
def test_cli_path_like_names_are_refused_in_one_line(hub, tmp_path, what):
    """Item 13: names that are paths, not hub names."""
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf"), "HF_ENDPOINT": hub.endpoint}
    r = run_cli("models", "download", *what, env=env)
    assert _one_line(r), r.stderr
    assert not [p for p in hub.state.requests]
