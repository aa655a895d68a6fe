"""The asyncio loop of the GUI: qasync's, plus what asyncio's own loops do that it leaves out."""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys

os.environ.setdefault("QT_API", "pyside6")
import qasync  # noqa: E402  (after QT_API, and after PySide6 is imported, so that it binds to it)


class QtLoop(qasync.QEventLoop):
    """qasync installs no async-generator hooks. Without them an async generator left before its
    end (an HTTP stream read up to its last event) is closed by the garbage collector outside the
    loop, where its cleanup cannot await (httpcore's: "async generator ignored GeneratorExit"),
    and `shutdown_asyncgens` finds nothing to close."""

    @contextlib.contextmanager
    def _asyncgen_hooks(self):
        previous = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                               finalizer=self._asyncgen_finalizer_hook)
        try:
            yield
        finally:
            sys.set_asyncgen_hooks(*previous)

    def run_forever(self):
        with self._asyncgen_hooks():
            return super().run_forever()

    def run_until_complete(self, future):
        # qasync handles Qt's pending events once more after run_forever returns
        with self._asyncgen_hooks():
            return super().run_until_complete(future)

    def finish(self, wait_s: float = 5.0) -> None:
        """What asyncio.run does before it closes its loop: the tasks left are cancelled and
        awaited (one may still be reading a stream), then the async generators are closed. Each
        wait is bounded: a task that does not end when cancelled (a request that was restarting
        the engine as it closed) must not keep the app from exiting."""
        pending = [t for t in asyncio.all_tasks(self) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.run_until_complete(asyncio.wait(pending, timeout=wait_s))
        closing = self.create_task(self.shutdown_asyncgens())
        self.run_until_complete(asyncio.wait([closing], timeout=wait_s))
