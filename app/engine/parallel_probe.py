"""How many sequences to decode together on this machine: measured once, then remembered.

Token generation is memory-bound on a GPU, so 8 sequences cost little more than one; a busy
2-core CPU is compute-bound and gains little or nothing. A short probe (about 10 s) decodes 1,
2, 4 and 8 sequences with the model itself and keeps the count with the best tokens/s; the
result is cached in the data folder per model file (path, size, mtime) and backend.
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
GAIN = 1.1   # a larger count must beat the best smaller one by this much to be chosen


def cache_file() -> Path:
    return paths.data_dir() / "parallel_probe.json"


def cache_key(model_path: str | Path, backend: str) -> str:
    st = os.stat(model_path)
    # "exact": probes load as the self-test does (P.Load.exact); counts measured before with
    # repacked weights are not reused
    return f"{Path(model_path).resolve()}|{st.st_size}|{int(st.st_mtime)}|{backend}|exact"


def cached(model_path, backend: str) -> int | None:
    try:
        entry = json.loads(cache_file().read_text()).get(cache_key(model_path, backend))
    except (OSError, ValueError):
        return None
    return int(entry["best"]) if entry else None


def remember(model_path, backend: str, best: int, rates: dict[int, float]) -> None:
    path = paths.ensure(cache_file().parent) / cache_file().name
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[cache_key(model_path, backend)] = {"best": best, "tokens_per_s": rates, "at": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


async def measure(engine, budget_s: float = 10.0, counts=COUNTS) -> dict[int, float]:
    """Tokens/s of the engine (loaded with at least max(counts) slots) at each count."""
    rates: dict[int, float] = {}
    per = budget_s / len(counts)
    for n in counts:
        if n > engine.capabilities.parallel_slots:
            break
        tokens, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < per or tokens == 0:
            gens = [engine.generate(f"# variant {i}\n{PROMPT}", GenerateParams(max_tokens=16))
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


async def default_parallel(model_path, *, backend: str, open_probe_engine, budget_s: float = 10.0) -> int:
    """The cached count for this model file and backend, or probe now and cache it.
    `open_probe_engine(n)` returns an engine with n slots (closed here afterwards)."""
    hit = cached(model_path, backend)
    if hit is not None:
        return hit
    engine = await open_probe_engine(max(COUNTS))
    try:
        rates = await measure(engine, budget_s)
    finally:
        await engine.close()
    best = pick(rates)
    remember(model_path, backend, best, {str(k): round(v, 2) for k, v in rates.items()})
    return best
