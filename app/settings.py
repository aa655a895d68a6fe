"""Typed settings, saved as JSON in the config folder. The GUI binds its controls to these."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields

from app import paths


@dataclass
class Settings:
    theme: str = "system"              # light, dark, system
    pygments_style: str = "auto"       # auto picks one that suits the theme
    font_size: int = 11
    n_ctx: int = 4096
    gpu_layers: str = "auto"           # auto or a number
    threads: int = 0                   # 0: physical cores
    max_tokens: int = 512
    temperature: float = 0.2
    last_model: str = ""
    recent_files: list[str] = field(default_factory=list)
    project_folder: str = ""
    window_geometry: str = ""          # base64 of QMainWindow.saveGeometry()
    window_state: str = ""             # base64 of QMainWindow.saveState()
    autosave_s: float = 1.5
    # completion at the cursor (app/ui/editor/autocomplete.py)
    autocomplete: bool = True          # suggest as you type once a model is loaded
    autocomplete_debounce_ms: int = 250
    completion_max_lines: int = 8
    completion_model: str = ""         # optional second model for ghost text; "" = the chat model
    # Saved servers: {"url", "model", "key_env", "ca_bundle"}; the key itself lives in the keyring.
    servers: list[dict] = field(default_factory=list)
    source: str = ""                   # "" = this computer, else the URL of a saved server

    @classmethod
    def load(cls) -> "Settings":
        try:
            data = json.loads((paths.config_dir() / "settings.json").read_text())
        except (OSError, ValueError):
            return cls()
        known = {f.name for f in fields(cls)}
        s = cls()
        for k, v in data.items():
            if k in known and isinstance(v, type(getattr(s, k))):
                setattr(s, k, v)
        return s

    def save(self) -> None:
        path = paths.ensure(paths.config_dir()) / "settings.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    def add_recent(self, path: str, keep: int = 10) -> None:
        self.recent_files = [path] + [p for p in self.recent_files if p != path][: keep - 1]
