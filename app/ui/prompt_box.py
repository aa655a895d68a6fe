"""The assistant's prompt box (Enter sends, Shift+Enter is a new line, Ctrl+Enter also sends) and
the context chips that show what a request will include (each can be removed)."""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QToolButton, QWidget


class PromptBox(QPlainTextEdit):
    submitted = Signal()

    def _is_send(self, event) -> bool:
        return (event.key() in (Qt.Key_Return, Qt.Key_Enter)
                and not event.modifiers() & Qt.ShiftModifier)

    def event(self, event) -> bool:
        # Ctrl+Enter is also the window's "Complete at cursor" shortcut: in the prompt box it sends.
        if event.type() == QEvent.ShortcutOverride and self._is_send(event):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        if self._is_send(event):
            self.submitted.emit()
            return
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):  # Shift+Enter: a new line
            self.insertPlainText("\n")
            return
        super().keyPressEvent(event)


class ContextChips(QWidget):
    """One chip per piece of context; the x removes it from the next requests."""
    removed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(4)
        self.label = QLabel("Context:")
        self.row.addWidget(self.label)
        self.row.addStretch(1)
        self.chips: dict[str, QToolButton] = {}

    def set_chips(self, items: list[tuple[str, str, str]]) -> None:
        """items: (key, short text, full text for the tooltip)."""
        for chip in self.chips.values():
            self.row.removeWidget(chip)
            chip.deleteLater()
        self.chips = {}
        for key, text, tip in items:
            chip = QToolButton()
            chip.setText(f"{text}  ✕")
            chip.setToolTip(f"{tip}\nClick to leave it out of the next requests.")
            chip.setAutoRaise(False)
            chip.setStyleSheet("QToolButton { border: 1px solid palette(mid); border-radius: 9px;"
                               " padding: 1px 8px; }")
            chip.clicked.connect(lambda _=False, k=key: self.removed.emit(k))
            self.row.insertWidget(self.row.count() - 1, chip)
            self.chips[key] = chip
        self.label.setText("Context:" if items else "Context: none (the question alone)")
