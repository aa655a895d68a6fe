"""The Models panel's chart: predicted speed here (tokens/s, log scale) against published HumanEval,
one point per catalog file, the two recommendations marked."""
from __future__ import annotations

from PySide6.QtCharts import QChart, QChartView, QLogValueAxis, QScatterSeries, QValueAxis
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette

from app.models import advisor

SERIES_COLOURS = {"chat": QColor(66, 133, 244), "base": QColor(156, 106, 222)}
REC_COLOUR = QColor(234, 134, 0)
SLOW_COLOUR = QColor(150, 150, 150)


class SpeedChart(QChartView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setRenderHint(QPainter.Antialiasing)
        self.setMinimumWidth(420)
        self.points: dict[str, tuple[float, float]] = {}
        self.marked: list[str] = []
        self._drawn = None

    def restyle(self) -> None:
        """The theme changed: draw the same points in the new palette's colours."""
        if self._drawn is not None:
            self.draw(*self._drawn)

    def draw(self, files, advice, dark: bool | None = None) -> None:
        """`dark`: None follows the palette in use (the theme can change later: `restyle`)."""
        self._drawn = (files, advice)
        pal = QGuiApplication.palette()   # the widget's own copy is updated only later
        if dark is None:
            dark = pal.color(QPalette.Window).lightness() < 128
        chart = QChart()
        chart.setTheme(QChart.ChartThemeDark if dark else QChart.ChartThemeLight)
        # the panel's own colours, not the chart theme's (its dark is blue-grey, its light white)
        chart.setBackgroundBrush(pal.color(QPalette.Base))
        chart.setTitleBrush(pal.color(QPalette.WindowText))
        chart.setTitle("Published HumanEval % against speed here")
        chart.setMargins(chart.margins() * 0)
        series = {k: QScatterSeries() for k in ("slow", "chat", "base", "rec")}
        series["slow"].setName(f"under {advisor.INTERACTIVE_TPS:.0f} tok/s")
        series["chat"].setName("Ask/Edit")
        series["base"].setName("completion")
        series["rec"].setName("recommended")
        for key, colour in (("slow", SLOW_COLOUR), ("chat", SERIES_COLOURS["chat"]),
                            ("base", SERIES_COLOURS["base"]), ("rec", REC_COLOUR)):
            series[key].setColor(colour)
            series[key].setBorderColor(colour)
            series[key].setMarkerSize(15 if key == "rec" else 7)
        series["rec"].setMarkerShape(QScatterSeries.MarkerShapeStar)
        self.points = {}
        lo, hi = 1.0, 10.0
        for f in files:
            tps = advice.tps.get(f.id, 0.0)
            if tps <= 0:
                continue  # does not fit here
            self.points[f.id] = (tps, f.humaneval)
            lo, hi = min(lo, tps), max(hi, tps)
            key = "slow" if tps < advisor.INTERACTIVE_TPS else ("base" if f.base else "chat")
            series[key].append(QPointF(tps, f.humaneval))
        self.marked = []
        for rec in (advice.ask, advice.complete):
            if rec.file is not None and rec.file.id in self.points:
                self.marked.append(rec.file.id)
                series["rec"].append(QPointF(*self.points[rec.file.id]))
        series["rec"].setPointLabelsVisible(True)
        series["rec"].setPointLabelsFormat("@yPoint")
        ax = QLogValueAxis()
        ax.setBase(10)
        ax.setLabelFormat("%g")
        ax.setTitleText("tokens/s here (predicted, log scale)")
        ax.setRange(max(0.1, lo / 1.5), hi * 1.5)
        ay = QValueAxis()
        ay.setRange(0, 100)
        ay.setLabelFormat("%d")
        chart.addAxis(ax, Qt.AlignBottom)
        chart.addAxis(ay, Qt.AlignLeft)
        for s in series.values():
            chart.addSeries(s)
            s.attachAxis(ax)
            s.attachAxis(ay)
        chart.legend().setAlignment(Qt.AlignBottom)
        chart.legend().setLabelColor(pal.color(QPalette.WindowText))
        for axis in (ax, ay):
            axis.setLabelsColor(pal.color(QPalette.WindowText))
            axis.setTitleBrush(pal.color(QPalette.WindowText))
            axis.setGridLineColor(pal.color(QPalette.Mid))
        self.setBackgroundBrush(pal.color(QPalette.Base))
        self.setChart(chart)
        self.setToolTip("\n".join(f"★ {r.reason}" for r in (advice.ask, advice.complete) if r.file))
