"""What of a raw model output the editor shows: the block-end rule, the duplicated-suffix
guard, and nothing at all for an empty suggestion."""
from __future__ import annotations

OPENERS = (":", "{", "(", "[")
SHORT_LINE = 3  # lines this short (`}`, `)`, `end`) match too easily to cut on alone


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def block_end(text: str, cursor_line: str, max_lines: int) -> str:
    """Cut a suggestion where the block being written ends.

    `cursor_line` is the text of the current line before the cursor. The block's indent is
    that of the line being finished (the cursor's line with the suggestion's first line); a
    later line less indented ends it, and so does one back at that indent once a deeper body
    was written (the next `def` after a function body). At most `max_lines` lines are kept.
    """
    lines = text.split("\n")
    first = cursor_line + lines[0]
    base = indent_of(first) if first.strip() else len(cursor_line)
    kept = [lines[0]]
    went_deeper = False
    for line in lines[1:]:
        if len(kept) >= max(1, max_lines):
            break
        if line.strip():
            ind = indent_of(line)
            if ind < base or (ind == base and went_deeper):
                break
            went_deeper = went_deeper or ind > base
        kept.append(line)
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()  # blank lines at the end belong to what comes next
    return "\n".join(kept)


def block_ended(text: str, cursor_line: str, max_lines: int) -> bool:
    """True once the stream has gone past the block's end: generation can stop."""
    cut = block_end(text, cursor_line, max_lines)
    rest = text[len(cut):]
    return bool(rest.strip()) or len(text.split("\n")) > max_lines


def trim_overlap(text: str, line_suffix: str, next_lines: list[str],
                 line_start: bool = False) -> str:
    """Drop the end of a suggestion that repeats what already follows the cursor.

    `line_suffix` is the rest of the cursor's line, `next_lines` the lines after it;
    `line_start`: the cursor's line is blank before the cursor, so the suggestion's first line
    is a whole line that may repeat the next one too.
    """
    tail = line_suffix.strip()
    lines = text.split("\n")
    if tail and lines[-1].rstrip().endswith(tail):
        last = lines[-1].rstrip()
        lines[-1] = last[: len(last) - len(tail)]
    following = [l.strip() for l in next_lines if l.strip()]
    if following:
        for i in range(0 if line_start and not tail else 1, len(lines)):
            if not _repeats(lines[i:], following):
                continue
            lines = lines[:i]
            break
    out = "\n".join(lines)
    return out.rstrip() if "\n" in out else out


def _repeats(tail: list[str], following: list[str]) -> bool:
    """Do the suggestion's lines from here on say what the document already says next?"""
    body = [l.strip() for l in tail if l.strip()]
    if not body:
        return False
    if body[0] != following[0]:
        return False
    if len(body[0]) > SHORT_LINE:
        return True
    # A short line (`}`) repeats only if what follows it also matches, or it is all there is.
    n = min(len(body), len(following))
    return body[:n] == following[:n]


def finalize(raw: str, cursor_line: str, line_suffix: str, next_lines: list[str],
             max_lines: int) -> str:
    """The text the editor shows for a raw model output ("" shows nothing)."""
    text = raw
    if line_suffix.strip():
        text = text.split("\n")[0]  # mid-line: finish this line only
    else:
        text = block_end(text, cursor_line, max_lines)
    text = trim_overlap(text, line_suffix, next_lines, line_start=not cursor_line.strip())
    if not text.strip():
        return ""
    return text.rstrip() if "\n" in text else text.rstrip("\n")


def has_duplicated_suffix(shown: str, line_suffix: str, next_lines: list[str]) -> bool:
    """After accepting `shown`, would the document say the same thing twice in a row?"""
    if not shown.strip():
        return False
    last = shown.split("\n")[-1].strip()
    tail = line_suffix.strip()
    if tail and last.endswith(tail) and len(tail) > 1:
        return True
    following = [l.strip() for l in next_lines if l.strip()]
    if not following or len(last) <= SHORT_LINE:
        return False
    return last == following[0]
