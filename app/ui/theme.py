"""Light, dark and system themes (Fusion with a palette; system leaves Qt's own)."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QStyleFactory


def apply_theme(app, theme: str) -> None:
    if theme == "system":
        return
    app.setStyle(QStyleFactory.create("Fusion"))
    if theme == "light":
        app.setPalette(app.style().standardPalette())
        return
    p = QPalette()
    dark, base, text = QColor(45, 45, 48), QColor(30, 30, 30), QColor(220, 220, 220)
    for role, color in ((QPalette.Window, dark), (QPalette.WindowText, text), (QPalette.Base, base),
                        (QPalette.AlternateBase, dark), (QPalette.Text, text), (QPalette.Button, dark),
                        (QPalette.ButtonText, text), (QPalette.ToolTipBase, dark), (QPalette.ToolTipText, text),
                        (QPalette.Highlight, QColor(38, 79, 120)), (QPalette.HighlightedText, QColor(255, 255, 255)),
                        (QPalette.PlaceholderText, QColor(130, 130, 130)), (QPalette.Link, QColor(86, 156, 214))):
        p.setColor(role, color)
    app.setPalette(p)
