"""Render resources/icons/llamadesk.svg to the PNG sizes, .ico and .icns (run after editing the SVG)."""
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def render(size: int) -> QImage:
    img = QImage(size, size, QImage.Format_ARGB32)
    img.fill(Qt.transparent)
    p = QPainter(img)
    QSvgRenderer(str(ICONS / "llamadesk.svg")).render(p)
    p.end()
    return img


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 (image plugins need an application)
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        render(size).save(str(ICONS / f"llamadesk-{size}.png"))
    ok_ico = render(256).save(str(ICONS / "llamadesk.ico"), "ICO")
    ok_icns = render(512).save(str(ICONS / "llamadesk.icns"), "ICNS")
    print("ico", ok_ico, "icns", ok_icns)
    return 0 if ok_ico and ok_icns else 1


if __name__ == "__main__":
    raise SystemExit(main())
