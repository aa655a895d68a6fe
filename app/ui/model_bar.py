"""Model bar: pick a local model, load or unload it with progress, GPU layers (auto, with the
planner's explanation), context size, threads, and the engine's state with a restart."""
from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QSizePolicy, QSpinBox, QWidget)

from app.engine import hardware
from app.engine.client import EngineError
from app.models import gguf_file, local

BROWSE = "Open a .gguf file…"


class ModelBar(QWidget):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.model = QComboBox()
        self.model.setMinimumWidth(260)
        self.model.setToolTip("Downloaded and local GGUF models")
        self.load_btn = QPushButton("Load")
        self.gpu = QComboBox(editable=True)
        self.gpu.addItems(["auto", "0", "-1"])
        self.gpu.setToolTip("GPU layers: auto asks the planner; -1 puts every layer on the GPU")
        self.ctx = QComboBox()
        self.ctx.addItems(["2048", "4096", "8192", "16384"])
        self.threads = QSpinBox(minimum=0, maximum=256, specialValueText="auto")
        self.threads.setToolTip("CPU threads (auto: physical cores)")
        self.progress = QProgressBar(maximum=1000, textVisible=False)
        self.progress.setFixedWidth(120)
        self.progress.hide()
        self.state = QLabel("No model loaded")
        self.state.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.state.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # long text must not widen the window
        self.restart_btn = QPushButton("Restart engine")
        self.restart_btn.hide()
        self.download_btn = QPushButton("Download recommended")
        self.download_btn.hide()
        self.download_btn.clicked.connect(self._download_recommended)  # once: refreshes only retarget it
        self._recommended = None
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        for label, w in (("Model", self.model), (None, self.load_btn), ("GPU layers", self.gpu),
                         ("Context", self.ctx), ("Threads", self.threads), (None, self.progress),
                         (None, self.restart_btn), (None, self.download_btn)):
            if label:
                row.addWidget(QLabel(label))
            row.addWidget(w)
        row.addWidget(self.state, 1)
        self.load_btn.clicked.connect(self.toggle_load)
        self.restart_btn.clicked.connect(self.restart)
        self.model.activated.connect(self._picked)
        s = window.settings
        self.gpu.setCurrentText(s.gpu_layers)
        self.ctx.setCurrentText(str(s.n_ctx))
        self.threads.setValue(s.threads)

    # --- model list ----------------------------------------------------------------------------
    def refresh_models(self) -> None:
        current = self.model.currentData() or self.window.settings.last_model
        self.model.clear()
        for m in local.all_models():
            if m.usable:
                self.model.addItem(f"{m.name}  ({m.size_bytes / 1e9:.1f} GB{', ' + m.repo if m.repo else ''})", m.path)
        self.model.addItem(BROWSE, None)
        i = self.model.findData(current)
        if i >= 0:
            self.model.setCurrentIndex(i)
        has_models = self.model.count() > 1
        self.download_btn.setVisible(not has_models)
        if not has_models:
            self._offer_recommendation()

    def _offer_recommendation(self) -> None:
        from app.models import advisor

        rec = advisor.recommend(advisor.Machine.detect(), self.window.settings.n_ctx)
        if rec.file is not None:
            self.download_btn.setText(f"Download {rec.file.id} ({rec.file.size_bytes / 1e9:.1f} GB)")
            self.download_btn.setToolTip(rec.reason)
            self.state.setText("No model yet: download the recommended one, or open a .gguf file.")
            self.state.setToolTip(rec.reason)
            self._recommended = rec.file.id

    def _download_recommended(self) -> None:
        if self._recommended:
            self.window.start_download(self._recommended)

    def _picked(self, index: int) -> None:
        if self.model.itemData(index) is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", "", "GGUF models (*.gguf)")
            if path:
                self.model.insertItem(0, Path(path).name, path)
                self.model.setCurrentIndex(0)

    # --- load / unload -------------------------------------------------------------------------
    def toggle_load(self) -> None:
        if self.window.engine.info is not None:
            asyncio.ensure_future(self.unload())
        else:
            path = self.model.currentData()
            if path:
                asyncio.ensure_future(self.load(path))

    def gpu_layers_for(self, info: gguf_file.GGUFInfo, n_ctx: int) -> tuple[int, str]:
        text = self.gpu.currentText().strip()
        if text != "auto" and not text.lstrip("-").isdigit():
            self.gpu.setCurrentText("auto")
            text = "auto"
        return hardware.resolve_gpu_layers(text, info, n_ctx)

    async def load(self, path: str) -> bool:
        s = self.window.settings
        n_ctx = int(self.ctx.currentText())
        self.load_btn.setEnabled(False)
        self.progress.setValue(0)
        self.progress.show()
        self.state.setText(f"Loading {Path(path).name}…")
        try:
            info = await asyncio.to_thread(gguf_file.inspect, path)
            layers, why = self.gpu_layers_for(info, n_ctx)
            threads = self.threads.value() or hardware.detect().default_threads
            loaded = await self.window.engine.load(
                path, n_ctx=n_ctx, n_gpu_layers=layers, n_threads=threads,
                progress=lambda stage, f: self.progress.setValue(int(f * 1000)))
        except (gguf_file.GGUFError, EngineError) as exc:
            self.state.setText(f"Could not load: {exc}")
            return False
        finally:
            self.progress.hide()
            self.load_btn.setEnabled(True)
        s.last_model, s.n_ctx, s.gpu_layers, s.threads = path, n_ctx, self.gpu.currentText(), self.threads.value()
        self.load_btn.setText("Unload")
        self.restart_btn.hide()
        self.state.setText(f"{loaded.name} · {loaded.quantization} · {loaded.layers} layers · "
                           f"ctx {loaded.n_ctx} · {loaded.load_s:.1f} s")
        self.state.setToolTip(why)
        return True

    async def unload(self) -> None:
        await self.window.engine.unload()
        self.load_btn.setText("Load")
        self.state.setText("No model loaded")

    def crashed(self, message: str) -> None:
        self.state.setText(f"Engine stopped: {message}")
        self.restart_btn.show()

    def restart(self) -> None:
        info = self.window.engine.info
        path = info.path if info else self.model.currentData()
        self.restart_btn.hide()
        if path:
            asyncio.ensure_future(self.load(path))
