"""The assistant's conversation: turns per file, kept in the data folder, and their rendering
(Markdown by Qt, code blocks highlighted by pygments, each with Insert / Replace selection / Copy).
"""
from __future__ import annotations

import html
import json
import os
import re
import time
from dataclasses import dataclass, field

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from PySide6.QtGui import QTextDocument

from app import assist, paths

KEEP_TURNS = 50
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)


@dataclass
class Turn:
    question: str
    answer: str = ""
    kind: str = "ask"          # ask, edit
    t: float = field(default_factory=time.time)
    note: str = ""             # a line shown under the answer (stopped, failed, figures)


class History:
    """Transcripts by file (path, or the buffer id of an unsaved tab), saved on every change."""

    def __init__(self, path=None):
        self.path = path or paths.data_dir() / "assistant-history.json"
        self.by_key: dict[str, list[Turn]] = self._load()

    def _load(self) -> dict[str, list[Turn]]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        out = {}
        for key, turns in raw.items() if isinstance(raw, dict) else []:
            good = []
            for t in turns if isinstance(turns, list) else []:
                if isinstance(t, dict) and isinstance(t.get("q", t.get("question")), str):
                    good.append(Turn(t.get("q", t.get("question")), str(t.get("a", t.get("answer", ""))),
                                     str(t.get("kind", "ask")), float(t.get("t", 0) or 0), str(t.get("note", ""))))
            out[str(key)] = good
        return out

    def turns(self, key: str) -> list[Turn]:
        return self.by_key.setdefault(key, [])

    def save(self) -> None:
        data = {k: [{"q": t.question, "a": t.answer, "kind": t.kind, "t": t.t, "note": t.note}
                    for t in v[-KEEP_TURNS:]] for k, v in self.by_key.items() if v}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
        except OSError:
            pass  # the conversation stays on screen; only its copy on disk is missing


def markdown_html(text: str) -> str:
    """Qt's own Markdown (CommonMark + GitHub tables) as an HTML fragment."""
    if not text.strip():
        return ""
    doc = QTextDocument()
    doc.setMarkdown(text)
    m = _BODY.search(doc.toHtml())
    return m.group(1) if m else html.escape(text)


def render_answer(text: str, style: str, turn: int = 0) -> str:
    """Markdown answer -> HTML with highlighted code blocks and their action links."""
    out, pos, n = [], 0, 0
    fmt = HtmlFormatter(noclasses=True, style=style, nowrap=False)
    for m in assist._FENCE.finditer(text):
        out.append(markdown_html(text[pos:m.start()]))
        lang, code = m.group(1) or "text", m.group(2).rstrip("\n")
        try:
            lexer = get_lexer_by_name(lang)
        except ClassNotFound:
            lexer = get_lexer_by_name("text")
        out.append(highlight(code, lexer, fmt))
        out.append(f'<p style="margin-top:0"><a href="insert:{turn}:{n}">Insert</a> · '
                   f'<a href="replace:{turn}:{n}">Replace selection</a> · '
                   f'<a href="copy:{turn}:{n}">Copy</a></p>')
        n += 1
        pos = m.end()
    out.append(markdown_html(text[pos:]))
    return "".join(out)


def render_turn(turn: Turn, index: int, style: str, muted: str) -> str:
    label = "Edit" if turn.kind == "edit" else "You"
    q = html.escape(turn.question).replace("\n", "<br>")
    note = f'<p style="color:{muted}"><i>{html.escape(turn.note)}</i></p>' if turn.note else ""
    return (f'<p style="margin-top:12px"><b>{label}:</b> {q}</p>'
            + render_answer(turn.answer, style, index) + note + "<hr>")
