"""Settings dialog: theme, highlighting style, font size and the engine's defaults."""
from __future__ import annotations

from pygments.styles import get_all_styles
from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QSpinBox)


class SettingsDialog(QDialog):
    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.theme = QComboBox()
        self.theme.addItems(["system", "light", "dark"])
        self.theme.setCurrentText(settings.theme)
        self.style = QComboBox()
        self.style.addItems(["auto"] + sorted(get_all_styles()))
        self.style.setCurrentText(settings.pygments_style)
        self.font_size = QSpinBox(minimum=6, maximum=40, value=settings.font_size)
        self.n_ctx = QComboBox(editable=True)  # any size may be typed; the list only suggests
        self.n_ctx.addItems(["2048", "4096", "8192", "16384", "32768"])
        self.n_ctx.setValidator(QIntValidator(256, 1 << 20, self))
        self.n_ctx.setCurrentText(str(settings.n_ctx))
        self.max_tokens = QSpinBox(minimum=16, maximum=8192, value=settings.max_tokens)
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=settings.temperature)
        form = QFormLayout(self)
        form.addRow("Theme", self.theme)
        form.addRow("Highlighting style", self.style)
        form.addRow("Editor font size", self.font_size)
        form.addRow("Default context (tokens)", self.n_ctx)
        form.addRow("Answer length (tokens)", self.max_tokens)
        form.addRow("Temperature (Ask, Edit)", self.temperature)
        from app.ui.editor.autocomplete import completion_rows

        self._apply_completion = completion_rows(form, settings)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def apply(self) -> None:
        s = self.settings
        s.theme, s.pygments_style = self.theme.currentText(), self.style.currentText()
        s.font_size = self.font_size.value()
        typed = self.n_ctx.currentText().strip()
        if typed.isdigit() and int(typed) >= 256:
            s.n_ctx = int(typed)
        s.max_tokens, s.temperature = self.max_tokens.value(), self.temperature.value()
        self._apply_completion()
        s.save()
