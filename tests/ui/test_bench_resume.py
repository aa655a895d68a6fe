"""The HumanEval panel's runs are the CLI's runs: same run file, a real resume, one model per folder."""
import json

from app import paths
from app.bench.run_folder import SETTINGS
from app.bench.runner import file_sha256
from tests.helpers import run_cli
from tests.ui.conftest import until


def read_rows(path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def select_past(panel, folder) -> None:
    panel.refresh_past()
    row = next(i for i, (f, _) in enumerate(panel._past) if f == folder)
    panel.past.setCurrentRow(row)


def test_panel_writes_the_cli_run_file_and_locks_the_model_bar(gui, smollm, tmp_path):
    w, panel = gui.window, gui.window.bench_panel
    out = tmp_path / "run"

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        panel.protocol.setCurrentText("codex")
        panel.limit.setValue(2)
        panel.start(out)
        await until(lambda: panel.run is not None)
        locked = not w.model_bar.isEnabled()
        await until(lambda: panel.run is None, timeout=300)
        return locked

    assert gui.run(scenario(), timeout=400), "the model bar must be locked while the self-test runs"
    assert w.model_bar.isEnabled()
    saved = json.loads((out / "run.json").read_text())
    assert set(SETTINGS) <= set(saved)
    assert (saved["protocol"], saved["limit"], saved["samples"]) == ("codex", 2, 1)
    assert saved["model"] == str(smollm.resolve()) and saved["model_sha256"] == file_sha256(smollm)
    assert len(read_rows(out / "results.jsonl")) == 2


def interrupted_cli_run(smollm):
    """A CLI run of 3 tasks cut back to its first verdict, as a stopped run leaves it."""
    out = paths.results_dir() / "humaneval-cli-run"
    r = run_cli("humaneval", "--model", str(smollm), "--protocol", "codex", "--limit", "3", "--max-tokens", "16",
                "--out", str(out), timeout=600)
    assert r.returncode == 0, r.stderr
    for name in ("samples.jsonl", "results.jsonl"):
        first = (out / name).read_text().splitlines(keepends=True)[0]
        (out / name).write_text(first)
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "complete": False, "samples": 1}))
    return out


def test_resume_takes_the_runs_settings_not_the_form(gui, smollm):
    w, panel = gui.window, gui.window.bench_panel
    out = interrupted_cli_run(smollm)
    kept = read_rows(out / "results.jsonl")

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        panel.protocol.setCurrentText("instruct")  # the form says otherwise: the run's settings win
        panel.samples.setValue(3)
        panel.limit.setValue(164)
        select_past(panel, out)
        panel._resume()
        await until(lambda: panel.run is not None)
        await until(lambda: panel.run is None, timeout=300)

    gui.run(scenario(), timeout=400)
    rows = read_rows(out / "results.jsonl")
    assert rows[0] == kept[0] and len(rows) == 3, panel.status.text()
    assert all(r["tokens"] <= 16 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["protocol"]["name"] == "codex" and summary["samples"] == 3


def test_resume_refuses_another_model_file(gui, smollm):
    w, panel = gui.window, gui.window.bench_panel
    out = interrupted_cli_run(smollm)
    saved = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**saved, "model_sha256": "0" * 64}))
    before = (out / "results.jsonl").read_text()

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        select_past(panel, out)
        panel._resume()
        await until(lambda: "not the model file" in panel.status.text(), timeout=120)
        await until(lambda: panel.run is None and w.model_bar.isEnabled())

    gui.run(scenario(), timeout=300)
    assert (out / "results.jsonl").read_text() == before
