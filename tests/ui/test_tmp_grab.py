from tests.ui.test_bench_parallel import _run


def test_grab(gui, smollm, tmp_path):
    w, panel = gui.window, gui.window.bench_panel
    assert gui.run(w.model_bar.load(str(smollm)))
    w.tabs.setCurrentWidget(panel) if hasattr(w, "tabs") else None
    _run(gui, panel, tmp_path / "r")
    print("NOTE:", panel.sandbox_note.text())
    for theme in ("dark", "light"):
        w.set_theme(theme)
        w.resize(1280, 800)
        w.grab().save(f"/tmp/s10/grab_{theme}.png")
