"""The main window: file tree, editor tabs, model bar, and the panels as docks. It owns the one
EngineClient; panels reach it through `window.engine`."""
from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QDir, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QFileSystemModel, QInputDialog, QMainWindow,
                               QMessageBox, QToolBar, QTreeView, QVBoxLayout, QWidget)

from app import __version__, paths
from app.recovery import RecoveryStore
from app.settings import Settings
from app.ui.editor.find_bar import FindBar
from app.ui.editor.tabs import EditorTabs

log = logging.getLogger("llamadesk")


class MainWindow(QMainWindow):
    """Built in two steps so that the window appears at once: the constructor makes the editor,
    file tree and menus (Qt and pygments only); `finish()` then adds the engine, the model bar,
    the assistant and the panels, whose imports (asyncio, the engine, QtCharts) take longer."""

    def __init__(self, settings: Settings | None = None, recovery: RecoveryStore | None = None):
        super().__init__()
        self.settings = settings or Settings.load()
        self.setWindowTitle("LlamaDesk")
        self.resize(1400, 900)
        self.recovery = recovery or RecoveryStore()
        self.engine = None

        self.tabs = EditorTabs(self.settings, self.recovery)
        self.tabs.set_style(self.pygments_style())
        self.find_bar = FindBar()
        center = QWidget()
        lay = QVBoxLayout(center)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tabs)
        lay.addWidget(self.find_bar)
        self.setCentralWidget(center)

        self.tree_model = QFileSystemModel()
        self.tree_model.setFilter(QDir.AllDirs | QDir.Files | QDir.NoDotAndDotDot)
        self.tree = QTreeView()
        self.tree.setModel(self.tree_model)
        for col in (1, 2, 3):
            self.tree.hideColumn(col)
        self.tree.setHeaderHidden(True)
        self.tree.doubleClicked.connect(self._tree_open)
        self.tree_dock = self._dock("Project", self.tree, Qt.LeftDockWidgetArea)
        self.set_project(self.settings.project_folder or str(Path.cwd()))
        self._file_actions()
        self.statusBar().showMessage("Starting…")

    def finish(self) -> None:
        from app.engine.client import EngineClient
        from app.ui.assistant import AssistantPanel
        from app.ui.bench_panel import BenchPanel
        from app.ui.decontam_panel import DecontamPanel
        from app.ui.model_bar import ModelBar
        from app.ui.models_panel import ModelsPanel

        self.engine = EngineClient(on_state=self._engine_state)
        self.model_bar = ModelBar(self)
        bar = QToolBar("Model", objectName="model_toolbar")
        bar.addWidget(self.model_bar)
        self.addToolBar(bar)
        self.assistant = AssistantPanel(self)
        self.models_panel = ModelsPanel(self)
        self.bench_panel = BenchPanel(self)
        self.decontam_panel = DecontamPanel(self)
        self.assistant_dock = self._dock("Assistant", self.assistant, Qt.RightDockWidgetArea)
        self.models_dock = self._dock("Models", self.models_panel, Qt.BottomDockWidgetArea)
        self.bench_dock = self._dock("HumanEval", self.bench_panel, Qt.BottomDockWidgetArea)
        self.decontam_dock = self._dock("Decontamination", self.decontam_panel, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.models_dock, self.bench_dock)
        self.tabifyDockWidget(self.bench_dock, self.decontam_dock)
        self.models_dock.raise_()
        self.resizeDocks([self.models_dock], [300], Qt.Vertical)
        self.resizeDocks([self.assistant_dock, self.tree_dock], [420, 220], Qt.Horizontal)
        self.tabs.current_editor_changed.connect(lambda _: self.assistant.show_history_for_current())
        self.tabs.tab_created.connect(lambda tab: tab.escape_pressed.connect(self.assistant.stop))
        for tab in self.tabs.editors():
            tab.escape_pressed.connect(self.assistant.stop)
        self._assistant_actions()
        self._install_jobs_and_welcome()
        self._restore_layout()
        self.statusBar().showMessage("Ready")

    # --- layout --------------------------------------------------------------------------------
    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self, objectName=f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _restore_layout(self) -> None:
        s = self.settings
        if s.window_geometry:
            self.restoreGeometry(QByteArray(base64.b64decode(s.window_geometry)))
        if s.window_state:
            self.restoreState(QByteArray(base64.b64decode(s.window_state)))

    def _save_layout(self) -> None:
        self.settings.window_geometry = base64.b64encode(bytes(self.saveGeometry())).decode()
        self.settings.window_state = base64.b64encode(bytes(self.saveState())).decode()

    def show_panel(self, name: str) -> None:
        dock = {"assistant": self.assistant_dock, "models": self.models_dock, "humaneval": self.bench_dock,
                "decontam": self.decontam_dock}.get(name)
        if dock is not None:
            dock.show()
            dock.raise_()

    # --- actions and shortcuts -----------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.setStatusTip(tip)
        act.triggered.connect(lambda _=False: slot())
        menu.addAction(act)
        return act

    def _file_actions(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "New", lambda: self.tabs.new_tab(), QKeySequence.New)
        self._action(f, "Open…", self.open_dialog, QKeySequence.Open)
        self._action(f, "Open folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.recent_menu = f.addMenu("Recent files")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._action(f, "Save", lambda: self.tabs.save(), QKeySequence.Save)
        self._action(f, "Save as…", lambda: self.tabs.save(save_as=True), QKeySequence.SaveAs)
        self._action(f, "Close tab", lambda: self.tabs.count() and self.tabs.close_tab(self.tabs.currentIndex()), QKeySequence.Close)
        self._action(f, "Quit", self.close, QKeySequence.Quit)
        e = mb.addMenu("&Edit")
        self._action(e, "Find…", lambda: self._with_editor(lambda ed: self.find_bar.open(ed)), QKeySequence.Find)
        self._action(e, "Replace…", lambda: self._with_editor(lambda ed: self.find_bar.open(ed, True)), "Ctrl+H")
        self._action(e, "Go to line…", self.go_to_line, "Ctrl+G")
        self._action(e, "Zoom in", lambda: self._with_editor(lambda ed: ed.zoom(1)), QKeySequence.ZoomIn)
        self._action(e, "Zoom out", lambda: self._with_editor(lambda ed: ed.zoom(-1)), QKeySequence.ZoomOut)

    def _assistant_actions(self) -> None:
        mb = self.menuBar()
        a = mb.addMenu("&Assistant")
        self._action(a, "Complete at cursor", self.assistant.complete, "Ctrl+Return")
        self._action(a, "Ask", self.assistant.ask, "Ctrl+Shift+Return")
        self._action(a, "Edit selection", self.assistant.edit_selection, "Ctrl+E")
        self._action(a, "Stop", self.assistant.stop, "Ctrl+.")
        v = mb.addMenu("&View")
        for dock in (self.tree_dock, self.assistant_dock, self.models_dock, self.bench_dock, self.decontam_dock):
            v.addAction(dock.toggleViewAction())
        t = mb.addMenu("&Tools")
        self._action(t, "Settings…", self.open_settings, "Ctrl+,")
        h = mb.addMenu("&Help")
        self._action(h, "About LlamaDesk", self.about)
        self._action(h, "Copy diagnostics", self.copy_diagnostics)

    def _with_editor(self, fn) -> None:
        ed = self.current_editor()
        if ed is not None:
            fn(ed)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_files:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self.tabs.open_file(p))

    # --- files ---------------------------------------------------------------------------------
    def current_editor(self):
        return self.tabs.current()

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open file", self.settings.project_folder)
        if path:
            self.tabs.open_file(path)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self.settings.project_folder)
        if folder:
            self.open_folder(folder)

    def set_project(self, folder: str) -> None:
        self.tree.setRootIndex(self.tree_model.setRootPath(folder))
        self.tree_dock.setWindowTitle(f"Project: {Path(folder).name or folder}")

    def open_folder(self, folder: str) -> None:
        self.settings.project_folder = folder
        self.set_project(folder)

    def _tree_open(self, index) -> None:
        path = self.tree_model.filePath(index)
        if Path(path).is_file():
            self.tabs.open_file(path)

    def go_to_line(self) -> None:
        ed = self.current_editor()
        if ed is not None:
            line, ok = QInputDialog.getInt(self, "Go to line", "Line:", ed.textCursor().blockNumber() + 1,
                                           1, ed.blockCount())
            if ok:
                ed.go_to_line(line)

    # --- startup, recovery, shutdown -----------------------------------------------------------
    def startup(self, ask_recovery=None) -> None:
        self.offer_recovery(ask_recovery)
        if self.tabs.count() == 0:
            self.tabs.new_tab()
        if not self.settings.last_model and self.engine.info is None:
            self.show_welcome(True)  # first run
        # hardware detection and the GGUF scan run as jobs off the GUI thread, then fill the panels
        asyncio.ensure_future(self.fill_from_jobs())

    def offer_recovery(self, ask=None) -> list:
        items = self.recovery.pending()
        if not items:
            return []
        names = "\n".join(f"• {Path(r.path).name if r.path else 'untitled'}" for r in items)
        if ask is None:
            ask = lambda: QMessageBox.question(
                self, "Recover unsaved text",
                f"LlamaDesk did not close cleanly. Recover the unsaved text of:\n{names}") == QMessageBox.Yes
        restored = []
        if ask():
            for r in items:
                tab = self.tabs.new_tab(r.path, r.text)
                tab.document().setModified(True)  # still unsaved: saving is the user's choice
                tab.autosave()
                restored.append(tab)
        for r in items:
            self.recovery.discard(r.buffer_id)
        return restored

    def closeEvent(self, event) -> None:
        if not self.tabs.close_all():
            event.ignore()
            return
        self._save_layout()
        self.settings.save()
        if getattr(self, "jobs", None) is not None:
            self.jobs.cancel_all()
        if self.engine is not None:
            self.engine.kill()
        event.accept()

    # --- engine state --------------------------------------------------------------------------
    def _engine_state(self, state: str, detail: str) -> None:
        self.statusBar().showMessage(f"Engine: {state}" + (f" — {detail}" if detail else ""))
        if state == "ready" and getattr(self, "jobs", None) is not None:
            self.measure_if_new()

    # --- job registry, welcome page, advice (one source for toolbar, welcome and Models) --------
    def _install_jobs_and_welcome(self) -> None:
        from app.ui.jobs import JobRegistry
        from app.ui.welcome import WelcomePage

        self.jobs = JobRegistry(self)
        self.jobs.refused.connect(lambda why: self.statusBar().showMessage(why, 8000))
        self.advice = None
        self.local_models = None
        self._measuring = False
        self.welcome = WelcomePage(self)
        self.welcome.hide()
        self.centralWidget().layout().insertWidget(0, self.welcome)
        self.tabs.tab_created.connect(lambda _: self.show_welcome(False))
        help_menu = next((a.menu() for a in self.menuBar().actions() if a.text() == "&Help"), None)
        if help_menu is not None:
            self._action(help_menu, "Welcome", lambda: self.show_welcome(True))

    def show_welcome(self, on: bool) -> None:
        if on:
            self.welcome.refresh()
        self.welcome.setVisible(on)
        self.tabs.setVisible(not on)

    async def fill_from_jobs(self) -> None:
        from app.models import advisor, local

        await self.jobs.once("scan", "hardware", "this machine's hardware",
                             lambda job: job.in_thread(advisor.detected_hardware))
        self.local_models = await self.jobs.once("scan", "local-models", "local GGUF files",
                                                 lambda job: job.in_thread(local.all_models))
        from app.bench import humaneval

        problems = await self.jobs.once("scan", "humaneval-problems", "the HumanEval problems",
                                        lambda job: job.in_thread(humaneval.load_problems))
        self.bench_panel.problems = {p["task_id"]: p for p in problems}
        self.refresh_advice()
        self.model_bar.refresh_models()
        self.models_panel.refresh(self.local_models)
        self.welcome.refresh(self.local_models)

    def refresh_advice(self) -> None:
        from app.models import advisor

        self.advice = advisor.advise(advisor.Machine.detect(), self.settings.n_ctx)
        self.welcome.refresh()

    def load_model(self, path: str):
        """Load through the registry (refused during a self-test); returns the job or None."""
        from app.ui.jobs import JobRefused

        async def work(job):
            ok = await self.model_bar.load(path)
            if ok:
                self.show_welcome(False)
            return ok

        try:
            return self.jobs.start("load", path, Path(path).name, work)
        except JobRefused:
            return None

    def measure_if_new(self):
        """The first model loaded here measures the machine once (cached in the data folder)."""
        from app.models import speed
        from app.ui.jobs import JobRefused

        info = self.engine.info
        if self._measuring or info is None or speed.load() is not None:
            return None
        self._measuring = True

        async def work(job):
            # wait for a quiet engine: the measurement must neither delay nor be skewed by requests
            quiet = 0.0
            while quiet < 3.0:
                await asyncio.sleep(0.25)
                busy = self.assistant.busy() or self.jobs.running("selftest")
                quiet = 0.0 if busy else quiet + 0.25
            if self.engine.info is None or self.engine.info.path != info.path:
                self._measuring = False  # unloaded or replaced meanwhile: measure the next one
                return None
            job.report(0, 1, "Measuring this machine's speed…")
            result = await speed.measure(self.engine, info.file_size, on_gpu=info.n_gpu_layers > 0)
            speed.save(result)
            self.refresh_advice()
            self.models_panel.refresh()
            return result

        try:
            return self.jobs.start("measure", "machine", "this machine's speed", work)
        except JobRefused:
            self._measuring = False
            return None

    def engine_crashed(self, message: str) -> None:
        self.model_bar.crashed(message)

    def start_download(self, file_id: str) -> None:
        self.show_panel("models")
        self.models_panel.start_download(file_id)

    # --- settings, about, diagnostics ---------------------------------------------------------
    def pygments_style(self) -> str:
        s = self.settings.pygments_style
        if s and s != "auto":
            return s
        return "monokai" if self.settings.theme == "dark" else "default"

    def open_settings(self) -> None:
        from app.ui.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.settings, self)
        if dlg.exec():
            dlg.apply()
            from app.ui.theme import apply_theme

            apply_theme(QGuiApplication.instance(), self.settings.theme)
            self.tabs.set_style(self.pygments_style())
            for ed in self.tabs.editors():
                f = ed.font()
                f.setPointSize(self.settings.font_size)
                ed.setFont(f)

    def about(self) -> None:
        from app.commands.doctor import report

        rows = dict(report())
        QMessageBox.about(self, "About LlamaDesk", (
            f"<h3>LlamaDesk {__version__}</h3><p>An offline coding assistant.</p>"
            f"<p>llama.cpp backend: <b>{rows.get('llama.cpp backend')}</b> (llama-cpp-python "
            f"{rows.get('llama-cpp-python')}), GPU offload: {rows.get('GPU offload')}<br>"
            f"PySide6 {rows.get('PySide6')}, Python {rows.get('python', '').split()[0]}</p>"
            f"<p>Log: {paths.log_dir() / 'llamadesk.log'}</p>"))

    def diagnostics(self) -> str:
        from app.commands.doctor import report

        text = "\n".join(f"{k}: {v}" for k, v in report())
        try:
            lines = (paths.log_dir() / "llamadesk.log").read_text(errors="replace").splitlines()[-100:]
        except OSError:
            lines = []
        engine_log = self.engine.log_tail[-50:] if self.engine else []
        return text + "\n\n--- recent log ---\n" + "\n".join(lines) + "\n\n--- engine ---\n" + "\n".join(engine_log)

    def copy_diagnostics(self) -> None:
        QGuiApplication.clipboard().setText(self.diagnostics())
        self.statusBar().showMessage("Diagnostics copied to the clipboard", 5000)
