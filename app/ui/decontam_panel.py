"""Decontamination panel: choose training files, run the GPT-4-report check with progress and
cancel, and see the flagged tasks with the matching text highlighted in the prompt."""
from __future__ import annotations

import asyncio
import html
import json
import threading
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QProgressBar, QPushButton, QSpinBox, QSplitter,
                               QTextBrowser, QVBoxLayout, QWidget)

from app import paths
from app.atomic import write_atomic
from app.bench.decontam import Settings, normalise
from app.bench.decontam_inputs import Cancelled, InputError
from app.bench.decontam_run import run_check
from app.plain_words import plain


def highlight_match(prompt: str, substring: str, casefold: bool = False) -> str:
    """The prompt as HTML with the characters behind the normalised `substring` marked."""
    keep = [i for i, ch in enumerate(prompt) if normalise(ch, casefold)]
    norm = normalise(prompt, casefold)
    at = norm.find(substring)
    if at < 0 or not substring:
        return f"<pre>{html.escape(prompt)}</pre>"
    start, end = keep[at], keep[at + len(substring) - 1] + 1
    return ("<pre>" + html.escape(prompt[:start]) + "<span style='background:#ffe066;color:#000'>"
            + html.escape(prompt[start:end]) + "</span>" + html.escape(prompt[end:]) + "</pre>")


class DecontamPanel(QWidget):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.cancel: threading.Event | None = None
        self.report: dict | None = None
        # shared with the HumanEval panel, read once off the GUI thread (window.humaneval_problems)
        self.problems: dict[str, dict] = {}
        self.inputs = QListWidget()
        add_files, add_dir, clear = QPushButton("Add files…"), QPushButton("Add folder…"), QPushButton("Clear")
        add_files.clicked.connect(self._add_files)
        add_dir.clicked.connect(self._add_dir)
        clear.clicked.connect(self.inputs.clear)
        self.exhaustive = QCheckBox("Exhaustive: every 50-character window (beyond the paper)")
        self.casefold = QCheckBox("Ignore case")
        self.seed = QSpinBox(maximum=2**31 - 1)
        self.run_btn, self.cancel_btn = QPushButton("Run check"), QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.run_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.stop)
        self.progress = QProgressBar(maximum=1000)
        self.progress.hide()   # shown while a check runs: an empty bar reads as something stuck
        self.status = QLabel("Method of the GPT-4 Technical Report, Appendix C: three random "
                             "50-character substrings of each HumanEval prompt, letters and digits only.")
        self.status.setWordWrap(True)
        self.flagged = QListWidget()
        self.flagged.currentItemChanged.connect(self._show)
        self.detail = QTextBrowser()
        top = QHBoxLayout()
        top.addWidget(QLabel("Training data to check:"))
        for w in (add_files, add_dir, clear):
            top.addWidget(w)
        top.addStretch(1)
        self.inputs.setToolTip("Files and folders of training data (JSON lines, JSON, CSV, TSV, Parquet); "
                               "Add files… or Add folder… puts them here")
        opts = QHBoxLayout()
        opts.addWidget(self.exhaustive)
        opts.addWidget(self.casefold)
        opts.addWidget(QLabel("Seed"))
        opts.addWidget(self.seed)
        opts.addStretch(1)
        opts.addWidget(self.run_btn)
        opts.addWidget(self.cancel_btn)
        split = QSplitter()
        split.addWidget(self.flagged)
        split.addWidget(self.detail)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.inputs, 1)
        lay.addLayout(opts)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(split, 3)

    def _add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Training data files")
        for f in files:
            self.inputs.addItem(f)

    def _add_dir(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Training data folder")
        if d:
            self.inputs.addItem(d)

    def paths(self) -> list[str]:
        return [self.inputs.item(i).text() for i in range(self.inputs.count())]

    def start(self) -> None:
        if self.cancel is None and self.paths():
            asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self.cancel = threading.Event()
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.flagged.clear()
        settings = Settings(seed=self.seed.value(), exhaustive=self.exhaustive.isChecked(),
                            casefold=self.casefold.isChecked())

        def progress(p):
            loop.call_soon_threadsafe(self._progress, p)

        self.status.setText("Reading the training files…")
        self.progress.setValue(0)
        self.progress.show()
        try:
            problems = await self.window.humaneval_problems()
            self.report = await asyncio.to_thread(run_check, self.paths(), list(problems.values()),
                                                  settings, 1, progress, self.cancel)
        except InputError as exc:
            self.status.setText(plain(exc))
        except Cancelled:
            self.status.setText("Cancelled.")
        else:
            out = paths.results_dir() / f"decontam-{time.strftime('%Y%m%d-%H%M%S')}.json"
            try:
                write_atomic(paths.ensure(out.parent) / out.name, json.dumps(self.report, indent=1).encode())
                saved = f"Report: {out} (use it with `llamadesk humaneval --exclude-contaminated`)"
            except OSError as exc:
                saved = f"The report could not be saved to {out}: {plain(exc)}"
            self.status.setText(f"{self.report['summary']}. {saved}")
            for t in self.report["tasks"]:
                if t["contaminated"]:
                    label = t["task_id"] + (f" — {t['window_fraction']:.0%} of windows" if "window_fraction" in t else "")
                    item = QListWidgetItem(label)
                    item.setData(Qt.UserRole, t)
                    self.flagged.addItem(item)
        finally:
            self.cancel = None
            self.progress.hide()
            self.run_btn.setEnabled(True)
            self.cancel_btn.setEnabled(False)

    def _progress(self, p) -> None:
        self.progress.setValue(int(1000 * p.done_bytes / p.total_bytes) if p.total_bytes else 1000)
        self.status.setText(f"{p.done_bytes / 1e6:,.0f} of {p.total_bytes / 1e6:,.0f} MB, "
                            f"{p.done_bytes / 1e6 / max(p.elapsed_s, 1e-6):.0f} MB/s")

    def stop(self) -> None:
        if self.cancel is not None:
            self.cancel.set()

    def _show(self, item, _prev=None) -> None:
        if item is None:
            return
        t = item.data(Qt.UserRole)
        m = t["match"]
        prompt = self.problems[t["task_id"]]["prompt"]
        where = f"{m['file']}, record {m.get('record')}, field {m.get('field', '-')}"
        self.detail.setHtml(f"<h3>{t['task_id']}</h3><p>Found in {html.escape(where)}</p>"
                            + highlight_match(prompt, m["substring"], self.casefold.isChecked()))
