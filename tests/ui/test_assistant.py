"""The assistant as a conversation, with the real engine and SmolLM2: first run to first answer,
the transcript per file, Regenerate and Clear, the prompt box's keys and the context chips."""
import asyncio

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor, QTextDocument
from PySide6.QtTest import QTest

from app.ui.transcript import History, Turn, render_answer
from tests.ui.conftest import until


async def _answered(w, n_turns):
    await until(lambda: not w.assistant.busy() and w.assistant.pending is None
                and len(w.assistant.turns()) >= n_turns, timeout=600)


def _plain(markdown: str) -> str:
    doc = QTextDocument()
    doc.setMarkdown(markdown)
    return doc.toPlainText()


def test_first_run_to_first_answer_and_a_second_keeps_the_first(gui, smollm):
    w = gui.window
    w.settings.max_tokens = 32
    w.startup(ask_recovery=lambda: False)
    assert w.welcome.isVisible() and not w.tabs.isVisible(), "first run opens on the welcome page"

    async def scenario():
        job = w.load_model(str(smollm))
        assert job is not None
        await asyncio.wait({job.task})
        assert job.result is True
        assert not w.welcome.isVisible() and w.tabs.isVisible()
        w.assistant.prompt.setPlainText("What is a Python list? Answer in two sentences.")
        QTest.keyClick(w.assistant.prompt, Qt.Key_Return)  # Enter sends
        await _answered(w, 1)
        w.assistant.prompt.setPlainText("And what is a tuple?")
        w.assistant.ask()
        await _answered(w, 2)

    gui.run(scenario(), timeout=900)
    turns = w.assistant.turns()
    assert [t.question for t in turns] == ["What is a Python list? Answer in two sentences.", "And what is a tuple?"]
    assert all(t.answer.strip() for t in turns)
    shown = w.assistant.view.toPlainText()
    for t in turns:  # both answers are in the transcript, as Qt renders their Markdown
        assert t.question in shown
        first_line = next(line for line in _plain(t.answer).splitlines() if line.strip())
        assert first_line.strip() in shown
    # kept: a new panel (a restart) reads the same conversation back
    again = History()
    assert [t.answer for t in again.turns(w.assistant._key())] == [t.answer for t in turns]

    async def regenerate():
        w.assistant.regenerate()
        await until(lambda: w.assistant.busy(), timeout=30)
        await _answered(w, 2)

    gui.run(regenerate(), timeout=600)
    assert [t.question for t in w.assistant.turns()][-1] == "And what is a tuple?"
    assert len(w.assistant.turns()) == 2, "Regenerate replaces the last answer"
    w.assistant.clear()
    assert w.assistant.turns() == [] and "tuple" not in w.assistant.view.toPlainText()


def test_markdown_answer_renders_lists_headings_inline_code_and_code_actions(qapp):
    answer = ("## Lists\n\n- one `item`\n- two\n\n```python\nxs = [1, 2]\n```\n\nDone **now**.")
    html = render_answer(answer, "default", turn=3)
    doc = QTextDocument()
    doc.setHtml(html)
    text = doc.toPlainText()
    assert "##" not in text and "**" not in text and "`" not in text
    assert "<li" in html and ("<h2" in html or "font-size" in html)
    assert 'href="insert:3:0"' in html and 'href="replace:3:0"' in html and 'href="copy:3:0"' in html
    assert "xs" in text and "Done now." in text


def test_prompt_box_keys_enter_sends_shift_enter_newline_ctrl_enter_sends_not_complete(gui):
    w = gui.window
    sent, completed = [], []
    w.assistant.prompt.submitted.connect(lambda: sent.append(1))
    complete_action = next(a for m in w.menuBar().actions() if m.menu()
                           for a in m.menu().actions() if a.text() == "Complete at cursor")
    complete_action.triggered.connect(lambda: completed.append(1))
    box = w.assistant.prompt
    box.setFocus()
    box.setPlainText("line one")
    box.moveCursor(QTextCursor.End)
    QTest.keyClick(box, Qt.Key_Return, Qt.ShiftModifier)
    assert box.toPlainText() == "line one\n" and sent == []
    QTest.keyClick(box, Qt.Key_Return)
    assert sent == [1]
    QTest.keyClick(box, Qt.Key_Return, Qt.ControlModifier)
    assert sent == [1, 1] and completed == [], "Ctrl+Enter in the prompt box sends; it does not complete"


def test_context_chips_show_what_goes_and_can_be_removed(gui):
    w = gui.window
    tab = w.tabs.new_tab("calc.py", "def add(a, b):\n    return a + b\n")
    w.assistant.show_history_for_current()
    assert list(w.assistant.chips.chips) == ["code"]
    assert "calc.py" in w.assistant.chips.chips["code"].text()
    c = tab.textCursor()
    c.movePosition(QTextCursor.Down, QTextCursor.KeepAnchor)
    tab.setTextCursor(c)
    assert "selection · 2 lines" in w.assistant.chips.chips["code"].text()
    w.assistant.history.turns(w.assistant._key()).append(Turn("q", "a"))
    w.assistant.refresh_chips()
    assert set(w.assistant.chips.chips) == {"code", "earlier"}
    w.assistant.chips.chips["code"].click()
    assert set(w.assistant.chips.chips) == {"earlier"}
    assert all(k != "code" for k, _, _ in w.assistant.context_items())
