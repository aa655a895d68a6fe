"""The window shell (issue 12): editor-first layout, activity bar, status bar, command palette,
themes, keyboard, the workspace after a restart, and no app.commands imports in the GUI."""
import ast
import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette, QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from app.recovery import RecoveryStore
from app.settings import Settings
from app.ui import theme
from tests.ui.conftest import dispose, until


def settle(gui, s=0.2):
    gui.run(asyncio.sleep(s))
    gui.app.processEvents()


def visible_lines(editor) -> int:
    return editor.viewport().height() // editor.fontMetrics().lineSpacing()


def test_default_layout_at_1280x800_shows_30_editor_lines(qapp, tmp_path):
    from app.ui.app import build

    app, loop, window = build(Settings(), RecoveryStore(tmp_path / "recovery"))
    try:
        window.resize(1280, 800)
        window.show()
        window.startup(ask_recovery=lambda: None)
        for _ in range(5):
            app.processEvents()
        assert not window.models_dock.isVisible() and not window.bench_dock.isVisible()
        assert not window.decontam_dock.isVisible()
        assert window.width() <= 1280, "the toolbar must not widen the window past 1280 px"
        window.tabs.new_tab("a.py", "x = 1\n")  # the first run's welcome page gives way to the editor
        for _ in range(5):
            app.processEvents()
        assert visible_lines(window.current_editor()) >= 30
        # the activity bar opens a panel, and again closes it
        act = window.models_dock.toggleViewAction()
        assert act in window.activity.actions() and not act.icon().isNull()
        act.trigger()
        assert window.models_dock.isVisible()
        act.trigger()
        assert not window.models_dock.isVisible()
        labels = [window.status_engine, window.status_model, window.status_speed, window.status_ctx]
        assert all(lbl in window.statusBar().findChildren(type(lbl)) for lbl in labels)
    finally:
        dispose(loop, window)


def test_command_palette_lists_every_action_with_its_shortcut(gui):
    from app.ui.command_palette import CommandPalette, menu_actions

    w = gui.window
    palette = CommandPalette(w)
    labels = palette.labels()
    every = menu_actions(w.menuBar())
    assert len(labels) == len(every) > 20
    assert any(lbl.startswith("File: Save\t") and "Ctrl+S" in lbl for lbl in labels)
    assert any(lbl.startswith("View: Command palette") and "Ctrl+Shift+P" in lbl for lbl in labels)
    palette.filter.setText("zoom in")
    assert [lbl.split("\t")[0] for lbl in palette.labels()] == ["Edit: Zoom in"]
    editor = w.current_editor() or w.tabs.new_tab()
    size = editor.font().pointSize()
    palette.run_selected()
    assert editor.font().pointSize() == size + 1


def test_dark_then_system_restores_the_system_palette_and_highlighting(gui):
    w = gui.window
    system = QPalette(theme.system_palette())
    tab = w.tabs.new_tab("a.py", "def f():\n    return 1\n")
    w.set_theme("dark")
    assert theme.is_dark() and tab.highlighter.style.name == theme.DARK_STYLE
    w.set_theme("system")
    now = QGuiApplication.palette()
    for role in (QPalette.Window, QPalette.Base, QPalette.Text, QPalette.ButtonText):
        assert now.color(role) == system.color(role)
    expected = theme.DARK_STYLE if theme.is_dark(system) else theme.LIGHT_STYLE
    assert tab.highlighter.style.name == expected


@pytest.mark.parametrize("name", ["light", "dark", "system"])
def test_a_disabled_button_looks_disabled_in_every_theme(gui, name):
    gui.window.set_theme(name)
    try:
        b = QPushButton("Stop")
        b.setEnabled(False)
        pal = b.palette()
        assert pal.color(QPalette.Disabled, QPalette.ButtonText) != pal.color(QPalette.Active, QPalette.ButtonText)
        assert pal.color(QPalette.Disabled, QPalette.WindowText) != pal.color(QPalette.Active, QPalette.WindowText)
    finally:
        gui.window.set_theme("system")


def focus(gui, widget):
    gui.window.activateWindow()
    widget.setFocus()
    settle(gui, 0.05)


def test_keyboard_zoom_find_and_escape(gui):
    w = gui.window
    tab = w.tabs.new_tab("k.py", "alpha\nBeta beta\ngamma\n")
    focus(gui, tab)
    size = tab.font().pointSize()
    QTest.keyClick(tab, Qt.Key_Equal, Qt.ControlModifier)
    assert tab.font().pointSize() == size + 1
    QTest.keyClick(tab, Qt.Key_Minus, Qt.ControlModifier)
    assert tab.font().pointSize() == size
    QTest.keyClick(tab, Qt.Key_F, Qt.ControlModifier)
    assert w.find_bar.isVisible() and not w.find_bar.replace_edit.isVisible()
    assert not any(b.isVisible() for b in w.find_bar.replace_widgets)
    QTest.keyClick(w.find_bar.find_edit, Qt.Key_Escape)
    assert not w.find_bar.isVisible()
    focus(gui, tab)
    QTest.keyClick(tab, Qt.Key_H, Qt.ControlModifier)
    assert w.find_bar.isVisible() and all(b.isVisible() for b in w.find_bar.replace_widgets)
    QTest.keyClick(w.find_bar.find_edit, Qt.Key_Escape)
    assert not w.find_bar.isVisible()
    w.find_bar.open(tab)
    QTest.keyClick(tab, Qt.Key_Escape)  # Esc in the editor closes it too
    assert not w.find_bar.isVisible()


def test_replace_ignores_case_and_a_failed_find_keeps_the_cursor(gui):
    w = gui.window
    tab = w.tabs.new_tab("r.py", "Value = 1\nvalue = 2\n")
    bar = w.find_bar
    bar.open(tab, replace=True)
    bar.case.setChecked(False)
    c = tab.textCursor()
    c.setPosition(14)
    tab.setTextCursor(c)
    bar.find_edit.setText("nothing like it")
    assert not bar.find()
    assert tab.textCursor().position() == 14 and not tab.textCursor().hasSelection()
    bar.find_edit.setText("value")
    bar.replace_edit.setText("total")
    c.setPosition(0)
    tab.setTextCursor(c)
    assert bar.find()           # selects "Value"
    bar.replace()
    assert tab.toPlainText().startswith("total = 1\n")


def test_a_typed_context_size_is_kept(gui):
    from app.ui.settings_dialog import SettingsDialog

    s = gui.window.settings
    s.n_ctx = 12000
    dlg = SettingsDialog(s, gui.window)
    assert dlg.n_ctx.currentText() == "12000"
    dlg.apply()
    assert s.n_ctx == 12000
    dlg.n_ctx.setCurrentText("6144")
    dlg.apply()
    assert s.n_ctx == 6144


def test_workspace_comes_back_after_a_restart(qapp, tmp_path):
    from app.ui.app import build

    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("one\ntwo\nthree\n")
    b.write_text("x = 1\n" * 50)
    app, loop, window = build(Settings(), RecoveryStore(tmp_path / "recovery"))
    window.show()
    window.models_dock.show()
    ta, tb = window.tabs.open_file(str(a)), window.tabs.open_file(str(b))
    c = ta.textCursor()
    c.setPosition(6)
    ta.setTextCursor(c)
    c = tb.textCursor()
    c.setPosition(120)
    tb.setTextCursor(c)
    window.tabs.setCurrentWidget(ta)
    dispose(loop, window)

    app, loop, window = build(Settings.load(), RecoveryStore(tmp_path / "recovery"))
    try:
        window.show()
        window.restore_workspace()
        window.startup(ask_recovery=lambda: None)
        paths = [t.path for t in window.tabs.editors()]
        assert paths[:2] == [str(a), str(b)]
        assert window.current_editor().path == str(a)
        assert window.tabs.editors()[0].textCursor().position() == 6
        assert window.tabs.editors()[1].textCursor().position() == 120
        assert window.models_dock.isVisible()
    finally:
        dispose(loop, window)


def test_status_bar_shows_model_speed_and_context_of_the_current_request(gui, smollm):
    w = gui.window
    w.settings.max_tokens = 24

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        loaded_at_once = w.status_model.text()   # not after the status bar's next 500 ms tick
        w.tabs.new_tab("s.py", "x = 1\n")
        w.assistant.prompt.setPlainText("Say hello.")
        w.assistant.ask()
        await until(lambda: w.assistant.generation is not None and w.assistant.generation.done, timeout=120)
        await asyncio.sleep(0.7)
        return loaded_at_once

    loaded_at_once = gui.run(scenario())
    assert loaded_at_once == w.status_model.text() == Path(smollm).stem
    assert "tok/s" in w.status_speed.text() and w.status_speed.text() != "… tok/s"
    assert w.status_ctx.text().startswith("context ") and "/4,096" in w.status_ctx.text()
    assert w.status_engine.text() == "Engine: ready"


def test_the_gui_does_not_import_app_commands():
    ui = Path(__file__).resolve().parents[2] / "app" / "ui"
    offenders = []
    for f in ui.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{f.name}: {n}" for n in names if n.startswith("app.commands")]
    assert offenders == []
