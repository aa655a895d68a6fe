"""The GUI's event loop closes an async generator left before its end inside the loop, as
asyncio's own loops do (an HTTP stream read up to its last event is one)."""
import asyncio
import gc
import sys
import time

import pytest


def test_an_async_generator_left_early_is_closed_inside_the_loop(qapp):
    from app.ui.app import make_loop

    loop = make_loop(qapp)
    hooks_before = sys.get_asyncgen_hooks()
    cleaned = []

    async def events():
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)   # cleanup that waits, as an HTTP stream's does
            cleaned.append("after await")

    async def read_first():
        async for _ in events():
            break
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0.01)

    try:
        loop.run_until_complete(read_first())
        assert sys.get_asyncgen_hooks() == hooks_before   # only while the loop runs
        loop.finish()
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    assert cleaned == ["after await"]


@pytest.mark.timeout(60)
def test_finish_gives_up_on_a_task_that_does_not_end_when_cancelled(qapp):
    """The app's exit must not hang on it (a request restarting the engine as it closed did)."""
    from app.ui.app import make_loop

    loop = make_loop(qapp)

    async def stubborn():
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                pass

    task = loop.create_task(stubborn())
    try:
        t0 = time.monotonic()
        loop.finish(wait_s=0.5)
        waited = time.monotonic() - t0
    finally:
        task.cancel()
        loop.close()
        asyncio.set_event_loop(None)
    assert waited < 10
