"""The contamination check's first pass over raw JSONL: which lines could hold a needle?

Only those lines are parsed and checked exactly; the filter may let a line through that holds
no match, never hold one back. Two implementations, with one contract (`LineFilter.lines`):
- compiled (`_rawscan.c`): undoes JSON escapes and normalises each line as the exact check
  normalises a field, and looks up the same grams at the same stride as `Matcher.blocks_hit`;
- the fallback, where the extension was not built: one `bytes.translate` of the whole chunk (see
  `raw_normalise`), whose grams numpy reads in place as integers and hashes into a bit table.
Both need ASCII needles (the HumanEval prompts are); otherwise every line is parsed.
"""
from __future__ import annotations

import re

try:
    from app.bench import _rawscan
except ImportError:  # built by `pip install` where a C compiler is present
    _rawscan = None

RAW_LETTERS = str.maketrans("", "", "bfnrt")   # the letters of JSON's escapes \b \f \n \r \t
_RAW_DELETE = bytes(c for c in range(256) if not (c < 128 and chr(c).isalnum()) and c != 10) + b"bfnrt"
# \u escapes, deleted from the filter text unless they may stand for an ASCII letter or digit
# (00[3-7]X): what those leave behind is found by _LEFT_BY_ESCAPE, and their lines let through
_RAW_ESCAPES = re.compile(rb"\\u(?!00[3-7])[0-9a-fA-F]{4}")
_LEFT_BY_ESCAPE = re.compile(rb"u00[3-7]")
# text "u..." after an escaped backslash, which _RAW_ESCAPES takes for an escape
_ESCAPED_BACKSLASH_U = re.compile(re.escape(b"\\\\u"))

GRAM = 12             # read as one 8-byte and one 4-byte integer
MIN_LEN = 24          # shorter needles are searched for whole rather than shorten every stride
TABLE_BITS = 22       # 4 M entries: about 0.3% of blocks reach Python for 12 k grams


def raw_normalise(data: bytes, casefold: bool = False) -> bytes:
    """Raw JSON lines -> filter text: ASCII alphanumerics minus b, f, n, r, t; newlines kept.

    Raw JSON holds escapes such as `\\n`: dropping the backslash leaves a stray letter, and those
    letters are all in b, f, n, r, t, so they are deleted from the needles too. Non-ASCII
    characters, raw or escaped, are dropped: without casefolding, none of them normalises to an
    ASCII character, so an ASCII needle's occurrence survives.
    """
    if b"\\u" in data:
        data = _RAW_ESCAPES.sub(b"", data)
    return (data.lower() if casefold else data).translate(None, _RAW_DELETE)


def _line_numbers_at(text: bytes, positions) -> set[int]:
    """0-based numbers of the lines that hold these positions."""
    found, line, last = set(), 0, 0
    for pos in sorted(positions):
        line += text.count(b"\n", last, pos)
        last = pos
        found.add(line)
    return found


def _hash(lo, hi):
    import numpy as np

    with np.errstate(over="ignore"):
        return (lo * np.uint64(0x9E3779B97F4A7C15) ^ hi.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
                ) >> np.uint64(64 - TABLE_BITS)


def _blocks(data: bytes, starts: int, stride: int):
    """The GRAM-byte blocks at 0, stride, 2 * stride, ... as two integer views of `data`."""
    import numpy as np

    lo = np.ndarray((starts,), "<u8", buffer=data, offset=0, strides=(stride,))
    hi = np.ndarray((starts,), "<u4", buffer=data, offset=8, strides=(stride,))
    return lo, hi


class RawFilter:
    """Grams of reduced needles at a stride, over `raw_normalise` text (the fallback).

    `needles`: what the check looks for; with `window`, every `window`-long piece of them (the
    exhaustive mode). A needle whose reduction is shorter than MIN_LEN is searched for whole."""

    def __init__(self, needles: list[str], window: int | None = None):
        import numpy as np   # only here: its import costs a command-line run 45 ms

        sources, short, shortest = set(), set(), None
        for x in needles:
            pieces = [x[i:i + window] for i in range(len(x) - window + 1)] if window and len(x) > window else [x]
            for piece in pieces:
                reduced = piece.translate(RAW_LETTERS).encode()
                if len(reduced) < MIN_LEN:
                    short.add(reduced)
                else:   # the grams come from the whole needle: a piece's grams are among them
                    sources.add(x)
                    shortest = min(shortest or len(reduced), len(reduced))
        sources = {x.translate(RAW_LETTERS).encode() for x in sources}
        self.short = sorted(short)
        self.stride = (shortest or MIN_LEN) - GRAM + 1
        self.grams = frozenset(x[o:o + GRAM] for x in sources for o in range(len(x) - GRAM + 1))
        self.table = np.zeros(1 << TABLE_BITS, dtype=bool)
        if self.grams:
            self.table[_hash(*_blocks(b"".join(self.grams), len(self.grams), GRAM))] = True

    def positions(self, data: bytes) -> list[int]:
        """Where a needle may occur in `data` (a superset of the true occurrences)."""
        found = []
        st, n = self.stride, len(data)
        if self.grams and n >= GRAM:
            starts = (n - GRAM) // st + 1
            hits = self.table[_hash(*_blocks(data, starts, st))].nonzero()[0]
            found = [p for p in (hits * st).tolist() if data[p:p + GRAM] in self.grams]
        for x in self.short:
            i = data.find(x)
            while i >= 0:
                found.append(i)
                i = data.find(x, i + 1)
        return found


class LineFilter:
    def __init__(self, needles: list[str], grams, gram: int, stride: int, casefold: bool,
                 window: int | None = None):
        """`grams`, `gram` and `stride`: the exact check's (see Matcher); `window`: see RawFilter."""
        self.all_ascii = all(x.isascii() for x in needles)
        self.casefold = casefold
        if _rawscan is not None:
            self._args = (b"".join(g.encode() for g in grams if g.isascii()), gram, stride, casefold)
        else:
            self.raw = RawFilter([x for x in needles if x.isascii()], window)

    def lines(self, data: bytes, plain: bool = False) -> tuple[int, set[int]] | None:
        """(non-blank lines, numbers of the lines to check exactly) for raw JSONL `data`, or None
        where this filter cannot vouch for the chunk (then parse every line). `plain`: the caller
        has blanked every line with a non-ASCII character or a \\u escape."""
        if not data:
            return 0, set()
        if not (plain or self.all_ascii):
            return None   # a non-ASCII needle: only an exact check finds it
        if _rawscan is not None:
            count, hits = _rawscan.scan(data, *self._args)
            return count, set(hits)
        if self.casefold and not plain and not (data.isascii() and b"\\u" not in data):
            return None   # a non-ASCII character may casefold to ASCII letters
        norm = raw_normalise(data, self.casefold)
        at = self.raw.positions(norm) + [m.start() for m in _LEFT_BY_ESCAPE.finditer(norm)]
        hits = _line_numbers_at(norm, at)
        if b"\\\\u" in data:
            hits |= _line_numbers_at(data, [m.start() for m in _ESCAPED_BACKSLASH_U.finditer(data)])
        count = norm.count(b"\n") + (not data.endswith(b"\n"))
        last_empty = not data.endswith(b"\n") and (not norm or norm.endswith(b"\n"))
        if b"\n\n" in norm or norm.startswith(b"\n") or last_empty:  # a line normalises to nothing: blank?
            count -= sum(1 for line in data.split(b"\n")[:count] if not line.strip())
        return count, hits
