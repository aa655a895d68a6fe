"""Benchmark: the contamination check's throughput against the obvious implementation.

Generated training data: JSONL records of Python source (the standard library's, cut into
examples of 0.5-4 KB) with a few planted, re-punctuated HumanEval prompts, 200 MB (and a
400 MB copy for the memory figure). Reference, per record and per string field:
`t = re.sub(r"[^0-9A-Za-z]", "", text)`, then `any(s in t for s in substrings)` for each task's
sampled substrings (492 in all). Ours: `llamadesk decontam` (all cores). Alternated, medians.
Target: ours >= 20x the reference's MB/s, the same tasks flagged, bounded peak memory.
"""
from __future__ import annotations

import json
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

ROUNDS = 3
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


def reference(path: Path, tasks) -> tuple[float, set[str]]:
    t0 = time.perf_counter()
    flagged = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            for value in rec.values():
                if isinstance(value, str):
                    t = re.sub(r"[^0-9A-Za-z]", "", value)
                    for task in tasks:
                        if any(s in t for s in task.substrings):
                            flagged.add(task.task_id)
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
        data = tmp / "train.jsonl"
        make_data(data, 200)
        mb = data.stat().st_size / 1e6
        print(f"generated {mb:.0f} MB of JSONL with {len(PLANTED)} planted prompts")
        ref_t, our_t = [], []
        for r in range(ROUNDS):
            order = ("ref", "ours") if r % 2 == 0 else ("ours", "ref")
            for side in order:
                if side == "ref":
                    t, ref_flagged = reference(data, tasks)
                    ref_t.append(t)
                else:
                    t, our_flagged, _ = ours(data, tmp / "report.json", workers)
                    our_t.append(t)
            print(f"round {r + 1}: reference {mb / ref_t[-1]:.1f} MB/s, ours {mb / our_t[-1]:.1f} MB/s")
        rss200 = peak_rss_of_run(data, tmp / "r200.json", workers)
        big = tmp / "train400.jsonl"
        with open(big, "wb") as out:
            for _ in range(2):
                with open(data, "rb") as src:
                    while chunk := src.read(1 << 24):
                        out.write(chunk)
        rss400 = peak_rss_of_run(big, tmp / "r400.json", workers)
    ref_rate, our_rate = mb / statistics.median(ref_t), mb / statistics.median(our_t)
    speedup = our_rate / ref_rate
    expected = {f"HumanEval/{k}" for k in PLANTED}
    same = our_flagged == ref_flagged
    print(f"reference flagged {sorted(ref_flagged)}; ours {sorted(our_flagged)}; planted {sorted(expected)}")
    print(f"peak memory (all processes): {rss200 / 1e6:.0f} MB at 200 MB input, {rss400 / 1e6:.0f} MB at 400 MB")
    bounded = rss400 < 1.25 * rss200 + 50e6
    return {"benchmark": "decontam_speed", "metric": "throughput_ratio_ours_vs_reference",
            "value": round(speedup, 1), "target": ">= 20",
            "met": speedup >= 20 and same and bounded and expected <= our_flagged,
            "ours_mb_s": round(our_rate, 1), "reference_mb_s": round(ref_rate, 2),
            "input_mb": round(mb), "workers": workers, "same_tasks_flagged": same,
            "flagged": sorted(our_flagged), "peak_rss_mb_200": round(rss200 / 1e6),
            "peak_rss_mb_400": round(rss400 / 1e6), "memory_bounded": bounded}


if __name__ == "__main__":
    print(json.dumps(main()))
