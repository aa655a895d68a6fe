"""Suggestions as you type: the editor's side of app/completion.

The controller watches the editors' text, waits for a pause (the debounce), asks the
completion engine through `Completer`, and paints the answer as ghost text as it streams in.
A keystroke cancels the request in flight; typing the suggestion's first characters keeps the
rest (the editor does it, `ghost_typed`); Tab accepts and asks for the next one at once.
No request goes out while text is selected, a menu is open, a suggestion asked for with
Ctrl+Enter is shown or on its way, the assistant is using the engine, or a self-test runs.

With a completion model set in Settings, ghost text has an engine of its own (`self.own_engine`)
and Ask/Edit keep the chat model (`window.engine`).
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from app.completion.cache import SuggestionCache
from app.completion.completer import Completer
from app.completion.fim import FimTokens
from app.completion.ring import Ring
from app.completion.stats import CompletionStats

SLOW_S = 2.0          # recent median latency above this: suggest a completion model
SLOW_AFTER = 5        # ... once this many requests have been timed
RING_IDLE_MS = 1000   # queued context enters the ring after this long without typing


class AutoComplete(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.ring = Ring()
        self.cache = SuggestionCache()
        self.stats = CompletionStats()
        self.own_engine = None       # the completion model's engine, when Settings names one
        self.requests = 0            # sent to an engine (the tests count them)
        self.served_by: list[str] = []  # "completion" or "chat" per request
        self._completer: Completer | None = None
        self._completer_key = None
        self._gen = None
        self.last_generation = None  # the latest request sent (tests look at its stats)
        self._manual = False
        self._t_key = 0.0
        self._slow_noted = False
        self.paused = ""
        self.timer = QTimer(self, singleShot=True)
        self.timer.timeout.connect(lambda: self.request(manual=False))
        self._ring_timer = QTimer(self, singleShot=True, interval=RING_IDLE_MS)
        self._ring_timer.timeout.connect(self._ring_update)
        self._warm_timer = QTimer(self, singleShot=True, interval=RING_IDLE_MS // 2)
        self._warm_timer.timeout.connect(self.warm)
        self._save_timer = QTimer(self, singleShot=True, interval=3000)
        self._save_timer.timeout.connect(self.save_stats)
        self.label = QLabel()
        self.label.setToolTip("Completion at the cursor: last latency (click for statistics)")
        self.label.mousePressEvent = lambda _e: self.show_stats()
        window.statusBar().addPermanentWidget(self.label)
        tabs = window.tabs
        tabs.tab_created.connect(self.attach)
        tabs.current_editor_changed.connect(self._entered)
        tabs.file_saved.connect(lambda _p: self._pick_current())
        for tab in tabs.editors():
            self.attach(tab)
        QGuiApplication.clipboard().dataChanged.connect(self._copied)
        QApplication.instance().aboutToQuit.connect(self._quit)
        if self.settings.completion_model:
            QTimer.singleShot(0, lambda: asyncio.ensure_future(
                self.use_completion_model(self.settings.completion_model)))

    # --- settings and engines --------------------------------------------------------------
    @property
    def settings(self):
        return self.window.settings

    @property
    def engine(self):
        own = self.own_engine
        return own if own is not None and own.info is not None else self.window.engine

    @property
    def enabled(self) -> bool:
        eng = self.engine
        return bool(getattr(self.settings, "autocomplete", True)) and eng is not None and eng.info is not None

    def completer(self) -> Completer:
        eng = self.engine
        key = (id(eng), eng.info.path if eng.info else "", self.settings.completion_max_lines)
        if self._completer is None or self._completer_key != key:
            self._completer = Completer(eng, FimTokens.from_dict(getattr(eng.info, "fim_tokens", {})),
                                        ring=self.ring, cache=self.cache, stats=self.stats,
                                        max_lines=self.settings.completion_max_lines)
            self._completer_key = key
            self.stats.model = eng.info.name if eng.info else ""
        return self._completer

    async def load_completion_model(self, path: str | None) -> str:
        """Start (or stop, with None) the completion model's own engine. Returns what the
        planner says about fitting both models."""
        from app.engine import hardware
        from app.engine.client import EngineClient
        from app.models import gguf_file

        if self.own_engine is not None:
            await self.own_engine.close()
            self.own_engine = None
        if not path:
            return ""
        from app.engine.base import is_url, open_engine

        if is_url(path):  # a completion server: its memory is not ours to plan
            self.own_engine = await open_engine(path)
            self._completer = None
            return f"Completion model: {self.own_engine.info.name} at {path}"
        chat = self.window.engine.info if self.window.engine else None
        comp = await asyncio.to_thread(gguf_file.inspect, path)
        chat_gguf = await asyncio.to_thread(gguf_file.inspect, chat.path) if chat else None
        hw = await asyncio.to_thread(hardware.detect)
        pair = hardware.plan_pair(chat_gguf, chat.n_ctx if chat else 0, comp, COMPLETION_CTX,
                                  free_vram=hw.free_vram, free_ram=hw.ram_available)
        if not pair.completion.fits:
            return pair.message
        engine = EngineClient()
        await engine.load(path, n_ctx=COMPLETION_CTX, n_gpu_layers=pair.completion.n_gpu_layers,
                          n_threads=self.settings.threads or hw.default_threads)
        self.own_engine = engine
        self._completer = None
        return pair.message

    async def use_completion_model(self, path: str) -> None:
        """Load the completion model named in Settings, saying in the status bar how it went."""
        from app.engine.client import EngineError
        from app.models.gguf_file import GGUFError

        bar = self.window.statusBar()
        try:
            msg = await self.load_completion_model(path or None)
        except (EngineError, GGUFError, OSError) as exc:
            msg = f"Completion model not loaded: {exc}"
        if msg:
            bar.showMessage(msg, 15000)

    # --- editors ---------------------------------------------------------------------------
    def attach(self, editor) -> None:
        editor.edited.connect(lambda e=editor: self._changed(e))
        editor.ghost_accepted.connect(lambda _t, e=editor: self._accepted(e))
        editor.ghost_typed.connect(lambda _t: self._typed_through())
        editor.ghost_discarded.connect(self._discarded)
        editor.escape_pressed.connect(self._discarded)
        editor.selectionChanged.connect(lambda e=editor: e.textCursor().hasSelection() and self.cancel())
        editor.cursorPositionChanged.connect(lambda e=editor: self._moved(e))
        self._pick(editor)

    def _ring_update(self) -> None:
        """Let one queued chunk into the ring while the user pauses, and have the engine read
        the new prompt start now (one token, not shown), as llama.vim does, so that the next
        keystroke finds it cached."""
        if self.ring.update():
            self.warm()

    def warm(self) -> None:
        """Have the engine read the prompt for the cursor's spot now (one token, not shown), so
        that the first keystroke there re-evaluates only what it adds."""
        if not self.enabled or self._gen is not None or self.timer.isActive():
            return
        editor = self.window.current_editor()
        if editor is None or self.blocked(editor, manual=False):
            return
        c = self.completer()
        c.warm(c.spot(editor.toPlainText(), editor.textCursor().position(), _name(editor)))

    def _pick(self, editor) -> None:
        if editor is not None:
            self.ring.pick(editor.toPlainText(), _name(editor), editor.textCursor().blockNumber())
            self._ring_timer.start()

    def _pick_current(self) -> None:
        self._pick(self.window.current_editor())

    def _entered(self, editor) -> None:
        self.cancel()
        self._pick(editor)

    def _copied(self) -> None:
        text = QGuiApplication.clipboard().text()
        editor = self.window.current_editor()
        if editor is not None and text and text in editor.toPlainText():
            self.ring.pick(text, _name(editor))
            self._ring_timer.start()

    def _changed(self, editor) -> None:
        if editor.ghost_editing or editor is not self.window.current_editor():
            return
        self._t_key = time.perf_counter()
        self.cancel()
        self._manual = False
        self._ring_timer.start()  # the ring changes only while the user pauses
        if self.enabled:
            self.timer.start(self.settings.autocomplete_debounce_ms)

    def _moved(self, editor) -> None:
        if editor.ghost_editing:
            return
        pos = editor.textCursor().position()
        if editor.ghost and pos != editor._ghost_pos:
            editor.discard_ghost()  # a click elsewhere: the suggestion belongs to its spot
        if self._gen is not None and pos != getattr(self, "_spot_pos", -1):
            self.cancel()
        if not self.timer.isActive():  # moved, not typed: warm the cache for the new spot
            self._warm_timer.start()

    def _typed_through(self) -> None:
        self.stats.type_through += 1
        self._bump_saved()

    def _accepted(self, editor) -> None:
        self.stats.accepted += 1
        self._bump_saved()
        if not editor.ghost:  # all of it taken: ask for what comes next at once
            self._manual = False
            self._t_key = time.perf_counter()
            self.timer.start(0)

    def _discarded(self) -> None:
        self.cancel()
        self._manual = False

    def cancel(self) -> None:
        self.timer.stop()
        gen, self._gen = self._gen, None
        if gen is not None and not gen.done:
            gen.cancel()
            self.stats.cancelled += 1

    # --- requests --------------------------------------------------------------------------
    def blocked(self, editor, manual: bool) -> str:
        """Why no request may go out now ("" when one may)."""
        if editor is None:
            return "no editor"
        if self._self_test_running():
            return "self-test"
        if self.engine is None or self.engine.info is None:
            return "no model"
        if editor.textCursor().hasSelection():
            return "selection"
        if QApplication.activePopupWidget() is not None:
            return "menu"
        if manual:
            return ""
        if self._manual or editor.ghost:
            return "suggestion shown"
        assistant = getattr(self.window, "assistant", None)
        gen = getattr(assistant, "generation", None)
        if gen is not None and not gen.done and self.engine is self.window.engine:
            return "assistant busy"
        return ""

    def _self_test_running(self) -> bool:
        jobs = getattr(self.window, "jobs", None)  # the job registry (app/ui/jobs.py), once there
        if jobs is not None:
            running = bool(jobs.running("selftest"))
        else:
            panel = getattr(self.window, "bench_panel", None)
            running = panel is not None and panel.stop_btn.isEnabled()
        paused = "Suggestions paused while the self-test runs" if running else ""
        if paused != self.paused:
            self.paused = paused
            self._show_label()
        return running

    def request(self, manual: bool = True) -> None:
        """Ask for a suggestion at the cursor now (Ctrl+Enter: manual; the debounce: not)."""
        editor = self.window.current_editor()
        why = self.blocked(editor, manual)
        if why:
            if manual and why == "no model":
                self.window.statusBar().showMessage("Load a model first (model bar at the top).", 5000)
            return
        self.cancel()
        if manual:
            self._manual = True
            if not self._t_key or not self.timer.isActive():
                self._t_key = time.perf_counter()
        asyncio.ensure_future(self._run(editor, manual))

    async def _run(self, editor, manual: bool) -> None:
        from app.engine.client import EngineError

        c = self.completer()
        text = editor.toPlainText()
        pos = editor.textCursor().position()
        self._spot_pos = pos
        spot = c.spot(text, pos, _name(editor))
        t0 = self._t_key or time.perf_counter()
        edits = editor.edits

        def here() -> bool:
            return editor.edits == edits and editor.textCursor().position() == pos

        hit = c.cached(spot)
        if hit is not None:
            self.stats.cache_hits += 1
            if hit:
                self.stats.shown += 1
                editor.show_ghost(hit)
            self._done(editor, manual, hit)
            return
        gen = c.start(spot)
        self._gen = self.last_generation = gen
        self.requests += 1
        self.stats.requests += 1
        self.served_by.append("completion" if self.engine is not self.window.engine else "chat")

        def on_text(shown: str) -> None:
            if self._gen is gen and here():
                editor.show_ghost(shown)

        try:
            res = await c.finish(spot, gen, t0, on_text)
        except EngineError as exc:
            if self._gen is gen:
                self._gen = None
                self.window.statusBar().showMessage(f"Suggestion failed: {exc}", 5000)
            return
        if self._gen is not gen or res.cancelled:
            return  # a keystroke came first: its text must never show
        self._gen = None
        c.remember(spot, res.shown)
        self.stats.request_done(res.latency_s)
        if here():
            if res.shown:
                self.stats.shown += 1
                editor.show_ghost(res.shown)
            elif editor.ghost:
                editor.discard_ghost()
        self._done(editor, manual, res.shown)

    def _done(self, editor, manual: bool, shown: str) -> None:
        if not shown:
            self._manual = False
        self._show_label()
        self._bump_saved()
        st = self.stats
        if (not self._slow_noted and self.own_engine is None and len(st.latencies_s) >= SLOW_AFTER
                and st.recent_median() > SLOW_S):
            self._slow_noted = True
            self.window.statusBar().showMessage(
                f"Suggestions take {st.recent_median():.1f} s with this model: a small completion "
                f"model (Settings → Completion model, e.g. Qwen2.5-Coder 0.5B or 1.5B base) "
                f"answers much faster.", 15000)

    # --- status and stats ------------------------------------------------------------------
    def _show_label(self) -> None:
        if self.paused:
            self.label.setText(self.paused)
            return
        last = self.stats.last_s
        self.label.setText("" if last is None else f"Suggestion {last * 1000:.0f} ms")

    def _bump_saved(self) -> None:
        self._save_timer.start()

    def save_stats(self) -> None:
        try:
            self.stats.save()
        except OSError:
            pass  # statistics are a nicety: never an error dialog for them

    def show_stats(self) -> None:
        st = self.stats
        QMessageBox.information(self.window, "Completion statistics", (
            f"Model: {st.model or 'none'}\n"
            f"Requests: {st.requests} (cancelled by typing: {st.cancelled})\n"
            f"Latency p50: {st.p50 * 1000:.0f} ms, p90: {st.p90 * 1000:.0f} ms\n"
            f"Shown: {st.shown}, accepted: {st.accepted} ({st.accepted_share:.0%})\n"
            f"From the cache: {st.cache_hits}, typed through: {st.type_through}\n"
            f"Context ring: {len(self.ring.chunks)} chunks"))

    def _quit(self) -> None:
        self.save_stats()
        if self.own_engine is not None:
            self.own_engine.kill()

    async def close(self) -> None:
        self.cancel()
        self.save_stats()
        if self.own_engine is not None:
            await self.own_engine.close()
            self.own_engine = None


COMPLETION_CTX = 4096


def _name(editor) -> str:
    path = getattr(editor, "path", None)
    return Path(path).name if path else "untitled"


def completion_rows(form, settings):
    """Settings rows for completion at the cursor; returns the function that applies them."""
    from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLineEdit, QPushButton, QSpinBox, QWidget, QFileDialog

    auto = QCheckBox("Suggest as you type", checked=settings.autocomplete)
    debounce = QSpinBox(minimum=0, maximum=5000, singleStep=50, suffix=" ms",
                        value=settings.autocomplete_debounce_ms)
    max_lines = QSpinBox(minimum=1, maximum=100, value=settings.completion_max_lines)
    model = QLineEdit(settings.completion_model, placeholderText="same as chat")
    model.setMinimumWidth(220)
    model.setToolTip("A small infill model for ghost text (e.g. Qwen2.5-Coder 0.5B/1.5B base, "
                     "deepseek-coder 1.3B base); Ask and Edit keep the chat model.")
    browse = QPushButton("…")
    browse.setFixedWidth(32)
    browse.setToolTip("Choose a GGUF file")
    browse.clicked.connect(lambda: model.setText(
        QFileDialog.getOpenFileName(form.parentWidget(), "Completion model", "", "GGUF (*.gguf)")[0]
        or model.text()))
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(model, 1)
    lay.addWidget(browse)
    form.addRow("Completion at the cursor", auto)
    form.addRow("Wait after typing", debounce)
    form.addRow("Suggestion lines (at most)", max_lines)
    form.addRow("Completion model", row)

    def apply() -> None:
        changed = model.text().strip() != settings.completion_model
        settings.autocomplete = auto.isChecked()
        settings.autocomplete_debounce_ms = debounce.value()
        settings.completion_max_lines = max_lines.value()
        settings.completion_model = model.text().strip()
        window = form.parentWidget().parent()
        ctl = getattr(window, "autocomplete", None)
        if changed and ctl is not None:
            asyncio.ensure_future(ctl.use_completion_model(settings.completion_model))

    return apply
