"""Command line: `llamadesk [gui]`, `complete`, `doctor` (more subcommands join as they land).

Every user mistake ends with exit code 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import runpy
import sys

from app import __version__

EXIT_USAGE = 2


class UserError(Exception):
    """A problem with what the user gave us: printed as one line, exit 2."""


def _gpu_layers(value: str) -> str | int:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected 'auto' or a number of layers (-1 = all)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llamadesk", description="Offline coding assistant.")
    parser.add_argument("--version", action="version", version=f"llamadesk {__version__}")
    sub = parser.add_subparsers(dest="command")

    c = sub.add_parser("complete", help="stream a completion from a local GGUF model")
    c.add_argument("prompt", help="the prompt, or - to read it from stdin")
    c.add_argument("--model", required=True, help="path to a .gguf file")
    c.add_argument("--format", default="auto", choices=["auto", "raw", "phind-v2", "phind-v1", "chat"])
    c.add_argument("--system", help="system prompt for phind-v2 / chat formats")
    c.add_argument("--max-tokens", type=int, default=256)
    c.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    c.add_argument("--top-p", type=float, default=0.95)
    c.add_argument("--top-k", type=int, default=40)
    c.add_argument("--seed", type=int)
    c.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    c.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    c.add_argument("--gpu-layers", type=_gpu_layers, default="auto", help="auto, or a number (-1 = all)")
    c.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    c.add_argument("--stats", action="store_true", help="print one JSON line of statistics on stderr")

    sub.add_parser("doctor", help="show versions, backend, GPU, memory and folders")
    sub.add_parser("gui", help="start the desktop app (the default)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Frozen builds: the app binary doubles as the interpreter for workers and the sandbox.
    if argv[:1] == ["--run-module"] and len(argv) >= 2:
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    if argv[:1] == ["--run-python"]:
        sys.argv = argv[1:] or [""]
        if argv[1:]:
            runpy.run_path(argv[1], run_name="__main__")
        return 0

    args = build_parser().parse_args(argv)
    command = args.command or "gui"
    try:
        if command == "complete":
            from app.commands.complete import run as run_complete
            return asyncio.run(run_complete(args))
        if command == "doctor":
            from app.commands.doctor import run as run_doctor
            return run_doctor(args)
        if command == "gui":
            print("llamadesk: the desktop window is not built yet; try `llamadesk doctor` or "
                  "`llamadesk complete --model FILE PROMPT`", file=sys.stderr)
            return EXIT_USAGE
    except UserError as exc:
        print(f"llamadesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return 0


def print_json_line(obj: dict, stream=None) -> None:
    stream = stream or sys.stderr
    stream.write(json.dumps(obj) + "\n")
    stream.flush()
