"""Guards the PySide6 pin: 6.12.0 drops a reference to None on every void Qt call on Python 3.11
and kills the interpreter after a few thousand calls (shared/notes/pyside6.md)."""
import sys

from PySide6.QtWidgets import QApplication, QLabel, QPlainTextEdit


def test_void_qt_calls_do_not_leak_none_references():
    app = QApplication.instance() or QApplication([])
    label, edit = QLabel(), QPlainTextEdit()
    before = sys.getrefcount(None)
    for i in range(5000):
        label.setText(str(i))
        edit.setPlainText("x")
    after = sys.getrefcount(None)
    assert after >= before - 100, f"None lost {before - after} references in 10,000 void calls"
    assert app is not None
