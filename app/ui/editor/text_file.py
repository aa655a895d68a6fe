"""Reading and writing the user's text files as they are: the encoding (with its BOM), the line
endings and the mode survive a save; a symlink is written through, not replaced; the write is
atomic. Only regular files are read (a FIFO would block, /dev/zero never ends). No Qt here."""
from __future__ import annotations

import codecs
import os
import stat
from dataclasses import dataclass


PLAIN_BYTES = 20 * 1024 * 1024      # larger files open without highlighting
MAX_BYTES = 512 * 1024 * 1024       # larger files are refused: an editor is not the tool
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class FileProblem(Exception):
    """Why a file cannot be opened or saved, in one plain sentence."""


@dataclass
class TextFormat:
    encoding: str = "utf-8"
    bom: bytes = b""
    newline: str = "\n"

    def encode(self, text: str) -> bytes:
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        return self.bom + text.encode(self.encoding)


@dataclass
class TextFile:
    text: str                # with "\n" line ends, as the editor holds it
    format: TextFormat
    size: int

    @property
    def plain(self) -> bool:
        return self.size > PLAIN_BYTES


def read(path: str) -> TextFile:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: opening a FIFO must not wait for a writer
    except OSError as exc:
        raise FileProblem(f"Cannot open {path}: {plain_error(exc)}.") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileProblem(f"{path} is a folder.")
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem(f"{path} is not a regular file (a device, pipe or socket); it was not read.")
        if st.st_size > MAX_BYTES:
            raise FileProblem(f"{path} is {st.st_size / 1e6:.0f} MB; files over "
                              f"{MAX_BYTES // 2**20} MB are not opened.")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FileProblem(f"Cannot read {path}: {plain_error(exc)}.") from None
    finally:
        os.close(fd)
    return TextFile(*decode(data, path), size=len(data))


def decode(data: bytes, path: str = "the file") -> tuple[str, TextFormat]:
    fmt = TextFormat()
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            fmt.bom, fmt.encoding, data = bom, encoding, data[len(bom):]
            break
    else:
        if b"\0" in data[:8192]:
            raise FileProblem(f"{path} looks like a binary file; it was not opened.")
    try:
        text = data.decode(fmt.encoding)
    except UnicodeDecodeError:
        if fmt.bom:
            raise FileProblem(f"{path} is not valid {fmt.encoding} text.") from None
        fmt.encoding = "latin-1"  # every byte maps to one character: a save gives the same bytes back
        text = data.decode(fmt.encoding)
    if b"\r" in data:  # memchr on the bytes: a scan of the str would cost 70 ms per 50 MB
        crlf, cr = text.find("\r\n"), text.find("\r")
        if cr >= 0:  # (in UTF-16 a 0x0d byte may belong to another character)
            fmt.newline = "\r\n" if crlf == cr else "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, fmt


def write(path: str, text: str, fmt: TextFormat) -> None:
    """Save `text` in the file's own format; through a symlink to the file it points at."""
    from app.atomic import write_atomic  # (hashlib and friends: not on the way to the window)

    try:
        data = fmt.encode(text)
    except UnicodeEncodeError as exc:
        raise FileProblem(f"The text has characters that {fmt.encoding} cannot hold "
                          f"(first: {exc.object[exc.start]!r}); nothing was written.") from None
    target = os.path.realpath(path)
    try:
        write_atomic(target, data)  # temp file next to the target, fsync, rename; the mode is kept
    except OSError as exc:
        raise FileProblem(f"Cannot save {path}: {plain_error(exc)}.") from None


def plain_error(exc: OSError) -> str:
    """An OSError in words, without `[Errno 2]`."""
    return (exc.strerror or str(exc)).rstrip(".").lower() if isinstance(exc, OSError) else str(exc)
