"""One progress line on stderr for long commands: rewritten in place on a terminal, a line at a
time (less often) in logs and CI."""
from __future__ import annotations

import sys
import time


def eta_text(seconds: float | None) -> str:
    return f"ETA {int(seconds // 60)}m{int(seconds % 60):02d}s" if seconds is not None else "ETA -"


class StatusLine:
    def __init__(self, tty_every_s: float, log_every_s: float, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = tty_every_s if self.tty else log_every_s
        self.last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        """Print `text` unless the last line was printed less than the interval ago."""
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        self.stream.write(("\r" + text + " " * 8) if self.tty else text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
