"""Find / replace bar under the editor: Ctrl+F shows find only, Ctrl+H find and replace, Esc
closes it. A failed search leaves the cursor where it was; without "Aa" Replace also replaces
matches that differ in case."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor, QTextDocument
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget


class FindBar(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.editor = None
        self.find_edit = QLineEdit(placeholderText="Find")
        self.replace_edit = QLineEdit(placeholderText="Replace with")
        self.case = QCheckBox("Aa")
        self.case.setToolTip("Match case")
        self.status = QLabel()
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        for w in (self.find_edit, self.case):
            row.addWidget(w)
        for text, slot in (("Previous", lambda: self.find(back=True)), ("Next", self.find)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            row.addWidget(b)
        row.addWidget(self.replace_edit)
        self.replace_widgets = [self.replace_edit]
        for text, slot in (("Replace", self.replace), ("All", self.replace_all)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            row.addWidget(b)
            self.replace_widgets.append(b)
        close = QPushButton("✕")
        close.setToolTip("Close (Esc)")
        close.clicked.connect(self.close_bar)
        row.addWidget(close)
        row.addWidget(self.status)
        self.find_edit.returnPressed.connect(self.find)
        self.hide()

    def open(self, editor, replace: bool = False) -> None:
        self.editor = editor
        selected = editor.textCursor().selectedText()
        if selected and "\u2029" not in selected:
            self.find_edit.setText(selected)
        for w in self.replace_widgets:
            w.setVisible(replace)
        self.status.setText("")
        self.show()
        self.find_edit.setFocus()
        self.find_edit.selectAll()

    def close_bar(self) -> None:
        if self.isVisible():
            self.hide()
            if self.editor is not None:
                self.editor.setFocus()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key_Escape:
            self.close_bar()
            return
        super().keyPressEvent(event)

    def _flags(self, back=False):
        flags = QTextDocument.FindFlag(0)
        if back:
            flags |= QTextDocument.FindBackward
        if self.case.isChecked():
            flags |= QTextDocument.FindCaseSensitively
        return flags

    def find(self, back: bool = False) -> bool:
        if not self.editor or not self.find_edit.text():
            return False
        before = self.editor.textCursor()
        found = self.editor.find(self.find_edit.text(), self._flags(back))
        if not found:  # wrap around
            cursor = self.editor.textCursor()
            cursor.movePosition(QTextCursor.End if back else QTextCursor.Start)
            self.editor.setTextCursor(cursor)
            found = self.editor.find(self.find_edit.text(), self._flags(back))
            if not found:
                self.editor.setTextCursor(before)  # nothing found: the cursor stays
        self.status.setText("" if found else "not found")
        return found

    def _matches(self, text: str) -> bool:
        needle = self.find_edit.text()
        return text == needle if self.case.isChecked() else text.casefold() == needle.casefold()

    def replace(self) -> None:
        cursor = self.editor.textCursor() if self.editor else None
        if cursor and cursor.hasSelection() and self._matches(cursor.selectedText()):
            cursor.insertText(self.replace_edit.text())
        self.find()

    def replace_all(self) -> int:
        if not self.editor or not self.find_edit.text():
            return 0
        doc = self.editor.document()
        cursor = self.editor.textCursor()
        cursor.beginEditBlock()
        n, c = 0, doc.find(self.find_edit.text(), 0, self._flags())
        while not c.isNull():
            c.insertText(self.replace_edit.text())
            n += 1
            c = doc.find(self.find_edit.text(), c, self._flags())
        cursor.endEditBlock()
        self.status.setText(f"{n} replaced")
        return n
