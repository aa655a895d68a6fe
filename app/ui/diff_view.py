"""Edit selection's review: a diff view (monospace, line numbers, green additions, red removals
with the changed characters marked) with Apply all, Apply this hunk and Discard, and the guard
that applies a change only to the very text that was selected.

The guard holds a live QTextCursor: Qt moves it with every edit of the document, so typing above
the selection while the model writes does not shift where the answer lands; if the selected text
itself changed, or its tab was closed, nothing is applied and the reason is said."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget
from shiboken6 import isValid

from app import textdiff

GREEN_LIGHT, GREEN_DARK = QColor(218, 251, 225), QColor(35, 75, 45)
RED_LIGHT, RED_DARK = QColor(255, 226, 224), QColor(95, 35, 35)
GREEN_MARK_LIGHT, GREEN_MARK_DARK = QColor(140, 230, 160), QColor(40, 130, 60)
RED_MARK_LIGHT, RED_MARK_DARK = QColor(255, 170, 165), QColor(160, 45, 45)


def qt_len(text: str) -> int:
    """Length in QTextDocument positions (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


class SelectionGuard:
    """The selection as it was when the request began, tracked live."""

    def __init__(self, editor, alive=None):
        self.editor = editor
        self.alive = alive or (lambda: True)   # e.g. "is it still one of the open tabs"
        self.cursor = QTextCursor(editor.textCursor())
        self.text = self.cursor.selectedText().replace("\u2029", "\n")

    def problem(self) -> str | None:
        if (not isValid(self.editor) or not isValid(self.editor.document()) or self.cursor.isNull()
                or not self.alive()):
            return "The tab was closed; nothing was changed."
        now = self.cursor.selectedText().replace("\u2029", "\n")
        if now != self.text:
            return "The selected text changed while the model was writing; nothing was changed."
        return None

    def replace(self, new: str) -> str | None:
        """Put `new` where the selection is, as one undo step; returns the problem, if any."""
        why = self.problem()
        if why:
            return why
        start = self.cursor.selectionStart()
        self.cursor.beginEditBlock()
        self.cursor.insertText(new)
        self.cursor.endEditBlock()
        # keep guarding the replaced text, so that hunks can be applied one after another
        self.cursor.setPosition(start)
        self.cursor.setPosition(start + qt_len(new), QTextCursor.KeepAnchor)
        self.text = new
        return None


class DiffView(QWidget):
    """Shows old -> new; `applied(str)` / `discarded()` tell the panel what happened."""
    applied = Signal(str)
    discarded = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.guard: SelectionGuard | None = None
        self.new = ""
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.view = QTextBrowser(openLinks=False)
        self.view.setLineWrapMode(QTextBrowser.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        self.view.setFont(font)
        self.view.document().setDefaultFont(font)
        self.view.anchorClicked.connect(lambda url: self.apply_hunk(int(url.toString().split(":")[1])))
        self.apply_btn = QPushButton("Apply all")
        self.discard_btn = QPushButton("Discard")
        self.apply_btn.clicked.connect(lambda: self.apply_all())
        self.discard_btn.clicked.connect(self.discard)
        row = QHBoxLayout()
        row.addWidget(self.title, 1)
        row.addWidget(self.apply_btn)
        row.addWidget(self.discard_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.view, 1)
        self.hunks: list[textdiff.Hunk] = []

    def _dark(self) -> bool:
        return self.palette().color(QPalette.Base).lightness() < 128

    def show_diff(self, guard: SelectionGuard, new: str) -> None:
        self.guard, self.new = guard, textdiff.finish_like(guard.text, new)
        self._draw()
        self.show()

    def _draw(self) -> None:
        old = self.guard.text
        self.hunks = textdiff.hunks(old, self.new)
        dark = self._dark()
        add_bg, del_bg = (GREEN_DARK, RED_DARK) if dark else (GREEN_LIGHT, RED_LIGHT)
        add_mark, del_mark = (GREEN_MARK_DARK, RED_MARK_DARK) if dark else (GREEN_MARK_LIGHT, RED_MARK_LIGHT)
        text_colour = self.palette().color(QPalette.Text)
        muted = QColor(text_colour)
        muted.setAlpha(140)
        doc = self.view.document()
        doc.clear()
        cur = QTextCursor(doc)
        width = len(str(max(len(textdiff.split(old)), len(textdiff.split(self.new)), 1)))
        first = True
        for n, h in enumerate(self.hunks):
            if not first:
                cur.insertBlock()
            first = False
            head = QTextCharFormat()
            head.setForeground(muted)
            cur.insertText(f"@@ lines {h.old_start + 1}-{h.old_end} → {h.new_start + 1}-{h.new_end} @@  ", head)
            link = QTextCharFormat()
            link.setAnchor(True)
            link.setAnchorHref(f"hunk:{n}")
            link.setForeground(self.palette().color(QPalette.Link))
            link.setFontUnderline(True)
            cur.insertText("Apply this hunk", link)
            for line in h.lines:
                cur.insertBlock()
                block_fmt = cur.blockFormat()
                bg = add_bg if line.kind == "+" else del_bg if line.kind == "-" else None
                if bg is not None:
                    block_fmt.setBackground(bg)
                else:
                    block_fmt.clearBackground()
                block_fmt.setProperty(QTextCharFormat.UserProperty, line.kind)
                cur.setBlockFormat(block_fmt)
                num = QTextCharFormat()
                num.setForeground(muted)
                old_no = str(line.old_no) if line.old_no else ""
                new_no = str(line.new_no) if line.new_no else ""
                cur.insertText(f"{old_no:>{width}} {new_no:>{width}} {line.kind} ", num)
                plain = QTextCharFormat()
                plain.setForeground(text_colour)
                mark = QTextCharFormat(plain)
                mark.setBackground(add_mark if line.kind == "+" else del_mark)
                pos = 0
                for s, e in line.changed:
                    if s > pos:
                        cur.insertText(line.text[pos:s], plain)
                    cur.insertText(line.text[s:e], mark)
                    pos = e
                cur.insertText(line.text[pos:] if pos < len(line.text) else "", plain)
        if not self.hunks:
            cur.insertText("(no change)")
        self.title.setText(f"Edit selection: {len(self.hunks)} change{'s' if len(self.hunks) != 1 else ''}"
                           if self.hunks else "Edit selection: the answer changes nothing")
        self.apply_btn.setEnabled(bool(self.hunks))

    def diff_lines(self) -> list[tuple[str, str]]:
        """(kind, text) of each shown diff line, for tests and copy."""
        out = []
        block = self.view.document().begin()
        while block.isValid():
            kind = block.blockFormat().property(QTextCharFormat.UserProperty)
            if kind in ("+", "-", " "):
                out.append((kind, block.text()))
            block = block.next()
        return out

    def apply_all(self) -> str | None:
        return self._apply(None)

    def apply_hunk(self, index: int) -> str | None:
        return self._apply({index})

    def _apply(self, chosen) -> str | None:
        if self.guard is None:
            return None
        text = textdiff.apply(self.guard.text, self.new, chosen)
        why = self.guard.replace(text)
        if why:
            self.title.setText(why)
            self.apply_btn.setEnabled(False)
            return why
        if chosen is None or self.guard.text == self.new:
            self.applied.emit(self.guard.text)
            self.close_diff()
        else:
            self._draw()
        return None

    def discard(self) -> None:
        self.close_diff()
        self.discarded.emit()

    def close_diff(self) -> None:
        self.guard = None
        self.hide()
