"""Model bar: the source ("This computer" or a saved server), a local model to load or unload with
progress, GPU layers (auto, with the planner's explanation), context size, threads; a server to
connect to; the engine's state with a restart or reconnect; and "Serve" (the loaded model over
an OpenAI-compatible API for other editors)."""
from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QSizePolicy, QSpinBox, QWidget)

from app.engine.base import EngineError, open_engine
from app.plain_words import plain

BROWSE = "Open a .gguf file…"
THIS_COMPUTER = "This computer"
ADD_SERVER = "Add server…"


class ModelBar(QWidget):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.local_engine = window.engine   # the worker; a server's engine replaces it while connected
        self.served = None
        self.source = QComboBox()
        self.source.setToolTip("Where the model runs: this computer, or a server (llama-server, vLLM, Ollama, …)")
        self.serve_btn = QPushButton("Serve")
        self.serve_btn.setToolTip("Serve the loaded model over an OpenAI-compatible API (for Continue, Zed, …)")
        self.model = QComboBox()
        self.model.setMinimumWidth(200)
        # a long model name must not widen the window past 1280 px: elide it, the tooltip has it all
        self.model.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.model.setMinimumContentsLength(20)
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
        self._offering = False    # the state line offers the download
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        self.local_only: list[QWidget] = []
        for label, w in (("Source", self.source), ("Model", self.model), (None, self.load_btn),
                         ("GPU layers", self.gpu), ("Context", self.ctx), ("Threads", self.threads),
                         (None, self.progress), (None, self.restart_btn), (None, self.download_btn),
                         (None, self.serve_btn)):
            if label:
                lab = QLabel(label)
                row.addWidget(lab)
                if w in (self.model, self.gpu, self.ctx, self.threads):
                    self.local_only.append(lab)
            row.addWidget(w)
        self.local_only += [self.model, self.gpu, self.ctx, self.threads]
        row.addWidget(self.state, 1)
        self.source.activated.connect(self._source_picked)
        self.serve_btn.clicked.connect(lambda: asyncio.ensure_future(self.toggle_serve()))
        self.load_btn.clicked.connect(self.toggle_load)
        self.restart_btn.clicked.connect(self.restart)
        self.model.activated.connect(self._picked)
        s = window.settings
        self.gpu.setCurrentText(s.gpu_layers)
        self.ctx.setCurrentText(str(s.n_ctx))
        self.threads.setValue(s.threads)
        self.refresh_sources()

    # --- model list ----------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """The list from the window's one scan (`window.local_models`, made off the GUI thread by
        the job registry; `window.rescan_models()` makes a new one): reading GGUF headers here
        would block the window on a slow disk."""
        current = self.model.currentData() or self.window.settings.last_model
        self.model.clear()
        for m in self.window.local_models or []:
            if m.usable:
                label = f"{m.name}  ({m.size_bytes / 1e9:.1f} GB{', ' + m.repo if m.repo else ''})"
                self.model.addItem(label, m.path)
                self.model.setItemData(self.model.count() - 1, f"{label}\n{m.path}", Qt.ToolTipRole)
        self.model.addItem(BROWSE, None)
        i = self.model.findData(current)
        if i >= 0:
            self.model.setCurrentIndex(i)
        has_models = self.model.count() > 1
        self.download_btn.setVisible(not has_models and self._offer_recommendation())
        if has_models and self.window.engine.info is None and self._offering:
            self.state.setText("No model loaded")   # the offer to download is no longer true
            self.state.setToolTip("")
            self._offering = False

    def _offer_recommendation(self) -> bool:
        # the window's one advice, so the toolbar names the file the welcome page and Models name
        advice = getattr(self.window, "advice", None)
        rec = advice.ask if advice is not None else None
        if rec is None or rec.file is None:
            return False
        # the file's name can be long: the button stays short, the tooltip names the file
        self.download_btn.setText(f"Download recommended ({rec.file.size_bytes / 1e9:.1f} GB)")
        self.download_btn.setToolTip(f"{rec.file.id}\n{rec.reason}")
        if self.window.engine.info is None:
            self.state.setText("No model yet: download the recommended one, or open a .gguf file.")
            self.state.setToolTip(rec.reason)
            self._offering = True
        self._recommended = rec.file.id
        return True

    def _download_recommended(self) -> None:
        if self._recommended:
            self.window.start_download(self._recommended)

    def _picked(self, index: int) -> None:
        if self.model.itemData(index) is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", "", "GGUF models (*.gguf)")
            if path:
                self.model.insertItem(0, Path(path).name, path)
                self.model.setCurrentIndex(0)

    # --- source: this computer or a saved server -----------------------------------------------
    def refresh_sources(self) -> None:
        s = self.window.settings
        self.source.clear()
        self.source.addItem(THIS_COMPUTER, "")
        for entry in s.servers:
            self.source.addItem(f"{entry.get('model') or 'server'} @ {entry['url']}", entry["url"])
        self.source.addItem(ADD_SERVER, None)
        i = self.source.findData(s.source)
        self.source.setCurrentIndex(max(0, i))
        self._show_source()

    def server_entry(self) -> dict | None:
        url = self.source.currentData()
        return next((e for e in self.window.settings.servers if e["url"] == url), None) if url else None

    def _show_source(self) -> None:
        remote = self.server_entry() is not None
        for w in self.local_only:
            w.setVisible(not remote)
        if self.window.engine.info is None:
            self.load_btn.setText("Connect" if remote else "Load")

    def _source_picked(self, index: int) -> None:
        if self.source.itemData(index) is None:  # "Add server…"
            from app.ui.server_dialog import ServerDialog

            dialog = ServerDialog(self)
            dialog.finished.connect(lambda _: self._server_added(dialog.entry))
            dialog.open()
            return
        self.window.settings.source = self.source.itemData(index) or ""
        self._show_source()

    def _server_added(self, entry: dict | None) -> None:
        s = self.window.settings
        if entry is not None:
            s.servers = [e for e in s.servers if e["url"] != entry["url"]] + [entry]
            s.source = entry["url"]
        self.refresh_sources()

    async def connect_server(self, entry: dict) -> bool:
        from app import credentials
        from app.engine.remote import RemoteEngine

        await self.disconnect_server()
        await self._stop_serving()   # (it served the local model, which goes now)
        if self.local_engine.info is not None:  # one model in memory at a time
            await self.local_engine.unload()
            await self.local_engine.close()
        self.load_btn.setEnabled(False)
        self.restart_btn.hide()
        self.state.setText(f"Connecting to {entry['url']}…")
        engine = RemoteEngine(entry["url"], api_model=entry.get("model") or None,
                              api_key=credentials.load_key(entry["url"], entry.get("key_env", "")),
                              ca_bundle=entry.get("ca_bundle") or None, on_state=self._remote_state)
        try:
            await engine.connect()
        except EngineError as exc:
            await engine.close()
            self.state.setText(f"Could not connect: {plain(exc)}")
            self.restart_btn.setText("Reconnect")
            self.restart_btn.show()
            return False
        finally:
            self.load_btn.setEnabled(True)
        self.window.engine = engine
        self.load_btn.setText("Disconnect")
        self.state.setText(f"{engine.api_model} @ {engine.url} · ctx {engine.info.n_ctx or '?'} · "
                           f"{engine.parallel_slots} slot(s) · {engine.latency_s * 1000:.0f} ms")
        self.state.setToolTip("\n".join(f"{k}: {v}" for k, v in engine.describe()))
        self.window.model_available()
        return True

    async def disconnect_server(self) -> None:
        engine = self.window.engine
        if engine is not self.local_engine:
            await self._stop_serving()
            self.window.engine = self.local_engine
            await engine.close()
            self.load_btn.setText("Connect" if self.server_entry() else "Load")
            self.state.setText("Not connected")
            self.state.setToolTip("")

    def _remote_state(self, state: str, detail: str) -> None:
        if state == "lost":  # the editor keeps its text; one click reconnects
            self.state.setText(f"Server lost: {plain(detail)}")
            self.restart_btn.setText("Reconnect")
            self.restart_btn.show()

    # --- serve the loaded model ----------------------------------------------------------------
    async def toggle_serve(self, port: int = 8080) -> str | None:
        from app.engine.serve import ThreadedServer as Server

        if self.served is not None:
            await self._stop_serving()
            return None
        if self.window.engine.info is None:
            self.state.setText("Load a model first, then serve it.")
            return None
        server = Server(self.window.engine, "127.0.0.1", port)
        try:
            url = await server.start()
        except OSError:  # the port is taken: any free one
            server = Server(self.window.engine, "127.0.0.1", 0)
            try:
                url = await server.start()
            except OSError as exc:
                self.state.setText(f"Could not serve the model: {plain(exc)}")
                return None
        self.served = server
        self.serve_btn.setText("Stop serving")
        self.serve_btn.setToolTip(f"Serving at {url}")
        self.state.setText(f"Serving the loaded model at {url}")
        return url

    async def _stop_serving(self) -> bool:
        """Serving ends with the model it serves (an unload, another source): False if none ran."""
        if self.served is None:
            return False
        await self.served.stop()
        self.served = None
        self.serve_btn.setText("Serve")
        self.serve_btn.setToolTip("Serve the loaded model over an OpenAI-compatible API")
        return True

    # --- load / unload -------------------------------------------------------------------------
    def toggle_load(self) -> None:
        entry = self.server_entry()
        if self.window.engine is not self.local_engine:
            asyncio.ensure_future(self.disconnect_server())
        elif entry is not None:
            asyncio.ensure_future(self.connect_server(entry))
        elif self.window.engine.info is not None:
            asyncio.ensure_future(self.unload())
        else:
            path = self.model.currentData()
            if path:
                asyncio.ensure_future(self.load(path))

    def gpu_layers_text(self) -> str:
        text = self.gpu.currentText().strip()
        if text != "auto" and not text.lstrip("-").isdigit():
            self.gpu.setCurrentText("auto")
            text = "auto"
        return text

    async def load(self, path: str, parallel: int | None = None, exact: bool = False) -> bool:
        """Load a model file; `parallel`: sequence slots (default: what the self-test measured
        for this model and backend, else 1); `exact`: as the self-test loads it (P.Load)."""
        s = self.window.settings
        n_ctx = int(self.ctx.currentText())
        self.load_btn.setEnabled(False)
        self.progress.setValue(0)
        self.progress.show()
        self.state.setText(f"Loading {Path(path).name}…")
        self.state.setToolTip("")
        try:
            # the planner asks nvidia-smi (up to 10 s): off the GUI thread, and open_engine is
            # handed its answers so that it need not ask again
            n_gpu, why, threads = await asyncio.to_thread(
                plan_load, path, self.gpu_layers_text(), n_ctx, self.threads.value())
            if parallel is None:
                parallel = await asyncio.to_thread(measured_parallel, path)
            engine = await open_engine(
                path, n_ctx=n_ctx, gpu_layers=n_gpu, threads=threads, parallel=parallel, exact=exact,
                into=self.local_engine, progress=lambda stage, f: self.progress.setValue(int(f * 1000)))
            engine.info.offload_note = why
        except EngineError as exc:
            self.state.setText(f"Could not load {Path(path).name}: {plain(exc)}")
            return False
        finally:
            self.progress.hide()
            self.load_btn.setEnabled(True)
        s.last_model, s.n_ctx, s.gpu_layers, s.threads = path, n_ctx, self.gpu.currentText(), self.threads.value()
        self.load_btn.setText("Unload")
        self.restart_btn.hide()
        loaded = engine.info
        self.state.setText(f"{loaded.name} · {loaded.quantization} · {loaded.layers} layers · "
                           f"ctx {loaded.n_ctx} · {loaded.load_s:.1f} s")
        self.state.setToolTip(loaded.offload_note)
        return True

    async def unload(self) -> None:
        stopped = await self._stop_serving()
        await self.window.engine.unload()
        self.load_btn.setText("Load")
        self.state.setText("No model loaded" + ("; serving stopped" if stopped else ""))
        self.state.setToolTip("")   # the unloaded model's offload plan

    def crashed(self, message: str) -> None:
        self.state.setText(f"Engine stopped: {plain(message)}")
        self.restart_btn.show()

    def restart(self) -> None:
        entry = self.server_entry()
        if entry is not None:
            self.restart_btn.hide()
            asyncio.ensure_future(self.connect_server(entry))
            return
        info = self.window.engine.info
        path = info.path if info else self.model.currentData()
        self.restart_btn.hide()
        if path:
            asyncio.ensure_future(self.load(path))


def measured_parallel(path: str) -> int:
    """The sequence count the self-test's probe picked for this file and backend, else 1."""
    from app.engine import hardware, parallel_probe

    try:
        return parallel_probe.cached(path, hardware.detect_backend()) or 1
    except OSError:
        return 1


def plan_load(path: str, gpu_layers: str, n_ctx: int, threads: int) -> tuple[int, str, int]:
    """GPU layers (with the planner's reason) and threads for a load. Blocking (the GGUF header,
    nvidia-smi for the free GPU memory): run it in a thread."""
    from app.engine import hardware
    from app.models import advisor, gguf_file

    cores = hardware.bound_threads(threads, advisor.detected_hardware())  # the cores do not change
    try:
        info = gguf_file.inspect(path)
    except gguf_file.GGUFError:
        return 0, "", cores   # open_engine reports the bad file in its own words
    n_gpu, why = hardware.resolve_gpu_layers(gpu_layers, info, n_ctx)  # free GPU memory: asked now
    return n_gpu, why, cores
