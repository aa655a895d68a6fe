"""One registry of long work (downloads, the self-test, the contamination check, model loads,
imports, scans): it starts each job as an asyncio task, tracks its progress, cancels it, refuses a
job that conflicts with a running one (with a message that says why), and cancels all on close.

A job's work is a coroutine `work(job)`; blocking work goes to a thread with `job.in_thread(fn)`,
and `job.report()` may be called from that thread: the registry hands it to the GUI thread.
"""
from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from PySide6.QtCore import QObject, Signal

# A job of the first kind may not start while one of the second runs (the self-test measures
# the loaded model: a load in the middle would change what it measures).
CONFLICTS = {("load", "selftest"), ("selftest", "load"), ("unload", "selftest")}
VERBS = {"download": "downloading", "load": "loading", "selftest": "running the self-test",
         "import": "importing", "decontam": "checking contamination", "measure": "measuring"}


class JobRefused(Exception):
    """The job conflicts with one that runs; the message is one line for the user."""


@dataclass
class Job:
    id: int
    kind: str
    key: str
    title: str
    done: float = 0.0
    total: float = 0.0
    message: str = ""
    state: str = "running"           # running, done, cancelled, failed
    error: str = ""
    result: object = None
    exception: BaseException | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    on_cancel: Callable[[], None] | None = None
    task: asyncio.Task | None = None
    _registry: "JobRegistry | None" = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    def report(self, done: float, total: float = 0.0, message: str = "") -> None:
        """Progress, from the GUI thread or any other (then handed over to the GUI thread)."""
        reg = self._registry
        if reg is None:
            return
        if threading.current_thread() is threading.main_thread():
            reg._progress(self, done, total, message)
        else:
            reg._loop.call_soon_threadsafe(reg._progress, self, done, total, message)

    async def in_thread(self, fn, *args):
        return await asyncio.to_thread(fn, *args)


class JobRegistry(QObject):
    started = Signal(object)
    progressed = Signal(object)
    finished = Signal(object)
    refused = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.jobs: list[Job] = []
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._results: dict[tuple[str, str], object] = {}

    def running(self, kind: str | None = None) -> list[Job]:
        return [j for j in self.jobs if j.running and (kind is None or j.kind == kind)]

    def conflict(self, kind: str, key: str) -> str | None:
        """Why a job of this kind and key may not start now, or None."""
        for j in self.running():
            if j.kind == kind and j.key == key:
                return f"Already {VERBS.get(kind, kind)} {j.title}."
            if (kind, j.kind) in CONFLICTS:
                return f"Not now: {VERBS.get(j.kind, j.kind)} ({j.title}); wait for it or stop it first."
        return None

    def start(self, kind: str, key: str, title: str, work: Callable[[Job], Awaitable],
              on_cancel: Callable[[], None] | None = None) -> Job:
        """Start `work(job)` as a task; raises JobRefused (and emits `refused`) on a conflict."""
        why = self.conflict(kind, key)
        if why:
            self.refused.emit(why)
            raise JobRefused(why)
        self._loop = asyncio.get_event_loop()
        job = Job(next(self._ids), kind, key, title, on_cancel=on_cancel, _registry=self)
        self.jobs.append(job)
        job.task = asyncio.ensure_future(self._run(job, work))
        job.task.add_done_callback(lambda _t, j=job: self._finished(j))
        self.started.emit(job)
        return job

    async def run(self, kind: str, key: str, title: str, work: Callable[[Job], Awaitable],
                  on_cancel=None):
        """Start a job and wait for its result (re-raises what the work raised)."""
        job = self.start(kind, key, title, work, on_cancel)
        await asyncio.wait({job.task})
        if job.state == "failed":
            raise job.exception
        if job.state == "cancelled":
            raise asyncio.CancelledError
        return job.result

    async def once(self, kind: str, key: str, title: str, work: Callable[[Job], Awaitable]):
        """A result computed once per process (GGUF scans, the HumanEval problems, hardware):
        a second caller waits for the first's job instead of doing the work again."""
        if (kind, key) in self._results:
            return self._results[(kind, key)]
        for j in self.running(kind):
            if j.key == key:
                await asyncio.wait({j.task})
                return self._results.get((kind, key), j.result)
        value = await self.run(kind, key, title, work)
        self._results[(kind, key)] = value
        return value

    def forget(self, kind: str, key: str) -> None:
        self._results.pop((kind, key), None)

    async def _run(self, job: Job, work) -> None:
        try:
            job.result = await work(job)
            job.state = "cancelled" if job.cancel_event.is_set() else "done"
        except asyncio.CancelledError:
            job.state = "cancelled"
        except Exception as exc:  # reported through `finished` and `run()`; the caller shows it
            job.state, job.error, job.exception = "failed", str(exc) or type(exc).__name__, exc

    def _finished(self, job: Job) -> None:
        # also reached by a task cancelled before its first step, whose coroutine never ran
        if job.state == "running":
            job.state = "cancelled"
        if job in self.jobs:
            self.jobs.remove(job)
            self.finished.emit(job)

    def _progress(self, job: Job, done: float, total: float, message: str) -> None:
        job.done, job.total = done, total
        if message:
            job.message = message
        if job.running:
            self.progressed.emit(job)

    def cancel(self, job: Job) -> None:
        """Cooperative first (the job's own cancel, its event), then the task itself."""
        job.cancel_event.set()
        if job.on_cancel is not None:
            job.on_cancel()
        elif job.task is not None and not job.task.done():
            job.task.cancel()

    def cancel_all(self) -> int:
        jobs = self.running()
        for j in jobs:
            self.cancel(j)
        return len(jobs)

    async def wait_all(self, timeout: float = 10.0) -> None:
        tasks = {j.task for j in self.jobs if j.task is not None}
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
