"""A loopback server that speaks the Hugging Face hub's HTTP protocol as huggingface-hub uses it.

- `HEAD|GET /{repo}/resolve/{rev}/{file}`: 302 with `X-Repo-Commit`, `X-Linked-Etag` (the
  sha256), `X-Linked-Size` and `Location` on another host name (`localhost` instead of
  `127.0.0.1`), the way the hub redirects LFS files to its CDN;
- `GET|HEAD /cdn/{sha256}`: the bytes, with `ETag`, `Accept-Ranges` and Range requests (206);
- `GET /api/models/{repo}[/revision/{rev}]?blobs=true`: the model info with file sizes and
  LFS sha256, as `HfApi.model_info(files_metadata=True)` reads it.

Faults for the tests are queued per file and taken one per CDN request: drop the connection
after N bytes, wrong bytes, a truncated body, an HTML page, a status code, a stall. Every byte
of file content sent is counted.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import re
import socketserver
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Fault:
    kind: str            # drop, corrupt, truncate, html, status, stall, loop (redirect to itself)
    at: int = 0          # byte offset into the body (drop, truncate, stall, corrupt)
    status: int = 500
    seconds: float = 0.0
    retry_after: str | None = None


@dataclass
class HubFile:
    data: bytes
    sha256: str = ""
    etag: str | None = None     # what X-Linked-Etag says, when it lies

    def __post_init__(self):
        self.sha256 = hashlib.sha256(self.data).hexdigest()


@dataclass
class Repo:
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)


class HubState:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.faults: dict[str, list[Fault]] = {}   # sha256 -> queue
        self.served: dict[str, int] = {}            # sha256 -> content bytes sent
        self.requests: list[tuple[str, str, str | None]] = []
        self.ignore_range = False   # answer every CDN request with the whole file (200)
        self.lock = threading.Lock()

    def add(self, repo: str, filename: str, data: bytes, commit: str = "a" * 40) -> HubFile:
        f = HubFile(data)
        self.repos.setdefault(repo, Repo(commit)).files[filename] = f
        return f

    def by_sha(self, sha: str) -> HubFile | None:
        for r in self.repos.values():
            for f in r.files.values():
                if f.sha256 == sha:
                    return f
        return None

    def fault(self, sha: str, *faults: Fault) -> None:
        with self.lock:
            self.faults.setdefault(sha, []).extend(faults)

    def next_fault(self, sha: str) -> Fault | None:
        with self.lock:
            q = self.faults.get(sha)
            return q.pop(0) if q else None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: HubState
    port: int

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    def _route(self, head: bool):
        path, _, query = self.path.partition("?")
        self.state.requests.append((self.command, path, self.headers.get("Range")))
        m = re.match(r"^/api/models/(.+?)(?:/revision/([^/]+))?$", path)
        if m:
            return self._model_info(m.group(1), head)
        m = re.match(r"^/(.+)/resolve/([^/]+)/(.+)$", path)
        if m:
            return self._resolve(m.group(1), m.group(3), head)
        m = re.match(r"^/cdn/([0-9a-f]{64})$", path)
        if m:
            return self._cdn(m.group(1), head)
        self._plain(404, b"not found", {"X-Error-Code": "EntryNotFound"})

    def _plain(self, status: int, body: bytes, headers: dict | None = None, ctype="text/plain"):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _model_info(self, repo: str, head: bool):
        r = self.state.repos.get(repo)
        if r is None:
            return self._plain(404, b'{"error":"Repository not found"}', {"X-Error-Code": "RepoNotFound"})
        siblings = [{"rfilename": name, "size": len(f.data), "blobId": f.sha256[:40],
                     "lfs": {"size": len(f.data), "sha256": f.sha256, "pointerSize": 135}}
                    for name, f in r.files.items()]
        body = json.dumps({"id": repo, "modelId": repo, "sha": r.commit, "private": False,
                           "siblings": siblings}).encode()
        self._plain(200, body, ctype="application/json")

    def _resolve(self, repo: str, filename: str, head: bool):
        r = self.state.repos.get(repo)
        f = r.files.get(filename) if r else None
        if f is None:
            return self._plain(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
        self._plain(302, b"", {
            "X-Repo-Commit": r.commit, "X-Linked-Etag": f'"{f.etag or f.sha256}"',
            "X-Linked-Size": str(len(f.data)), "ETag": '"not-the-lfs-etag"',
            "Location": f"http://localhost:{self.port}/cdn/{f.sha256}"})

    def _cdn(self, sha: str, head: bool):
        f = self.state.by_sha(sha)
        if f is None:
            return self._plain(404, b"no such blob")
        fault = None if head else self.state.next_fault(sha)
        if fault and fault.kind == "status":
            hdrs = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._plain(fault.status, b"try again later", hdrs)
        if fault and fault.kind == "loop":
            return self._plain(302, b"", {"Location": f"http://localhost:{self.port}/cdn/{sha}"})
        if fault and fault.kind == "html":
            return self._plain(200, b"<!DOCTYPE html><html><body>Access denied</body></html>" * 20,
                               ctype="text/html; charset=utf-8")
        data = f.data
        start, end, status = 0, len(data), 200
        rng = None if self.state.ignore_range else self.headers.get("Range")
        if rng:
            m = re.match(r"bytes=(\d+)-(\d*)$", rng)
            start = int(m.group(1))
            if m.group(2):
                end = int(m.group(2)) + 1
            if start >= len(data):
                return self._plain(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            status = 206
        body = data[start:end]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{sha}"')
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if head:
            return
        if fault and fault.kind == "corrupt":
            body = bytearray(body)
            for i in range(max(0, fault.at - start), len(body), 4096):
                body[i] ^= 0xFF
            body = bytes(body)
        limit = len(body)
        if fault and fault.kind in ("drop", "truncate"):
            limit = max(0, min(len(body), fault.at - start))
        sent = 0
        try:
            while sent < limit:
                if fault and fault.kind == "stall" and sent >= fault.at - start:
                    time.sleep(fault.seconds)
                    fault = None
                piece = body[sent:min(limit, sent + 65536)]
                self.wfile.write(piece)
                sent += len(piece)
                with self.state.lock:
                    self.state.served[sha] = self.state.served.get(sha, 0) + len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if limit < len(body):
            self.wfile.flush()
            self.close_connection = True
            try:
                import socket
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HubServer:
    def __init__(self):
        self.state = HubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        handler.port = self.httpd.server_address[1]
        self.port = handler.port
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_forever(folder: str, repo: str) -> None:  # pragma: no cover - manual use
    with HubServer() as hub:
        for p in Path(folder).glob("*.gguf"):
            hub.state.add(repo, p.name, p.read_bytes())
        print(hub.endpoint, flush=True)
        threading.Event().wait()
