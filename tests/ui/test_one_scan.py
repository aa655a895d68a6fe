"""Issue 12, item 13: the GGUF scan and the HumanEval problems are read once, off the GUI thread,
through the job registry; the panels use that one result, and a model load asks the hardware
(nvidia-smi, up to 10 s) off the GUI thread."""
import threading
from pathlib import Path

from app import paths
from app.engine import hardware


def test_the_model_bar_lists_the_registry_scan_and_a_rescan_adds_a_new_file(gui, smollm):
    w = gui.window
    gui.run(w.fill_from_jobs())
    listed = lambda: [w.model_bar.model.itemData(i) for i in range(w.model_bar.model.count())]
    new = paths.ensure(paths.models_dir()) / "copy-of-smollm.gguf"
    new.symlink_to(smollm)
    w.model_bar.refresh_models()
    assert str(new) not in listed(), "refresh_models read the disk itself instead of the window's scan"
    gui.run(w.rescan_models())
    assert str(new) in listed()
    assert any(m.path == str(new) for m in w.local_models)
    assert w.models_panel.local_table.item(len(w.local_models) - 1, 0) is not None


def test_the_decontamination_panel_shares_the_problems_read_once(gui):
    w = gui.window
    assert w.decontam_panel.problems == {}, "the panel read the problems itself, on the GUI thread"
    gui.run(w.fill_from_jobs())
    assert w.decontam_panel.problems is w.bench_panel.problems
    assert len(w.bench_panel.problems) == 164


def test_a_model_load_asks_the_hardware_off_the_gui_thread(gui, smollm, monkeypatch):
    w = gui.window
    on_gui = []
    real = hardware.detect

    def detect():  # the real detection, noting which thread asked
        if threading.current_thread() is threading.main_thread():
            on_gui.append(1)
        return real()

    monkeypatch.setattr(hardware, "detect", detect)
    assert gui.run(w.model_bar.load(str(smollm)))
    assert w.model_bar.state.toolTip(), "the planner's reason is shown"
    # (before: three calls on the GUI thread, the free-memory check, the planner and the threads)
    assert not on_gui, f"hardware.detect ran {len(on_gui)} times on the GUI thread"
    assert Path(w.engine.info.path) == Path(smollm)
