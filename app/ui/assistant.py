"""The assistant: a prompt box and three actions (Ask, Complete at cursor, Edit selection),
answers streamed into a view with highlighted code blocks, Stop at any time."""
from __future__ import annotations

import asyncio
import difflib
import html
import json
import time

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QTextCursor
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPlainTextEdit,
                               QPushButton, QTextBrowser, QVBoxLayout, QWidget)

from app import assist, paths
from app.engine.client import EngineCrashed, EngineError
from app.engine.protocol import GenerateParams


def render_answer(text: str, style: str) -> str:
    """Markdown-ish answer -> HTML with highlighted code blocks and their action links."""
    out, pos, n = [], 0, 0
    fmt = HtmlFormatter(noclasses=True, style=style, nowrap=False)
    for m in assist._FENCE.finditer(text):
        out.append(_prose(text[pos:m.start()]))
        lang, code = m.group(1) or "text", m.group(2).rstrip("\n")
        try:
            lexer = get_lexer_by_name(lang)
        except ClassNotFound:
            lexer = get_lexer_by_name("text")
        out.append(highlight(code, lexer, fmt))
        out.append(f'<p style="margin-top:0"><a href="insert:{n}">Insert</a> · '
                   f'<a href="replace:{n}">Replace selection</a> · <a href="copy:{n}">Copy</a></p>')
        n += 1
        pos = m.end()
    out.append(_prose(text[pos:]))
    return "".join(out)


def _prose(text: str) -> str:
    return f"<p>{html.escape(text).replace(chr(10), '<br>')}</p>" if text.strip() else ""


class DiffDialog(QDialog):
    def __init__(self, old: str, new: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Edit selection: review the change")
        diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "before", "after"))
        view = QPlainTextEdit(diff or "(no change)")
        view.setReadOnly(True)
        from app.ui.editor.highlighter import PygmentsHighlighter
        self._hl = PygmentsHighlighter(view.document(), get_lexer_by_name("diff", stripnl=False))
        buttons = QDialogButtonBox()
        buttons.addButton("Apply", QDialogButtonBox.AcceptRole)
        buttons.addButton("Discard", QDialogButtonBox.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(view)
        lay.addWidget(buttons)
        self.resize(720, 480)


class AssistantPanel(QWidget):
    busy_changed = Signal(bool)

    def __init__(self, window):
        super().__init__(window)
        self.window = window           # gives engine, current editor, settings, style
        self.generation = None
        self.answer = ""
        self.history: dict[str, list[dict]] = self._load_history()
        self.prompt = QPlainTextEdit(placeholderText="Ask about the code, or describe an edit…")
        self.prompt.setMaximumHeight(90)
        self.view = QTextBrowser(openLinks=False)
        self.view.anchorClicked.connect(self._link)
        self.context_label = QLabel("Context: —")
        self.context_label.setWordWrap(True)
        self.stats = QLabel("")
        buttons = QHBoxLayout()
        self.ask_btn = QPushButton("Ask")
        self.complete_btn = QPushButton("Complete")
        self.edit_btn = QPushButton("Edit selection")
        self.stop_btn = QPushButton("Stop")
        self.ask_btn.setToolTip("Ctrl+Shift+Enter")
        self.complete_btn.setToolTip("Ctrl+Enter: complete at the cursor (Tab accepts, Esc discards)")
        self.edit_btn.setToolTip("Ctrl+E: rewrite the selection as the prompt says, shown as a diff")
        self.stop_btn.setToolTip("Esc")
        for b, slot in ((self.ask_btn, self.ask), (self.complete_btn, self.complete),
                        (self.edit_btn, self.edit_selection), (self.stop_btn, self.stop)):
            b.clicked.connect(slot)
            buttons.addWidget(b)
        self.stop_btn.setEnabled(False)
        lay = QVBoxLayout(self)
        lay.addWidget(self.prompt)
        lay.addLayout(buttons)
        lay.addWidget(self.context_label)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.stats)
        self._render_timer = QTimer(self, singleShot=True, interval=60)
        self._render_timer.timeout.connect(self._render)

    # --- plumbing ------------------------------------------------------------------------------
    @property
    def engine(self):
        return self.window.engine

    def _fmt(self) -> dict:
        info = self.engine.info
        from app.engine.prompts import pick_format

        return {"fmt": pick_format(f"{info.name} {info.path}", info.chat_template),
                "chat_template": info.chat_template, "bos": info.bos_token, "eos": info.eos_token}

    def _ready(self) -> bool:
        if self.engine.info is None:
            self.show_message("Load a model first (model bar at the top).")
            return False
        if self.generation is not None and not self.generation.done:
            return False
        return True

    def _params(self, stop: list[str], max_tokens: int | None = None) -> GenerateParams:
        s = self.window.settings
        return GenerateParams(max_tokens=max_tokens or s.max_tokens, temperature=s.temperature, stop=stop)

    def _budget(self) -> int:
        info = self.engine.info
        return max(256, info.n_ctx - self.window.settings.max_tokens - 200)

    def _set_busy(self, busy: bool) -> None:
        self.stop_btn.setEnabled(busy)
        for b in (self.ask_btn, self.complete_btn, self.edit_btn):
            b.setEnabled(not busy)
        self.busy_changed.emit(busy)

    def show_message(self, text: str) -> None:
        self._render_timer.stop()  # a pending repaint of the partial answer must not hide this
        self.view.setHtml(f"<p><i>{html.escape(text)}</i></p>")

    async def _stream(self, prompt: str, params: GenerateParams, on_text) -> str | None:
        """Run one generation; returns the text, or None when the engine failed (shown)."""
        self.generation = self.engine.generate(prompt, params)
        self._set_busy(True)
        text = ""
        try:
            async for chunk in self.generation:
                text += chunk
                on_text(text)
        except EngineCrashed as exc:
            self.show_message(f"The engine stopped: {exc}. Your text is unchanged; the next "
                              f"request starts it again.")
            self.window.engine_crashed(str(exc))
            return None
        except EngineError as exc:
            self.show_message(f"The request failed: {exc}")
            return None
        finally:
            self._set_busy(False)
        st = self.generation.stats
        if st:
            self.stats.setText(f"{st.tokens_per_s:.1f} tok/s · {st.completion_tokens} tokens · "
                               f"context {st.prompt_tokens + st.completion_tokens}/{self.engine.info.n_ctx}"
                               + (" · stopped" if st.finish_reason == "cancelled" else ""))
        return text

    def stop(self) -> None:
        if self.generation is not None and not self.generation.done:
            self.generation.cancel()

    # --- Ask -----------------------------------------------------------------------------------
    def ask(self) -> None:
        if self._ready() and self.prompt.toPlainText().strip():
            asyncio.ensure_future(self._ask())

    async def _ask(self) -> None:
        editor = self.window.current_editor()
        question = self.prompt.toPlainText().strip()
        ctx = None
        if editor is not None:
            cursor = editor.textCursor()
            ctx = assist.context_for(editor.toPlainText(), cursor.selectedText().replace("\u2029", "\n"),
                                     editor.title.rstrip(" •"), self._budget() - assist.approx_tokens(question),
                                     cursor.blockNumber())
            self.context_label.setText(f"Context: {ctx.label}" + (" — trimmed to fit" if ctx.trimmed else ""))
        lang = editor.highlighter.lexer.aliases[0] if editor and editor.highlighter.lexer.aliases else ""
        p = assist.ask_prompt(question, ctx, lang, **self._fmt())
        self.answer = ""

        def on_text(text):
            self.answer = text
            if not self._render_timer.isActive():
                self._render_timer.start()

        text = await self._stream(p.text, self._params(p.stop), on_text)
        if text is not None:
            self.answer = text
            self._render()
            self._remember(question, text)

    def _render(self) -> None:
        bar = self.view.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self.view.setHtml(render_answer(self.answer, self.window.pygments_style()))
        if at_end:
            bar.setValue(bar.maximum())

    def _link(self, url) -> None:
        action, _, idx = url.toString().partition(":")
        blocks = assist.code_blocks(self.answer)
        if not idx.isdigit() or int(idx) >= len(blocks):
            return
        code = blocks[int(idx)][1]
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
        cursor = editor.textCursor()
        start, end = cursor.selectionStart(), cursor.selectionEnd()
        old = cursor.selectedText().replace("\u2029", "\n")
        lang = editor.highlighter.lexer.aliases[0] if editor.highlighter.lexer.aliases else ""
        p = assist.edit_prompt(self.prompt.toPlainText().strip(), old, lang, **self._fmt())
        self.context_label.setText(f"Context: the selection ({old.count(chr(10)) + 1} lines)")
        self.answer = ""

        def on_text(text):
            self.answer = text
            if not self._render_timer.isActive():
                self._render_timer.start()

        text = await self._stream(p.text, self._params(p.stop, max_tokens=max(512, len(old) // 2)), on_text)
        if text is None:
            return
        self.answer = text
        self._render()
        new = assist.first_code(text)
        dialog = DiffDialog(old, new, self)
        self._last_diff = dialog
        if await _exec_async(dialog) == QDialog.Accepted:
            c = QTextCursor(editor.document())
            c.setPosition(start)
            c.setPosition(end, QTextCursor.KeepAnchor)
            c.beginEditBlock()
            c.insertText(new)
            c.endEditBlock()

    # --- history --------------------------------------------------------------------------------
    def _key(self) -> str:
        editor = self.window.current_editor()
        return (editor.path or editor.buffer_id) if editor else "-"

    def _remember(self, question: str, answer: str) -> None:
        self.history.setdefault(self._key(), []).append({"q": question, "a": answer, "t": time.time()})
        self.history[self._key()] = self.history[self._key()][-50:]
        try:
            path = paths.ensure(paths.data_dir()) / "assistant-history.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.history))
            tmp.replace(path)
        except OSError:
            pass

    def _load_history(self) -> dict:
        try:
            return json.loads((paths.data_dir() / "assistant-history.json").read_text())
        except (OSError, ValueError):
            return {}

    def show_history_for_current(self) -> None:
        items = self.history.get(self._key(), [])
        if items and (self.generation is None or self.generation.done):
            last = items[-1]
            self.answer = f"{last['a']}"
            self.view.setHtml(f"<p><b>{html.escape(last['q'])}</b></p>"
                              + render_answer(self.answer, self.window.pygments_style()))


async def _exec_async(dialog: QDialog) -> int:
    """A modal dialog without a nested event loop (keeps asyncio running)."""
    fut = asyncio.get_running_loop().create_future()
    dialog.finished.connect(lambda code: fut.done() or fut.set_result(code))
    dialog.open()
    return await fut
