"""The code editor: line numbers, current-line highlight, indentation helpers, zoom, and the
assistant's ghost text (a completion shown in grey at the cursor until Tab accepts it)."""
from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QPainter, QTextCursor, QTextFormat
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

INDENT = "    "
FRAME_MS = 16


class _LineNumbers(QWidget):
    def __init__(self, editor: "CodeEditor"):
        super().__init__(editor)
        self.editor = editor

    def sizeHint(self) -> QSize:
        return QSize(self.editor.line_number_width(), 0)

    def paintEvent(self, event) -> None:
        self.editor.paint_line_numbers(event)


class CodeEditor(QPlainTextEdit):
    ghost_accepted = Signal(str)
    ghost_discarded = Signal()
    ghost_typed = Signal(str)     # the user typed the suggestion's first characters; the rest stays
    escape_pressed = Signal()
    first_paint = Signal()        # once: lazy highlighting starts its idle pass after it
    edited = Signal()             # the text changed (not the highlighter redoing colours)

    def __init__(self, parent=None, font_size: int = 11):
        super().__init__(parent)
        font = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        font.setPointSize(font_size)
        self.setFont(font)
        self.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.setTabStopDistance(self.fontMetrics().horizontalAdvance(" ") * 4)
        self.ghost = ""
        self._ghost_pos = -1
        self.ghost_editing = False  # True while the ghost itself changes the text (accept, type-through)
        self._numbers = _LineNumbers(self)
        self.blockCountChanged.connect(self._update_margin)
        self.updateRequest.connect(self._scroll_numbers)
        self.cursorPositionChanged.connect(self._highlight_line)
        self._update_margin()
        self._highlight_line()
        # Paint at most once a frame while text pours in (streamed tokens): once a line is
        # highlighted, Qt repaints the whole viewport for every change to it.
        self._frame = QTimer(self, singleShot=True, interval=FRAME_MS)
        self._frame.timeout.connect(self._end_frame)
        self.document().contentsChange.connect(self._begin_frame)
        # text changes; unlike document().revision(), colours redone by the highlighter on its
        # own (after a burst of keys, in idle time) do not count
        self.edits = 0
        self.document().contentsChange.connect(self._count_edit)

    def _count_edit(self, *_) -> None:
        if not getattr(getattr(self, "highlighter", None), "relexing", False):
            self.edits += 1
            self.edited.emit()

    def _begin_frame(self, *_):
        if not self._frame.isActive():
            self._frame.start()  # the first change paints at once (typing stays immediate)
        elif self.viewport().updatesEnabled():
            self.viewport().setUpdatesEnabled(False)  # the next ones wait for the frame's end

    def _end_frame(self) -> None:
        if not self.viewport().updatesEnabled():
            self.viewport().setUpdatesEnabled(True)
            self.viewport().update()

    # --- ghost text --------------------------------------------------------------------------
    def show_ghost(self, text: str) -> None:
        """Show (or extend) the grey suggestion at the cursor; the document is not touched."""
        if self._ghost_pos != self.textCursor().position():
            self._ghost_pos = self.textCursor().position()
        self.ghost = text
        self.viewport().update()

    def accept_ghost(self, part: str = "all") -> bool:
        """Insert the suggestion: all of it (Tab), its next word (Ctrl+Right) or line (Ctrl+Down);
        what is not accepted stays as ghost text."""
        if not self.ghost:
            return False
        from app.completion.accept import split_ghost

        text, self.ghost = split_ghost(self.ghost, part)
        self._insert_for_ghost(text)
        self.viewport().update()
        self.ghost_accepted.emit(text)
        return True

    def _insert_for_ghost(self, text: str) -> None:
        self.ghost_editing = True
        try:
            cursor = self.textCursor()
            cursor.beginEditBlock()  # one undo step
            cursor.insertText(text)
            cursor.endEditBlock()
            self.setTextCursor(cursor)
            self._ghost_pos = cursor.position()
        finally:
            self.ghost_editing = False

    def _type_through(self, event) -> bool:
        """Typing the suggestion's first characters keeps the rest (and asks for nothing new)."""
        typed = event.text()
        if (not typed or not typed.isprintable() or not self.ghost.startswith(typed)
                or event.modifiers() & ~(Qt.ShiftModifier | Qt.KeypadModifier)
                or self.textCursor().hasSelection()):
            return False
        rest = self.ghost[len(typed):]
        self.ghost = rest if rest.strip() else ""
        self._insert_for_ghost(typed)
        self.viewport().update()
        self.ghost_typed.emit(typed)
        if not self.ghost:
            self.discard_ghost()
        return True

    def discard_ghost(self) -> None:
        if self.ghost or self._ghost_pos >= 0:
            self.ghost = ""
            self._ghost_pos = -1
            self.viewport().update()
            self.ghost_discarded.emit()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not getattr(self, "_painted", False):
            self._painted = True
            self.first_paint.emit()  # its slots only start timers: the paint is not held up
        if not self.ghost:
            return
        painter = QPainter(self.viewport())
        painter.setFont(self.font())
        rect = self.cursorRect()
        fm = self.fontMetrics()
        lines = self.ghost.split("\n")
        grey = QColor(self.palette().text().color())
        grey.setAlpha(110)
        painter.setPen(grey)
        painter.drawText(rect.x(), rect.y() + fm.ascent(), lines[0])
        if len(lines) > 1:  # the rest in a box below the cursor line, covering what is there
            rest = lines[1:]
            box = self.ghost_box()
            base = QColor(self.palette().base().color())
            painter.fillRect(box, base)
            painter.setPen(QColor(grey.red(), grey.green(), grey.blue(), 60))
            painter.drawRect(box)
            painter.setPen(grey)
            for i, line in enumerate(rest):
                painter.drawText(box.x() + 6, box.y() + 2 + fm.ascent() + i * fm.height(), line)
        painter.end()

    def ghost_box(self) -> QRect:
        """Where the lines after the first are painted: below the cursor line, or above it when
        they would run past the bottom of the view (never clipped)."""
        fm = self.fontMetrics()
        rest = self.ghost.split("\n")[1:]
        if not rest:
            return QRect()
        rect = self.cursorRect()
        width = max(fm.horizontalAdvance(l) for l in rest) + 12
        box = QRect(int(self.contentOffset().x()) + 4, rect.bottom() + 1, width,
                    fm.height() * len(rest) + 4)
        if box.bottom() > self.viewport().height():
            box.moveBottom(rect.top() - 1)
            if box.top() < 0:
                box.moveTop(0)
        return box

    # --- keys --------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        key, mods = event.key(), event.modifiers()
        if self.ghost and key == Qt.Key_Tab and not mods:
            self.accept_ghost()
            return
        if self.ghost and mods == Qt.ControlModifier and key in (Qt.Key_Right, Qt.Key_Down):
            self.accept_ghost("word" if key == Qt.Key_Right else "line")
            return
        if self.ghost and self._type_through(event):
            return
        if key == Qt.Key_Escape:
            self.discard_ghost()
            self.escape_pressed.emit()
            return
        if self.ghost and (event.text() or key in (Qt.Key_Backspace, Qt.Key_Delete, Qt.Key_Left,
                                                   Qt.Key_Right, Qt.Key_Up, Qt.Key_Down)):
            self.discard_ghost()
        if key == Qt.Key_Tab and not mods:
            self._indent(self.textCursor())
            return
        if key == Qt.Key_Backtab:
            self._dedent(self.textCursor())
            return
        if key in (Qt.Key_Return, Qt.Key_Enter) and not mods:
            self._newline()
            return
        super().keyPressEvent(event)

    def _newline(self) -> None:
        cursor = self.textCursor()
        line = cursor.block().text()[: cursor.positionInBlock()]
        indent = line[: len(line) - len(line.lstrip())]
        if line.rstrip().endswith((":", "{", "(", "[")):
            indent += INDENT
        cursor.insertText("\n" + indent)
        self.setTextCursor(cursor)

    def _selected_blocks(self, cursor: QTextCursor):
        doc = self.document()
        start = doc.findBlock(cursor.selectionStart())
        end = doc.findBlock(cursor.selectionEnd())
        block = start
        while block.isValid():
            yield block
            if block == end:
                break
            block = block.next()

    def _indent(self, cursor: QTextCursor) -> None:
        if not cursor.hasSelection():
            cursor.insertText(INDENT)
            return
        cursor.beginEditBlock()
        for block in list(self._selected_blocks(cursor)):
            c = QTextCursor(block)
            c.insertText(INDENT)
        cursor.endEditBlock()

    def _dedent(self, cursor: QTextCursor) -> None:
        cursor.beginEditBlock()
        for block in list(self._selected_blocks(cursor)):
            text = block.text()
            n = len(text) - len(text.lstrip(" "))
            c = QTextCursor(block)
            c.movePosition(QTextCursor.Right, QTextCursor.KeepAnchor, min(n, len(INDENT)))
            c.removeSelectedText()
        cursor.endEditBlock()

    # --- zoom and navigation -------------------------------------------------------------------
    def zoom(self, steps: int) -> None:
        font = QFont(self.font())
        font.setPointSize(max(6, min(48, font.pointSize() + steps)))
        self.setFont(font)
        self._update_margin()

    def go_to_line(self, line: int) -> None:
        block = self.document().findBlockByNumber(max(0, line - 1))
        cursor = QTextCursor(block)
        self.setTextCursor(cursor)
        self.centerCursor()

    # --- line numbers and current line ---------------------------------------------------------
    def line_number_width(self) -> int:
        digits = len(str(max(1, self.blockCount())))
        return 12 + self.fontMetrics().horizontalAdvance("9") * max(3, digits)

    def _update_margin(self, *_):
        self.setViewportMargins(self.line_number_width(), 0, 0, 0)

    def _scroll_numbers(self, rect, dy):
        if dy:
            self._numbers.scroll(0, dy)
            return
        # The numbers only change with scrolling, line count, current line or size, not with
        # the text inside a line (which, once highlighted, Qt repaints as a whole viewport).
        key = (self.firstVisibleBlock().blockNumber(), self.blockCount(),
               self.textCursor().blockNumber(), self.viewport().height(), self.font().pointSize())
        if key != getattr(self, "_numbers_key", None):
            self._numbers_key = key
            self._numbers.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        cr = self.contentsRect()
        self._numbers.setGeometry(QRect(cr.left(), cr.top(), self.line_number_width(), cr.height()))

    def paint_line_numbers(self, event) -> None:
        painter = QPainter(self._numbers)
        pal = self.palette()
        painter.fillRect(event.rect(), pal.alternateBase())
        block = self.firstVisibleBlock()
        number = block.blockNumber()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        bottom = top + round(self.blockBoundingRect(block).height())
        current = self.textCursor().blockNumber()
        fm = self.fontMetrics()
        while block.isValid() and top <= event.rect().bottom():
            if block.isVisible() and bottom >= event.rect().top():
                color = pal.text().color() if number == current else pal.placeholderText().color()
                painter.setPen(color)
                painter.drawText(0, top, self._numbers.width() - 6, fm.height(), Qt.AlignRight, str(number + 1))
            block = block.next()
            top = bottom
            bottom = top + round(self.blockBoundingRect(block).height())
            number += 1
        painter.end()

    def _highlight_line(self) -> None:
        block = self.textCursor().blockNumber()
        if block == getattr(self, "_current_block", None):
            return  # typing (or a streamed token) within the line: nothing to repaint here
        self._current_block = block
        sel = QTextEdit.ExtraSelection()
        color = QColor(self.palette().highlight().color())
        color.setAlpha(28)
        sel.format.setBackground(color)
        sel.format.setProperty(QTextFormat.FullWidthSelection, True)
        sel.cursor = self.textCursor()
        sel.cursor.clearSelection()
        self.setExtraSelections([sel])
        self._numbers.update()
