"""How fast this machine generates: a memory-bandwidth probe and one short timed generation with
the first model loaded, cached in the data folder. The advisor predicts tokens/s from it.

Generating a token reads every weight once, so on a CPU the time per token is about
`weights x cost per byte` plus a fixed cost (sampling, the graph, the pipe to the worker). A byte
costs what the slower of two allows: the memory (the probe's bandwidth) or the threads' arithmetic
on quantized weights. The second shows when the same model runs with half the threads: the part
of the time that threads share is arithmetic. The rest of the timed generation is the fixed
cost. No Qt, no engine import: the measurement takes any engine with the `generate()` of
app.engine.client.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass

from app import paths

PROBE_BYTES = 192 * 2**20   # larger than any CPU cache, so RAM is what is measured
MEASURE_TOKENS = 16      # per round
MEASURE_ROUNDS = 3       # the median: one busy moment elsewhere does not set the figure
HALF_THREADS_ROUNDS = 2  # the same generation with half the threads, for the arithmetic's share
MEASURE_PROMPT = "Count from one to one hundred in words, separated by commas: one, two, three,"
DEFAULT_CPU_BANDWIDTH = 8e9      # bytes/s, when nothing was measured yet (a modest laptop)
DEFAULT_GPU_BANDWIDTH = 300e9    # bytes/s, a mid-range discrete GPU
DEFAULT_OVERHEAD_S = 0.004


@dataclass
class Speed:
    cpu_bandwidth: float                 # bytes/s that a token's weight reads achieve on the CPU
    overhead_s: float = DEFAULT_OVERHEAD_S  # per token, not explained by reading weights
    overhead_layers: int = 0             # the measured model's layers: the fixed cost is per layer
    gpu_bandwidth: float | None = None
    probe_bandwidth: float = 0.0         # what the memcpy probe saw (bytes/s)
    measured_file: str = ""
    measured_bytes: int = 0
    measured_tps: float = 0.0
    measured_threads: int = 0
    half_threads_tps: float = 0.0        # the same model with half as many threads (0: not measured)
    measured_at: str = ""

    @property
    def measured(self) -> bool:
        return self.measured_tps > 0

    def seconds_per_token(self, cpu_bytes: float, gpu_bytes: float = 0.0, n_layers: int = 0) -> float:
        # the fixed cost grows with the graph (ops per layer); on a busy CPU it dominates
        overhead = self.overhead_s * (n_layers / self.overhead_layers
                                      if n_layers and self.overhead_layers else 1.0)
        gpu_bw = self.gpu_bandwidth or DEFAULT_GPU_BANDWIDTH
        return overhead + cpu_bytes / self.cpu_bandwidth + gpu_bytes / gpu_bw

    def tokens_per_s(self, cpu_bytes: float, gpu_bytes: float = 0.0, n_layers: int = 0) -> float:
        return 1.0 / self.seconds_per_token(cpu_bytes, gpu_bytes, n_layers)


def default() -> Speed:
    return Speed(DEFAULT_CPU_BANDWIDTH)


def probe_bandwidth(nbytes: int = PROBE_BYTES, repeats: int = 5) -> float:
    """Bytes/s of a large memcpy (read + write), best of a few, so other load counts least."""
    src = bytearray(os.urandom(1024)) * (nbytes // 1024)
    dst = bytearray(len(src))
    view = memoryview(dst)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        view[:] = src
        best = min(best, time.perf_counter() - t)
    return 2 * len(src) / best


def calibrate(probe: float, model_bytes: int, measured_tps: float, on_gpu: bool = False,
              model_file: str = "", n_layers: int = 0, half_threads_tps: float = 0.0,
              threads: int = 0) -> Speed:
    """The measured speed (and, with several threads, the speed with half of them) and the probe
    -> the two constants of the per-token time."""
    spt = 1.0 / measured_tps
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    common = dict(probe_bandwidth=probe, measured_file=model_file, measured_bytes=model_bytes,
                  measured_tps=measured_tps, measured_at=stamp, overhead_layers=n_layers,
                  half_threads_tps=half_threads_tps, measured_threads=threads)
    if on_gpu:
        gpu_bw = model_bytes / max(spt - DEFAULT_OVERHEAD_S, spt / 2)
        return Speed(probe, DEFAULT_OVERHEAD_S, gpu_bandwidth=gpu_bw, **common)
    bandwidth = probe
    if half_threads_tps > 0 and threads > 1:
        # Arithmetic that takes a(n) with n threads takes a(n) x n / h with h of them. Without
        # it a CPU whose threads compute slower than its memory delivers took Gemma-3-270M for
        # 1.4-1.6x faster than it runs (predicted from SmolLM2 on a 2-core Xeon, where Gemma
        # takes 26 ms a token with 2 threads and 45 with 1).
        arithmetic = (1.0 / half_threads_tps - spt) / (threads / (threads // 2) - 1)
        if arithmetic > 0:
            bandwidth = min(probe, model_bytes / arithmetic)
    overhead = spt - model_bytes / bandwidth
    if overhead < 0.0005:
        # The reads explain the whole time (the threads read faster than one memcpy, or the
        # arithmetic takes it all): trust the generation alone.
        return Speed(model_bytes / (spt * 0.9), spt * 0.1, **common)
    return Speed(bandwidth, overhead, **common)


async def measure(engine, model_bytes: int, on_gpu: bool = False, probe: float | None = None) -> Speed:
    """A short greedy generation with the loaded model; `engine.generate` as in EngineClient."""
    import asyncio

    from app.engine.protocol import GenerateParams

    async def rate(rounds: int, threads: int | None = None) -> float:
        rates = []
        for _ in range(rounds):
            gen = engine.generate(MEASURE_PROMPT, GenerateParams(max_tokens=MEASURE_TOKENS,
                                                                 temperature=0.0, threads=threads))
            await gen.result()
            st = gen.stats
            if st is not None and st.completion_tokens >= 4 and st.tokens_per_s > 0:
                rates.append(st.tokens_per_s)
        if not rates:
            raise RuntimeError("the timed generation produced too few tokens to measure")
        return statistics.median(rates)

    if probe is None:
        probe = await asyncio.to_thread(probe_bandwidth)
    info = engine.info
    tps = await rate(MEASURE_ROUNDS)
    threads = (info.n_threads or 0) if info else 0
    half = await rate(HALF_THREADS_ROUNDS, threads // 2) if threads > 1 and not on_gpu else 0.0
    return calibrate(probe, model_bytes, tps, on_gpu, info.path if info else "",
                     info.layers if info else 0, half_threads_tps=half, threads=threads)


def cache_path():
    return paths.data_dir() / "machine-speed.json"


def load() -> Speed | None:
    try:
        data = json.loads(cache_path().read_text())
        return Speed(**{k: data[k] for k in Speed.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def save(speed: Speed) -> None:
    path = paths.ensure(paths.data_dir()) / "machine-speed.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(speed), indent=1))
    os.replace(tmp, path)
