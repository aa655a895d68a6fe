"""Benchmark: the contamination check's throughput against the obvious implementation.

Generated training data: JSONL records of Python source (the standard library's, cut into
examples of 0.5-4 KB) with a few planted, re-punctuated HumanEval prompts: 40 MB for the speed
rounds (the reference needs about 8 s for it on one core of these machines), 200 MB and a
400 MB copy for the memory figure. Ours is the command a user runs, process start included, with
the compiled filter that `pip install` builds (`llamadesk doctor` says whether it is there). Reference, per record and per string field:
`t = re.sub(r"[^0-9A-Za-z]", "", text)`, then `any(s in t for s in substrings)` for each task's
sampled substrings (492 in all). Ours: `llamadesk decontam`. Both are measured on one core (ours
with --workers 1), which is what `met` judges, and on all cores: ours with --workers N against
the reference run in N processes over the same 16 MB units that ours splits the input into.
Alternated, medians. Target: ours on one core >= 20x the reference on one core, the same tasks
flagged, bounded peak memory.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.bench import humaneval as he  # noqa: E402
from app.bench.decontam import Settings, prepare_tasks  # noqa: E402
from app.bench.decontam_inputs import plan_units  # noqa: E402

ROUNDS = 3
SPEED_MB = 40
PLANTED = [3, 17, 42, 99, 150]


def make_data(path: Path, megabytes: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    sources = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))[:1500]
    pieces = []
    for src in sources:
        try:
            text = src.read_text(encoding="utf-8")
        except (OSError, UnicodeError):
            continue
        i = 0
        while i < len(text):
            n = rng.randint(500, 4000)
            pieces.append((str(src.name), text[i:i + n]))
            i += n
    problems = {p["task_id"]: p for p in he.load_problems()}
    target = megabytes * 1_000_000
    plant_at = {int(target * (k + 1) / (len(PLANTED) + 1)): PLANTED[k] for k in range(len(PLANTED))}
    written = 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            name, text = pieces[rng.randrange(len(pieces))]
            for at in [a for a in plant_at if a <= written]:
                prompt = problems[f"HumanEval/{plant_at.pop(at)}"]["prompt"]
                text = text + "\n# copied:\n" + prompt.replace("    ", "\t").replace('"""', "'''").replace(",", " ,")
            line = json.dumps({"repo": "bench/stdlib", "path": name, "text": text}) + "\n"
            fh.write(line)
            written += len(line)


def _reference_lines(lines, tasks, flagged: set) -> None:
    for line in lines:
        rec = json.loads(line)
        for value in rec.values():
            if isinstance(value, str):
                t = re.sub(r"[^0-9A-Za-z]", "", value)
                for task in tasks:
                    if any(s in t for s in task.substrings):
                        flagged.add(task.task_id)


def reference(path: Path, tasks) -> tuple[float, set[str]]:
    t0 = time.perf_counter()
    flagged = set()
    with open(path, encoding="utf-8") as fh:
        _reference_lines(fh, tasks, flagged)
    return time.perf_counter() - t0, flagged


def _unit_lines(path: str, start: int, end: int):
    """The lines that start inside [start, end): each line belongs to exactly one unit."""
    with open(path, "rb") as fh:
        if start > 0:
            fh.seek(start - 1)
            fh.readline()
        while fh.tell() < end:
            line = fh.readline()
            if not line:
                break
            yield line


_ref_tasks = None


def _init_reference(tasks) -> None:
    global _ref_tasks
    _ref_tasks = tasks


def _reference_unit(unit: tuple[str, int, int]) -> set[str]:
    flagged: set[str] = set()
    _reference_lines(_unit_lines(*unit), _ref_tasks, flagged)
    return flagged


def reference_parallel(path: Path, tasks, workers: int) -> tuple[float, set[str]]:
    """The reference spread over `workers` processes, unit by unit (process start-up counted, as
    it is for ours)."""
    t0 = time.perf_counter()
    units = [(str(path), u.start, u.end if u.end >= 0 else path.stat().st_size) for u in plan_units([str(path)])[0]]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_reference, initargs=(tasks,)) as pool:
        flagged = set().union(*pool.imap_unordered(_reference_unit, units))
    return time.perf_counter() - t0, flagged


def ours(path: Path, report: Path, workers: int) -> tuple[float, set[str], int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "app", "decontam", str(path), "--workers",
                             str(workers), "--out", str(report)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit("llamadesk decontam failed")
    flagged = set(json.loads(report.read_text())["contaminated_task_ids"])
    return wall, flagged, usage.ru_maxrss * 1024


def peak_rss_of_run(path: Path, report: Path, workers: int) -> int:
    """Peak RSS over the app and its worker processes (the largest one), in bytes."""
    peaks = []
    proc = subprocess.Popen([sys.executable, "-m", "app", "decontam", str(path), "--workers",
                             str(workers), "--out", str(report)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    total_peak = 0
    while proc.poll() is None:
        total = 0
        for pid in [proc.pid] + _children(proc.pid):
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for l in fh:
                        if l.startswith("VmRSS:"):
                            total += int(l.split()[1]) * 1024
            except OSError:
                pass
        total_peak = max(total_peak, total)
        time.sleep(0.05)
    peaks.append(total_peak)
    return max(peaks)


def _children(pid: int) -> list[int]:
    try:
        kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def main() -> dict:
    workers = os.cpu_count() or 1
    tasks = prepare_tasks(he.load_problems(), Settings())
    assert sum(len(t.substrings) for t in tasks) == 492
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data = tmp / "speed.jsonl"
        make_data(data, SPEED_MB)
        mb = data.stat().st_size / 1e6
        print(f"generated {mb:.0f} MB of JSONL with {len(PLANTED)} planted prompts", flush=True)
        times = {"ref1": [], "ours1": [], "refN": [], "oursN": []}
        flagged = {}
        runs = {"ref1": lambda: reference(data, tasks), "ours1": lambda: ours(data, tmp / "report.json", 1)[:2],
                "refN": lambda: reference_parallel(data, tasks, workers),
                "oursN": lambda: ours(data, tmp / "report.json", workers)[:2]}
        for r in range(ROUNDS):
            order = list(runs) if r % 2 == 0 else list(runs)[::-1]
            for side in order:
                t, flagged[side] = runs[side]()
                times[side].append(t)
            print(f"round {r + 1}: one core: reference {mb / times['ref1'][-1]:.1f} MB/s, ours "
                  f"{mb / times['ours1'][-1]:.1f} MB/s | {workers} cores: reference {mb / times['refN'][-1]:.1f} "
                  f"MB/s, ours {mb / times['oursN'][-1]:.1f} MB/s", flush=True)
        data = tmp / "train.jsonl"
        make_data(data, 200)
        rss200 = peak_rss_of_run(data, tmp / "r200.json", workers)
        big = tmp / "train400.jsonl"
        with open(big, "wb") as out:
            for _ in range(2):
                with open(data, "rb") as src:
                    while chunk := src.read(1 << 24):
                        out.write(chunk)
        rss400 = peak_rss_of_run(big, tmp / "r400.json", workers)
    rate = {k: mb / statistics.median(v) for k, v in times.items()}
    speedup = rate["ours1"] / rate["ref1"]
    speedup_all = rate["oursN"] / rate["refN"]
    expected = {f"HumanEval/{k}" for k in PLANTED}
    same = len({frozenset(f) for f in flagged.values()}) == 1
    our_flagged = flagged["oursN"]
    print(f"flagged: " + "; ".join(f"{k} {sorted(v)}" for k, v in flagged.items()) + f"; planted {sorted(expected)}")
    print(f"one core: ours {speedup:.1f}x the reference; {workers} cores: ours {speedup_all:.1f}x the reference "
          f"in {workers} processes")
    print(f"peak memory (all processes): {rss200 / 1e6:.0f} MB at 200 MB input, {rss400 / 1e6:.0f} MB at 400 MB")
    bounded = rss400 < 1.25 * rss200 + 50e6
    return {"benchmark": "decontam_speed", "metric": "throughput_ratio_ours_vs_reference_one_core",
            "value": round(speedup, 1), "target": ">= 20",
            "met": speedup >= 20 and same and bounded and expected <= our_flagged,
            "ours_one_core_mb_s": round(rate["ours1"], 1), "reference_one_core_mb_s": round(rate["ref1"], 2),
            "all_cores_ratio": round(speedup_all, 1), "ours_all_cores_mb_s": round(rate["oursN"], 1),
            "reference_all_cores_mb_s": round(rate["refN"], 2),
            "input_mb": round(mb), "workers": workers, "same_tasks_flagged": same,
            "flagged": sorted(our_flagged), "peak_rss_mb_200": round(rss200 / 1e6),
            "peak_rss_mb_400": round(rss400 / 1e6), "memory_bounded": bounded}

if __name__ == "__main__":
    print(json.dumps(main()))
