"""Issue 12, item 11: no stale messages. A hint to load a model goes once one is loaded, and the
status bar shows no figure of the previous request while a new one runs."""
import asyncio

from tests.ui.conftest import until


def test_load_a_model_hints_go_once_a_model_is_loaded(gui, smollm):
    w = gui.window
    w.tabs.new_tab("s.py", "x = 1\n")
    w.assistant.prompt.setPlainText("Say hello.")
    w.assistant.ask()
    w.bench_panel.start()
    assert "Load a model first" in w.assistant.view.toPlainText()
    assert "Load a model first" in w.bench_panel.status.text()
    assert gui.run(w.model_bar.load(str(smollm)))
    gui.run(asyncio.sleep(0.1))
    assert "Load a model first" not in w.assistant.view.toPlainText()
    assert "Load a model" not in w.bench_panel.status.text()
    assert smollm.name in w.bench_panel.status.text()
    tip = w.model_bar.state.toolTip()
    gui.run(w.model_bar.unload())
    assert w.model_bar.state.text() == "No model loaded" and w.model_bar.state.toolTip() != tip


def test_the_status_bar_shows_no_figures_of_the_previous_request(gui, smollm):
    w = gui.window
    w.settings.max_tokens = 48

    async def ask_and_watch(question):
        w.assistant.prompt.setPlainText(question)
        w.assistant.ask()
        await until(lambda: w.assistant.busy(), timeout=60, step=0.005)
        w.update_status()
        during = (w.status_speed.text(), w.status_ctx.text())
        await until(lambda: w.assistant.generation.done, timeout=120)
        w.update_status()
        return during, (w.status_speed.text(), w.status_ctx.text())

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        w.tabs.new_tab("s.py", "x = 1\n")
        _, first = await ask_and_watch("Say hello.")
        during, _ = await ask_and_watch("Now say goodbye, politely and at length.")
        return first, during

    first, during = gui.run(scenario())
    assert first[1].startswith("context ") and "…" not in first[1]
    assert during == ("… tok/s", "context …/4,096"), (first, during)
