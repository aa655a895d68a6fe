"""`llamadesk humaneval`: the self-test from the command line."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from app import paths
from app.bench.run_folder import SETTINGS
from app.cli import UserError, add_engine_args, engine_options, gpu_layers_arg
from app.commands.status_line import StatusLine, eta_text

# Settings that a resumed run takes from run.json rather than from the command line (the GUI
# writes the same file).
PERSISTED = tuple(SETTINGS)


def count_arg(value) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return n


def seconds_arg(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and x > 0) or isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {value!r}")
    return x


def register(sub) -> None:
    h = sub.add_parser("humaneval", help="run HumanEval against a local model, or score samples")
    add_engine_args(h)
    h.add_argument("--protocol", choices=["phind", "codex", "instruct"],
                   help="default: phind for Phind models, codex otherwise")
    h.add_argument("--chat-format", default="auto", choices=["auto", "phind-v2", "chat"],
                   help="prompt format of the instruct protocol")
    h.add_argument("--limit", type=count_arg, help="only the first N tasks")
    h.add_argument("--tasks", help="comma-separated task ids or numbers, e.g. 0,23,HumanEval/42")
    h.add_argument("--samples", type=count_arg, default=1, help="samples per task (for pass@k)")
    h.add_argument("--temperature", type=float)
    h.add_argument("--greedy", action="store_true")
    h.add_argument("--max-tokens", type=count_arg)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--workers", type=count_arg, help="programs tested in parallel (default: cores)")
    h.add_argument("--parallel", type=count_arg, metavar="N",
                   help="generations in flight at once (a server batches them; default: the "
                        "engine's parallel slots)")
    h.add_argument("--timeout", type=seconds_arg, default=5.0, help="seconds per program")
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


def _restore(args, folder) -> dict:
    """The resumed run's settings replace the command line's; they are checked like it."""
    saved = folder.read_settings()
    for key in PERSISTED:
        setattr(args, key, saved.get(key))
    try:
        for key, check in (("limit", count_arg), ("samples", count_arg), ("max_tokens", count_arg),
                           ("timeout", seconds_arg)):
            if getattr(args, key) is not None:
                setattr(args, key, check(getattr(args, key)))
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"{folder.path}/run.json: {key}: {exc}") from None
    args.samples = args.samples or 1
    args.timeout = args.timeout or 5.0
    return saved


def _open_folder(args):
    """Lock the run folder before anything else, so a second run stops at once and says why."""
    from app.bench.run_folder import RunFolder, RunFolderError

    if args.resume:
        folder = RunFolder(args.resume)
        if not folder.path.is_dir():
            raise UserError(f"{folder.path} is not a run folder")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        label = "canonical" if args.canonical else "evaluate" if args.evaluate else _label(args)
        folder = RunFolder(args.out if args.out else paths.results_dir() / f"humaneval-{stamp}-{label}")
    try:
        folder.lock()
        if args.resume:
            from app.bench.runner import JsonlLog

            for log in ("samples.jsonl", "results.jsonl"):  # a corrupt log stops us before the model loads
                if (folder.path / log).exists():
                    JsonlLog(folder.path / log).close()
            return folder, _restore(args, folder)
        if folder.has_run():
            raise UserError(f"{folder.path} already holds a run; use --resume {folder.path} or another --out")
    except RunFolderError as exc:
        folder.unlock()
        raise UserError(str(exc)) from None
    except BaseException:
        folder.unlock()
        raise
    return folder, None


def _label(args) -> str:
    from app.bench.runner import source_label

    return source_label(args.engine or args.model or "run", bool(args.engine))


def run_settings(args) -> dict:
    from app.bench.runner import model_identity

    settings = {k: getattr(args, k) for k in PERSISTED}
    if args.model:
        settings["model"] = str(Path(args.model).resolve())
        settings["model_file"] = model_identity(args.model)
    if args.engine:  # never a password or token that came inside the URL
        from app.engine.remote import public_url

        settings["engine"] = public_url(args.engine)
    return settings


def _problem_ids_are_text(problems: list[dict], where: str) -> None:
    for n, p in enumerate(problems, 1):
        task_id = p.get("task_id") if isinstance(p, dict) else p
        if not isinstance(task_id, str):
            raise UserError(f"{where}: entry {n} has a task_id that is not a string: {task_id!r:.60}")


def select_problems(args) -> tuple[list[dict], dict]:
    from app.bench import humaneval as he

    try:
        if args.problems:
            _problem_ids_are_text(he.read_jsonl(args.problems), args.problems)
        problems = he.load_problems(args.problems, args.tasks.split(",") if args.tasks else None, args.limit)
    except (OSError, ValueError, AttributeError) as exc:
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
        for n, r in enumerate(rows, 1):
            if not isinstance(r, dict) or not isinstance(r.get("task_id"), str):
                raise UserError(f"{args.evaluate}: sample {n} has no task_id string"
                                + (f" (got {r.get('task_id')!r:.60})" if isinstance(r, dict) else ""))
        by_id = {p["task_id"]: p for p in problems}
        bad = [r for r in rows if r["task_id"] not in by_id or not isinstance(r.get("completion"), str)]
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


async def _measured_parallel(args) -> int:
    """The local engine's best sequence count for this model and backend (probed once, ~15 s)."""
    from app.engine import hardware, parallel_probe
    from app.engine.base import open_engine

    def probe_engine(n, contexts):
        return open_engine(args.model, n_ctx=1024, gpu_layers=args.gpu_layers, threads=args.threads,
                           parallel=n, exact=True, contexts=contexts)

    backend = hardware.detect_backend()
    fresh = parallel_probe.cached(args.model, backend) is None
    if fresh:
        print("measuring how many sequences to decode together (once per model, ~15 s)...",
              file=sys.stderr)
    n = await parallel_probe.default_parallel(args.model, backend=backend, open_probe_engine=probe_engine)
    k = parallel_probe.cached_contexts(args.model, backend, n)
    print(f"parallel sequences: {n}" + (f" over {k} llama contexts" if k > 1 else "")
          + (" (measured)" if fresh else " (measured before)"), file=sys.stderr)
    return n


async def run(args) -> int:
    if not (args.resume or args.model or args.engine or args.canonical or args.evaluate):
        raise UserError("give --model FILE, --engine URL, --canonical or --evaluate SAMPLES.jsonl")
    folder, saved = _open_folder(args)
    try:
        return await _run_in(folder, saved, args)
    finally:
        folder.unlock()


async def _run_in(folder, saved: dict | None, args) -> int:
    import asyncio

    from app.bench import humaneval as he
    from app.bench.run_folder import RunFolderError
    from app.bench.runner import HumanEvalRun, check_same_model, resolve_protocol
    from app.bench.sandbox import Sandbox
    from app.engine import hardware
    from app.engine.base import EngineError, open_engine

    out = folder.path
    if not (args.model or args.engine or args.canonical or args.evaluate):
        raise UserError(f"{out}/run.json names no model, server, --canonical or --evaluate")
    problems, note = select_problems(args)
    given, problems = given_samples(args, problems)
    if not problems:
        raise UserError("no tasks to run")
    if saved is not None and args.model and not given:
        try:
            check_same_model(saved, args.model)
        except RunFolderError as exc:
            raise UserError(str(exc)) from None
    sandbox = Sandbox(workers=args.workers or hardware.detect().physical_cores, timeout=args.timeout)
    engine, protocol, model = None, None, {}
    try:
        await sandbox.start()
        if given is None:
            parallel = args.parallel
            if parallel is None and not args.engine:
                parallel = await _measured_parallel(args)
            engine = await open_engine(args.engine or args.model, remote=bool(args.engine), n_ctx=args.ctx,
                                       gpu_layers=args.gpu_layers, threads=args.threads,
                                       parallel=parallel or 1, exact=True, **engine_options(args))
            info = engine.info
            try:
                protocol = resolve_protocol(vars(args), f"{info.name} {Path(info.path).name}")
            except ValueError as exc:
                raise UserError(str(exc)) from None
            model = engine.record()
        mode = "canonical" if args.canonical else "evaluate" if args.evaluate else "generate"
        settings = saved if saved is not None else run_settings(args)
        progress = ProgressLine()
        runner = HumanEvalRun(folder, problems, protocol=protocol, samples=args.samples if given is None else 1,
                              engine=engine, sandbox=sandbox, model=model, seed=args.seed or 0,
                              given_samples=given, note={"mode": mode, **note},
                              on_progress=progress, settings=settings,
                              parallel=args.parallel or (engine.capabilities.parallel_slots if engine else 1))
        try:
            summary = await runner.run()
        except RunFolderError as exc:
            raise UserError(str(exc)) from None
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
