"""Models panel: the catalog with fit for this machine and the recommendation, downloads with
progress, speed, ETA, cancel and resume, and the local models (import, delete)."""
from __future__ import annotations

import asyncio
import threading

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QMessageBox, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from app.models import advisor, catalog, download, gguf_file, local

COLUMNS = ["Model file", "Quant", "Size", "Fit here", "RAM", "VRAM", "HumanEval", "Licence", "State"]


class ModelsPanel(QWidget):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.cancel: threading.Event | None = None
        self.recommendation = QLabel()
        self.recommendation.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setWordWrap(False)
        self.download_btn = QPushButton("Download selected")
        self.cancel_btn = QPushButton("Cancel download")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar(maximum=1000)
        self.progress_label = QLabel("")
        self.local_table = QTableWidget(0, 4)
        self.local_table.setHorizontalHeaderLabels(["Local model", "Size", "Where", "State"])
        self.local_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.local_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.local_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.local_table.verticalHeader().hide()
        import_btn, delete_btn = QPushButton("Import .gguf…"), QPushButton("Delete selected")
        self.download_btn.clicked.connect(self._download_selected)
        self.cancel_btn.clicked.connect(self.cancel_download)
        import_btn.clicked.connect(self._import)
        delete_btn.clicked.connect(self._delete)
        lay = QVBoxLayout(self)
        lay.addWidget(self.recommendation)
        lay.addWidget(self.table, 3)
        row = QHBoxLayout()
        for w in (self.download_btn, self.cancel_btn, self.progress):
            row.addWidget(w)
        lay.addLayout(row)
        lay.addWidget(self.progress_label)
        lay.addWidget(self.local_table, 2)
        row2 = QHBoxLayout()
        row2.addWidget(import_btn)
        row2.addWidget(delete_btn)
        row2.addStretch(1)
        lay.addLayout(row2)

    def refresh(self) -> None:
        machine = advisor.Machine.detect()
        rec = advisor.recommend(machine, self.window.settings.n_ctx)
        self.recommendation.setText(f"<b>Recommended for this machine:</b> {rec.reason}")
        files = catalog.files()
        self.table.setRowCount(len(files))
        for r, f in enumerate(files):
            plan = advisor.fit(f, machine, self.window.settings.n_ctx)
            have = download.cached_path(f.repo, f.filename) is not None
            state = "downloaded" if have else ("★ recommended" if rec.file and rec.file.id == f.id else "")
            cells = [f.id, f.quant, f"{f.size_bytes / 1e9:.2f} GB", plan.label, f"{plan.ram_bytes / 1e9:.1f} GB",
                     f"{plan.vram_bytes / 1e9:.1f} GB", f"{f.humaneval:.1f}", f.license, state]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 3:
                    item.setToolTip(plan.reason)
                self.table.setItem(r, c, item)
            if rec.file and rec.file.id == f.id:
                self.table.selectRow(r)
        self.refresh_local()

    def refresh_local(self) -> None:
        models = local.all_models()
        self.local_table.setRowCount(len(models))
        for r, m in enumerate(models):
            for c, text in enumerate([m.path, f"{m.size_bytes / 1e9:.2f} GB", m.repo or m.source,
                                      "ok" if m.usable else m.problem]):
                self.local_table.setItem(r, c, QTableWidgetItem(text))

    # --- downloads -----------------------------------------------------------------------------
    def _download_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.start_download(self.table.item(rows[0].row(), 0).text())

    def start_download(self, file_id: str) -> None:
        if self.cancel is not None:
            return
        asyncio.ensure_future(self._download(catalog.find(file_id)))

    async def _download(self, f) -> None:
        loop = asyncio.get_running_loop()
        self.cancel = threading.Event()
        self.cancel_btn.setEnabled(True)
        self.download_btn.setEnabled(False)
        self.progress_label.setText(f"Contacting the hub for {f.filename}…")

        def progress(p):  # called on the download thread: hand over to the GUI thread
            loop.call_soon_threadsafe(self._show_progress, f, p)

        try:
            remote = await asyncio.to_thread(download.resolve, f.repo, f.filename)
            path = await asyncio.to_thread(download.Downloader(remote, cancel=self.cancel, progress=progress).run)
            self.progress_label.setText(f"Downloaded and verified: {path}")
            self.window.model_bar.refresh_models()
        except download.DownloadError as exc:
            self.progress_label.setText(str(exc))
        finally:
            self.cancel = None
            self.cancel_btn.setEnabled(False)
            self.download_btn.setEnabled(True)
            self.refresh()

    def _show_progress(self, f, p) -> None:
        self.progress.setValue(int(1000 * p.done / p.total) if p.total else 0)
        eta = f", {int(p.eta_s // 60)} min {int(p.eta_s % 60)} s left" if p.eta_s else ""
        self.progress_label.setText(f"{p.stage} {f.filename}: {p.done / 1e9:.2f} of {p.total / 1e9:.2f} GB, "
                                    f"{p.speed / 1e6:.1f} MB/s{eta}")

    def cancel_download(self) -> None:
        if self.cancel is not None:
            self.cancel.set()

    # --- local files ---------------------------------------------------------------------------
    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            try:
                local.import_model(path)
            except (gguf_file.GGUFError, ValueError, OSError) as exc:
                QMessageBox.warning(self, "Import", str(exc))
            self.refresh_local()
            self.window.model_bar.refresh_models()

    def _delete(self) -> None:
        rows = self.local_table.selectionModel().selectedRows()
        if not rows:
            return
        path = self.local_table.item(rows[0].row(), 0).text()
        if QMessageBox.question(self, "Delete", f"Delete {path}?") != QMessageBox.Yes:
            return
        try:
            local.delete_model(path)
        except (ValueError, OSError) as exc:
            QMessageBox.warning(self, "Delete", str(exc))
        self.refresh_local()
        self.window.model_bar.refresh_models()
