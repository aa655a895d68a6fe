"""Run the contamination check over inputs (in parallel), and build its report."""
from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

from app.bench import decontam_inputs
from app.bench.decontam import Matcher, Settings, Task, prepare_tasks
from app.bench.decontam_inputs import (MAX_MALFORMED_LISTED, Cancelled, InputError, Unit,
                                       UnitResult, UnitScanner, _open_binary, plan_units)

_scanner: UnitScanner | None = None


def _init_worker(tasks: list[Task], settings: Settings) -> None:
    global _scanner
    _scanner = UnitScanner(Matcher(tasks, settings))


def _scan_in_worker(unit: Unit) -> UnitResult:
    return _scanner.scan(unit)


@dataclass
class CheckProgress:
    done_bytes: int
    total_bytes: int
    elapsed_s: float


def run_check(paths: list[str], problems: list[dict], settings: Settings, workers: int = 1,
              progress=None, cancel: threading.Event | None = None) -> dict:
    """Check every input; raises InputError for an unreadable one, Cancelled on cancel."""
    t0 = time.perf_counter()
    tasks = prepare_tasks(problems, settings)
    units, total = plan_units(paths)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(CheckProgress(min(done, total), total, time.perf_counter() - t0))

    # A worker process takes about 0.2 s to start, about what one scans 16 MB in: each one started
    # gets at least four units' worth of input, or the check stays in this process.
    workers = min(workers, max(1, total // (4 * decontam_inputs.UNIT)))
    results: list[UnitResult] = []
    if workers <= 1 or len(units) == 1:
        scanner = UnitScanner(Matcher(tasks, settings), cancel=cancel, progress=advance)
        for unit in units:
            results.append(scanner.scan(unit))
    else:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that may run Qt
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(tasks, settings)) as pool:
            futures = {pool.submit(_scan_in_worker, u): u for u in units}
            try:
                for fut in as_completed(futures):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled()
                    results.append(fut.result())
                    u = futures[fut]
                    advance((u.end - u.start) if u.end >= 0 else _size(u.path))
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.kill()
                raise
    results.sort(key=lambda r: r.order)
    return build_report(paths, tasks, settings, results, time.perf_counter() - t0, total)


def _size(path: str) -> int:
    import os

    return os.path.getsize(path)


def _line_numbers(path: str, compressed: str | None, offsets: set[int]) -> dict[int, int]:
    """Byte offsets of line starts -> 1-based line numbers, in one pass over the file."""
    want = sorted(offsets)
    out, line, pos, i = {}, 1, 0, 0
    unit = Unit(path, "jsonl", compressed)
    with _open_binary(unit) as fh:
        while i < len(want):
            block = fh.read(1 << 22)
            if not block:
                break
            while i < len(want) and want[i] < pos + len(block):
                out[want[i]] = line + block.count(b"\n", 0, want[i] - pos)
                i += 1
            line += block.count(b"\n")
            pos += len(block)
    return out


def build_report(paths, tasks: list[Task], settings: Settings, results: list[UnitResult],
                 wall_s: float, total_bytes: int) -> dict:
    from app.bench.decontam_inputs import kind_of
    from pathlib import Path

    # First match per task in input order; windows found anywhere.
    for t in tasks:
        t.match, t.found = None, set()
    for r in results:
        for k, where in r.matches.items():
            if tasks[k].match is None:
                tasks[k].match = dict(where)
        for k, found in r.found.items():
            tasks[k].found |= found

    # JSONL positions are byte offsets inside the file; users want line numbers.
    by_file: dict[str, set[int]] = {}
    for t in tasks:
        if t.match and "offset" in t.match:
            by_file.setdefault(t.match["file"], set()).add(t.match["offset"])
    for r in results:
        for off, _ in r.malformed[:MAX_MALFORMED_LISTED] + r.long_records[:MAX_MALFORMED_LISTED]:
            if kind_of(Path(r.path))[0] == "jsonl":
                by_file.setdefault(r.path, set()).add(off)
    lines = {f: _line_numbers(f, kind_of(Path(f))[1], offs) for f, offs in by_file.items()}
    for t in tasks:
        if t.match and "offset" in t.match:
            t.match["record"] = lines[t.match["file"]][t.match.pop("offset")]
            t.match["line"] = t.match["record"]

    inputs: dict[str, dict] = {}
    malformed, long_records = [], []
    fields_seen: set[str] = set()
    for r in results:
        fields_seen |= r.fields_seen
        for off, note in r.long_records:
            if len(long_records) < MAX_MALFORMED_LISTED:
                line = lines.get(r.path, {}).get(off)
                long_records.append({"file": r.path, "line": line, "note": note} if line
                                    else {"file": r.path, "note": note})
        entry = inputs.setdefault(r.path, {"path": r.path, "bytes": 0, "records": 0, "malformed": 0})
        entry["bytes"] += r.bytes
        entry["records"] += r.records
        entry["malformed"] += len(r.malformed)
        if r.skipped:
            entry["skipped"] = r.skipped
        for off, msg in r.malformed:
            if len(malformed) < MAX_MALFORMED_LISTED:
                line = lines.get(r.path, {}).get(off)
                malformed.append({"file": r.path, "line": line, "error": msg} if line
                                 else {"file": r.path, "error": msg})

    per_task = []
    for t in tasks:
        contaminated = t.match is not None
        item = {"task_id": t.task_id, "contaminated": contaminated, "match": t.match,
                "substrings": t.substrings}
        if settings.exhaustive:
            item["window_fraction"] = round(len(t.found) / t.windows, 4)
            item["windows"] = t.windows
        per_task.append(item)
    dirty = [x["task_id"] for x in per_task if x["contaminated"]]
    clean = [x["task_id"] for x in per_task if not x["contaminated"]]
    records = sum(i["records"] for i in inputs.values())
    summary = (f"{len(dirty)} of {len(tasks)} HumanEval tasks contaminated "
               f"({'exhaustive, beyond the paper' if settings.exhaustive else 'GPT-4 report method'}); "
               f"{records} training examples in {len(inputs)} files, {total_bytes / 1e6:.1f} MB "
               f"in {wall_s:.1f} s; {sum(i['malformed'] for i in inputs.values())} malformed lines skipped"
               + (f"; {sum(len(r.long_records) for r in results)} records over {settings.max_record_mb} MB "
                  f"scanned as raw text" if long_records else ""))
    return {
        "settings": settings.describe(),
        "inputs": {"paths": [str(p) for p in paths], "files": list(inputs.values()),
                   "malformed": malformed, "long_records": long_records, "bytes": total_bytes,
                   "records": records,
                   "fields_missing": [f for f in settings.fields or [] if f not in fields_seen]},
        "tasks": per_task,
        "contaminated_task_ids": dirty,
        "clean_task_ids": clean,
        "summary": summary,
        "wall_s": round(wall_s, 3),
    }
