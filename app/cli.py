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
COMMANDS = ("complete", "humaneval", "decontam", "models", "doctor", "serve")


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


def add_engine_args(p, *, model_required: bool = False, key_flag: str = "--api-key-env") -> None:
    """--model FILE or --engine URL, and what a server needs (complete, humaneval, serve)."""
    src = p.add_mutually_exclusive_group(required=model_required)
    src.add_argument("--model", help="path to a .gguf file")
    src.add_argument("--engine", metavar="URL",
                     help="an OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio), "
                          "with or without /v1")
    p.add_argument("--api-model", metavar="NAME", help="the server's model (default: the first it lists)")
    p.add_argument(key_flag, dest="engine_key_env", metavar="VAR",
                   help="environment variable holding the server's API key")
    p.add_argument("--ca-bundle", metavar="FILE", help="CA certificates for a server with a private CA")


def engine_options(args) -> dict:
    """open_engine's keyword arguments for the server flags; the key is read here, never kept."""
    import os

    key = None
    if args.engine_key_env:
        key = os.environ.get(args.engine_key_env)
        if not key:
            raise UserError(f"the environment variable {args.engine_key_env} is not set")
    if args.ca_bundle and not os.path.isfile(args.ca_bundle):
        raise UserError(f"--ca-bundle: {args.ca_bundle} is not a file")
    if not args.engine and (args.api_model or args.engine_key_env or args.ca_bundle):
        raise UserError("--api-model, the API key and --ca-bundle need --engine URL")
    return {"api_model": args.api_model, "api_key": key, "ca_bundle": args.ca_bundle}


def _command_module(name: str):
    import importlib

    return importlib.import_module(f"app.commands.{name}")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """With `argv`, only its command's options are registered: importing every command module
    costs a command-line run about 40 ms."""
    gui = argparse.ArgumentParser(add_help=False)
    gui.add_argument("--open", metavar="FILE", help="open a file in the editor")
    gui.add_argument("--screenshot", metavar="OUT.png", help="show the window offscreen, save a PNG, exit")
    gui.add_argument("--panel", choices=["editor", "assistant", "models", "humaneval", "decontam", "settings"],
                     help="the panel to show for --screenshot")
    gui.add_argument("--theme", choices=["system", "light", "dark"], help="the theme for this run (not saved)")
    parser = _Parser(prog="llamadesk", description="Offline coding assistant.", parents=[gui])
    parser.add_argument("--version", action="version", version=f"llamadesk {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    named = [a for a in (argv or [])[:1] if a in COMMANDS]
    for name in named or COMMANDS:
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
    args = build_parser(argv).parse_args(argv)
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
    except Exception as exc:
        from app.engine.base import EngineError

        if not isinstance(exc, EngineError):
            raise
        print(f"llamadesk: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def print_json_line(obj: dict, stream=None) -> None:
    stream = stream or sys.stderr
    stream.write(json.dumps(obj) + "\n")
    stream.flush()
