"""Plain data across the sandbox boundary: exact builtin types only, bounded, no pickle/marshal.

The sandboxed candidate and the trusted checker talk in frames of this encoding. Only None,
bool, int, float, complex, str, bytes, list, tuple, dict, set and frozenset pass, and only as
exactly those types: a subclass (or an object whose `__eq__` is always true) is refused, so the
checker compares values it built itself. Decoding is bounded in size and nesting depth and never
calls code that the other side chose.
"""
from __future__ import annotations

import os
import struct

MAX_FRAME = 16 * 2**20   # bytes in one message
MAX_DEPTH = 64           # nesting of containers
MAX_INT_BYTES = 4096     # about 9800 decimal digits

_F64 = struct.Struct("<d")
_LEN = struct.Struct("<I")


class WireError(Exception):
    """The other side sent something that is not plain data within the bounds."""


def encode(value) -> bytes:
    out = bytearray()
    _enc(value, out, 0)
    if len(out) > MAX_FRAME:
        raise WireError(f"a value of more than {MAX_FRAME // 2**20} MB")
    return bytes(out)


def _enc(v, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH}")
    if len(out) > MAX_FRAME:
        raise WireError(f"a value of more than {MAX_FRAME // 2**20} MB")
    t = type(v)
    if v is None:
        out += b"N"
    elif t is bool:
        out += b"T" if v else b"F"
    elif t is int:
        n = (v.bit_length() + 8) // 8
        if n > MAX_INT_BYTES:
            raise WireError(f"an integer of more than {MAX_INT_BYTES} bytes")
        out += b"i" + _LEN.pack(n) + v.to_bytes(n, "little", signed=True)
    elif t is float:
        out += b"f" + _F64.pack(v)
    elif t is complex:
        out += b"c" + _F64.pack(v.real) + _F64.pack(v.imag)
    elif t is str:
        data = v.encode("utf-8", "surrogatepass")
        out += b"s" + _LEN.pack(len(data)) + data
    elif t is bytes:
        out += b"b" + _LEN.pack(len(v)) + v
    elif t in _SEQ_TAGS:
        items = list(v) if t is not dict else None
        if t is dict:
            out += b"d" + _LEN.pack(len(v))
            for k, x in list(v.items()):
                _enc(k, out, depth + 1)
                _enc(x, out, depth + 1)
        else:
            out += _SEQ_TAGS[t] + _LEN.pack(len(items))
            for x in items:
                _enc(x, out, depth + 1)
    else:
        raise WireError(f"a {t.__module__}.{t.__qualname__}, not plain data")


_SEQ_TAGS = {list: b"l", tuple: b"t", dict: b"d", set: b"S", frozenset: b"R"}


def decode(data: bytes):
    if len(data) > MAX_FRAME:
        raise WireError("frame too large")
    try:
        value, end = _dec(memoryview(data), 0, 0)
    except (struct.error, IndexError, UnicodeDecodeError, TypeError, ValueError, RecursionError) as exc:
        raise WireError(f"malformed data ({type(exc).__name__})") from None
    if end != len(data):
        raise WireError("trailing bytes")
    return value


def _dec(m: memoryview, i: int, depth: int):
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH}")
    tag = m[i:i + 1].tobytes()
    i += 1
    if tag == b"N":
        return None, i
    if tag == b"T":
        return True, i
    if tag == b"F":
        return False, i
    if tag == b"f":
        return _F64.unpack_from(m, i)[0], i + 8
    if tag == b"c":
        return complex(_F64.unpack_from(m, i)[0], _F64.unpack_from(m, i + 8)[0]), i + 16
    (n,) = _LEN.unpack_from(m, i)
    i += 4
    if tag in (b"i", b"s", b"b"):
        if i + n > len(m) or (tag == b"i" and n > MAX_INT_BYTES):
            raise WireError("length out of bounds")
        raw = m[i:i + n].tobytes()
        i += n
        if tag == b"i":
            return int.from_bytes(raw, "little", signed=True), i
        return (raw.decode("utf-8", "surrogatepass") if tag == b"s" else raw), i
    if n > len(m) - i:  # every element takes at least one byte
        raise WireError("length out of bounds")
    if tag == b"d":
        d = {}
        for _ in range(n):
            k, i = _dec(m, i, depth + 1)
            v, i = _dec(m, i, depth + 1)
            d[k] = v
        return d, i
    if tag not in (b"l", b"t", b"S", b"R"):
        raise WireError(f"unknown tag {tag!r}")
    items = []
    for _ in range(n):
        v, i = _dec(m, i, depth + 1)
        items.append(v)
    kind = {b"l": list, b"t": tuple, b"S": set, b"R": frozenset}[tag]
    return (items if kind is list else kind(items)), i


# --- frames over pipes -----------------------------------------------------------------------

def send(fd: int, value, wait=None) -> None:
    send_encoded(fd, encode(value), wait)


def send_encoded(fd: int, data: bytes, wait=None) -> None:
    """`wait(fd, write=True)`, for a non-blocking fd, returns once it can take more."""
    buf = memoryview(_LEN.pack(len(data)) + data)
    while buf:
        try:
            buf = buf[os.write(fd, buf):]
        except BlockingIOError:
            wait(fd, True)


def recv(fd: int, wait=None):
    """One frame; EOFError when the other side has gone. `wait(fd)` is called before each
    read, so that a peer that sends half a frame cannot hold us past the caller's deadline."""
    (n,) = _LEN.unpack(_read_exact(fd, 4, wait))
    if n > MAX_FRAME:
        raise WireError("frame too large")
    return decode(_read_exact(fd, n, wait))


def _read_exact(fd: int, n: int, wait) -> bytes:
    parts, got = [], 0
    while got < n:
        if wait is not None:
            wait(fd)
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
