"""A damaged settings.json never stops the app, and settings reach the disk soon after a change
(issue 11, item 4)."""
import json

import pytest

from app import paths
from app.recovery import RecoveryStore
from app.settings import Settings
from tests.ui.conftest import dispose, until


def write_settings(text: str):
    folder = paths.ensure(paths.config_dir())
    (folder / "settings.json").write_text(text)
    return folder


@pytest.mark.parametrize("content", ["[1,2,3]", "null", "{not json", '"a string"'])
def test_a_damaged_settings_file_is_set_aside_and_defaults_used(content):
    folder = write_settings(content)
    s = Settings.load()
    assert s == Settings()
    assert "damaged" in s.problem and "renamed" in s.problem
    assert not (folder / "settings.json").exists()
    aside = list(folder.glob("settings.damaged-*.json"))
    assert len(aside) == 1 and aside[0].read_text() == content  # nothing of the user's is lost


def test_a_bad_value_is_dropped_and_the_good_ones_kept():
    write_settings(json.dumps({"window_geometry": "!!!", "font_size": 15, "theme": 3}))
    s = Settings.load()
    assert s.window_geometry == "" and s.theme == "system"
    assert s.font_size == 15
    assert "window_geometry" in s.problem and "theme" in s.problem


def test_the_window_starts_with_a_damaged_layout(qapp, tmp_path):
    write_settings(json.dumps({"window_geometry": "!!!", "window_state": "%%%", "last_model": "/m.gguf"}))
    from app.ui.app import build

    app, loop, window = build(Settings.load(), RecoveryStore(tmp_path / "recovery"))
    try:
        assert window.settings.last_model == "/m.gguf"
        assert "window_geometry" in window.settings.problem
        said = []
        window.tabs.warn = lambda title, text: said.append(text)
        window.report_settings_problem()
        assert len(said) == 1 and "renamed to settings.damaged-" in said[0]
    finally:
        dispose(loop, window)


def test_settings_are_saved_soon_after_a_change_without_closing(gui):
    w = gui.window
    w.settings.last_model = "/models/picked.gguf"
    w.settings.add_recent("/work/a.py")
    path = paths.config_dir() / "settings.json"

    def on_disk():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    gui.run(until(lambda: on_disk().get("last_model") == "/models/picked.gguf", timeout=10))
    assert on_disk()["recent_files"][0] == "/work/a.py"
    assert not list(path.parent.glob("*.tmp"))  # written through a temp file and a rename
