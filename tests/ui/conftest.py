import asyncio
import gc

import pytest

from app.recovery import RecoveryStore
from app.settings import Settings


@pytest.fixture
def gui(qapp, tmp_path):
    """The main window as the app builds it, with its qasync loop; `gui.run(coro)` drives it."""
    from app.ui.app import build

    app, loop, window = build(Settings(autosave_s=0.2), RecoveryStore(tmp_path / "recovery"))

    class Gui:
        pass

    g = Gui()
    g.app, g.loop, g.window = app, loop, window

    def run(coro, timeout=180):
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    g.run = run
    window.show()
    yield g
    try:
        loop.run_until_complete(window.engine.close())
    finally:
        dispose(loop, window)


def dispose(loop, window) -> None:
    """Close the window and its loop, and free both here. A closed window left to Python's
    collector is deleted whenever a later test happens to allocate, maybe while Qt is inside a
    callback of that window (a segfault in an unrelated test); a task left pending is finished
    at that moment too."""
    from shiboken6 import delete, isValid

    try:
        for tab in window.tabs.editors():
            tab.document().setModified(False)
        window.close()
        if not loop.is_closed():
            loop.finish()
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        if isValid(window):
            delete(window)
        gc.collect()


async def until(predicate, timeout=60.0, step=0.02):
    t = 0.0
    while not predicate():
        await asyncio.sleep(step)
        t += step
        if t > timeout:
            raise TimeoutError("condition not reached")
