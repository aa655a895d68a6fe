"""Light, dark and system themes (light and dark on the Fusion style), and icons that follow them.

The system palette and style are captured before the first change, so that switching back to
System restores them exactly (a dark palette must not linger). Every theme gets disabled colours that
differ from the enabled ones, so that a disabled button looks disabled. The highlighting
style follows the palette that is in use (`is_dark`).
"""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

THEMES = ("system", "light", "dark")
LIGHT_STYLE, DARK_STYLE = "default", "github-dark"   # pygments styles for "auto"
_system: QPalette | None = None     # the system palette, kept when another theme is first applied
_system_style = ""

def _dark() -> QPalette:
    # the roles are looked up here, not at import: PySide6 builds an enum on its first use
    rgb = {
        QPalette.Window: (43, 43, 46), QPalette.WindowText: (220, 220, 220), QPalette.Base: (30, 30, 30),
        QPalette.AlternateBase: (45, 45, 48), QPalette.Text: (220, 220, 220), QPalette.Button: (51, 51, 55),
        QPalette.ButtonText: (220, 220, 220), QPalette.ToolTipBase: (45, 45, 48),
        QPalette.ToolTipText: (220, 220, 220), QPalette.Highlight: (38, 79, 120),
        QPalette.HighlightedText: (255, 255, 255), QPalette.BrightText: (255, 90, 90),
        QPalette.PlaceholderText: (128, 128, 128), QPalette.Link: (86, 156, 214), QPalette.Mid: (70, 70, 74),
        QPalette.Dark: (25, 25, 26), QPalette.Light: (75, 75, 80), QPalette.Midlight: (60, 60, 64),
        QPalette.Shadow: (10, 10, 10),
    }
    disabled = {QPalette.WindowText: (115, 115, 115), QPalette.Text: (115, 115, 115),
                QPalette.ButtonText: (115, 115, 115), QPalette.Button: (42, 42, 45),
                QPalette.Base: (37, 37, 38), QPalette.Highlight: (70, 70, 74)}
    p = QPalette()
    for role, c in rgb.items():
        p.setColor(role, QColor(*c))  # all groups
    for role, c in disabled.items():
        p.setColor(QPalette.Disabled, role, QColor(*c))
    return p


def _with_visible_disabled(p: QPalette) -> QPalette:
    """Some platform palettes give disabled text the enabled colour: blend it into the background."""
    p = QPalette(p)
    for role, back in ((QPalette.ButtonText, QPalette.Button), (QPalette.WindowText, QPalette.Window),
                       (QPalette.Text, QPalette.Base)):
        on, bg = p.color(QPalette.Active, role), p.color(QPalette.Active, back)
        if p.color(QPalette.Disabled, role) == on:
            p.setColor(QPalette.Disabled, role, QColor((on.red() + bg.red()) // 2, (on.green() + bg.green()) // 2,
                                                       (on.blue() + bg.blue()) // 2))
    return p


def apply_theme(app: QApplication, theme: str) -> None:
    global _system, _system_style
    if theme not in ("light", "dark") and _system is None:
        return  # the system's own style and palette, untouched (and nothing to set up at startup)
    if _system is None:  # about to leave the system theme: keep it to come back to
        _system, _system_style = QPalette(app.palette()), app.style().name()
    if theme in ("light", "dark"):
        if app.style().name().lower() != "fusion":
            app.setStyle(QStyleFactory.create("Fusion"))
        palette = _dark() if theme == "dark" else app.style().standardPalette()
    else:
        if app.style().name() != _system_style:
            app.setStyle(QStyleFactory.create(_system_style))
        palette = _system
    app.setPalette(_with_visible_disabled(palette))


def system_palette() -> QPalette:
    return QPalette(_system) if _system is not None else QApplication.palette()


def is_dark(palette: QPalette | None = None) -> bool:
    palette = palette or QApplication.palette()
    return palette.color(QPalette.Window).lightness() < 128


def pygments_style(chosen: str) -> str:
    """The highlighting style: the one chosen, or for "auto" one that suits the palette in use."""
    if chosen and chosen != "auto":
        return chosen
    return DARK_STYLE if is_dark() else LIGHT_STYLE


def icon(name: str):
    """An icon from resources/icons/ui, drawn in the palette's text colour (so it suits the theme)."""
    from PySide6.QtCore import Qt  # painting classes cost 0.1 s to set up: not before the window shows
    from PySide6.QtGui import QIcon, QPainter, QPixmap

    from app.ui.app import paths_resource

    path = paths_resource(f"icons/ui/{name}.svg")
    if path is None:
        return QIcon()
    base = QIcon(str(path)).pixmap(48, 48)
    out = QIcon()
    for mode, group in ((QIcon.Normal, QPalette.Active), (QIcon.Disabled, QPalette.Disabled)):
        pm = QPixmap(base.size())
        pm.fill(Qt.transparent)
        p = QPainter(pm)
        p.drawPixmap(0, 0, base)
        p.setCompositionMode(QPainter.CompositionMode_SourceIn)
        p.fillRect(pm.rect(), QApplication.palette().color(group, QPalette.WindowText))
        p.end()
        out.addPixmap(pm, mode)
    return out
