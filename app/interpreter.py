"""How to start a Python interpreter for child processes (engine worker, sandbox).

Kept in one place because in a frozen build `sys.executable` is the app itself, not Python:
there the app understands `--run-module MODULE` and `--run-python` instead of `-m` / `-c`.
"""
from __future__ import annotations

import sys


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def module_command(module: str, *args: str) -> list[str]:
    """Command line that runs `python -m module args...` with this installation's Python."""
    if is_frozen():
        return [sys.executable, "--run-module", module, *args]
    return [sys.executable, "-m", module, *args]


def python_command(*args: str) -> list[str]:
    """Command line for a plain interpreter (`python args...`), e.g. to run a script file."""
    if is_frozen():
        return [sys.executable, "--run-python", *args]
    return [sys.executable, *args]
