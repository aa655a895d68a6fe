"""Issue 12, item 9: the HumanEval chart, the speed chart and the transcript follow the theme,
also when it changes while the window is open (no white chart in the dark theme)."""
from collections import Counter

import pytest
from PySide6.QtGui import QColor

from app.ui import theme


def background(widget) -> QColor:
    """The commonest colour of the widget as it is drawn now: its background."""
    img = widget.grab().toImage()
    seen = Counter(img.pixel(x, y) for x in range(0, img.width(), 3) for y in range(0, img.height(), 3))
    return QColor.fromRgb(seen.most_common(1)[0][0])


def settle(gui):
    for _ in range(3):
        gui.app.processEvents()


@pytest.mark.parametrize("first, then", [("light", "dark"), ("dark", "light")])
def test_charts_follow_a_theme_change(gui, first, then):
    w = gui.window
    try:
        w.set_theme(first)
        gui.run(w.fill_from_jobs())   # the advice the speed chart draws
        w.show_panel("models")
        w.show_panel("humaneval")
        w.bench_panel._draw_chart()
        settle(gui)
        w.set_theme(then)
        settle(gui)
        for chart in (w.models_panel.chart, w.bench_panel.chart):
            if chart.width() < 20:
                chart.resize(400, 300)
            lightness = background(chart).lightness()
            if then == "dark":
                assert lightness < 100, f"{type(chart).__name__} has a light background in the dark theme"
            else:
                assert lightness > 160, f"{type(chart).__name__} has a dark background in the light theme"
        assert theme.is_dark() == (then == "dark")
    finally:
        w.set_theme("system")
