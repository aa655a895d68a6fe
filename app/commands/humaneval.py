"""`llamadesk humaneval`: the self-test from the command line."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from app import paths
from app.cli import UserError, add_engine_args, engine_options, gpu_layers_arg
from app.commands.status_line import StatusLine, eta_text

RUN_FILE = "run.json"
# Settings that a resumed run takes from run.json rather than from the command line.
PERSISTED = ("model", "engine", "api_model", "protocol", "limit", "tasks", "samples", "temperature", "greedy",
             "max_tokens", "canonical", "evaluate", "problems", "exclude_contaminated", "ctx",
             "seed", "chat_format", "timeout")


def register(sub) -> None:
    h = sub.add_parser("humaneval", help="run HumanEval against a local model, or score samples")
    add_engine_args(h)
    h.add_argument("--protocol", choices=["phind", "codex", "instruct"],
                   help="default: phind for Phind models, codex otherwise")
    h.add_argument("--chat-format", default="auto", choices=["auto", "phind-v2", "chat"],
                   help="prompt format of the instruct protocol")
    h.add_argument("--limit", type=int, help="only the first N tasks")
    h.add_argument("--tasks", help="comma-separated task ids or numbers, e.g. 0,23,HumanEval/42")
    h.add_argument("--samples", type=int, default=1, help="samples per task (for pass@k)")
    h.add_argument("--temperature", type=float)
    h.add_argument("--greedy", action="store_true")
    h.add_argument("--max-tokens", type=int)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--workers", type=int, help="programs tested in parallel (default: cores)")
    h.add_argument("--parallel", type=int, metavar="N",
                   help="generations in flight at once (a server batches them; default: the "
                        "engine's parallel slots)")
    h.add_argument("--timeout", type=float, default=5.0, help="seconds per program")
    h.add_argument("--out", help="output folder (default: a new folder under the results folder)")
    h.add_argument("--resume", help="continue the run in this folder")
    h.add_argument("--canonical", action="store_true", help="score the canonical solutions")
    h.add_argument("--evaluate", metavar="SAMPLES.jsonl", help="score an existing samples file")
    h.add_argument("--problems", help="a problems file in HumanEval's format (default: bundled)")
    h.add_argument("--exclude-contaminated", metavar="REPORT.json",
                   help="score only the tasks a `llamadesk decontam` report found clean")
    h.add_argument("--ctx", type=int, default=4096)
    h.add_argument("--gpu-layers", type=gpu_layers_arg, default="auto")
    h.add_argument("--threads", type=int)


def _label(args) -> str:
    if args.model:
        return Path(args.model).stem
    from urllib.parse import urlsplit

    return "server-" + (urlsplit(args.engine).hostname or "unknown")


def _restore(args) -> Path:
    out = Path(args.resume)
    try:
        saved = json.loads((out / RUN_FILE).read_text())
    except (OSError, ValueError):
        raise UserError(f"{out} is not a run folder (no readable {RUN_FILE})") from None
    for key in PERSISTED:
        setattr(args, key, saved.get(key))
    return out


def _save(args, out: Path) -> None:
    paths.ensure(out)
    saved = {k: getattr(args, k) for k in PERSISTED}
    if saved["engine"]:  # never a password or token that came inside the URL
        from app.engine.remote import public_url

        saved["engine"] = public_url(saved["engine"])
    (out / RUN_FILE).write_text(json.dumps(saved, indent=2))


def select_problems(args) -> tuple[list[dict], dict]:
    from app.bench import humaneval as he

    try:
        problems = he.load_problems(args.problems, args.tasks.split(",") if args.tasks else None, args.limit)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the problems: {exc}") from None
    note = {}
    if args.exclude_contaminated:
        from app.bench.decontam import clean_task_ids

        try:
            clean = set(clean_task_ids(args.exclude_contaminated))
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"cannot read the contamination report: {exc}") from None
        excluded = [p["task_id"] for p in problems if p["task_id"] not in clean]
        problems = [p for p in problems if p["task_id"] in clean]
        note = {"excluded_contaminated": excluded, "decontam_report": str(args.exclude_contaminated)}
    return problems, note


def given_samples(args, problems: list[dict]) -> tuple[list[dict] | None, list[dict]]:
    from app.bench import humaneval as he

    if args.canonical:
        return [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems], problems
    if args.evaluate:
        try:
            rows = he.read_jsonl(args.evaluate)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {args.evaluate}: {exc}") from None
        by_id = {p["task_id"]: p for p in problems}
        bad = [r for r in rows if not isinstance(r, dict) or r.get("task_id") not in by_id
               or not isinstance(r.get("completion"), str)]
        rows = [r for r in rows if r not in bad]
        if bad:
            print(f"llamadesk: skipped {len(bad)} samples with an unknown task or no completion",
                  file=sys.stderr)
        keep = {r["task_id"] for r in rows}
        return rows, [p for p in problems if p["task_id"] in keep]
    return None, problems


class ProgressLine:
    def __init__(self):
        self.line = StatusLine(tty_every_s=0.0, log_every_s=2.0)

    def __call__(self, p) -> None:
        rate = f"  {p.tokens_per_s:.1f} tok/s" if p.tokens_per_s else ""
        pct = f" ({100 * p.passed / p.done:.1f}%)" if p.done else ""
        self.line.show(f"[{p.done:>4}/{p.total}] passed {p.passed}{pct}  {eta_text(p.eta_s)}{rate}",
                       force=p.done >= p.total)


async def run(args) -> int:
    import asyncio

    from app.bench import humaneval as he
    from app.bench.runner import HumanEvalRun
    from app.bench.sandbox import Sandbox
    from app.engine import family, hardware
    from app.engine.base import EngineError, open_engine

    out = _restore(args) if args.resume else None
    if args.parallel is not None and args.parallel < 1:
        raise UserError("--parallel must be at least 1")
    if not (args.model or args.engine or args.canonical or args.evaluate):
        raise UserError("give --model FILE, --engine URL, --canonical or --evaluate SAMPLES.jsonl")
    problems, note = select_problems(args)
    given, problems = given_samples(args, problems)
    if not problems:
        raise UserError("no tasks to run")
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        label = "canonical" if args.canonical else "evaluate" if args.evaluate else _label(args)
        out = Path(args.out) if args.out else paths.results_dir() / f"humaneval-{stamp}-{label}"
        if (out / "results.jsonl").exists():
            raise UserError(f"{out} already holds a run; use --resume {out} or another --out")
        _save(args, out)

    sandbox = Sandbox(workers=args.workers or hardware.detect().physical_cores, timeout=args.timeout)
    engine, protocol, model = None, None, {}
    try:
        await sandbox.start()
        if given is None:
            engine = await open_engine(args.engine or args.model, remote=bool(args.engine), n_ctx=args.ctx,
                                       gpu_layers=args.gpu_layers, threads=args.threads,
                                       **engine_options(args))
            info = engine.info
            protocol_name = args.protocol or family.humaneval_protocol(info.name, info.path)
            chat_format = args.chat_format
            if chat_format == "auto":
                chat_format = family.chat_format(info.name, info.path)
            try:
                protocol = he.make_protocol(protocol_name, args.temperature, args.greedy,
                                            args.max_tokens, chat_format)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            model = engine.record()
        mode = "canonical" if args.canonical else "evaluate" if args.evaluate else "generate"
        progress = ProgressLine()
        runner = HumanEvalRun(out, problems, protocol=protocol, samples=args.samples if given is None else 1,
                              engine=engine, sandbox=sandbox, model=model, seed=args.seed or 0,
                              given_samples=given, note={"mode": mode, **note},
                              on_progress=progress,
                              parallel=args.parallel or (engine.capabilities.parallel_slots if engine else 1))
        try:
            summary = await runner.run()
        except EngineError as exc:
            exc.args = (f"{exc}; resume with --resume {out}",)
            raise
        except asyncio.CancelledError:  # Ctrl-C: what was written stays, the run can resume
            runner.cancel()
            print(f"\ninterrupted; resume with: llamadesk humaneval --resume {out}", file=sys.stderr)
            raise
    finally:
        if engine is not None:
            await engine.close()
        await sandbox.close()
    progress.line.end()
    if note.get("excluded_contaminated") is not None:
        print(f"scored only clean tasks: {len(note['excluded_contaminated'])} contaminated tasks excluded")
    print(f"results in {out}")
    print(f"pass@1 = {summary.get('pass@1', 0.0):.3f} ({summary['passed']}/{summary['samples']})")
    return 0
