"""The GUI's self-test generates several answers at once, as the CLI does (issue 14 item 2): on
a local model the count is measured once per model and backend (cached) and the model reloaded
with that many slots; on a server it is the server's slots (issue 13: a GUI self-test against a
server). The panel shows the count and the summary records it. After the run the model is loaded
as the model bar loads it again (an exact load is slower for editing)."""
from __future__ import annotations

import json

from app.engine import hardware, parallel_probe
from tests.servers import procs
from tests.ui.conftest import until


def _run(gui, panel, out, tasks=2):
    shown = []

    async def scenario():
        assert panel.progress.isHidden()   # no empty bar before a run
        panel.protocol.setCurrentText("codex")
        panel.limit.setValue(tasks)
        panel.start(out)
        await until(lambda: panel.run is not None, timeout=120)
        shown.append(not panel.progress.isHidden())
        await until(lambda: panel.run is None, timeout=400)

    gui.run(scenario(), timeout=600)
    assert shown == [True] and panel.progress.isHidden()
    return json.loads((out / "summary.json").read_text())


def test_a_local_self_test_measures_its_parallel_count_once_and_shows_it(gui, smollm, tmp_path, monkeypatch):
    w, panel = gui.window, gui.window.bench_panel
    real_measure, window_model_while_probing = parallel_probe.measure, []

    async def measure(engine, *args, **kwargs):  # the real probe; notes what the window holds meanwhile
        window_model_while_probing.append(w.engine.info)
        return await real_measure(engine, *args, **kwargs)

    monkeypatch.setattr(parallel_probe, "measure", measure)
    assert gui.run(w.model_bar.load(str(smollm)))
    assert w.engine.capabilities.parallel_slots == 1          # nothing measured yet
    backend = hardware.detect_backend()
    assert parallel_probe.cached(smollm, backend) is None
    summary = _run(gui, panel, tmp_path / "first")
    best = parallel_probe.cached(smollm, backend)
    assert best is not None, "the first self-test measures the count"
    assert summary["complete"] and summary["parallel"] == best
    # one probe engine at a time (one context, then two on a CPU), the window's model unloaded
    assert window_model_while_probing and all(m is None for m in window_model_while_probing), \
        "two copies of the model in memory while probing"
    assert summary["model"]["weight_repacking"] is False      # it ran exact (P.Load.exact)
    # over the contexts the probe found fastest for that count
    assert summary["model"]["contexts"] == parallel_probe.cached_contexts(smollm, backend, best)
    # and then the model is loaded as the bar loads it: with the measured slots, not exact
    assert w.engine.capabilities.parallel_slots == best and w.engine.info.exact is False
    assert f"{best} generation(s) at once" in panel.sandbox_note.text()
    # a later load takes the measured count at once, and a second run does not measure again
    assert gui.run(w.model_bar.load(str(smollm)))
    assert w.engine.capabilities.parallel_slots == best
    assert _run(gui, panel, tmp_path / "second")["parallel"] == best


def test_a_self_test_against_a_server_uses_its_slots_and_records_its_url(gui, smollm, tmp_path):
    binary = procs.llama_server_binary()
    assert binary is not None, "run tests/servers/build_llama_server.sh (the README's test command does)"
    server = procs.start_llama_server(binary, smollm, tmp_path, parallel=2)
    try:
        w, panel = gui.window, gui.window.bench_panel
        entry = {"url": server.url, "model": "", "key_env": "", "ca_bundle": ""}
        w.settings.servers = [entry]
        w.settings.source = entry["url"]
        w.model_bar.refresh_sources()
        assert gui.run(w.model_bar.connect_server(entry))
        summary = _run(gui, panel, tmp_path / "run")
        assert summary["complete"] and summary["samples"] == 2
        assert summary["parallel"] == 2 and "2 generation(s) at once (the server's slots)" in panel.sandbox_note.text()
        assert summary["model"]["engine"] == "remote" and summary["model"]["url"].startswith(server.url)
        saved = json.loads((tmp_path / "run" / "run.json").read_text())
        assert saved["engine"].startswith(server.url) and saved.get("model") is None
    finally:
        server.stop()
