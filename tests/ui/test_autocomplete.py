"""Suggestions as you type in the real window with the real engine (issue 15 items 1, 4, 6, 7;
issue 12 item 7): debounce, type-through, Tab then the next suggestion, partial accept, the
ghost box inside the view, no request with a selection, and two engines."""
import asyncio

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest

from app.completion.stats import CompletionStats
from tests.completion import tiny_fim
from tests.ui.conftest import until


def editor_with(window, text, name="example.py"):
    tab = window.tabs.new_tab(name, text)
    c = tab.textCursor()
    c.movePosition(QTextCursor.End)
    tab.setTextCursor(c)
    tab.setFocus()
    return tab


def test_as_you_type_debounce_type_through_and_tab(gui, smollm):
    w = gui.window
    ac = w.autocomplete
    w.settings.autocomplete_debounce_ms = 150

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        tab = editor_with(w, "import os\n\n\ndef add(a, b):\n")
        QTest.keyClicks(tab, "    ret")           # four quick keystrokes: one request after the pause
        await until(lambda: tab.ghost and ac._gen is None, timeout=120)
        assert ac.requests == 1
        ghost = tab.ghost
        # typing the suggestion's first characters keeps the rest and sends nothing
        QTest.keyClicks(tab, ghost[:2])
        await asyncio.sleep(0.5)
        assert ac.requests == 1 and tab.ghost == ghost[2:]
        assert ac.stats.type_through == 2
        # Tab accepts all and asks for the next suggestion at once
        QTest.keyClick(tab, Qt.Key_Tab)
        assert tab.toPlainText().endswith("    ret" + ghost)
        await until(lambda: ac.requests == 2, timeout=5)
        await until(lambda: ac._gen is None, timeout=120)
        # back at the same spot: the cache answers, no request
        return tab, ghost

    tab, ghost = gui.run(scenario())
    assert ac.stats.accepted == 1 and ac.stats.shown >= 1
    assert ac.stats.latencies_s and "ms" in ac.label.text()
    ac.save_stats()
    assert CompletionStats.load_last().requests == 2


def test_a_keystroke_cancels_the_request_in_flight(gui, smollm):
    w = gui.window
    ac = w.autocomplete
    w.settings.autocomplete_debounce_ms = 0

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        tab = editor_with(w, "def fibonacci(n):\n")
        QTest.keyClicks(tab, "    ")
        await until(lambda: ac._gen is not None, timeout=10)
        first = ac._gen
        QTest.keyClicks(tab, "#")                  # the next keystroke while it runs
        await until(lambda: first.done, timeout=60)
        await until(lambda: ac._gen is None and ac.requests == 2, timeout=120)
        return tab, first

    tab, first = gui.run(scenario())
    assert first._cancel_requested and ac.stats.cancelled >= 1
    # what is shown was computed for the text as it is now (the cache holds it for this spot)
    c = ac.completer()
    spot = c.spot(tab.toPlainText(), tab.textCursor().position(), "example.py")
    assert c.cached(spot) == tab.ghost


def test_no_request_while_text_is_selected(gui, smollm):
    w = gui.window
    ac = w.autocomplete
    w.settings.autocomplete_debounce_ms = 0

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        tab = editor_with(w, "x = 1\n")
        QTest.keyClicks(tab, "y")
        tab.selectAll()
        await asyncio.sleep(0.5)
        ac.timer.start(0)
        await asyncio.sleep(0.3)

    gui.run(scenario())
    assert ac.requests == 0
    w.settings.autocomplete = False


def test_partial_accept_and_the_ghost_box_stays_in_view(gui):
    w = gui.window
    tab = editor_with(w, "\n".join(f"line_{i} = {i}" for i in range(200)) + "\n")
    w.resize(1000, 600)
    gui.app.processEvents()
    tab.ensureCursorVisible()  # the cursor on the last visible line: no room below it
    gui.app.processEvents()
    assert tab.cursorRect().bottom() + 3 * tab.fontMetrics().height() > tab.viewport().height()
    tab.show_ghost("total = a + b\n    return total\n    # one\n    # two\n    # three")
    box = tab.ghost_box()
    assert box.height() > 0 and box.top() >= 0 and box.bottom() <= tab.viewport().height()
    before = tab.toPlainText()
    QTest.keyClick(tab, Qt.Key_Right, Qt.ControlModifier)
    assert tab.toPlainText() == before + "total"
    QTest.keyClick(tab, Qt.Key_Down, Qt.ControlModifier)
    assert tab.toPlainText() == before + "total = a + b"
    QTest.keyClick(tab, Qt.Key_Down, Qt.ControlModifier)
    assert tab.toPlainText() == before + "total = a + b\n    return total"
    assert tab.ghost == "\n    # one\n    # two\n    # three"
    tab.undo()
    assert tab.toPlainText() == before + "total = a + b"


def test_ask_goes_to_the_chat_model_and_ghost_text_to_the_completion_model(gui, smollm, tmp_path):
    w = gui.window
    ac = w.autocomplete
    w.settings.max_tokens = 8
    w.settings.autocomplete_debounce_ms = 0
    fim_model = tiny_fim.write(str(tmp_path / "tiny-qwen.gguf"), "qwen")

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        msg = await ac.load_completion_model(fim_model)
        assert "Both fit" in msg
        tab = editor_with(w, "def f():\n")
        chat_before, comp_before = w.engine._next_id, ac.own_engine._next_id
        QTest.keyClicks(tab, "    ")
        await until(lambda: ac.requests == 1 and ac._gen is None, timeout=60)
        w.assistant.prompt.setPlainText("What is 1 + 1?")
        w.assistant.ask()
        await until(lambda: w.assistant.generation is not None and w.assistant.generation.done, timeout=120)
        served = (w.engine._next_id - chat_before, ac.own_engine._next_id - comp_before)
        pids = (w.engine.worker_pid, ac.own_engine.worker_pid)
        await ac.close()
        return served, pids

    served, pids = gui.run(scenario())
    assert served[0] == 1 and served[1] >= 1     # the Ask on the chat model, ghost text (and its warm-up) on the other
    assert pids[0] != pids[1] and ac.served_by == ["completion"]
    assert w.autocomplete.own_engine is None


def test_paused_during_a_self_test_and_a_slow_model_gets_a_notice(gui):
    w = gui.window
    ac = w.autocomplete
    tab = editor_with(w, "x = 1\n")

    async def self_test_job():
        # a self-test as the HumanEval panel runs it: a "selftest" job in the window's registry
        stop = asyncio.Event()
        job = w.jobs.start("selftest", "humaneval", "HumanEval", lambda j: stop.wait(), on_cancel=stop.set)
        await asyncio.sleep(0)
        during = ac.blocked(tab, manual=False), ac.label.text()
        w.jobs.cancel(job)
        await until(lambda: not w.jobs.running("selftest"), timeout=10)
        return during

    blocked, label = gui.run(self_test_job())
    assert blocked == "self-test"
    assert "paused" in label
    assert ac.blocked(tab, manual=False) == "no model"
    assert "paused" not in ac.label.text()
    for _ in range(6):
        ac.stats.request_done(3.2)
    ac._done(tab, False, "y = 2")
    assert "completion model" in w.statusBar().currentMessage()


def test_the_context_ring_takes_opened_and_copied_code(gui):
    from PySide6.QtGui import QGuiApplication

    w = gui.window
    ac = w.autocomplete
    ac.ring.queued.clear()
    ac.ring.chunks.clear()
    tab = editor_with(w, "\n".join(f"value_{i} = compute({i})" for i in range(300)), "big.py")
    assert [c.filename for c in ac.ring.queued] == ["big.py"]   # opened: the lines around the cursor
    assert "value_0 " in ac.ring.queued[0].text and len(ac.ring.queued[0].text.split("\n")) <= 65
    c = tab.textCursor()
    c.setPosition(0)
    c.movePosition(QTextCursor.Down, QTextCursor.KeepAnchor, 6)
    tab.setTextCursor(c)
    tab.copy()
    gui.app.processEvents()
    assert QGuiApplication.clipboard().text().startswith("value_0")
    assert any(ch.text.startswith("value_0") for ch in ac.ring.queued)   # copied from
    ac.ring.flush()
    assert len(ac.ring.chunks) == 2
