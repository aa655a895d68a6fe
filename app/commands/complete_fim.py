"""`llamadesk complete --fim`: one suggestion at a cursor, printed as the editor would show it.

    llamadesk complete --fim --model M.gguf --prefix-file A --suffix-file B [--context FILE]...

The prefix file is the text before the cursor, the suffix file the text after it; each
--context file enters the project-context ring as if the user had opened it.
"""
from __future__ import annotations

import sys
from pathlib import Path

from app.cli import UserError, print_json_line


def add_arguments(c) -> None:
    g = c.add_argument_group("completion at a cursor (--fim)")
    g.add_argument("--fim", action="store_true",
                   help="suggest what goes between --prefix-file and --suffix-file (no PROMPT)")
    g.add_argument("--prefix-file", help="the text before the cursor")
    g.add_argument("--suffix-file", help="the text after the cursor")
    g.add_argument("--context", action="append", default=[], metavar="FILE",
                   help="a project file to draw context from (repeatable)")
    g.add_argument("--max-lines", type=int, default=8, help="lines a suggestion may have")


def _read(path: str | None, what: str) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


async def run(args) -> int:
    from app.cli import engine_options
    from app.completion.completer import Completer
    from app.completion.fim import FimTokens
    from app.completion.ring import Ring
    from app.engine.base import open_engine

    if args.prompt is not None:
        raise UserError("--fim takes --prefix-file/--suffix-file, not a PROMPT")
    if not args.prefix_file:
        raise UserError("--fim needs --prefix-file (the text before the cursor)")
    if args.max_lines <= 0 or args.ctx <= 0 or args.max_tokens <= 0:
        raise UserError("--max-lines, --ctx and --max-tokens must be positive")
    prefix = _read(args.prefix_file, "prefix file")
    suffix = _read(args.suffix_file, "suffix file")
    ring = Ring()
    for path in args.context:
        ring.pick(_read(path, "context file"), Path(path).name)
    ring.flush()
    # Engine errors (a bad file, a server that does not answer) end as one line in cli.main.
    engine = await open_engine(args.engine or args.model, n_ctx=args.ctx, gpu_layers=args.gpu_layers,
                               threads=args.threads, **engine_options(args))
    async with engine:
        completer = Completer(engine, FimTokens.from_dict(engine.info.fim_tokens), ring=ring,
                              max_lines=args.max_lines, max_tokens=args.max_tokens)
        spot = completer.spot(prefix + suffix, len(prefix), Path(args.prefix_file).name)
        res = await completer.complete(spot)
    sys.stdout.write(res.shown + "\n")
    sys.stdout.flush()
    if args.stats:
        print_json_line({
            "format": spot.prompt.family, "prompt_tokens": res.prompt_tokens,
            "cached_tokens": res.cached_tokens, "completion_tokens": res.completion_tokens,
            "latency_s": round(res.latency_s, 4), "context_chunks": len(ring.chunks),
            "raw": res.raw, "shown_lines": len(res.shown.split("\n")) if res.shown else 0,
        })
    return 0
