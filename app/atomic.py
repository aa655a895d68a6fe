"""Write a file so that a crash leaves either the old file or the new one, never half of one.

The temp file lives in the target's own folder (os.replace is atomic only within one file
system) and is fsynced before the rename, so the rename never points at unwritten blocks.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                  newline: str | None = None, perm: int | None = None) -> Iterator[IO]:
    """Yield a file to write; on a clean exit it replaces `path`, on an exception it vanishes.

    `perm` sets the new file's mode; by default an existing target keeps its mode and a new
    file gets 0o666 less the umask, like open() would give it.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer writes whole files: mode 'w' or 'wb', not {mode!r}")
    target = Path(path)
    fd, tmp = _create_temp(target)
    try:
        keep = perm if perm is not None else _existing_mode(target)
        if keep is not None:
            os.chmod(tmp, keep)
        binary = mode == "wb"
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def write_atomic(path: str | os.PathLike, data: str | bytes, *, encoding: str = "utf-8",
                 perm: int | None = None) -> None:
    """Replace `path` with `data` (text is written as-is: no newline translation)."""
    mode = "wb" if isinstance(data, (bytes, bytearray, memoryview)) else "w"
    with atomic_writer(path, mode, encoding=encoding, newline="", perm=perm) as fh:
        fh.write(data)


def _create_temp(target: Path) -> tuple[int, str]:
    # os.open with 0o666 lets the umask decide a new file's mode, as open() would;
    # mkstemp's 0o600 would make every report private.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp name next to {target}")


def _existing_mode(target: Path) -> int | None:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return None


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on Windows, where it is not needed.
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
