"""The welcome page in the editor area (first run, and Help > Welcome): what LlamaDesk is, open a
model file, download the recommended model with its size and the speed to expect here, recent
files and folders. It shows the window's one `advice` (the toolbar and the Models panel show the
same)."""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QSizePolicy, QVBoxLayout, QWidget)


class WelcomePage(QScrollArea):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # text wraps; buttons keep a tooltip
        page = QWidget()
        outer = QHBoxLayout(page)
        column = QWidget()
        column.setMaximumWidth(760)
        column.setMinimumWidth(0)
        outer.addStretch(1)
        outer.addWidget(column, 4)
        outer.addStretch(1)
        lay = QVBoxLayout(column)
        lay.setSpacing(10)
        title = QLabel("LlamaDesk")
        f = QFont(title.font())
        f.setPointSizeF(f.pointSizeF() * 2.2)
        f.setBold(True)
        title.setFont(f)
        intro = QLabel("An offline coding assistant: ask about your code, complete at the cursor and "
                       "rewrite a selection with a model that runs on this machine. Nothing leaves it.")
        intro.setWordWrap(True)
        self.machine = QLabel("")
        self.machine.setWordWrap(True)
        self.open_btn = QPushButton("Open a model file (.gguf)…")
        self.open_btn.clicked.connect(self.open_model)
        self.local = QVBoxLayout()
        self.download_btn = QPushButton("Download the recommended model")
        self.download_btn.clicked.connect(self._download)
        self.advice_ask = QLabel("")
        self.advice_complete = QLabel("")
        for lbl in (self.advice_ask, self.advice_complete):
            lbl.setWordWrap(True)
            lbl.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.recent = QLabel("")
        self.recent.setWordWrap(True)
        self.recent.linkActivated.connect(self._open_recent)
        self.start_btn = QPushButton("Start with an empty file")
        self.start_btn.clicked.connect(self.dismiss)
        lay.addSpacing(24)
        lay.addWidget(title)
        lay.addWidget(intro)
        lay.addWidget(self.machine)
        lay.addSpacing(8)
        lay.addWidget(self._heading("Start"))
        lay.addLayout(self.local)
        for w in (self.open_btn, self.advice_ask, self.download_btn, self.advice_complete):
            lay.addWidget(w)
        for b in (self.open_btn, self.download_btn, self.start_btn):
            b.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        lay.addSpacing(8)
        lay.addWidget(self._heading("Recent"))
        lay.addWidget(self.recent)
        lay.addWidget(self.start_btn)
        lay.addStretch(1)
        self.setWidget(page)
        self.recommended_id: str | None = None

    @staticmethod
    def _heading(text: str) -> QLabel:
        lbl = QLabel(text)
        f = QFont(lbl.font())
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        lbl.setFont(f)
        return lbl

    def refresh(self, local_models=None) -> None:
        advice = self.window.advice
        if advice is not None:
            m = advice.machine
            gpu = f"GPU memory free {m.free_vram / 1e9:.1f} GB" if m.free_vram else "no GPU offload"
            measured = (f"measured {m.speed.measured_tps:.0f} tokens/s with {Path(m.speed.measured_file).name}"
                        if m.speed and m.speed.measured else
                        "speeds are estimates until the first model is loaded and measured")
            self.machine.setText(f"This machine: {m.label}, {m.free_ram / 1e9:.1f} GB of RAM available, "
                                 f"{gpu}; {measured}.")
            rec = advice.ask
            if rec.file is not None:
                self.recommended_id = rec.file.id
                self.download_btn.setText(f"Download it ({rec.file.size_bytes / 1e9:.1f} GB)")
                self.download_btn.setToolTip(f"{self.download_btn.text()}\n{rec.reason}")
            self.download_btn.setVisible(rec.file is not None)
            self.advice_ask.setText(rec.reason)
            self.advice_complete.setText(advice.complete.reason)
        if local_models is not None:
            while self.local.count():
                w = self.local.takeAt(0).widget()
                if w is not None:
                    w.deleteLater()
            for lm in [x for x in local_models if x.usable][:4]:
                b = QPushButton(f"Load {lm.name} ({lm.size_bytes / 1e9:.2f} GB)")
                b.setToolTip(lm.path)
                b.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
                b.clicked.connect(lambda _=False, p=lm.path: self.window.load_model(p))
                self.local.addWidget(b)
        s = self.window.settings
        items = [f'<a href="file:{html.escape(p)}">{html.escape(Path(p).name)}</a> '
                 f'<span style="color:gray">{html.escape(str(Path(p).parent))}</span>'
                 for p in s.recent_files[:6]]
        if s.project_folder:
            items.append(f'<a href="folder:{html.escape(s.project_folder)}">{html.escape(s.project_folder)}</a> (folder)')
        self.recent.setText("<br>".join(items) if items else "No recent files yet.")

    def _open_recent(self, link: str) -> None:
        kind, _, path = link.partition(":")
        if kind == "folder":
            self.window.open_folder(path)
        else:
            self.window.tabs.open_file(path)
        self.dismiss()

    def open_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.window.load_model(path)

    def _download(self) -> None:
        if self.recommended_id:
            self.window.start_download(self.recommended_id)

    def dismiss(self) -> None:
        self.window.show_welcome(False)
