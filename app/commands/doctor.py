"""`llamadesk doctor`: what this installation can do, and where it keeps its files."""
from __future__ import annotations

from app.diagnostics import report  # one report for this command and the desktop app


def register(sub) -> None:
    from app.cli import add_engine_args

    d = sub.add_parser("doctor", help="show versions, backend, GPU, memory and folders "
                                      "(and, with --engine URL, what the server offers)")
    add_engine_args(d)


async def server_report(args) -> list[tuple[str, str]]:
    from app.cli import engine_options
    from app.engine.base import open_engine

    async with await open_engine(args.engine, **engine_options(args)) as engine:
        return engine.describe()


def run(args) -> int:
    rows = report()
    if getattr(args, "engine", None):
        import asyncio

        rows += asyncio.run(server_report(args))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
