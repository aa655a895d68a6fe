"""The main window: file tree, editor tabs, model bar, and the panels as docks opened from an
activity bar on the left edge (editor first: the bottom panels start closed), a status bar with
the engine's state, the model, tokens/s and context used. It owns the one EngineClient; panels
reach it through `window.engine`. Settings and the workspace (open files, cursors, layout) are
saved shortly after they change, not only on close."""
from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QDir, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QFileSystemModel, QInputDialog, QLabel,
                               QMainWindow, QMessageBox, QSizePolicy, QToolBar, QTreeView, QVBoxLayout, QWidget)

from app import __version__, paths
from app.recovery import RecoveryStore
from app.settings import Settings
from app.ui.editor.find_bar import FindBar
from app.ui.editor.tabs import EditorTabs
from app.ui.theme import icon, pygments_style

SAVE_SETTINGS_MS = 1000     # a change reaches settings.json within about this long

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
        self.tabs.notice.connect(lambda text: self.statusBar().showMessage(text, 15000))
        self.find_bar = FindBar()
        self.tabs.tab_created.connect(lambda tab: tab.escape_pressed.connect(self.find_bar.close_bar))
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
        self.statusBar().showMessage("Starting…", 3000)

    def finish(self) -> None:
        from app.engine.client import EngineClient
        from app.ui.assistant import AssistantPanel
        from app.ui.bench_panel import BenchPanel
        from app.ui.decontam_panel import DecontamPanel
        from app.ui.model_bar import ModelBar
        from app.ui.models_panel import ModelsPanel

        self.engine = EngineClient(on_state=self._engine_state)
        self.model_bar = ModelBar(self)
        bar = QToolBar("Model", objectName="model_toolbar", movable=False)
        bar.addWidget(self.model_bar)
        self.addToolBar(bar)
        self._status_bar()
        self.assistant = AssistantPanel(self)
        from app.ui.editor.autocomplete import AutoComplete

        self.autocomplete = AutoComplete(self)
        self.models_panel = ModelsPanel(self)
        self.bench_panel = BenchPanel(self)
        self.decontam_panel = DecontamPanel(self)
        self.assistant_dock = self._dock("Assistant", self.assistant, Qt.RightDockWidgetArea)
        self.models_dock = self._dock("Models", self.models_panel, Qt.BottomDockWidgetArea)
        self.bench_dock = self._dock("HumanEval", self.bench_panel, Qt.BottomDockWidgetArea)
        self.decontam_dock = self._dock("Decontamination", self.decontam_panel, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.models_dock, self.bench_dock)
        self.tabifyDockWidget(self.bench_dock, self.decontam_dock)
        for dock in (self.models_dock, self.bench_dock, self.decontam_dock):
            dock.hide()  # editor first: the activity bar or the View menu opens them
        self.resizeDocks([self.models_dock], [300], Qt.Vertical)
        self.resizeDocks([self.assistant_dock, self.tree_dock], [400, 220], Qt.Horizontal)
        self._activity_bar()
        for dock, name, tip in ((self.tree_dock, "files", "Project files"),
                                (self.assistant_dock, "assistant", "Assistant"),
                                (self.models_dock, "models", "Models"),
                                (self.bench_dock, "humaneval", "HumanEval self-test"),
                                (self.decontam_dock, "decontam", "Decontamination check")):
            self._activity_button(dock, name, tip)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)
        self.activity.addWidget(spacer)
        for name, tip, slot in (("palette", "Command palette (Ctrl+Shift+P)", self.command_palette),
                                ("settings", "Settings (Ctrl+,)", self.open_settings)):
            self.activity.addAction(icon(name), tip, slot).setProperty("icon_name", name)
        self.tabs.current_editor_changed.connect(lambda _: self.assistant.show_history_for_current())
        self.tabs.tab_created.connect(lambda tab: tab.escape_pressed.connect(self.assistant.stop))
        for tab in self.tabs.editors():
            tab.escape_pressed.connect(self.find_bar.close_bar)
        for tab in self.tabs.editors():
            tab.escape_pressed.connect(self.assistant.stop)
        self._assistant_actions()
        self._install_jobs_and_welcome()
        self._restore_layout()
        self.statusBar().showMessage("Ready")
        self._saver = QTimer(self, interval=SAVE_SETTINGS_MS)
        self._saver.timeout.connect(self.save_settings_if_changed)
        self._saved = self.settings.to_dict()
        self._saver.start()

    # --- layout --------------------------------------------------------------------------------
    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self, objectName=f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _activity_bar(self) -> None:
        """Icons on the left edge that open and close the panels (built after the window shows:
        the first SVG icon costs 0.1 s)."""
        self.activity = QToolBar("Activity bar", objectName="activity_bar", movable=False)
        self.activity.setIconSize(QSize(24, 24))
        self.activity.setToolButtonStyle(Qt.ToolButtonIconOnly)
        self.addToolBar(Qt.LeftToolBarArea, self.activity)

    def _activity_button(self, dock: QDockWidget, name: str, tip: str) -> None:
        act = dock.toggleViewAction()
        act.setIcon(icon(name))
        act.setProperty("icon_name", name)
        act.setToolTip(tip)
        self.activity.addAction(act)

    def _restore_layout(self) -> None:
        s = self.settings
        try:  # settings.load checked these; a bad value must still not stop the window
            if s.window_geometry:
                self.restoreGeometry(QByteArray(base64.b64decode(s.window_geometry)))
            if s.window_state:
                self.restoreState(QByteArray(base64.b64decode(s.window_state)))
        except ValueError:
            log.warning("window layout in the settings is damaged; the default layout is used")

    def _save_layout(self) -> None:
        self.settings.window_geometry = base64.b64encode(bytes(self.saveGeometry())).decode()
        self.settings.window_state = base64.b64encode(bytes(self.saveState())).decode()

    def _save_workspace(self) -> None:
        s = self.settings
        s.open_files = [{"path": t.path, "cursor": t.textCursor().position()}
                        for t in self.tabs.editors() if t.path]
        cur = self.current_editor()
        s.current_file = cur.path if cur is not None and cur.path else ""
        self._save_layout()

    def restore_workspace(self) -> None:
        """The files open at the last exit, with their cursors, and the tab that was current."""
        current = None
        for entry in self.settings.open_files:
            if not Path(entry["path"]).is_file():
                continue
            tab = self.tabs.open_file(entry["path"])
            if tab is None:
                continue
            cursor = tab.textCursor()
            pos = entry.get("cursor", 0)
            cursor.setPosition(max(0, min(pos if isinstance(pos, int) else 0, tab.document().characterCount() - 1)))
            tab.setTextCursor(cursor)
            tab.centerCursor()
            if entry["path"] == self.settings.current_file:
                current = tab
        if current is not None:
            self.tabs.setCurrentWidget(current)

    def save_settings_if_changed(self) -> None:
        """Debounced saving: the timer looks once a second and writes (atomically) a change once
        it has held still for a tick, so moving the cursor around does not write every second."""
        self._save_workspace()
        now = self.settings.to_dict()
        if now == self._saved:
            self._seen = now
            return
        if now != getattr(self, "_seen", None):
            self._seen = now  # still changing: wait for the next tick
            return
        try:
            self.settings.save()
            self._saved = now
        except OSError as exc:
            log.warning("could not save the settings: %s", exc)

    def show_panel(self, name: str) -> None:
        dock = {"assistant": self.assistant_dock, "models": self.models_dock, "humaneval": self.bench_dock,
                "decontam": self.decontam_dock, "project": self.tree_dock}.get(name)
        if dock is not None:
            dock.show()
            dock.raise_()

    # --- status bar ----------------------------------------------------------------------------
    def _status_bar(self) -> None:
        self.status_engine = QLabel("Engine: idle")
        self.status_model = QLabel("No model")
        self.status_speed = QLabel("")
        self.status_ctx = QLabel("")
        for w in (self.status_engine, self.status_model, self.status_speed, self.status_ctx):
            w.setContentsMargins(6, 0, 6, 0)
            self.statusBar().addPermanentWidget(w)
        self._status_timer = QTimer(self, interval=500)
        self._status_timer.timeout.connect(self.update_status)
        self._status_timer.start()

    def update_status(self) -> None:
        info = self.engine.info if self.engine is not None else None
        model = Path(info.path).stem if info else "No model"
        self.status_model.setText(model)
        self.status_model.setToolTip(info.path if info else "Load a model in the model bar")
        gen = getattr(getattr(self, "assistant", None), "generation", None)
        st = gen.stats if gen is not None and gen.done else None
        if info is None:
            self.status_speed.setText("")
            self.status_ctx.setText("")
        elif gen is not None and not gen.done:
            self.status_speed.setText("… tok/s")   # not the previous request's figures
            self.status_ctx.setText(f"context …/{info.n_ctx:,}")
        elif st is not None:
            self.status_speed.setText(f"{st.tokens_per_s:.1f} tok/s")
            self.status_ctx.setText(f"context {st.prompt_tokens + st.completion_tokens:,}/{info.n_ctx:,}")
        else:
            self.status_ctx.setText(f"context 0/{info.n_ctx:,}")

    # --- actions and shortcuts -----------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if isinstance(shortcut, (list, tuple)):
            act.setShortcuts([QKeySequence(k) for k in shortcut])
        elif shortcut:
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
        self._action(e, "Find…", lambda: self._with_editor(lambda ed: self.find_bar.open(ed)), "Ctrl+F")
        self._action(e, "Replace…", lambda: self._with_editor(lambda ed: self.find_bar.open(ed, True)), "Ctrl+H")
        self._action(e, "Go to line…", self.go_to_line, "Ctrl+G")
        self._action(e, "Zoom in", lambda: self._with_editor(lambda ed: ed.zoom(1)), ["Ctrl+=", "Ctrl++"])
        self._action(e, "Zoom out", lambda: self._with_editor(lambda ed: ed.zoom(-1)), ["Ctrl+-"])

    def _assistant_actions(self) -> None:
        mb = self.menuBar()
        a = mb.addMenu("&Assistant")
        self._action(a, "Complete at cursor", lambda: self.autocomplete.request(), "Ctrl+Return")
        self._action(a, "Ask", self.assistant.ask, "Ctrl+Shift+Return")
        self._action(a, "Edit selection", self.assistant.edit_selection, "Ctrl+E")
        self._action(a, "Stop", self.assistant.stop, "Ctrl+.")
        v = mb.addMenu("&View")
        self._action(v, "Command palette…", self.command_palette, "Ctrl+Shift+P")
        v.addSeparator()
        for dock in (self.tree_dock, self.assistant_dock, self.models_dock, self.bench_dock, self.decontam_dock):
            v.addAction(dock.toggleViewAction())
        v.addSeparator()
        themes = v.addMenu("Theme")
        group = QActionGroup(self)
        self._theme_actions = {}
        for name in ("system", "light", "dark"):
            act = self._action(themes, name.capitalize(), lambda n=name: self.set_theme(n))
            act.setCheckable(True)
            act.setChecked(self.settings.theme == name)
            group.addAction(act)
            self._theme_actions[name] = act
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
        nothing_open = all(t.path is None and t.document().isEmpty() for t in self.tabs.editors())
        if nothing_open and not self.settings.last_model and self.engine.info is None:
            self.show_welcome(True)  # first run (a file given with --open, or recovered, shows instead)
        # hardware detection and the GGUF scan run as jobs off the GUI thread, then fill the panels
        asyncio.ensure_future(self.fill_from_jobs())

    def report_settings_problem(self) -> None:
        if self.settings.problem:
            log.warning(self.settings.problem)
            self.tabs.warn("Settings", self.settings.problem)

    def offer_recovery(self, ask=None) -> list:
        """Offer the buffers of instances that ended without saving them. They are removed only
        once the user has answered: `ask` returns True (restore; they live on under this
        instance's session), False (discard), or None (nobody answered, as in --screenshot: keep)."""
        items = self.recovery.pending()
        if not items:
            return []
        names = "\n".join(f"• {Path(r.path).name if r.path else 'untitled'}" for r in items)
        if ask is None:
            ask = lambda: QMessageBox.question(
                self, "Recover unsaved text",
                f"LlamaDesk did not close cleanly. Recover the unsaved text of:\n{names}") == QMessageBox.Yes
        restored = []
        answer = ask()
        if answer is None:
            return []
        if answer:
            for r in items:
                tab = self.tabs.new_tab(r.path, r.text)
                tab.document().setModified(True)  # still unsaved: saving is the user's choice
                tab.autosave()
                restored.append(tab)
        self.recovery.forget(items)
        return restored

    def closeEvent(self, event) -> None:
        self._save_workspace()  # before the tabs close
        if not self.tabs.close_all():
            event.ignore()
            return
        if hasattr(self, "_saver"):
            self._saver.stop()
        self.recovery.close()
        self._save_layout()
        self.settings.save()
        if getattr(self, "jobs", None) is not None:
            self.jobs.cancel_all()
        if self.engine is not None:
            self.engine.kill()
        event.accept()

    # --- engine state --------------------------------------------------------------------------
    def _engine_state(self, state: str, detail: str) -> None:
        if hasattr(self, "status_engine"):
            self.status_engine.setText(f"Engine: {state}")
            self.status_engine.setToolTip(detail)
            self.update_status()   # now, not at the next tick: a grab or a glance right after a load
        self.statusBar().showMessage(f"Engine: {state}" + (f" — {detail}" if detail else ""))
        if state == "ready":
            self.model_available()
            if getattr(self, "jobs", None) is not None:
                self.measure_if_new()

    def model_available(self) -> None:
        """A model can answer now: hints that asked for one are no longer true."""
        if hasattr(self, "status_model"):
            self.update_status()   # a server just connected: no engine state says so
        for panel in ("assistant", "bench_panel"):
            forget = getattr(getattr(self, panel, None), "model_available", None)
            if forget is not None:
                forget()

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
        from app.models import advisor

        await self.jobs.once("scan", "hardware", "this machine's hardware",
                             lambda job: job.in_thread(advisor.detected_hardware))
        self.local_models = await self._scan_models()
        await self.humaneval_problems()
        self.refresh_advice()
        self.model_bar.refresh_models()
        self.models_panel.refresh(self.local_models)
        self.welcome.refresh(self.local_models)

    async def humaneval_problems(self) -> dict[str, dict]:
        """The HumanEval problems by task id, read once (in a thread) and shared by the
        HumanEval and Decontamination panels."""
        from app.bench import humaneval

        problems = await self.jobs.once("scan", "humaneval-problems", "the HumanEval problems",
                                        lambda job: job.in_thread(humaneval.load_problems))
        if not self.bench_panel.problems:
            self.bench_panel.problems.update({p["task_id"]: p for p in problems})
        self.decontam_panel.problems = self.bench_panel.problems
        return self.bench_panel.problems

    async def _scan_models(self):
        from app.models import local

        return await self.jobs.once("scan", "local-models", "local GGUF files",
                                    lambda job: job.in_thread(local.all_models))

    async def rescan_models(self) -> None:
        """A model was downloaded, imported or deleted: scan again (off the GUI thread) and show
        the new list in the model bar, the Models panel and the welcome page."""
        self.jobs.forget("scan", "local-models")
        self.local_models = await self._scan_models()
        self.model_bar.refresh_models()
        self.models_panel.refresh(self.local_models)  # (a new file's infill mark is its own metadata's)
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
        return pygments_style(self.settings.pygments_style)

    def set_theme(self, theme: str) -> None:
        """Palette, highlighting style and icons all follow (System restores the system palette)."""
        from app.ui.theme import apply_theme

        self.settings.theme = theme
        apply_theme(QGuiApplication.instance(), theme)
        if theme in getattr(self, "_theme_actions", {}):
            self._theme_actions[theme].setChecked(True)
        self.tabs.set_style(self.pygments_style())
        for act in self.activity.actions():
            name = act.property("icon_name")
            if name:
                act.setIcon(icon(name))
        for tab in self.tabs.editors():
            tab._current_block = None
            tab._highlight_line()
        for panel in ("assistant", "bench_panel", "models_panel"):
            rerender = getattr(getattr(self, panel, None), "theme_changed", None)
            if rerender is not None:
                rerender()

    def command_palette(self) -> None:
        from app.ui.command_palette import CommandPalette

        self._palette = CommandPalette(self)
        self._palette.show()
        self._palette.filter.setFocus()

    def open_settings(self) -> None:
        from app.ui.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.settings, self)
        if dlg.exec():
            dlg.apply()
            self.set_theme(self.settings.theme)
            for ed in self.tabs.editors():
                f = ed.font()
                f.setPointSize(self.settings.font_size)
                ed.setFont(f)

    def about(self) -> None:
        from app.diagnostics import report

        rows = dict(report())
        QMessageBox.about(self, "About LlamaDesk", (
            f"<h3>LlamaDesk {__version__}</h3><p>An offline coding assistant.</p>"
            f"<p>llama.cpp backend: <b>{rows.get('llama.cpp backend')}</b> (llama-cpp-python "
            f"{rows.get('llama-cpp-python')}), GPU offload: {rows.get('GPU offload')}<br>"
            f"PySide6 {rows.get('PySide6')}, Python {rows.get('python', '').split()[0]}</p>"
            f"<p>Log: {paths.log_dir() / 'llamadesk.log'}</p>"))

    def diagnostics(self) -> str:
        from app.diagnostics import report

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
