"""Real model servers on 127.0.0.1 for the tests and benchmarks: llama-cpp-python's own server
and llama.cpp's llama-server (built by build_llama_server.sh, which the README's test command
runs before pytest). Both are started with the settings the local engine uses (batch 512,
micro-batch 512, 4096 tokens of context per slot, no flash attention), so greedy text matches."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
BUILD_SCRIPT = HERE / "build_llama_server.sh"
CTX_PER_SLOT = 4096


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_server_binary() -> Path | None:
    r = subprocess.run(["bash", str(BUILD_SCRIPT), "--path"], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable})
    path = Path(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None
    return path if r.returncode == 0 and path and path.is_file() else None


def batched_bench_binary() -> Path | None:
    """llama-batched-bench, which build_llama_server.sh builds beside llama-server."""
    server = llama_server_binary()
    bench = server.parent / "llama-batched-bench" if server else None
    return bench if bench and bench.is_file() else None


class Server:
    def __init__(self, cmd: list[str], port: int, log: Path, api_key: str | None = None):
        self.cmd, self.port, self.log_path, self.api_key = cmd, port, log, api_key
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 180) -> "Server":
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}/v1/models", headers=headers, timeout=2)
                if r.status_code == 200 and r.json().get("data"):
                    # llama-server answers /v1/models while the model still loads; /health says when
                    h = httpx.get(f"{self.url}/health", headers=headers, timeout=2)
                    if h.status_code in (200, 404):
                        return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready in {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def start_llama_cpp_server(model: Path, log_dir: Path, *, api_key: str | None = None,
                           threads: int = 2) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(CTX_PER_SLOT), "--n_batch", "512", "--n_ubatch", "512",
           "--n_threads", str(threads), "--n_threads_batch", str(threads)]
    if api_key:
        cmd += ["--api_key", api_key]
    return Server(cmd, port, log_dir / f"llama_cpp_server-{port}.log", api_key).wait_ready()


def start_llama_server(binary: Path, model: Path, log_dir: Path, *, parallel: int = 1,
                       api_key: str | None = None, threads: int = 2, extra: list[str] = ()) -> Server:
    port = free_port()
    cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
           "-c", str(CTX_PER_SLOT * parallel), "--parallel", str(parallel), "--no-kv-unified",
           "-b", "512", "-ub", "512", "-fa", "off", "-t", str(threads), "-tb", str(threads),
           "--no-webui", *extra]
    if api_key:
        cmd += ["--api-key", api_key]
    return Server(cmd, port, log_dir / f"llama-server-{port}.log", api_key).wait_ready()
