"""Cancel checked on the server's side: llama-server's /slots shows the slot go idle, and its
decoded count stop growing (an event, not a timing)."""
from __future__ import annotations

import asyncio

import httpx


def slot(url: str) -> dict:
    return httpx.get(f"{url}/slots", timeout=5).json()[0]


async def cancel_midway_and_watch_the_slot(url: str, gen, after: int = 5) -> tuple[dict, int, int]:
    """Cancel `gen` after `after` chunks (the slot must be busy then); wait for the slot to go
    idle. Returns the idle slot, its decoded count then, and the count read once more."""
    n = 0
    async for _ in gen:
        n += 1
        if n == after:
            assert (await asyncio.to_thread(slot, url))["is_processing"]
            gen.cancel()
    for _ in range(600):
        s = await asyncio.to_thread(slot, url)
        if not s["is_processing"]:
            break
        await asyncio.sleep(0.05)
    first = s["next_token"][0]["n_decoded"]
    again = (await asyncio.to_thread(slot, url))["next_token"][0]["n_decoded"]
    return s, first, again
