"""Start the desktop app: Qt with the qasync event loop, logging, the exception dialog, and
`--screenshot` (offscreen: show one panel, save a PNG, exit)."""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import traceback

from app import paths

log = logging.getLogger("llamadesk")
PANELS = ("editor", "assistant", "models", "humaneval", "decontam", "settings")
SCREENSHOT_SIZE = (1280, 800)
SAMPLE = '''"""Welcome to LlamaDesk: an offline coding assistant."""
from dataclasses import dataclass


@dataclass
class Account:
    owner: str
    balance: float = 0.0

    def deposit(self, amount: float) -> None:
        if amount <= 0:
            raise ValueError("deposit must be positive")
        self.balance += amount


def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
'''


def setup_logging() -> None:
    folder = paths.ensure(paths.log_dir())
    handler = logging.handlers.RotatingFileHandler(folder / "llamadesk.log", maxBytes=1_000_000,
                                                   backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def install_exception_dialog(window, loop) -> None:
    """Unexpected exceptions are logged and shown; the window stays."""
    from PySide6.QtWidgets import QMessageBox
    from shiboken6 import isValid

    def show(text: str) -> None:
        log.error(text)
        if not isValid(window):  # the window has closed: the log is the only place left
            return
        box = QMessageBox(QMessageBox.Warning, "Unexpected error",
                          "Something went wrong; your text is safe. Details are in the log.", parent=window)
        box.setDetailedText(text)
        box.open()
        window._last_error_box = box

    def hook(exc_type, exc, tb):
        show("".join(traceback.format_exception(exc_type, exc, tb)))

    def loop_handler(_loop, context):
        exc = context.get("exception")
        if exc is None and str(context.get("message", "")).startswith("Task was destroyed"):
            log.warning("%s", context.get("message"))  # a job cancelled at close; nothing was lost
            return
        show("".join(traceback.format_exception(exc)) if exc else str(context.get("message")))

    sys.excepthook = hook
    loop.set_exception_handler(loop_handler)


def make_app(settings):
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from app.ui.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LlamaDesk")
    icon = paths_resource("icons/llamadesk.svg")
    if icon:
        app.setWindowIcon(QIcon(str(icon)))
    apply_theme(app, settings.theme)
    return app


def make_loop(app):
    import asyncio

    from app.ui.qt_loop import QtLoop

    loop = QtLoop(app)
    asyncio.set_event_loop(loop)
    return loop


def build(settings=None, recovery=None):
    """QApplication, event loop and window, as `llamadesk` makes them (the tests use this)."""
    from app.settings import Settings
    from app.ui.main_window import MainWindow

    settings = settings or Settings.load()
    app = make_app(settings)
    window = MainWindow(settings, recovery)
    loop = make_loop(app)
    window.finish()
    install_exception_dialog(window, loop)
    return app, loop, window


def paths_resource(rel: str):
    from pathlib import Path

    for base in (Path(__file__).resolve().parents[2] / "resources",
                 Path(getattr(sys, "_MEIPASS", "")) / "resources"):
        if (base / rel).exists():
            return base / rel
    return None


def run_gui(args) -> int:
    import time

    from app.settings import Settings
    from app.ui.main_window import MainWindow

    shot = getattr(args, "screenshot", None)
    if shot:
        problem = _unwritable(shot)
        if problem:
            print(f"llamadesk: cannot write the screenshot to {shot}: {problem}", file=sys.stderr)
            return 2
    setup_logging()
    settings = Settings.load()
    app = make_app(settings)
    if getattr(args, "theme", None):  # for this run only: the settings keep theirs
        from app.ui.theme import apply_theme

        apply_theme(app, args.theme)
    window = MainWindow(settings)
    if shot:  # nobody is there to close a dialog: problems go to stderr
        window.tabs.warn = lambda _title, text: print(f"llamadesk: {text}", file=sys.stderr)
    opened = window.tabs.open_file(args.open) if getattr(args, "open", None) else None
    window.show()
    app.processEvents()  # the window is on screen now; the rest fills in behind it
    probe = os.environ.get("LLAMADESK_STARTUP_PROBE")
    if probe:
        print(f"SHOWN {time.time():.6f}", flush=True)
    loop = make_loop(app)
    window.finish()
    install_exception_dialog(window, loop)
    if shot:
        return _screenshot(app, loop, window, shot, args.panel or "editor")
    from PySide6.QtCore import QTimer

    def start():
        window.restore_workspace()  # first: startup adds an empty tab only if nothing is open
        if opened is not None and window.tabs.indexOf(opened) >= 0:
            window.tabs.setCurrentWidget(opened)  # --open wins over the workspace's current tab
        window.startup()
        window.report_settings_problem()

    QTimer.singleShot(0, start)
    if probe:  # tests/bench/startup.py: also when the panels are filled, then quit
        def filled():
            print(f"FILLED {time.time():.6f}", flush=True)
            app.quit()

        QTimer.singleShot(0, filled)
    import asyncio

    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    with loop:
        loop.run_until_complete(closed.wait())
        loop.run_until_complete(window.engine.close())
        loop.finish()
    return 0


def _screenshot(app, loop, window, out: str, panel: str) -> int:
    from PySide6.QtCore import QTimer

    if panel not in PANELS:
        print(f"llamadesk: --panel must be one of {', '.join(PANELS)}", file=sys.stderr)
        return 2

    import asyncio

    async def shoot() -> int:
        window._saver.stop()  # a screenshot changes nothing the user keeps
        window.resize(*SCREENSHOT_SIZE)  # the same picture whatever layout was saved
        window.startup(ask_recovery=lambda: None)  # no answer: recovery text stays
        editor = window.current_editor()
        if editor is not None and not editor.toPlainText():
            editor.setPlainText(SAMPLE)
            editor.document().setModified(False)
            from app.ui.editor.highlighter import lexer_for
            editor.highlighter.set_lexer(lexer_for("welcome.py"))
        window.show_welcome(False)  # the screenshots show the editor; Help > Welcome shows the page
        target = window
        if panel == "settings":
            from app.ui.settings_dialog import SettingsDialog

            target = SettingsDialog(window.settings, window)
            target.show()
        elif panel == "assistant":
            window.assistant.prompt.setPlainText("Explain what Account.deposit does.")
            window.assistant.answer = ("`deposit` adds a positive amount to the balance:\n\n```python\n"
                                       "def deposit(self, amount: float) -> None:\n    if amount <= 0:\n"
                                       "        raise ValueError(\"deposit must be positive\")\n"
                                       "    self.balance += amount\n```\n")
            window.assistant._render()
            window.assistant_dock.raise_()
        elif panel in ("models", "humaneval", "decontam"):
            window.show_panel(panel)
            if panel == "humaneval":
                window.bench_panel._draw_chart()
        await asyncio.sleep(0.4)
        app.processEvents()
        if target.grab().save(out):
            return 0
        print(f"llamadesk: cannot write the screenshot to {out}", file=sys.stderr)
        return 2

    with loop:
        rc = loop.run_until_complete(shoot())
        window.engine.kill()
    return rc


def _unwritable(out: str) -> str:
    """Why a screenshot cannot be written to `out` (checked before any work), or ""."""
    from pathlib import Path

    p = Path(out)
    folder = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        return "it is a folder"
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        return "permission denied"
    if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        return "the name must end in .png (or .jpg, .bmp)"
    return ""
