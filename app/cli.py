"""Command line: `llamadesk [gui]` and one subcommand per module in app/commands.

Every user mistake ends with exit code 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import inspect
import json
import runpy
import sys

from app import __version__

EXIT_USAGE = 2
COMMANDS = ("complete", "humaneval", "decontam", "models", "doctor")


class UserError(Exception):
    """A problem with what the user gave us: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_USAGE, f"llamadesk: {message} (see llamadesk {self.prog.split()[-1]} --help)\n")


def gpu_layers_arg(value: str) -> str | int:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected 'auto' or a number of layers (-1 = all)") from None


def _command_module(name: str):
    import importlib

    return importlib.import_module(f"app.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    gui = argparse.ArgumentParser(add_help=False)
    gui.add_argument("--open", metavar="FILE", help="open a file in the editor")
    gui.add_argument("--screenshot", metavar="OUT.png", help="show the window offscreen, save a PNG, exit")
    gui.add_argument("--panel", choices=["editor", "assistant", "models", "humaneval", "decontam", "settings"],
                     help="the panel to show for --screenshot")
    gui.add_argument("--theme", choices=["system", "light", "dark"], help="the theme for this run (not saved)")
    parser = _Parser(prog="llamadesk", description="Offline coding assistant.", parents=[gui])
    parser.add_argument("--version", action="version", version=f"llamadesk {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS:
        _command_module(name).register(sub)
    sub.add_parser("gui", help="start the desktop app (the default)", parents=[gui])
    return parser


def _run_embedded(argv: list[str]) -> int | None:
    """Frozen builds: the app binary doubles as the interpreter for workers and the sandbox."""
    if argv[:1] == ["--run-module"] and len(argv) >= 2:
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    if argv[:1] == ["--run-python"]:
        args = [a for a in argv[1:] if a not in ("-I", "-B")]
        sys.argv = args or [""]
        if args:
            runpy.run_path(args[0], run_name="__main__")
        return 0
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    embedded = _run_embedded(argv)
    if embedded is not None:
        return embedded
    args = build_parser().parse_args(argv)
    command = args.command or "gui"
    try:
        if command == "gui":
            if args.screenshot:
                import os

                os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
            from app.ui.app import run_gui

            return run_gui(args)
        result = _command_module(command).run(args)
        if inspect.iscoroutine(result):
            import asyncio

            return asyncio.run(result)
        return result
    except UserError as exc:
        print(f"llamadesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def print_json_line(obj: dict, stream=None) -> None:
    stream = stream or sys.stderr
    stream.write(json.dumps(obj) + "\n")
    stream.flush()
