"""Line diffs for Edit selection: hunks of removed and added lines with their line numbers and
the changed characters inside each changed line, and applying some hunks only. No Qt here.

Lines are compared without their line breaks, so a selection without a final newline is not
"changed" on its last line merely because the model's answer ends with one; `finish_like`
gives the answer the selection's ending."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field


@dataclass
class Line:
    kind: str                 # " " context, "-" removed, "+" added
    text: str
    old_no: int | None        # 1-based, within the selection
    new_no: int | None
    changed: list[tuple[int, int]] = field(default_factory=list)  # [start, end) spans of changed chars


@dataclass
class Hunk:
    old_start: int            # 0-based line index in the old text
    old_end: int
    new_start: int
    new_end: int
    lines: list[Line]


def split(text: str) -> list[str]:
    return text.split("\n") if text else []


def finish_like(old: str, new: str) -> str:
    """`new` with the same final line break as `old` (present or absent)."""
    new = new.rstrip("\n")
    return new + "\n" if old.endswith("\n") else new


def _char_spans(a: str, b: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    ra, rb = [], []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op != "equal":
            if i2 > i1:
                ra.append((i1, i2))
            if j2 > j1:
                rb.append((j1, j2))
    return ra, rb


def hunks(old: str, new: str, context: int = 2) -> list[Hunk]:
    a, b = split(old.rstrip("\n")), split(new.rstrip("\n"))
    out = []
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in sm.get_grouped_opcodes(context):
        lines: list[Line] = []
        for op, i1, i2, j1, j2 in group:
            if op == "equal":
                lines += [Line(" ", a[i], i + 1, j1 + (i - i1) + 1) for i in range(i1, i2)]
                continue
            removed = [Line("-", a[i], i + 1, None) for i in range(i1, i2)]
            added = [Line("+", b[j], None, j + 1) for j in range(j1, j2)]
            for r, ad in zip(removed, added):  # a changed line: mark what changed inside it
                r.changed, ad.changed = _char_spans(r.text, ad.text)
            lines += removed + added
        first, last = group[0], group[-1]
        out.append(Hunk(first[1], last[2], first[3], last[4], lines))
    return out


def apply(old: str, new: str, chosen: set[int] | None = None) -> str:
    """`old` with the chosen hunks (indices into `hunks(old, new)`) applied; all when None."""
    a, b = split(old.rstrip("\n")), split(new.rstrip("\n"))
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    spans = [(h.old_start, h.old_end) for i, h in enumerate(hunks(old, new))
             if chosen is None or i in chosen]
    result: list[str] = []
    for op, i1, i2, j1, j2 in ops:
        take = op != "equal" and any(lo <= i1 and i2 <= hi for lo, hi in spans)
        result += b[j1:j2] if take else a[i1:i2]
    text = "\n".join(result)
    return text + "\n" if old.endswith("\n") else text
