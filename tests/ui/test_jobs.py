"""The job registry: conflicting jobs are refused with a message (two downloads of one file, a
model load during a self-test), and closing the window cancels every job."""
import asyncio

import pytest

from app.models import catalog
from app.ui.jobs import JobRefused, JobRegistry
from tests.hubserver import Fault, HubServer
from tests.models.conftest import make_gguf
from tests.ui.conftest import until

FILE_ID = "qwen2.5-coder-0.5b-instruct:Q4_K_M"


@pytest.fixture
def stalling_hub(monkeypatch, tmp_path):
    """A loopback hub serving the catalog file, stalling mid-body so that a download stays busy."""
    f = catalog.find(FILE_ID)
    data = make_gguf(tmp_path / "m.gguf", n_bytes=3_000_000)
    with HubServer() as hub:
        hf = hub.state.add(f.repo, f.filename, data)
        hub.state.fault(hf.sha256, Fault("stall", at=200_000, seconds=30))
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
        yield hub


def test_second_download_of_one_file_is_refused_and_close_cancels_all(gui, stalling_hub):
    w = gui.window
    refusals = []
    w.jobs.refused.connect(refusals.append)

    async def scenario():
        first = w.models_panel.start_download(FILE_ID)
        assert first is not None
        await until(lambda: first.done > 0, timeout=60)       # bytes are arriving
        second = w.models_panel.start_download(FILE_ID)
        assert second is None
        said = w.models_panel.progress_label.text()
        assert len(w.jobs.running("download")) == 1
        blocker = w.jobs.start("decontam", "check", "a long check", lambda job: asyncio.sleep(3600))
        gui.app.setQuitOnLastWindowClosed(False)              # keep the test's event loop
        w.close()                                             # cancels every job
        await w.jobs.wait_all(timeout=30)
        return first, blocker, said

    first, blocker, said = gui.run(scenario())
    assert refusals and refusals[0].startswith("Already downloading")
    assert said == refusals[0] and catalog.find(FILE_ID).filename in said
    assert first.cancel_event.is_set() and blocker.state == "cancelled"
    assert first.state in ("done", "cancelled") and not w.jobs.running()


def test_model_load_during_a_self_test_is_refused_and_the_chart_reads_after_the_run(gui, smollm):
    w = gui.window
    w.show_panel("humaneval")

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        w.bench_panel.limit.setValue(2)
        w.bench_panel.start()
        await until(lambda: w.jobs.running("selftest"), timeout=30)
        refused = w.load_model(str(smollm))
        message = w.statusBar().currentMessage()
        await w.jobs.wait_all(timeout=400)
        return refused, message

    refused, message = gui.run(scenario(), timeout=600)
    assert refused is None
    assert message.startswith("Not now: running the self-test")
    assert not w.jobs.running()
    # the chart after the run, at the default window size: every label whole, this run marked
    gui.app.processEvents()
    chart = w.bench_panel.chart
    rows = chart.rows
    assert rows[0].kind == "this" and rows[0].label.startswith("This run: SmolLM2-135M-Instruct.Q4_1")
    assert rows[0].lo is not None and rows[0].lo <= rows[0].value <= rows[0].hi
    assert chart.isVisible() and chart.width() > 300
    assert chart.elided_labels() == [], (chart.width(), [r.label for r in rows])
    assert "Phind-CodeLlama-34B-Python-v1" in [r.label for r in rows]


def test_registry_once_does_the_work_once_and_reports_progress(qapp):
    from app.ui.app import make_loop

    loop = make_loop(qapp)
    reg = JobRegistry()
    calls, seen = [], []
    reg.progressed.connect(lambda job: seen.append(job.fraction))

    async def work(job):
        calls.append(1)
        for i in range(1, 4):
            await job.in_thread(job.report, i, 3, "scanning")
            await asyncio.sleep(0.01)
        return "value"

    async def scenario():
        a, b = await asyncio.gather(reg.once("scan", "models", "GGUF headers", work),
                                    reg.once("scan", "models", "GGUF headers", work))
        c = await reg.once("scan", "models", "GGUF headers", work)
        return a, b, c

    try:
        assert loop.run_until_complete(scenario()) == ("value", "value", "value")
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    assert calls == [1]
    assert seen and seen[-1] == 1.0
    with pytest.raises(JobRefused):
        reg2 = JobRegistry()
        reg2._loop = None
        reg2.jobs.append(type("J", (), {"running": True, "kind": "selftest", "key": "x", "title": "t"})())
        reg2.start("load", "m.gguf", "m", lambda job: asyncio.sleep(0))
