"""A second (third, ...) llama context of the worker, stepped by a thread of its own.

On a few CPU cores a small model spends much of a step in llama.cpp's per-operation thread
barriers, so two contexts of one thread each, stepped side by side, decode more than one
context of two threads (measured here with Gemma-3-270M on 2 cores: 4 sequences 1.13x, the last
2 of a self-test 1.4x). Each context holds its own slots and KV cache; the weights are shared.
The worker's own thread steps the first context (worker.py); a runner steps another one. Every
context takes all the threads while it is the only one with work, and its share while several
have (`ThreadShare`). A big model on the same cores reads every weight once per step per
context, so the split is a measured choice (parallel_probe.py), never a default.
"""
from __future__ import annotations

import queue
import threading

from app.engine import protocol as P
from app.engine.batch_loop import BatchLoop, Moved


class ThreadShare:
    """The worker's threads split evenly between the contexts that have requests in flight."""

    def __init__(self, total: int):
        self.total = max(1, total)
        self.lock = threading.Lock()
        self.load: dict[int, int] = {}   # context index -> requests given to it and not finished

    def busy(self) -> int:
        with self.lock:
            return sum(1 for n in self.load.values() if n > 0)

    def threads_for(self) -> int:
        return max(1, self.total // max(1, self.busy()))

    def add(self, index: int, n: int) -> None:
        with self.lock:
            self.load[index] = self.load.get(index, 0) + n


class WideDecode:
    """A decode of more than one thread that a runner hands to the worker's main thread.

    libgomp (llama.cpp's threads) keeps a team of threads per thread that calls it, and once the
    teams hold more threads than there are cores it barely spins at its barriers: measured here,
    2-thread decoding fell from about 64 to 48 steps/s for good once a second thread had decoded
    with 2 threads. So every decode of several threads runs on the worker's main thread, the one
    that steps the first context; a runner's context takes several threads only while it is the
    only one with work, when the main thread is idle. One-thread decodes never start a team."""

    def __init__(self, call):
        self.call = call
        self.done = threading.Event()
        self.result = None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:  # handed to the runner's thread
            self.result = exc
        finally:
            self.done.set()

    def outcome(self):
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def set_threads(loop: BatchLoop, n: int) -> None:
    if loop.n_threads != n:
        loop.L.llama_set_n_threads(loop.ctx, n, n)
        loop.n_threads = n


class ContextRunner:
    def __init__(self, loop: BatchLoop, step):
        self.loop = loop
        self.step = step   # Worker.step: threads, held chunks, the step, a move to an idle context
        self.inbox: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True, name="llama-context")
        self.thread.start()

    def give(self, req: P.Generate, tokens: list[int]) -> None:
        self.inbox.put((req, tokens))

    def take(self, moved: Moved) -> None:
        self.inbox.put(moved)

    def _run(self) -> None:
        loop = self.loop
        while True:
            try:
                if not self._turn(loop):
                    return
            except Exception as exc:  # fail what runs here, keep the thread: its requests must end
                loop.abort_all("internal", f"{type(exc).__name__}: {exc}")

    def _turn(self, loop: BatchLoop) -> bool:
        """Take what the inbox holds, then one step; False once told to stop."""
        try:
            item = self.inbox.get(block=not loop.busy)
        except queue.Empty:
            item = False
        while item is not False:
            if item is None:
                return False
            if isinstance(item, Moved):
                loop.adopt(item)
            else:
                loop.submit_or_fail(*item)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                item = False
        if loop.busy:
            self.step(loop)
        return True

    def leftovers(self) -> list:
        """After the thread ended: what reached the inbox too late (a sequence moved here as it stopped)."""
        items = []
        while True:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                return [i for i in items if i is not None]
