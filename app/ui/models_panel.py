"""Models panel: the catalog with fit and predicted speed here, the recommendations (the
window's one `advice`), a chart of speed here against published HumanEval, downloads through the
job registry with progress, speed, ETA and cancel, and the local models (import, delete)."""
from __future__ import annotations

import asyncio
import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QMessageBox, QProgressBar, QPushButton, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from app.models import advisor, catalog, download, gguf_file, local
from app.plain_words import plain
from app.ui.jobs import JobRefused

COLUMNS = ["Model file", "Quant", "Size", "Speed here", "Fit here", "RAM", "VRAM", "HumanEval",
           "Use", "Licence", "State"]
SPEED_COL = 3


class ModelsPanel(QWidget):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.recommendation = QLabel()
        self.recommendation.setWordWrap(True)
        self.recommendation.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
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
        self.table.setSortingEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel_download)
        import_btn.clicked.connect(self._import)
        delete_btn.clicked.connect(self._delete)
        from app.ui.speed_chart import SpeedChart

        self.chart = SpeedChart()
        self.chart.setMinimumHeight(180)   # readable axes in a short dock; more and the window outgrows 800 px
        self.local_table.setMaximumHeight(140)
        top = QSplitter()
        top.addWidget(self.table)
        top.addWidget(self.chart)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addWidget(self.recommendation)
        lay.addWidget(top, 3)
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

    def refresh(self, local_models=None) -> None:
        advice = self.window.advice
        if advice is None:  # the window fills the catalog once the machine is detected (off the GUI thread)
            self.refresh_local(local_models)
            return
        machine, n_ctx = advice.machine, self.window.settings.n_ctx
        ask, comp = advice.ask, advice.complete
        self.recommendation.setText(f"<b>Recommended here.</b> {ask.reason}<br>{comp.reason}")
        marks = {}
        for rec, what in ((ask, "★ Ask/Edit"), (comp, "★ completion")):
            if rec.file is not None:
                marks[rec.file.id] = (marks[rec.file.id] + ", " if rec.file.id in marks else "") + what
        # usable here first (best published HumanEval first), then too slow, then does not fit
        files = sorted(catalog.files(), key=lambda f: (
            f.id not in marks, advice.tps.get(f.id, 0.0) <= 0, advice.tps.get(f.id, 0.0) < advisor.INTERACTIVE_TPS,
            -f.humaneval, f.model, -f.bits, f.quant))
        # a downloaded file's infill mark is its own metadata's (the window's scan read the headers)
        scanned = {os.path.realpath(m.path): m.infill for m in (local_models or self.window.local_models or [])
                   if m.usable}
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(files))
        for r, f in enumerate(files):
            plan = advisor.fit(f, machine, n_ctx)
            tps = advice.tps.get(f.id, 0.0)
            path = download.cached_path(f.repo, f.filename)
            have = path is not None
            infill = scanned.get(os.path.realpath(path), f.infill) if have else f.infill
            state = ", ".join(x for x in ("downloaded" if have else "", marks.get(f.id, "")) if x)
            use = ("completion" if f.base else "Ask/Edit") + (" · infill" if infill else "")
            cells = [f.id, f.quant, f"{f.size_bytes / 1e9:.2f} GB",
                     f"{tps:.1f} tok/s" if tps else "—", plan.label, f"{plan.ram_bytes / 1e9:.1f} GB",
                     f"{plan.vram_bytes / 1e9:.1f} GB", f"{f.humaneval:.1f}", use, f.license, state]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 0:
                    item.setToolTip(f"{f.name}: {f.repo}/{f.filename}")
                elif c == SPEED_COL:
                    item.setData(Qt.UserRole, tps)
                    item.setToolTip("Predicted from this machine's measured speed" if advice.measured else
                                    "Estimated; loading a model measures this machine and refines it")
                elif c == 4:
                    item.setToolTip(plan.reason)
                elif c == 7:
                    item.setToolTip(f"Published pass@1 of the original model ({catalog_source(f)})")
                else:  # a narrow dock cuts the last columns: the tooltip has the whole cell
                    item.setToolTip(text)
                self.table.setItem(r, c, item)
            if ask.file and ask.file.id == f.id:
                self.table.selectRow(r)
        self.chart.draw(files, advice)
        self.refresh_local(local_models)

    def theme_changed(self) -> None:
        self.chart.restyle()

    def recommended_id(self) -> str | None:
        rec = self.window.advice.ask if self.window.advice else None
        return rec.file.id if rec and rec.file else None

    def refresh_local(self, models=None) -> None:
        """`models`: a scan already made; otherwise the window's last scan (no scan here: GGUF
        headers are read off the GUI thread, by `window.rescan_models()`)."""
        if models is None:
            models = self.window.local_models or []
        self.local_table.setRowCount(len(models))
        for r, m in enumerate(models):
            for c, text in enumerate([m.path, f"{m.size_bytes / 1e9:.2f} GB", m.repo or m.source,
                                      ("ok" + (" · infill" if m.infill else "")) if m.usable else m.problem]):
                self.local_table.setItem(r, c, QTableWidgetItem(text))

    # --- downloads -----------------------------------------------------------------------------
    def _download_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.start_download(self.table.item(rows[0].row(), 0).text())

    def start_download(self, file_id: str):
        """A download job in the registry (a second download of the same file is refused)."""
        f = catalog.find(file_id)
        try:
            # cancel is cooperative: the download thread sees the job's event and stops cleanly
            return self.window.jobs.start("download", f.id, f.filename, lambda job: self._download(f, job),
                                          on_cancel=lambda: None)
        except JobRefused as exc:
            self.progress_label.setText(str(exc))
            return None

    async def _download(self, f, job) -> None:
        loop = asyncio.get_running_loop()
        self.cancel_btn.setEnabled(True)
        self.progress_label.setText(f"Contacting the hub for {f.filename}…")

        def progress(p):  # called on the download thread: hand over to the GUI thread
            job.report(p.done, p.total, p.stage)
            loop.call_soon_threadsafe(self._show_progress, f, p)

        try:
            remote = await asyncio.to_thread(download.resolve, f.repo, f.filename)
            path = await asyncio.to_thread(download.Downloader(remote, cancel=job.cancel_event,
                                                               progress=progress).run)
            self.progress_label.setText(f"Downloaded and verified: {path}")
            await self.window.rescan_models()
        except download.DownloadError as exc:
            self.progress_label.setText(f"Download failed: {plain(exc)}")
        finally:
            self.cancel_btn.setEnabled(bool(self.window.jobs.running("download")[1:]))
            self.refresh()

    def _show_progress(self, f, p) -> None:
        self.progress.setValue(int(1000 * p.done / p.total) if p.total else 0)
        eta = f", {int(p.eta_s // 60)} min {int(p.eta_s % 60)} s left" if p.eta_s else ""
        self.progress_label.setText(f"{p.stage} {f.filename}: {p.done / 1e9:.2f} of {p.total / 1e9:.2f} GB, "
                                    f"{p.speed / 1e6:.1f} MB/s{eta}")

    def cancel_download(self) -> None:
        for job in self.window.jobs.running("download"):
            self.window.jobs.cancel(job)

    # --- local files ---------------------------------------------------------------------------
    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.import_model(path)

    def import_model(self, path: str):
        """Copy a model into the models folder as a registry job (a multi-GB copy: off the GUI thread)."""
        async def work(job):
            job.report(0, 0, f"Importing {path}…")
            self.progress_label.setText(f"Importing {path}…")
            try:
                m = await asyncio.to_thread(local.import_model, path)
                self.progress_label.setText(f"Imported {m.name}")
            except (gguf_file.GGUFError, ValueError, OSError) as exc:
                self.progress_label.setText(f"Import failed: {plain(exc)}")
            await self.window.rescan_models()

        try:
            return self.window.jobs.start("import", path, path, work)
        except JobRefused as exc:
            self.progress_label.setText(str(exc))
            return None

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
            QMessageBox.warning(self, "Delete", f"Could not delete {path}: {plain(exc)}")
        asyncio.ensure_future(self.window.rescan_models())


def catalog_source(f) -> str:
    return next((m.humaneval_source for m in catalog.MODELS if m.key == f.model), "")
