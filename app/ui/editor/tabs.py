"""Editor tabs: open, save, save as, the unsaved-changes prompt, and autosave for recovery."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QFileDialog, QMessageBox, QTabWidget

from app.recovery import RecoveryStore
from app.ui.editor import text_file
from app.ui.editor.code_editor import CodeEditor

FIRST_CHARS = 256 * 1024    # shown at once; a larger file's rest is appended in idle time
SLICE_CHARS = 64 * 1024     # appended at a time while it loads (editable meanwhile)
SLICE_S = 0.01              # of appending per idle step


class EditorTab(CodeEditor):
    def __init__(self, path: str | None, text: str, style: str, font_size: int, autosave_s: float,
                 recovery: RecoveryStore, fmt: text_file.TextFormat | None = None, plain: bool = False):
        from app.ui.editor.highlighter import PygmentsHighlighter, lexer_for  # pygments: after the window shows

        super().__init__(font_size=font_size)
        self.path = path
        self.format = fmt or text_file.TextFormat()
        self.plain = plain             # too large to highlight: shown as plain text
        self.buffer_id = uuid.uuid4().hex
        self.recovery = recovery
        # Qt takes about 8 us a line to fill a document: a large file shows its start at once
        # and the rest follows a slice per idle step (see below)
        cut = text.find("\n", FIRST_CHARS) + 1 if len(text) > FIRST_CHARS else 0
        self._rest, self._rest_at = (text, cut) if cut else ("", 0)
        self.setPlainText(text[:cut] if cut else text)
        lexer = lexer_for(None, "") if plain else lexer_for(path, text[:4000])
        # lazy: only the first screens are lexed before the first paint, the rest when idle;
        # a plain (very large) file gets no highlighter on its document at all
        self.highlighter = PygmentsHighlighter(None if plain else self.document(), lexer, style, lazy=True)
        # (while a file loads, the idle pass waits: with undo off, Qt counts its relexing as an edit)
        self.first_paint.connect(lambda: self.loading or self.highlighter.start_idle())
        self.document().setModified(False)
        if self._rest:
            # the window takes keys at once: the rest goes in behind a cursor of its own, which
            # moves past text typed at its position, so typing lands where it was typed; undo is
            # off until all is there, so that Ctrl+Z cannot take a loaded slice back out
            self.setUndoRedoEnabled(False)
            self._load_at = QTextCursor(self.document())
            self._load_at.movePosition(QTextCursor.End)
            self._loader = QTimer(self, interval=0)
            self._loader.timeout.connect(self._load_slice)
            self.first_paint.connect(self._loader.start)
            # a tab opened in the background loads too, a moment later
            self._late_start = QTimer(self, singleShot=True, interval=500)
            self._late_start.timeout.connect(lambda: self._rest and self._loader.start())
            self._late_start.start()
        self._autosave = QTimer(self, singleShot=True, interval=int(autosave_s * 1000))
        self._autosave.timeout.connect(self.autosave)
        self.document().contentsChanged.connect(self._changed)

    @property
    def loading(self) -> bool:
        return bool(self._rest)

    def _load_slice(self) -> None:
        self.highlighter.hold()
        edited = self.document().isModified()
        user = self.textCursor()
        keep = user.position() if not user.hasSelection() and user.position() == self._load_at.position() else None
        # one piece for about SLICE_S, then back to the event loop (fewer, larger inserts)
        start = time.perf_counter()
        end = self._rest_at
        while end < len(self._rest) and time.perf_counter() - start < SLICE_S:
            end = self._rest.find("\n", self._rest_at + SLICE_CHARS) + 1 or len(self._rest)
            self._load_at.insertText(self._rest[self._rest_at:end])
            self._rest_at = end
        self.document().setModified(edited)  # loading is not an edit; what the user typed is
        if keep is not None:  # a caret at the loaded end stays where the user left it
            user.setPosition(keep)
            self.setTextCursor(user)
        if end >= len(self._rest):
            self._loader.stop()
            self._rest = ""
            self.setUndoRedoEnabled(True)
            self.highlighter.start_idle()

    @property
    def title(self) -> str:
        return (Path(self.path).name if self.path else "untitled") + (" •" if self.dirty else "")

    @property
    def dirty(self) -> bool:
        return self.document().isModified()

    def _changed(self) -> None:
        self._autosave.start()

    def autosave(self) -> None:
        if self.loading:  # a part of the file must never be offered back as the whole of it
            self._autosave.start()
        elif self.dirty:
            self.recovery.save(self.buffer_id, self.path, self.toPlainText())
        else:
            self.recovery.discard(self.buffer_id)

    def save_to(self, path: str) -> None:
        text_file.write(path, self.toPlainText(), self.format)  # raises FileProblem; the text stays
        if path != self.path:
            from app.ui.editor.highlighter import lexer_for

            self.path = path
            if not self.plain:
                self.highlighter.set_lexer(lexer_for(path, self.toPlainText()))
        self.document().setModified(False)
        self.recovery.discard(self.buffer_id)


class EditorTabs(QTabWidget):
    current_editor_changed = Signal(object)
    file_saved = Signal(str)
    tab_created = Signal(object)
    notice = Signal(str)          # a one-line note for the status bar

    def __init__(self, settings, recovery: RecoveryStore | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.recovery = recovery or RecoveryStore()
        self.style_name = "default"
        self.setTabsClosable(True)
        self.setMovable(True)
        self.setDocumentMode(True)
        self.tabCloseRequested.connect(self.close_tab)
        self.currentChanged.connect(lambda _: self.current_editor_changed.emit(self.current()))
        self.warn = self._warn_box

    def _warn_box(self, title: str, text: str) -> None:
        """Says what went wrong without blocking: --screenshot and tests never wait on a modal."""
        box = QMessageBox(QMessageBox.Warning, title, text, QMessageBox.Ok, self)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()
        self.notice.emit(text)

    def current(self) -> EditorTab | None:
        w = self.currentWidget()
        return w if isinstance(w, EditorTab) else None

    def editors(self) -> list[EditorTab]:
        return [self.widget(i) for i in range(self.count())]

    def new_tab(self, path: str | None = None, text: str = "", fmt: text_file.TextFormat | None = None,
                plain: bool = False) -> EditorTab:
        tab = EditorTab(path, text, self.style_name, self.settings.font_size, self.settings.autosave_s,
                        self.recovery, fmt, plain)
        tab.document().modificationChanged.connect(lambda _=None, t=tab: self._retitle(t))
        self.addTab(tab, tab.title)
        self.setCurrentWidget(tab)
        self.setTabToolTip(self.indexOf(tab), path or "")
        self.tab_created.emit(tab)
        return tab

    def _retitle(self, tab: EditorTab) -> None:
        i = self.indexOf(tab)
        if i >= 0:
            self.setTabText(i, tab.title)

    def open_file(self, path: str) -> EditorTab | None:
        for tab in self.editors():
            if tab.path and Path(tab.path) == Path(path):
                self.setCurrentWidget(tab)
                return tab
        try:
            f = text_file.read(path)
        except text_file.FileProblem as exc:
            self.warn("Open", str(exc))
            return None
        tab = self.new_tab(path, f.text, f.format, f.plain)
        notes = []
        if f.plain:
            notes.append(f"{Path(path).name} is {f.size / 1e6:.0f} MB: shown as plain text, without highlighting")
        if f.format.encoding == "latin-1":
            notes.append(f"{Path(path).name} is not UTF-8: opened as Latin-1, and saved the same way")
        if notes:
            self.setTabToolTip(self.indexOf(tab), f"{path}\n" + "\n".join(notes))
            self.notice.emit("; ".join(notes) + ".")
        self.settings.add_recent(str(path))
        return tab

    def save(self, tab: EditorTab | None = None, save_as: bool = False) -> bool:
        tab = tab or self.current()
        if tab is None:
            return False
        if tab.loading:
            self.warn("Save", f"{tab.path} is still loading; save it when it is all there.")
            return False
        path = tab.path
        if save_as or not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save as", path or "")
            if not path:
                return False
        try:
            tab.save_to(path)
        except text_file.FileProblem as exc:  # the text stays in the editor and in the recovery folder
            self.warn("Save", str(exc))
            return False
        self._retitle(tab)
        self.setTabToolTip(self.indexOf(tab), path)
        self.settings.add_recent(path)
        self.file_saved.emit(path)
        return True

    def close_tab(self, index: int, ask=None) -> bool:
        tab = self.widget(index)
        if tab.dirty:
            answer = (ask or self._ask_unsaved)(tab)
            if answer == QMessageBox.Cancel:
                return False
            if answer == QMessageBox.Save and not self.save(tab):
                return False
        tab.recovery.discard(tab.buffer_id)
        self.removeTab(index)
        tab.deleteLater()
        return True

    def _ask_unsaved(self, tab: EditorTab):
        return QMessageBox.question(self, "Unsaved changes", f"Save changes to {tab.title.rstrip(' •')}?",
                                    QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel)

    def close_all(self, ask=None) -> bool:
        while self.count():
            if not self.close_tab(0, ask):
                return False
        return True

    def set_style(self, style: str) -> None:
        self.style_name = style
        for tab in self.editors():
            tab.highlighter.set_style(style)
