"""What this installation can do and where it keeps its files: one report for `llamadesk doctor`
and the desktop app's About box and "Copy diagnostics" (the GUI does not import app.commands)."""
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
    from app.recovery import RecoveryStore

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
    rows.append(("decontam filter", _decontam_filter()))
    rows.append(("models folder", str(paths.models_dir())))
    rows.append(("Hugging Face cache", str(paths.hf_cache_dir())))
    rows.append(("settings", str(paths.config_dir())))
    rows.append(("results", str(paths.results_dir())))
    rows.append(("recovery", RecoveryStore().summary()))
    rows.append(("logs", str(paths.log_dir())))
    rows.append(("completion (last run)", _completion_stats()))
    return rows


def _decontam_filter() -> str:
    from app.bench import decontam_filter

    if decontam_filter._rawscan is not None:
        return "compiled"
    return "Python fallback (about 2.5x slower: the C extension was not built; reinstall with a C compiler)"


def _completion_stats() -> str:
    from app.completion.stats import CompletionStats

    last = CompletionStats.load_last()
    return last.summary() if last else "no suggestions recorded yet"

