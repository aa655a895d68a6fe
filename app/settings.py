"""Typed settings, saved as JSON in the config folder. The GUI binds its controls to these.

A settings file that cannot be read as these settings (not JSON, not an object, a value of the
wrong type) never stops the app: it is renamed aside, `problem` says so, and the defaults are
used. Saving is atomic (app.atomic), so a crash mid-save leaves the previous file whole.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
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
    open_files: list[dict] = field(default_factory=list)   # [{"path": ..., "cursor": n}], in tab order
    current_file: str = ""
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
    problem: str = field(default="", compare=False, repr=False)  # why the file was set aside (not saved)

    @classmethod
    def file(cls):
        return paths.config_dir() / "settings.json"

    @classmethod
    def load(cls) -> "Settings":
        path = cls.file()
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            s = cls()
            s.problem = f"Could not read the settings ({exc.strerror}); using the defaults."
            return s
        try:
            s, bad = cls.from_dict(json.loads(raw))
        except ValueError as exc:
            s, bad = cls(), str(exc)
        if bad:
            aside = path.with_name(f"settings.damaged-{time.strftime('%Y%m%d-%H%M%S')}.json")
            try:
                path.replace(aside)
                where = f"it was renamed to {aside.name}"
            except OSError:
                where = "it could not be renamed"
            s.problem = f"The settings file was damaged ({bad}); {where} and the defaults are used for what it got wrong."
        return s

    @classmethod
    def from_dict(cls, data) -> tuple["Settings", str]:
        """Settings from parsed JSON: the values that fit, defaults for the rest, and what did not fit."""
        s = cls()
        if not isinstance(data, dict):
            return s, f"expected an object, found {type(data).__name__}"
        bad = []
        for f in fields(cls):
            if f.name not in data or f.name == "problem":
                continue
            v, default = data[f.name], getattr(s, f.name)
            if isinstance(default, float) and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if type(v) is not type(default) or not _fits(f.name, v):  # bool is not an int here
                bad.append(f.name)
                continue
            setattr(s, f.name, v)
        return s, ", ".join(f"bad {name}" for name in bad)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("problem")
        return d

    def save(self) -> None:
        from app.atomic import write_atomic  # (hashlib and friends: not on the way to the window)

        paths.ensure(paths.config_dir())
        write_atomic(self.file(), json.dumps(self.to_dict(), indent=1))

    def add_recent(self, path: str, keep: int = 10) -> None:
        self.recent_files = [path] + [p for p in self.recent_files if p != path][: keep - 1]


def _fits(name: str, value) -> bool:
    if name in ("window_geometry", "window_state"):
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
    if name == "recent_files":
        return all(isinstance(p, str) for p in value)
    if name == "servers":
        return all(isinstance(e, dict) and isinstance(e.get("url"), str) for e in value)
    if name == "open_files":
        return all(isinstance(o, dict) and isinstance(o.get("path"), str) for o in value)
    return True
