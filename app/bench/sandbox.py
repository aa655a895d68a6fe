"""Runs untrusted generated code, never in the app's own process.

    async with Sandbox(workers=2) as sb:
        verdict = await sb.check(problem, completion)   # a HumanEval task: the score
        verdict = await sb.run_program(program, timeout=5.0)  # any program: passed = exit 0

A pool of sandbox worker processes (`sandbox_zygote`), one program at a time each. Each program
gets a fresh folder as cwd and HOME, a scrubbed environment, a wall-clock timeout, memory, CPU,
file-size and process limits, and Linux confinement (see confine.py); afterwards every process
it started is killed. `check` reaches its verdict outside the sandbox (sandbox_check.py).
`capabilities` says what this OS gave us (the run summary's `sandbox` field); what is missing is
logged once per process.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass

from app.interpreter import module_command

ZYGOTE_MODULE = "app.bench.sandbox_zygote"
BACKSTOP_S = 20.0  # beyond the program's own timeout, before we give up on a worker
log = logging.getLogger("llamadesk.sandbox")
_warned: set[str] = set()


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
    def __init__(self, memory_mb: int, without: tuple[str, ...]):
        self.args = (str(memory_mb), ",".join(without))
        self.proc: asyncio.subprocess.Process | None = None
        self.capabilities: dict = {}
        self.next_id = 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *module_command(ZYGOTE_MODULE, *self.args), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, limit=1 << 22)
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the sandbox worker did not start")
        self.capabilities = json.loads(line)["capabilities"]

    async def run(self, req: dict, timeout: float) -> Verdict:
        if self.proc is None or self.proc.returncode is not None:
            await self.start()
        self.next_id += 1
        req = {**req, "id": self.next_id, "timeout": timeout}
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        try:
            await self.proc.stdin.drain()
            res = await asyncio.wait_for(self._reply(self.next_id), timeout + BACKSTOP_S)
        except (asyncio.TimeoutError, ConnectionError):
            await self.stop()
            return Verdict("timed out", f"the sandbox worker stopped answering after {timeout:g} s")
        if res is None:
            await self.stop()
            return Verdict("failed", "the sandbox worker stopped")
        return Verdict(res["status"], res.get("error", ""), res.get("output", ""),
                       res.get("duration_s", 0.0))

    async def _reply(self, want: int) -> dict | None:
        """The reply to request `want`: replies to earlier, abandoned requests (a cancelled
        run) are skipped; anything else means the worker is not to be trusted."""
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return None
            res = json.loads(line)
            got = res.get("id")
            if type(got) is int and got < want:
                continue
            return res if got == want else None

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
    def __init__(self, workers: int | None = None, timeout: float = 5.0, memory_mb: int = 1024,
                 without: tuple[str, ...] = ()):
        """`without`: protections to leave out (sandbox_zygote.PROTECTIONS), for tests only."""
        self.n_workers = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._workers = [_Worker(memory_mb, tuple(without)) for _ in range(self.n_workers)]
        self._free: asyncio.Queue | None = None

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self._workers))
        self._free = asyncio.Queue()
        for w in self._workers:
            self._free.put_nowait(w)
        for name, why in self.capabilities.get("missing", {}).items():
            if name not in _warned:
                _warned.add(name)
                log.warning("sandbox without %s: %s", name, why)

    @property
    def capabilities(self) -> dict:
        return self._workers[0].capabilities

    def limitations(self) -> list[str]:
        """What this OS could not give us, in words for the UI."""
        c, out = self.capabilities, []
        if not c.get("reads_confined"):
            out.append("generated code can read your files (no mount namespace or Landlock)")
        if not c.get("network_blocked"):
            out.append("generated code can use the network")
        if not c.get("writes_confined"):
            out.append("generated code can write files outside its temp folder (no Landlock)")
        if not c.get("signals_confined"):
            out.append("generated code could signal other processes of your user")
        if not c.get("escaped_processes_killed"):
            out.append("processes that generated code detaches may outlive the run")
        if not c.get("rlimits"):
            out.append("no memory or CPU limits (only the timeout)")
        return out

    async def check(self, problem: dict, completion: str, timeout: float | None = None) -> Verdict:
        """Score a HumanEval completion: passed when the dataset's `check`, run outside the
        sandbox, accepts the candidate that runs inside it."""
        task = {k: problem[k] for k in ("prompt", "test", "entry_point")}
        return await self._submit({"task": task, "completion": completion}, timeout)

    async def run_program(self, program: str, timeout: float | None = None) -> Verdict:
        """Run any program; passed means only that it ended with status 0, which the program
        controls: never a score (named apart from `check` so that no caller mixes them up)."""
        return await self._submit({"program": program}, timeout)

    async def _submit(self, req: dict, timeout: float | None) -> Verdict:
        if self._free is None:
            await self.start()
        worker = await self._free.get()
        try:
            return await worker.run({**req, "memory_mb": self.memory_mb}, timeout or self.timeout)
        finally:
            self._free.put_nowait(worker)

    async def close(self) -> None:
        await asyncio.gather(*(w.stop() for w in self._workers))

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.close()
