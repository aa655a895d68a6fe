"""Autosave of unsaved editor buffers, so that a crash or a kill -9 loses no text.

Each buffer is one JSON file in the recovery folder, replaced atomically (write, fsync, rename),
so the folder always holds a whole earlier version or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from app import paths


@dataclass
class Recovered:
    buffer_id: str
    path: str | None       # the file the buffer belongs to, None for an untitled one
    text: str
    saved_at: float


class RecoveryStore:
    def __init__(self, folder: Path | None = None):
        self.folder = folder or paths.recovery_dir()

    def _file(self, buffer_id: str) -> Path:
        return self.folder / f"{buffer_id}.json"

    def save(self, buffer_id: str, path: str | None, text: str) -> None:
        paths.ensure(self.folder)
        target = self._file(buffer_id)
        tmp = target.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"path": path, "text": text, "saved_at": time.time(), "pid": os.getpid()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def discard(self, buffer_id: str) -> None:
        self._file(buffer_id).unlink(missing_ok=True)

    def pending(self) -> list[Recovered]:
        """Buffers left by an earlier run that did not close them (newest first)."""
        out = []
        if not self.folder.is_dir():
            return out
        for f in self.folder.glob("*.json"):
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if data.get("pid") == os.getpid():
                continue
            out.append(Recovered(f.stem, data.get("path"), data.get("text", ""), data.get("saved_at", 0.0)))
        return sorted(out, key=lambda r: -r.saved_at)
