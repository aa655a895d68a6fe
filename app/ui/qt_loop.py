"""The asyncio loop of the GUI: qasync's, plus what asyncio's own loops do that it leaves out."""
from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_API", "pyside6")
import qasync  # noqa: E402  (after QT_API, and after PySide6 is imported, so that it binds to it)


class QtLoop(qasync.QEventLoop):
    """qasync installs no async-generator hooks. Without them an async generator left before its
    end (an HTTP stream read up to its last event) is closed by the garbage collector outside the
    loop, where its cleanup cannot await (httpcore's: "async generator ignored GeneratorExit"),
    and `shutdown_asyncgens` finds nothing to close."""

    def run_forever(self):
        previous = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                               finalizer=self._asyncgen_finalizer_hook)
        try:
            return super().run_forever()
        finally:
            sys.set_asyncgen_hooks(*previous)
