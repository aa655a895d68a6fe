"""The desktop app with the real engine and model: streaming, stop, crash, recovery, highlighting."""
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QImage, QTextCursor
from PySide6.QtTest import QTest

from app.recovery import RecoveryStore
from app.settings import Settings
from app.ui.editor.highlighter import BURST_S, PygmentsHighlighter, lexer_for
from tests.ui.conftest import dispose, until

SOURCE = "def fibonacci(n):\n    "


def editor_with(window, text):
    tab = window.tabs.new_tab("example.py", text)
    c = tab.textCursor()
    c.movePosition(QTextCursor.End)
    tab.setTextCursor(c)
    return tab


def test_completion_streams_as_ghost_text_and_stop_ends_it(gui, smollm):
    w = gui.window
    w.settings.max_tokens = 400
    w.settings.completion_max_lines = 50  # long enough to stream for a while before Esc
    ghost_at_tick = []  # what a timer saw of the ghost text: it must see the stream grow, not only its end
    timer = QTimer(interval=1)

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        tab = editor_with(w, SOURCE)
        timer.timeout.connect(lambda: ghost_at_tick.append(len(tab.ghost)))
        timer.start()
        w.assistant.complete()
        await until(lambda: len(tab.ghost) > 60)
        tab.escape_pressed.emit()  # Esc: stop
        await until(lambda: w.autocomplete.last_generation.done, timeout=10)
        return tab

    tab = gui.run(scenario())
    timer.stop()
    assert w.autocomplete.last_generation.stats.finish_reason == "cancelled"
    assert tab.toPlainText() == SOURCE, "ghost text must not enter the document unasked"
    # events, not elapsed time (the lateness figures live in tests/bench/ui_latency.py)
    seen = {n for n in ghost_at_tick if 0 < n <= 60}
    assert len(seen) >= 3, f"the event loop starved while tokens streamed: timer saw ghost lengths {sorted(seen)}"
    ghost = tab.ghost
    assert ghost
    tab.accept_ghost()
    assert tab.toPlainText() == SOURCE + ghost
    tab.undo()
    assert tab.toPlainText() == SOURCE, "accepting is one undo step"


def test_killed_engine_mid_stream_keeps_text_and_recovers(gui, smollm):
    w = gui.window
    w.settings.max_tokens = 300

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        tab = editor_with(w, "x = 1\n")
        before = tab.toPlainText()
        w.assistant.prompt.setPlainText("Write a long explanation of Python lists.")
        w.assistant.ask()
        await until(lambda: len(w.assistant.answer) > 10)
        os.kill(w.engine.worker_pid, signal.SIGKILL)
        await until(lambda: w.assistant.generation.done, timeout=20)
        await asyncio.sleep(0.1)
        message = w.assistant.view.toPlainText()
        restart_visible = w.model_bar.restart_btn.isVisible()
        crashed = w.assistant.generation
        w.assistant.prompt.setPlainText("Say hello.")
        w.assistant.ask()
        await until(lambda: w.assistant.generation is not crashed and w.assistant.generation.done, timeout=60)
        return tab, before, message, restart_visible

    tab, before, message, restart_visible = gui.run(scenario())
    assert "engine stopped" in message and "SIGKILL" in message
    assert tab.toPlainText() == before
    assert restart_visible
    assert w.assistant.generation.stats.completion_tokens > 0


def test_killed_app_offers_unsaved_text_back(tmp_path, monkeypatch):
    home = tmp_path / "home"
    text = "def präzise(x):\n    return x  # ünïcode and trailing spaces   \n\n\t tab\n"
    env = {**os.environ, "LLAMADESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    driver = Path(__file__).with_name("type_and_wait.py")
    proc = subprocess.Popen([sys.executable, str(driver)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env, text=True)
    proc.stdin.write(text.replace("\n", "\\n").replace("\t", "\\t") + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert line.strip() == "AUTOSAVED", line
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    from app.ui.app import build

    monkeypatch.setenv("LLAMADESK_HOME", str(home))
    app, loop, window = build(Settings(), RecoveryStore(home / "data" / "recovery"))
    try:
        restored = window.offer_recovery(ask=lambda: True)
        assert len(restored) == 1
        assert restored[0].toPlainText() == text
        assert restored[0].dirty
    finally:
        dispose(loop, window)


def test_appending_a_line_does_not_relex_earlier_blocks(qapp):
    from app.ui.editor.code_editor import CodeEditor

    editor = CodeEditor()  # Qt re-highlights edits only in a document that has a layout
    doc = editor.document()
    body = "".join(f'def f{i}(x):\n    """doc {i}"""\n    return x + {i}\n\n' for i in range(1250))
    doc.setPlainText(body)
    hl = PygmentsHighlighter(doc, lexer_for("big.py"))
    hl.rehighlight()
    assert hl.lex_calls >= 5000
    hl.lex_calls = 0
    cursor = QTextCursor(doc)
    cursor.movePosition(QTextCursor.End)
    settle = lambda: QTest.qWait(int(BURST_S * 1000) + 40)  # a line that grew fast is lexed after the burst
    cursor.insertText("value = compute(1, 2)")
    settle()
    assert 1 <= hl.lex_calls <= 2
    hl.lex_calls = 0
    cursor.insertText("\nother = 3")
    settle()
    assert 1 <= hl.lex_calls <= 3
    # opening a docstring changes the state of every later line: those are re-lexed, no others
    hl.lex_calls = 0
    at = doc.blockCount() - 10
    QTextCursor(doc.findBlockByNumber(at)).insertText('"""')
    assert 2 <= hl.lex_calls <= doc.blockCount() - at


def test_a_line_streamed_token_by_token_is_lexed_a_few_times_and_ends_coloured_as_a_fresh_lex(qapp):
    from app.ui.editor.code_editor import CodeEditor

    def formats(doc):
        return [(r.start, r.length, r.format.foreground().color().name())
                for r in doc.lastBlock().layout().formats()]

    line = 'result = {"total": compute(values, 2) + 10, "name": "streamed"}  # a comment'
    tokens = [line[i:i + 3] for i in range(0, len(line), 3)]
    streamed = CodeEditor()
    hl = PygmentsHighlighter(streamed.document(), lexer_for("s.py"))
    hl.lex_calls = 0
    cursor = QTextCursor(streamed.document())
    for tok in tokens:                      # faster than BURST_S apart, as a model streams
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(tok)
    assert hl.lex_calls < len(tokens) / 2
    QTest.qWait(int(BURST_S * 1000) + 40)
    fresh = CodeEditor()
    fresh_hl = PygmentsHighlighter(fresh.document(), lexer_for("s.py"))  # noqa: F841 (kept alive)
    fresh.setPlainText(line)
    assert streamed.toPlainText() == line and len(formats(fresh.document())) > 5
    assert formats(streamed.document()) == formats(fresh.document())


def test_multiline_string_state_carries_across_blocks(qapp):
    from app.ui.editor.code_editor import CodeEditor

    editor = CodeEditor()
    doc = editor.document()
    doc.setPlainText('x = """\nnot code: def class\n"""\ny = 1\n')
    hl = PygmentsHighlighter(doc, lexer_for("a.py"))
    hl.rehighlight()
    inside = doc.findBlockByNumber(1).userState()
    outside = doc.findBlockByNumber(3).userState()
    assert inside != outside and outside == 0


def test_every_panel_builds_and_screenshots_are_not_blank(tmp_path):
    for panel in ("editor", "assistant", "models", "humaneval", "decontam", "settings"):
        out = tmp_path / f"{panel}.png"
        r = subprocess.run([sys.executable, "-m", "app", "--screenshot", str(out), "--panel", panel],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert r.returncode == 0, (panel, r.stderr)
        img = QImage(str(out))
        assert img.width() > 300 and img.height() > 200
        colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
        assert len(colours) > 20, f"{panel} screenshot looks blank"
