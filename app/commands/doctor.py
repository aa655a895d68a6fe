"""`llamadesk doctor`: what this installation can do, and where it keeps its files."""
from __future__ import annotations

from app.diagnostics import format_rows, report


def register(sub) -> None:
    sub.add_parser("doctor", help="show versions, backend, GPU, memory and folders")


def run(_args) -> int:
    print(format_rows(report()))
    return 0
