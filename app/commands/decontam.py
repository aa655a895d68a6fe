"""`llamadesk decontam`: check training data for HumanEval contamination."""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from app import paths
from app.atomic import write_atomic
from app.cli import UserError
from app.commands.status_line import StatusLine


def register(sub) -> None:
    d = sub.add_parser("decontam", help="check a training set for HumanEval contamination "
                                        "(GPT-4 Technical Report method)")
    d.add_argument("paths", nargs="+", metavar="PATH", help="files or folders of training data")
    d.add_argument("--field", action="append", dest="fields",
                   help="record field to check (repeatable; default: every string field)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--samples", type=int, default=3, help="substrings sampled per task")
    d.add_argument("--length", type=int, default=50, help="substring length")
    d.add_argument("--exhaustive", action="store_true",
                   help="check every window of each prompt (beyond the paper)")
    d.add_argument("--casefold", action="store_true", help="ignore case")
    d.add_argument("--workers", type=int, default=1,
                   help="processes at most: each gets 64 MB of input or more (default 1)")
    d.add_argument("--problems", help="HumanEval problems file (default: bundled)")
    d.add_argument("--out", help="report file (default: a new file under the results folder)")
    d.add_argument("--max-record-mb", type=int, default=64,
                   help="records longer than this are scanned as raw text in windows (default 64)")
    d.add_argument("--validate-json", action="store_true",
                   help="parse every JSONL line and report every malformed one (slower; by default "
                        "only the lines that could hold a match are parsed)")


def run(args) -> int:
    from app.bench import humaneval as he
    from app.bench.decontam import Settings
    from app.bench.decontam_inputs import Cancelled, InputError
    from app.bench.decontam_run import run_check

    if args.length < 2 or args.samples < 1:
        raise UserError("--length must be at least 2 and --samples at least 1")
    if args.max_record_mb < 1:
        raise UserError("--max-record-mb must be at least 1")
    out = _report_path(args.out)  # before the scan, not after an hour of it
    try:
        problems = he.load_problems(args.problems)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the problems: {exc}") from None
    settings = Settings(length=args.length, samples=args.samples, seed=args.seed,
                        casefold=args.casefold, exhaustive=args.exhaustive, fields=args.fields,
                        max_record_mb=args.max_record_mb, validate_json=args.validate_json)
    line = StatusLine(tty_every_s=0.2, log_every_s=5.0)

    def progress(p):
        rate = p.done_bytes / 1e6 / p.elapsed_s if p.elapsed_s else 0
        line.show(f"{p.done_bytes / 1e6:,.0f}/{p.total_bytes / 1e6:,.0f} MB  {rate:.0f} MB/s",
                  force=p.done_bytes >= p.total_bytes)

    cancel = threading.Event()
    try:
        report = run_check(args.paths, problems, settings, workers=max(1, args.workers),
                           progress=progress, cancel=cancel)
    except InputError as exc:
        raise UserError(str(exc)) from None
    except (KeyboardInterrupt, Cancelled):
        print("\ncancelled", file=sys.stderr)
        return 130
    line.end()
    missing = report["inputs"]["fields_missing"]
    if missing:
        raise UserError(f"--field {', '.join(missing)}: no record of the inputs has "
                        f"{'this field' if len(missing) == 1 else 'these fields'}; nothing was checked "
                        f"there (no report written)")
    try:
        write_atomic(out, json.dumps(report, indent=1))
    except OSError as exc:
        raise UserError(f"cannot write the report {out}: {exc.strerror or exc}") from None
    for m in report["inputs"]["malformed"][:10]:
        where = f"{m['file']}:{m['line']}" if m.get("line") else m["file"]
        print(f"skipped malformed line {where}: {m['error']}", file=sys.stderr)
    for m in report["inputs"]["long_records"][:10]:
        where = f"{m['file']}:{m['line']}" if m.get("line") else m["file"]
        print(f"{where}: {m['note']}", file=sys.stderr)
    for f in report["inputs"]["files"]:
        if f.get("skipped"):
            print(f"skipped {f['path']}: {f['skipped']}", file=sys.stderr)
    for t in report["tasks"]:
        if t["contaminated"]:
            m = t["match"]
            frac = f" ({t['window_fraction']:.0%} of windows)" if "window_fraction" in t else ""
            print(f"{t['task_id']}: found in {m['file']} record {m['record']} field {m.get('field', '-')}{frac}")
    print(report["summary"])
    print(f"report: {out}")
    return 0


def _report_path(given: str | None) -> Path:
    if not given:
        return paths.ensure(paths.results_dir()) / f"decontam-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out = Path(given)
    folder = out.parent
    if out.is_dir():
        raise UserError(f"--out {given} is a folder; give a file name")
    if not folder.is_dir():
        raise UserError(f"--out {given}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--out {given}: the folder {folder} is not writable")
    return out
