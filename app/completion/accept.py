"""Accepting part of a suggestion: all of it (Tab), the next word (Ctrl+Right) or the next
line (Ctrl+Down), as in VS Code; what is left stays as ghost text."""
from __future__ import annotations

import re

_WORD = re.compile(r"\s*(\w+|[^\w\s]+)")


def split_ghost(ghost: str, part: str = "all") -> tuple[str, str]:
    """(text to insert, ghost left)."""
    if part == "word":
        m = _WORD.match(ghost)
        cut = m.end() if m else len(ghost)
    elif part == "line":
        start = 1 if ghost.startswith("\n") else 0
        nl = ghost.find("\n", start)
        cut = len(ghost) if nl < 0 else nl
    else:
        cut = len(ghost)
    taken, rest = ghost[:cut], ghost[cut:]
    return taken, rest if rest.strip() else ""
