"""The dialog that adds a server: URL, API key (kept in the OS keyring, or named environment
variable), CA bundle, the model picked from the server's /v1/models, and "Test connection"."""
from __future__ import annotations

import asyncio

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget)

from app import credentials
from app.engine.base import EngineError
from app.engine.remote import RemoteEngine, public_url


class ServerDialog(QDialog):
    def __init__(self, parent=None, entry: dict | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add a server")
        entry = entry or {}
        self.url = QLineEdit(entry.get("url", ""), placeholderText="http://gpu-box:8080/v1")
        self.key = QLineEdit(echoMode=QLineEdit.Password, placeholderText="API key (kept in the system keyring)")
        self.key_env = QLineEdit(entry.get("key_env", ""), placeholderText="or: the name of an environment variable")
        self.ca = QLineEdit(entry.get("ca_bundle", ""), placeholderText="CA bundle for a private CA (optional)")
        ca_row = QWidget()
        row = QHBoxLayout(ca_row)
        row.setContentsMargins(0, 0, 0, 0)
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.ca)
        row.addWidget(browse)
        self.model = QComboBox(editable=True)
        if entry.get("model"):
            self.model.addItem(entry["model"])
        self.test_btn = QPushButton("Test connection")
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        form = QFormLayout(self)
        form.addRow("URL", self.url)
        form.addRow("API key", self.key)
        form.addRow("Key variable", self.key_env)
        form.addRow("CA bundle", ca_row)
        form.addRow("Model", self.model)
        form.addRow(self.test_btn, self.result)
        form.addRow(self.buttons)
        self.test_btn.clicked.connect(lambda: asyncio.ensure_future(self.test()))
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)
        self.entry: dict | None = None

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA bundle", "", "Certificates (*.pem *.crt);;All files (*)")
        if path:
            self.ca.setText(path)

    def _key(self) -> str | None:
        if self.key.text():
            return self.key.text()
        return credentials.load_key(public_url(self.url.text().strip()), self.key_env.text().strip())

    async def test(self) -> bool:
        """Connect, list the models, and show the latency; True when it worked."""
        self.test_btn.setEnabled(False)
        self.result.setText("Connecting…")
        engine = RemoteEngine(self.url.text().strip(), api_key=self._key(), ca_bundle=self.ca.text().strip() or None,
                              api_model=None)
        try:
            await engine.connect()
        except EngineError as exc:
            self.result.setText(f"Failed: {exc}")
            return False
        finally:
            await engine.close()
            self.test_btn.setEnabled(True)
        current = self.model.currentText()
        self.model.clear()
        self.model.addItems(engine.models)
        if current in engine.models:
            self.model.setCurrentText(current)
        extra = [k for k, v in engine.endpoints.items() if v]
        self.result.setText(f"Connected in {engine.latency_s * 1000:.0f} ms · {len(engine.models)} model(s)"
                            + (" · llama-server: " + ", ".join("/" + e for e in extra) if extra else ""))
        return True

    def _save(self) -> None:
        url = public_url(self.url.text().strip())
        if not url.startswith(("http://", "https://")):
            self.result.setText("Give the server's URL, e.g. http://gpu-box:8080/v1")
            return
        if self.key.text():
            try:
                credentials.save_key(url, self.key.text())
            except credentials.NoKeyring as exc:
                self.result.setText(str(exc))
                self.key.clear()
                self.key_env.setFocus()
                return
        self.entry = {"url": url, "model": self.model.currentText(), "key_env": self.key_env.text().strip(),
                      "ca_bundle": self.ca.text().strip()}
        self.accept()
