"""The assistant: a conversation per file (Ask), Complete at cursor and Edit selection, answers
streamed into the transcript, Stop / Regenerate / Clear, and the context shown as chips.

All model calls go through `_stream` (one place to switch engines)."""
from __future__ import annotations

import asyncio
import html

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (QGridLayout, QLabel, QPushButton, QSplitter, QTextBrowser, QVBoxLayout,
                               QWidget)

from app import assist
from app.plain_words import plain
from app.engine.client import EngineCrashed, EngineError
from app.engine.protocol import GenerateParams
from app.ui.diff_view import DiffView, SelectionGuard
from app.ui.prompt_box import ContextChips, PromptBox
from app.ui.transcript import History, Turn, render_answer, render_turn


FAILED = "The request failed; see below."
NO_MODEL = "Load a model first (model bar at the top)."


class AssistantPanel(QWidget):
    busy_changed = Signal(bool)

    def __init__(self, window):
        super().__init__(window)
        self.window = window           # gives engine, current editor, settings, style
        self.generation = None
        self.answer = ""               # the answer being written (or the last one)
        self.pending: Turn | None = None
        self.notice = ""
        self.excluded: set[str] = set()  # context chips the user removed
        self.history = History()
        self.prompt = PromptBox(placeholderText="Ask about the code, or describe an edit…  "
                                                "(Enter sends, Shift+Enter: new line)")
        self.prompt.setMaximumHeight(90)
        self.prompt.submitted.connect(self.ask)
        self.view = QTextBrowser(openLinks=False)
        self.view.anchorClicked.connect(self._link)
        self.chips = ContextChips()
        self.chips.removed.connect(self._remove_chip)
        self.diff = DiffView()
        self.diff.hide()
        self.diff.applied.connect(lambda _: self._note_last("Applied to the editor."))
        self.diff.discarded.connect(lambda: self._note_last("Discarded."))
        self.stats = QLabel("")
        self.stats.setWordWrap(True)   # a long line of figures must not widen the dock
        self.ask_btn = QPushButton("Ask")
        self.complete_btn = QPushButton("Complete")
        self.edit_btn = QPushButton("Edit selection")
        self.stop_btn = QPushButton("Stop")
        self.regen_btn = QPushButton("Regenerate")
        self.clear_btn = QPushButton("Clear")
        self.ask_btn.setToolTip("Enter or Ctrl+Enter in the prompt box; Ctrl+Shift+Enter anywhere")
        self.complete_btn.setToolTip("Ctrl+Enter in the editor: complete at the cursor (Tab accepts, Esc discards)")
        self.edit_btn.setToolTip("Ctrl+E: rewrite the selection as the prompt says, shown as a diff")
        self.stop_btn.setToolTip("Stop the answer being written (Esc)")
        self.regen_btn.setToolTip("Ask the last question again, replacing its answer")
        self.clear_btn.setToolTip("Clear this file's conversation")
        # two rows of three (what to ask for; what to do with the answer): in one row of six the
        # dock was wider than the editor at 1280 px
        buttons = QGridLayout()
        for i, (b, slot) in enumerate(((self.ask_btn, self.ask), (self.edit_btn, self.edit_selection),
                                       (self.complete_btn, self.complete), (self.stop_btn, self.stop),
                                       (self.regen_btn, self.regenerate), (self.clear_btn, self.clear))):
            b.clicked.connect(slot)
            buttons.addWidget(b, i // 3, i % 3)
        self.stop_btn.setEnabled(False)
        self.split = split = QSplitter(Qt.Vertical)
        split.addWidget(self.view)
        split.addWidget(self.diff)
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.chips)
        lay.addWidget(self.prompt)
        lay.addLayout(buttons)
        lay.addWidget(self.stats)
        self._render_timer = QTimer(self, singleShot=True, interval=60)
        self._render_timer.timeout.connect(self._render)
        self._watched = None

    # --- plumbing ------------------------------------------------------------------------------
    @property
    def engine(self):
        return self.window.engine

    def _fmt(self) -> dict:
        info = self.engine.info
        from app.engine.prompts import pick_format

        return {"fmt": pick_format(f"{info.name} {info.path}", info.chat_template),
                "chat_template": info.chat_template, "bos": info.bos_token, "eos": info.eos_token}

    def busy(self) -> bool:
        return self.generation is not None and not self.generation.done

    def model_available(self) -> None:
        if self.notice == NO_MODEL:
            self.show_message("")

    def _ready(self) -> bool:
        if self.engine.info is None:
            self.show_message(NO_MODEL)
            return False
        return not self.busy()

    def _params(self, stop: list[str], max_tokens: int | None = None, purpose: str = "ask") -> GenerateParams:
        s = self.window.settings
        if purpose == "edit":  # greedy, so prompt-lookup decoding gives the model's own text faster
            return GenerateParams.for_edit(max_tokens or s.max_tokens, stop)
        return GenerateParams(max_tokens=max_tokens or s.max_tokens, temperature=s.temperature, stop=stop,
                              purpose=purpose)

    def _budget(self) -> int:
        info = self.engine.info
        return max(256, info.n_ctx - self.window.settings.max_tokens - 200)

    def _set_busy(self, busy: bool) -> None:
        self.stop_btn.setEnabled(busy)
        for b in (self.ask_btn, self.complete_btn, self.edit_btn, self.regen_btn, self.clear_btn):
            b.setEnabled(not busy)
        self.busy_changed.emit(busy)

    def show_message(self, text: str) -> None:
        """A line under the conversation (errors, hints); the transcript stays."""
        self.notice = text
        self._render()

    async def _stream(self, prompt: str, params: GenerateParams, on_text) -> str | None:
        """Run one generation; returns the text, or None when the engine failed (shown)."""
        self.generation = self.engine.generate(prompt, params)
        self._set_busy(True)
        self.stats.setText("")
        self.notice = ""
        text = ""
        try:
            async for chunk in self.generation:
                text += chunk
                on_text(text)
        except EngineCrashed as exc:
            self.show_message(f"The engine stopped: {plain(exc)}. Your text is unchanged; the next "
                              f"request starts it again.")
            self.window.engine_crashed(str(exc))
            return None
        except EngineError as exc:
            self.show_message(f"The request failed: {plain(exc)}")
            return None
        finally:
            self._set_busy(False)
        st = self.generation.stats
        if st:
            self.stats.setText(f"{st.tokens_per_s:.1f} tok/s · {st.completion_tokens} tokens · "
                               f"context {st.prompt_tokens + st.completion_tokens}/{self.engine.info.n_ctx}"
                               + (f" · lookup {st.acceptance:.0%} accepted" if st.acceptance is not None else "")
                               + (f" · {st.in_flight} in flight" if st.in_flight > 1 else "")
                               + (" · stopped" if st.finish_reason == "cancelled" else ""))
        return text

    def stop(self) -> None:
        if self.busy():
            self.generation.cancel()

    # --- the conversation ----------------------------------------------------------------------
    def _key(self) -> str:
        editor = self.window.current_editor()
        return (editor.path or editor.buffer_id) if editor else "-"

    def turns(self) -> list[Turn]:
        return self.history.turns(self._key())

    def _muted(self) -> str:
        return self.palette().color(QPalette.PlaceholderText).name()

    def _render(self) -> None:
        bar = self.view.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        style, muted = self.window.pygments_style(), self._muted()
        turns = self.turns()
        parts = [render_turn(t, i, style, muted) for i, t in enumerate(turns)]
        if self.pending is not None and all(t is not self.pending for t in turns):
            self.pending.answer = self.answer
            parts.append(render_turn(self.pending, len(turns), style, muted))
        elif self.pending is None and self.answer and not turns:
            parts.append(render_answer(self.answer, style, 0))  # an answer shown on its own
        if self.notice:
            parts.append(f"<p><i>{html.escape(self.notice)}</i></p>")
        if not parts:
            parts.append(f'<p style="color:{muted}">Ask about the code in this tab: the selection (or '
                         f'the file) goes with the question. Answers stay here, per file.</p>')
        self.view.setHtml("".join(parts))
        if at_end:
            bar.setValue(bar.maximum())

    def theme_changed(self) -> None:
        self.restyle()

    def restyle(self) -> None:
        """The theme changed: render the conversation (and an open diff) in the new colours."""
        self._render()
        if self.diff.guard is not None:
            self.diff._draw()

    def _schedule(self, text: str) -> None:
        self.answer = text
        if not self._render_timer.isActive():
            self._render_timer.start()

    def show_history_for_current(self) -> None:
        """The current tab changed: its conversation and its context."""
        if self.busy():
            return
        self.pending, self.answer, self.notice = None, "", ""
        self.excluded.clear()
        self._watch_editor()
        self.refresh_chips()
        self._render()

    def _note_last(self, note: str) -> None:
        turns = self.turns()
        if turns:
            turns[-1].note = note
            self.history.save()
            self._render()

    def clear(self) -> None:
        if not self.busy():
            self.turns().clear()
            self.history.save()
            self.pending, self.answer, self.notice = None, "", ""
            self._render()

    # --- context chips -------------------------------------------------------------------------
    def _watch_editor(self) -> None:
        editor = self.window.current_editor()
        if editor is self._watched:
            return
        if self._watched is not None:
            try:
                self._watched.selectionChanged.disconnect(self.refresh_chips)
            except (RuntimeError, TypeError):
                pass
        self._watched = editor
        if editor is not None:
            editor.selectionChanged.connect(self.refresh_chips)

    def context_items(self) -> list[tuple[str, str, str]]:
        editor = self.window.current_editor()
        items = []
        if editor is not None:
            name = editor.title.rstrip(" •")
            sel = editor.textCursor().selectedText()
            if sel:
                n = sel.count("\u2029") + 1
                items.append(("code", f"selection · {n} line{'s' if n != 1 else ''}",
                              f"The selected lines of {name}"))
            else:
                items.append(("code", name, f"{name}, trimmed around the cursor to fit the context"))
        turns = [t for t in self.turns() if t.kind == "ask"]
        if turns:
            n = min(len(turns), assist.EARLIER_TURNS)
            items.append(("earlier", f"last {n} turn{'s' if n != 1 else ''}",
                          "The last questions and answers of this conversation"))
        return [i for i in items if i[0] not in self.excluded]

    def refresh_chips(self) -> None:
        self.chips.set_chips(self.context_items())

    def _remove_chip(self, key: str) -> None:
        self.excluded.add(key)
        self.refresh_chips()

    # --- Ask -----------------------------------------------------------------------------------
    def ask(self) -> None:
        question = self.prompt.toPlainText().strip()
        if question and self._ready():
            self.prompt.clear()
            asyncio.ensure_future(self._ask(question))

    def regenerate(self) -> None:
        turns = [t for t in self.turns() if t.kind == "ask"]
        if turns and self._ready():
            last = turns[-1]
            self.turns().remove(last)
            asyncio.ensure_future(self._ask(last.question))

    async def _ask(self, question: str) -> None:
        editor = self.window.current_editor()
        ctx = None
        if editor is not None and "code" not in self.excluded:
            cursor = editor.textCursor()
            ctx = assist.context_for(editor.toPlainText(), cursor.selectedText().replace("\u2029", "\n"),
                                     editor.title.rstrip(" •"), self._budget() - assist.approx_tokens(question),
                                     cursor.blockNumber())
        earlier = ([(t.question, t.answer) for t in self.turns()
                    if t.kind == "ask" and t.answer and t.note != FAILED]   # a broken answer misleads
                   if "earlier" not in self.excluded else [])
        lang = editor.highlighter.lexer.aliases[0] if editor and editor.highlighter.lexer.aliases else ""
        p = assist.ask_prompt(question, ctx, lang, earlier, **self._fmt())
        turns = self.turns()
        self.pending, self.answer = Turn(question), ""
        if ctx is not None and ctx.trimmed:
            self.pending.note = f"Context: {ctx.label}, trimmed to fit."
        self._render()
        text = await self._stream(p.text, self._params(p.stop), self._schedule)
        self._render_timer.stop()
        turn = self.pending
        turn.answer = text if text is not None else self.answer
        st = self.generation.stats if self.generation else None
        if text is None:
            turn.note = FAILED
        elif st and st.finish_reason == "cancelled":
            turn.note = "Stopped."
        self.answer = turn.answer
        turns.append(turn)
        self.pending = None
        self.history.save()
        self.refresh_chips()
        self._render()

    def _link(self, url) -> None:
        parts = url.toString().split(":")
        if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
            return
        action, t, n = parts[0], int(parts[1]), int(parts[2])
        turns = self.turns()
        answer = turns[t].answer if t < len(turns) else self.answer
        blocks = assist.code_blocks(answer)
        if n >= len(blocks):
            return
        code = blocks[n][1]
        editor = self.window.current_editor()
        if action == "copy":
            QGuiApplication.clipboard().setText(code)
        elif editor is not None and action in ("insert", "replace"):
            cursor = editor.textCursor()
            if action == "insert":
                cursor.clearSelection()
            cursor.beginEditBlock()
            cursor.insertText(code)
            cursor.endEditBlock()

    # --- Complete at cursor ---------------------------------------------------------------------
    def complete(self) -> None:
        # One path for ghost text, typed or asked for: block end, cache, stats (autocomplete.py).
        self.window.autocomplete.request()

    # --- Edit selection ------------------------------------------------------------------------
    def edit_selection(self) -> None:
        editor = self.window.current_editor()
        if editor is None or not self._ready():
            return
        if not editor.textCursor().hasSelection() or not self.prompt.toPlainText().strip():
            self.show_message("Select the code to edit and write the instruction in the prompt box.")
            return
        asyncio.ensure_future(self._edit(editor))

    async def _edit(self, editor) -> None:
        tabs = self.window.tabs
        guard = SelectionGuard(editor, alive=lambda: editor in tabs.editors())
        instruction = self.prompt.toPlainText().strip()
        lang = editor.highlighter.lexer.aliases[0] if editor.highlighter.lexer.aliases else ""
        p = assist.edit_prompt(instruction, guard.text, lang, **self._fmt())
        self.diff.close_diff()
        turns = self.turns()
        self.pending, self.answer = Turn(instruction, kind="edit"), ""
        self._render()
        shown = []

        def on_text(text: str) -> None:
            self._schedule(text)
            code = assist.closed_code(text)
            if code is not None and not shown:  # the code block closed: review it now
                shown.append(code)
                self.stop()
                self._review(guard, code)

        text = await self._stream(p.text, self._params(p.stop, max_tokens=max(512, len(guard.text) // 2), purpose="edit"), on_text)
        self._render_timer.stop()
        turn = self.pending
        turn.answer = text if text is not None else self.answer
        self.answer = turn.answer
        turns.append(turn)
        self.pending = None
        if text is not None and not shown:
            self._review(guard, assist.first_code(text))
        self.history.save()
        self._render()

    def _review(self, guard: SelectionGuard, code: str) -> None:
        why = guard.problem()
        if why:
            self.show_message(why)
            return
        self.diff.show_diff(guard, code)
        total = sum(self.split.sizes()) or 300
        self.split.setSizes([total // 3, total - total // 3])  # the change to review gets the room
