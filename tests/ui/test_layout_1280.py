"""At 1280x800 (issue 12): with the assistant open the editor keeps most of the width, and the
HumanEval panel fits the window's height."""
from app.recovery import RecoveryStore
from app.settings import Settings
from tests.ui.conftest import dispose


def _window(tmp_path):
    from app.ui.app import build

    app, loop, window = build(Settings(), RecoveryStore(tmp_path / "recovery"))
    window.resize(1280, 800)
    window.show()
    window.startup(ask_recovery=lambda: None)
    window.tabs.new_tab("a.py", "x = 1\n")   # past the first run's welcome page
    for _ in range(5):
        app.processEvents()
    return app, loop, window


def test_the_editor_is_at_least_as_wide_as_the_open_assistant(qapp, tmp_path):
    app, loop, window = _window(tmp_path)
    try:
        window.show_panel("assistant")
        for _ in range(5):
            app.processEvents()
        assert window.assistant_dock.isVisible()
        assert window.width() <= 1280
        editor_w, dock_w = window.centralWidget().width(), window.assistant_dock.width()
        assert editor_w >= dock_w, f"editor {editor_w} px, assistant {dock_w} px"
        # every assistant action is still there, named in full by its text or its tooltip
        for b in (window.assistant.ask_btn, window.assistant.edit_btn, window.assistant.complete_btn,
                  window.assistant.stop_btn, window.assistant.regen_btn, window.assistant.clear_btn):
            assert b.isVisible() and b.width() >= b.minimumSizeHint().width()
            assert b.toolTip()
    finally:
        dispose(loop, window)


def test_the_bottom_panels_fit_800_px_one_after_another(qapp, tmp_path):
    """They share one tabbed dock: its height is the tallest panel's minimum."""
    app, loop, window = _window(tmp_path)
    try:
        for name, dock in (("models", window.models_dock), ("humaneval", window.bench_dock),
                           ("decontam", window.decontam_dock)):
            window.show_panel(name)
            if name == "humaneval":
                window.bench_panel._draw_chart()
            for _ in range(5):
                app.processEvents()
            assert dock.isVisible()
            assert window.height() <= 800 and window.width() <= 1280, (name, window.size())
        assert window.bench_panel.chart.elided_labels() == []
    finally:
        dispose(loop, window)
