"""A HumanEval run folder: one run at a time, and a settings file that is never half written.

The lock is a flock on `.lock` inside the folder, held for the whole run: the kernel drops it
when the process dies, so a killed run leaves no stale lock. The holder writes its pid into
the file so that a second run can say who holds it. `run.json` (the settings a resume takes,
shared by the CLI and the GUI) is replaced atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
# What run.json holds (the CLI's option names), with the defaults of a new run. The runner adds
# `model_file` (size and mtime) at once and `model_sha256` once hashed: a resume compares them.
SETTINGS = {"model": None, "protocol": None, "limit": None, "tasks": None, "samples": 1,
            "temperature": None, "greedy": False, "max_tokens": None, "canonical": False,
            "evaluate": None, "problems": None, "exclude_contaminated": None, "ctx": 4096,
            "seed": 0, "chat_format": "auto", "timeout": 5.0, "engine": None, "api_model": None}


class RunFolderError(Exception):
    """The folder cannot be used as a run folder (busy, not a folder, unreadable settings)."""


class RunFolderBusy(RunFolderError):
    pass


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _describe(pid: str) -> str:
    if not pid.isdigit():
        return "another process"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return f"process {pid}" + (f" ({cmd[:120]})" if cmd else "")


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def lock(self) -> "RunFolder":
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} is a file, not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunFolderError(f"cannot use {self.path} as a run folder: {exc.strerror}") from None
        if not _try_lock(fd):
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise RunFolderBusy(f"{self.path} is in use by another run: {_describe(holder)}")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def unlock(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> "RunFolder":
        return self.lock() if not self.locked else self

    def __exit__(self, *exc) -> None:
        self.unlock()

    # --- the settings file ---------------------------------------------------------------------
    def has_run(self) -> bool:
        return (self.path / "results.jsonl").exists() or (self.path / "samples.jsonl").exists()

    def read_settings(self) -> dict:
        try:
            saved = json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeError):
            saved = None
        if not isinstance(saved, dict):
            raise RunFolderError(f"{self.path} is not a run folder (no readable {RUN_FILE})")
        return saved

    def write_settings(self, settings: dict) -> None:
        atomic_write_text(self.path / RUN_FILE, json.dumps(settings, indent=2))
