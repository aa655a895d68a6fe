"""Runs untrusted generated code, never in the app's own process.

    async with Sandbox(workers=2) as sb:
        verdict = await sb.run(program, timeout=5.0)

A pool of sandbox worker processes (`sandbox_zygote`), one program at a time each. Each program
gets a fresh temp dir as cwd and HOME, a scrubbed environment, a wall-clock timeout, memory, CPU,
file-size and process limits, and Linux confinement (see confine.py); afterwards every process
it started is killed. `capabilities` says what this OS gave us, for the UI to show.
"""
from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

from app.interpreter import module_command

ZYGOTE_MODULE = "app.bench.sandbox_zygote"
BACKSTOP_S = 20.0  # beyond the program's own timeout, before we give up on a worker


@dataclass
class Verdict:
    status: str          # passed, failed, timed out
    error: str = ""
    output: str = ""
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class _Worker:
    def __init__(self, slot: int):
        self.slot = slot
        self.proc: asyncio.subprocess.Process | None = None
        self.capabilities: dict = {}
        self.next_id = 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *module_command(ZYGOTE_MODULE, str(self.slot)), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, limit=1 << 22)
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the sandbox worker did not start")
        self.capabilities = json.loads(line)["capabilities"]

    async def run(self, program: str, timeout: float, memory_mb: int) -> Verdict:
        if self.proc is None or self.proc.returncode is not None:
            await self.start()
        self.next_id += 1
        req = {"id": self.next_id, "program": program, "timeout": timeout, "memory_mb": memory_mb}
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        try:
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout + BACKSTOP_S)
        except (asyncio.TimeoutError, ConnectionError):
            await self.stop()
            return Verdict("timed out", f"the sandbox worker stopped answering after {timeout:g} s")
        if not line:
            await self.stop()
            return Verdict("failed", "the program killed its sandbox worker")
        res = json.loads(line)
        return Verdict(res["status"], res.get("error", ""), res.get("output", ""),
                       res.get("duration_s", 0.0))

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        try:
            proc.stdin.close()
            await asyncio.wait_for(proc.wait(), 5)
        except (asyncio.TimeoutError, OSError):
            proc.kill()
            await proc.wait()


class Sandbox:
    def __init__(self, workers: int | None = None, timeout: float = 5.0, memory_mb: int = 1024):
        self.n_workers = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._workers = [_Worker(i) for i in range(self.n_workers)]
        self._free: asyncio.Queue | None = None

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self._workers))
        self._free = asyncio.Queue()
        for w in self._workers:
            self._free.put_nowait(w)

    @property
    def capabilities(self) -> dict:
        return self._workers[0].capabilities

    def limitations(self) -> list[str]:
        """What this OS could not give us, in words for the UI."""
        c, out = self.capabilities, []
        if not c.get("writes_confined"):
            out.append("generated code can write files outside its temp folder (no Landlock)")
        if not c.get("signals_confined"):
            out.append("generated code could signal other processes of your user")
        if not c.get("escaped_processes_killed"):
            out.append("processes that generated code detaches may outlive the run")
        if not c.get("rlimits"):
            out.append("no memory or CPU limits (only the timeout)")
        return out

    async def run(self, program: str, timeout: float | None = None) -> Verdict:
        if self._free is None:
            await self.start()
        worker = await self._free.get()
        try:
            return await worker.run(program, timeout or self.timeout, self.memory_mb)
        finally:
            self._free.put_nowait(worker)

    async def close(self) -> None:
        await asyncio.gather(*(w.stop() for w in self._workers))

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.close()
