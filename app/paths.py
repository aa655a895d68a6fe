"""Where LlamaDesk keeps its files. Every folder can be moved with LLAMADESK_HOME (tests use it)."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "LlamaDesk"


def _base(kind: str) -> Path:
    home = os.environ.get("LLAMADESK_HOME")
    if home:
        return Path(home) / kind
    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False))


def config_dir() -> Path:
    return _base("config")


def cache_dir() -> Path:
    return _base("cache")


def data_dir() -> Path:
    return _base("data")


def log_dir() -> Path:
    return _base("log")


def results_dir() -> Path:
    return data_dir() / "results"


def recovery_dir() -> Path:
    return data_dir() / "recovery"


def models_dir() -> Path:
    """The user's own folder of GGUF files (imports land here)."""
    return data_dir() / "models"


def hf_cache_dir() -> Path:
    """huggingface-hub's cache, shared with other tools so their downloads are reused."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
