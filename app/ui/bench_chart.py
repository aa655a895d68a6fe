"""The HumanEval panel's chart, painted directly so that it reads at any size: every label whole
(the label column is as wide as the longest label), the value on each bar, this run in its own
colour, and pass@1 with its 95% interval for our runs (Wilson score interval)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

COLOURS = {"this": QColor(234, 134, 0), "run": QColor(66, 133, 244), "reference": QColor(140, 150, 165)}


@dataclass
class Row:
    label: str
    value: float            # percent
    kind: str               # this, run, reference
    lo: float | None = None  # 95% interval, percent
    hi: float | None = None
    tip: str = ""


def wilson(passed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a pass rate (Wilson score), in percent."""
    if n <= 0:
        return 0.0, 0.0
    p = passed / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


class BenchChart(QWidget):
    ROW_H = 22
    PAD = 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[Row] = []
        self.title = "HumanEval pass@1 (%) — bars: 95% interval for runs here"
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumHeight(160)

    def set_rows(self, rows: list[Row]) -> None:
        self.rows = rows
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(520, 40 + self.ROW_H * max(4, len(self.rows)) + 30)

    def label_width(self) -> int:
        fm = QFontMetrics(self.font())
        return max([fm.horizontalAdvance(r.label) + 4 for r in self.rows] + [60]) + self.PAD

    def elided_labels(self) -> list[str]:
        """Labels that would not be drawn whole at the current size (none, unless the widget is
        narrower than its longest label)."""
        fm = QFontMetrics(self.font())
        room = self._label_room()
        return [r.label for r in self.rows
                if fm.elidedText(r.label, Qt.ElideRight, room) != r.label]

    def _label_room(self) -> int:
        return min(self.label_width(), max(60, self.width() - 140)) - self.PAD

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        pal = self.palette()
        text, grid = pal.color(QPalette.WindowText), pal.color(QPalette.Mid)
        fm = QFontMetrics(self.font())
        p.setPen(text)
        p.drawText(QRectF(self.PAD, 4, self.width() - 2 * self.PAD, fm.height()), Qt.AlignLeft, self.title)
        top = 10 + fm.height()
        label_w = self._label_room() + self.PAD
        left = self.PAD + label_w
        value_w = fm.horizontalAdvance(" 100.0 ") + self.PAD
        width = max(40, self.width() - left - value_w - self.PAD)
        row_h = max(fm.height() + 4, min(self.ROW_H, (self.height() - top - 24) / max(1, len(self.rows))))
        # grid: 0, 25, 50, 75, 100 %
        bottom = top + row_h * len(self.rows)
        for pct in (0, 25, 50, 75, 100):
            x = left + width * pct / 100
            p.setPen(QPen(grid, 1, Qt.DotLine))
            p.drawLine(int(x), int(top), int(x), int(bottom))
            p.setPen(text)
            p.drawText(QRectF(x - 20, bottom + 2, 40, fm.height()), Qt.AlignHCenter, str(pct))
        for i, r in enumerate(self.rows):
            y = top + i * row_h
            p.setPen(text)
            p.drawText(QRectF(self.PAD, y, label_w - self.PAD, row_h), Qt.AlignVCenter | Qt.AlignRight,
                       fm.elidedText(r.label, Qt.ElideRight, int(label_w - self.PAD)))
            bar = QRectF(left, y + 3, width * max(0.0, min(100.0, r.value)) / 100, row_h - 6)
            p.fillRect(bar, COLOURS.get(r.kind, COLOURS["run"]))
            if r.lo is not None and r.hi is not None:
                p.setPen(QPen(text, 1.5))
                x1, x2, yc = left + width * r.lo / 100, left + width * r.hi / 100, y + row_h / 2
                p.drawLine(int(x1), int(yc), int(x2), int(yc))
                p.drawLine(int(x1), int(yc - 4), int(x1), int(yc + 4))
                p.drawLine(int(x2), int(yc - 4), int(x2), int(yc + 4))
            p.setPen(text)
            value_x = max(bar.right(), left + width * (r.hi or 0) / 100) + 4
            p.drawText(QRectF(value_x, y, value_w, row_h), Qt.AlignVCenter | Qt.AlignLeft, f"{r.value:.1f}")
        p.end()

    def event(self, e):
        if e.type() == e.Type.ToolTip:
            fm = QFontMetrics(self.font())
            top = 10 + fm.height()
            row_h = max(fm.height() + 4, min(self.ROW_H, (self.height() - top - 24) / max(1, len(self.rows))))
            i = int((e.pos().y() - top) // row_h) if row_h else -1
            if 0 <= i < len(self.rows):
                r = self.rows[i]
                ci = f", 95% interval {r.lo:.1f}–{r.hi:.1f}" if r.lo is not None else ""
                from PySide6.QtWidgets import QToolTip
                QToolTip.showText(e.globalPos(), f"{r.label}: {r.value:.1f}%{ci}" + (f"\n{r.tip}" if r.tip else ""), self)
                return True
        return super().event(e)
