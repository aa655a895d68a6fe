"""How many sequences to decode together on this machine, and over how many llama contexts:
measured once, then remembered.

Token generation is memory-bound on a GPU, so 8 sequences cost little more than one; a busy
2-core CPU is compute-bound and gains little or nothing. A short probe (about 16 s) decodes 1,
2, 4 and 8 sequences with the model itself and keeps the count with the best tokens/s; on a
CPU of 2 or 3 threads it also decodes 2, 4 and 8 over two contexts (context_runner.py:
a small model on few cores gains, a big one reads its weights twice as often and loses), and
keeps, for each count, the layout that was faster. The result is cached in the data folder per
model file (path, size, mtime) and backend.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from app import paths
from app.engine.protocol import GenerateParams

COUNTS = (1, 2, 4, 8)
PROMPT = "def fibonacci(n):\n    "
LONGEST = 32   # tokens of a round's longest request
GAIN = 1.1   # a larger count must beat the best smaller one by this much to be chosen


def cache_file() -> Path:
    return paths.data_dir() / "parallel_probe.json"


def cache_key(model_path: str | Path, backend: str) -> str:
    st = os.stat(model_path)
    # "exact": probes load as the self-test does (P.Load.exact); counts measured before with
    # repacked weights are not reused
    # repacked weights are not reused; "contexts": entries from before the split was probed
    return f"{Path(model_path).resolve()}|{st.st_size}|{int(st.st_mtime)}|{backend}|exact|contexts"


def _entry(model_path, backend: str) -> dict | None:
    try:
        return json.loads(cache_file().read_text()).get(cache_key(model_path, backend))
    except (OSError, ValueError):
        return None


def cached(model_path, backend: str) -> int | None:
    entry = _entry(model_path, backend)
    return int(entry["best"]) if entry else None


def cached_contexts(model_path, backend: str, count: int) -> int:
    """The contexts that decoded `count` sequences fastest here (1 where not measured)."""
    entry = _entry(model_path, backend) if count > 1 else None
    try:
        return max(1, int((entry or {}).get("contexts", {}).get(str(count), 1)))
    except (TypeError, ValueError, AttributeError):
        return 1


def remember(model_path, backend: str, best: int, rates: dict[int, float],
             split_rates: dict | None = None, contexts: dict | None = None) -> None:
    path = paths.ensure(cache_file().parent) / cache_file().name
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[cache_key(model_path, backend)] = {"best": best, "tokens_per_s": rates,
                                            "split_tokens_per_s": split_rates or {},
                                            "contexts": contexts or {}, "at": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


async def measure(engine, budget_s: float = 8.0, counts=COUNTS) -> dict[int, float]:
    """Tokens/s of the engine (loaded with at least max(counts) slots) at each count, in rounds
    of that many requests of uneven lengths (up to LONGEST tokens): as in a self-test, answers
    end at different times, and the last of a round run with fewer beside them."""
    rates: dict[int, float] = {}
    per = budget_s / len(counts)
    for n in counts:
        if n > engine.capabilities.parallel_slots:
            break
        tokens, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < per or tokens == 0:
            gens = [engine.generate(f"# variant {i}\n{PROMPT}", GenerateParams(max_tokens=LONGEST * (i + 1) // n))
                    for i in range(n)]
            await asyncio.gather(*(g.result() for g in gens))
            tokens += sum(g.stats.completion_tokens for g in gens)
        rates[n] = tokens / (time.perf_counter() - t0)
    return rates


def pick(rates: dict[int, float]) -> int:
    best = min(rates)
    for n in sorted(rates):
        if rates[n] >= GAIN * rates[best]:
            best = n
    return best


SPLIT = 2            # contexts tried on a CPU
SPLIT_GAIN = 1.03    # the split must beat one context by this much (its costs: a KV cache and
                     # compute buffers per context, and less prefix reuse across them)


def choose(rates: dict[int, float], split: dict[int, float]) -> tuple[int, dict[int, int]]:
    """The best count over both layouts, and the contexts for every count measured."""
    contexts = {n: SPLIT if split.get(n, 0.0) >= SPLIT_GAIN * r else 1 for n, r in rates.items()}
    best_rates = {n: split[n] if contexts[n] > 1 else r for n, r in rates.items()}
    return pick(best_rates), contexts


async def _measure_layout(open_probe_engine, contexts: int, budget_s: float, counts) -> tuple[dict, int]:
    engine = await open_probe_engine(max(COUNTS), contexts)
    try:
        threads = engine.info.n_threads if engine.info else 1
        return await measure(engine, budget_s, counts), threads
    finally:
        await engine.close()


async def default_parallel(model_path, *, backend: str, open_probe_engine, budget_s: float = 16.0) -> int:
    """The cached count for this model file and backend, or probe now and cache it.
    `open_probe_engine(n, contexts)` returns an engine with n slots over that many contexts
    (closed here afterwards; one at a time, so one copy of the model is in memory). On a CPU the
    two layouts are measured twice each, alternated, keeping each count's faster measure: one
    second a count is short, and whatever else runs on the machine only ever slows a measure.
    A CPU with other than 2 or 3 threads has its one layout measured for 4 s."""
    hit = cached(model_path, backend)
    if hit is not None:
        return hit
    on_cpu = backend == "CPU"
    # elsewhere the one layout, in one go of about 10 s, as before the split was probed
    rates, threads = await _measure_layout(open_probe_engine, 1, budget_s / 4 if on_cpu else 10.0, COUNTS)
    split: dict[int, float] = {}
    # two contexts of one thread each: with more threads each context's decodes would take
    # several, and those all run on the worker's main thread (context_runner.WideDecode), one at a time
    if on_cpu and threads // SPLIT == 1:
        wide = [n for n in COUNTS if n >= SPLIT]
        split, _ = await _measure_layout(open_probe_engine, SPLIT, budget_s / 4, wide)
        again, _ = await _measure_layout(open_probe_engine, 1, budget_s / 4, COUNTS)
        rates = {n: max(r, again.get(n, 0.0)) for n, r in rates.items()}
        again, _ = await _measure_layout(open_probe_engine, SPLIT, budget_s / 4, wide)
        split = {n: max(r, again.get(n, 0.0)) for n, r in split.items()}
    best, contexts = choose(rates, split)
    remember(model_path, backend, best, {str(k): round(v, 2) for k, v in rates.items()},
             {str(k): round(v, 2) for k, v in split.items()}, {str(k): v for k, v in contexts.items()})
    return best
