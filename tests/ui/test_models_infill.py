"""Issue 15 item 6: the Models panel's infill mark is the model family's before download and the
file's own tokenizer metadata after (read by the window's one scan, not on the GUI thread)."""
from app.models import catalog
from app.ui.models_panel import COLUMNS
from tests.completion import tiny_fim
from tests.models.test_infill_mark import _put_in_hf_cache


def _use(w, file_id: str) -> str:
    t = w.models_panel.table
    row = next(r for r in range(t.rowCount()) if t.item(r, 0).text() == file_id)
    return t.item(row, COLUMNS.index("Use")).text()


def test_a_downloaded_file_is_marked_by_its_own_fim_tokens(gui, smollm, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    w = gui.window
    gui.run(w.fill_from_jobs())
    assert "infill" not in _use(w, "phind-v2:Q4_K_M") and "infill" in _use(w, "qwen2.5-coder-0.5b:Q4_K_M")
    by_id = {f.id: f for f in catalog.files()}
    # a Phind download whose file declares FIM tokens, a Qwen one whose file has none
    _put_in_hf_cache(tmp_path / "hub", by_id["phind-v2:Q4_K_M"], tiny_fim.write(str(tmp_path / "fim.gguf"), "qwen"))
    _put_in_hf_cache(tmp_path / "hub", by_id["qwen2.5-coder-0.5b:Q4_K_M"], str(smollm))
    gui.run(w.rescan_models())
    assert "infill" in _use(w, "phind-v2:Q4_K_M")
    assert "infill" not in _use(w, "qwen2.5-coder-0.5b:Q4_K_M")
    local = w.models_panel.local_table
    states = {local.item(r, 0).text().rsplit("/", 1)[-1]: local.item(r, 3).text() for r in range(local.rowCount())}
    assert states[by_id["phind-v2:Q4_K_M"].filename] == "ok · infill"
