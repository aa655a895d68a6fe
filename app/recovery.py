"""Autosave of unsaved editor buffers, so that a crash or a kill -9 loses no text.

Each running app owns one session folder inside the recovery folder and holds an exclusive
lock on its `lock` file for its whole life (the kernel drops the lock when the process dies,
however it dies; a pid check would be fooled by pid reuse). Buffers are JSON files in that
folder, replaced atomically, so the folder always holds a whole earlier version or the new
one. A session whose lock can be taken belongs to no live process: its buffers are offered
back. A second instance sees the first one's session locked and leaves it alone.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from app import paths

log = logging.getLogger("llamadesk")
LOCK = "lock"


@dataclass
class Recovered:
    buffer_id: str
    path: str | None       # the file the buffer belongs to, None for an untitled one
    text: str
    saved_at: float
    file: Path | None = None   # where it is stored (discard removes it)


def _try_lock(path: Path):
    """An open file object holding an exclusive lock on `path`, or None if another process holds it."""
    fh = open(path, "a+b")
    try:
        if os.name == "nt":
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def _parse(f: Path) -> Recovered | None:
    """One buffer file, or None if it is not one we wrote (the caller skips it)."""
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    path, text, saved_at = data.get("path"), data.get("text"), data.get("saved_at", 0.0)
    if not (path is None or isinstance(path, str)) or not isinstance(text, str):
        return None
    if isinstance(saved_at, bool) or not isinstance(saved_at, (int, float)):
        return None
    return Recovered(f.stem, path, text, float(saved_at), f)


class RecoveryStore:
    def __init__(self, folder: Path | None = None):
        self.folder = folder or paths.recovery_dir()
        self.session = uuid.uuid4().hex
        self._lock = None            # our own session's lock, taken at the first save
        self._claimed: dict[Path, object] = {}   # dead sessions we hold while the user decides

    @property
    def session_dir(self) -> Path:
        return self.folder / self.session

    def _own(self) -> Path:
        if self._lock is None:
            folder = paths.ensure(self.session_dir)
            self._lock = _try_lock(folder / LOCK)
        return self.session_dir

    def save(self, buffer_id: str, path: str | None, text: str) -> None:
        from app.atomic import write_atomic  # (hashlib and friends: not on the way to the window)

        folder = self._own()
        write_atomic(folder / f"{buffer_id}.json",
                     json.dumps({"path": path, "text": text, "saved_at": time.time(), "pid": os.getpid()}))

    def discard(self, buffer_id: str) -> None:
        (self.session_dir / f"{buffer_id}.json").unlink(missing_ok=True)

    def _sessions(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [d for d in self.folder.iterdir() if d.is_dir() and d.name != self.session]

    def pending(self) -> list[Recovered]:
        """Buffers of sessions whose process is gone (newest first). Their sessions stay
        locked by this process until `forget` (or its exit), so no other instance offers them."""
        out = []
        for d in self._sessions():
            if d not in self._claimed:
                lock = _try_lock(d / LOCK)
                if lock is None:
                    continue  # a live instance's autosaves: not ours to offer
                self._claimed[d] = lock
            out += self._read(d.glob("*.json"))
        if self.folder.is_dir():  # files of versions before session folders: nobody owns them
            out += self._read(self.folder.glob("*.json"))
        return sorted(out, key=lambda r: -r.saved_at)

    def _read(self, files) -> list[Recovered]:
        out = []
        for f in files:
            r = _parse(f)
            if r is None:
                log.warning("recovery: skipped %s (not a buffer this app wrote)", f)
            else:
                out.append(r)
        return out

    def forget(self, items: list[Recovered]) -> None:
        """The user has seen these buffers and chosen: remove them, and dead sessions left empty."""
        for r in items:
            if r.file is not None:
                r.file.unlink(missing_ok=True)
        for d, lock in list(self._claimed.items()):
            if not any(d.glob("*.json")):
                shutil.rmtree(d, ignore_errors=True)
                lock.close()
                del self._claimed[d]

    def summary(self) -> str:
        """For `llamadesk doctor`: the folder, live sessions, and buffers waiting to be offered."""
        live, waiting = 0, 0
        for d in self._sessions():
            lock = self._claimed.get(d) or _try_lock(d / LOCK)
            if lock is None:
                live += 1
                continue
            waiting += sum(1 for f in d.glob("*.json") if _parse(f))
            if d not in self._claimed:
                lock.close()
        if self.folder.is_dir():
            waiting += sum(1 for f in self.folder.glob("*.json") if _parse(f))
        return f"{self.folder} ({waiting} unsaved buffer(s) to offer, {live} running instance(s))"

    def close(self) -> None:
        """Clean exit: our session had nothing unsaved left (closing asked about each tab)."""
        if self._lock is not None and not any(self.session_dir.glob("*.json")):
            shutil.rmtree(self.session_dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
