"""`llamadesk doctor`: what this installation can do, and where it keeps its files."""
from __future__ import annotations

from app.diagnostics import report  # one report for this command and the desktop app


def register(sub) -> None:
    sub.add_parser("doctor", help="show versions, backend, GPU, memory and folders")


def run(_args) -> int:
    rows = report()
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
