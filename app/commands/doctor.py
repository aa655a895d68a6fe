"""`llamadesk doctor`: what this installation can do, and where it keeps its files."""
from __future__ import annotations

import platform
import sys

from app import __version__, paths


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except Exception:  # PackageNotFoundError
        return "not installed"


def report() -> list[tuple[str, str]]:
    from app.engine import hardware

    hw = hardware.detect()
    rows = [
        ("llamadesk", __version__ + (" (frozen)" if getattr(sys, "frozen", False) else "")),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", f"{platform.system()} {platform.release()} {platform.machine()}"),
    ]
    for dist in ("llama-cpp-python", "PySide6", "huggingface-hub", "gguf", "qasync", "pygments"):
        rows.append((dist, _version(dist)))
    rows.append(("llama.cpp backend", hw.backend))
    rows.append(("GPU offload", "yes" if hw.gpu_offload else "no (CPU only)"))
    for i, gpu in enumerate(hw.gpus):
        rows.append((f"GPU {i}", f"{gpu.name}, {gpu.free_bytes / 1e9:.1f} GB free of "
                                 f"{gpu.total_bytes / 1e9:.1f} GB"))
    rows.append(("RAM", f"{hw.ram_available / 1e9:.1f} GB available of {hw.ram_total / 1e9:.1f} GB"))
    rows.append(("CPU threads", f"{hw.default_threads} used by default ({hw.physical_cores} cores, "
                                f"{hw.logical_cpus} logical)"))
    rows.append(("models folder", str(paths.models_dir())))
    rows.append(("Hugging Face cache", str(paths.hf_cache_dir())))
    rows.append(("settings", str(paths.config_dir())))
    rows.append(("results", str(paths.results_dir())))
    rows.append(("logs", str(paths.log_dir())))
    rows.append(("completion (last run)", _completion_stats()))
    return rows


def _completion_stats() -> str:
    from app.completion.stats import CompletionStats

    last = CompletionStats.load_last()
    return last.summary() if last else "no suggestions recorded yet"


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
