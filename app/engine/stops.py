"""Stop strings over a stream of text pieces.

Text that could be the start of a stop string is held back until the next piece decides it,
so a stop split across tokens is never shown to the user.
"""
from __future__ import annotations


class StopMatcher:
    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.hit: str | None = None

    def feed(self, piece: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop string was reached)."""
        if self.hit is not None:
            return "", True
        buf = self.pending + piece
        first = None
        for stop in self.stops:
            i = buf.find(stop)
            if i >= 0 and (first is None or i < first[0]):
                first = (i, stop)
        if first is not None:
            self.hit = first[1]
            self.pending = ""
            return buf[:first[0]], True
        keep = self._held_back(buf)
        self.pending = buf[len(buf) - keep:] if keep else ""
        return buf[:len(buf) - keep], False

    def flush(self, piece: str = "") -> str:
        """End of stream: whatever was held back is real text."""
        if self.hit is not None:
            return ""
        text, hit = self.feed(piece)
        if hit:
            return text
        rest, self.pending = self.pending, ""
        return text + rest

    def _held_back(self, buf: str) -> int:
        longest = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(buf)), longest, -1):
                if buf.endswith(stop[:k]):
                    longest = k
                    break
        return longest
