"""Edit selection: the diff view (line breaks, colours, monospace, hunks) and the live-cursor guard
(issue 11 item 6: typing meanwhile, a changed selection, a closed tab)."""
import asyncio

from PySide6.QtGui import QFontInfo, QTextCursor

from app import assist, textdiff
from app.ui.diff_view import DiffView, SelectionGuard
from tests.ui.conftest import until

OLD = "def area(r):\n    pi = 3.14\n    return pi * r * r"   # no final newline


def select(tab, start: int, end: int) -> None:
    c = tab.textCursor()
    c.setPosition(start)
    c.setPosition(end, QTextCursor.KeepAnchor)
    tab.setTextCursor(c)


def test_diff_of_a_selection_without_final_newline_one_line_each_coloured_monospace(gui):
    w = gui.window
    tab = w.tabs.new_tab("geo.py", "import math\n" + OLD + "\n\nprint(area(2))\n")
    start = len("import math\n")
    select(tab, start, start + len(OLD))
    view = DiffView()
    view.resize(600, 300)
    new = "def area(r):\n    pi = math.pi\n    return pi * r ** 2\n"   # the model's block ends with \n
    view.show_diff(SelectionGuard(tab), new)
    lines = view.diff_lines()
    kinds = [k for k, _ in lines]
    assert kinds == [" ", "-", "-", "+", "+"], lines
    texts = [t.split(" ", 3)[-1] if k != " " else t for k, t in lines]
    assert lines[1][1].endswith("pi = 3.14") and lines[3][1].endswith("pi = math.pi")
    assert lines[2][1].endswith("return pi * r * r") and lines[4][1].endswith("return pi * r ** 2")
    assert all("\n" not in t and "\u2029" not in t for t in texts)
    # line numbers: old 2 and 3 removed, new 2 and 3 added
    assert lines[1][1].split()[0] == "2" and lines[3][1].split()[0] == "2"
    # green additions, red removals, changed characters marked inside the line
    block = view.view.document().begin()
    colours = {}
    while block.isValid():
        kind = block.blockFormat().property(0x100000)
        if kind in ("+", "-"):
            colours.setdefault(kind, block.blockFormat().background().color())
            marked = [f for f in block.textFormats() if f.format.background().style() != 0]
            assert marked, f"no changed characters marked in {block.text()!r}"
        block = block.next()
    plus, minus = colours["+"], colours["-"]
    assert plus.green() > plus.red() and minus.red() > minus.green()
    assert QFontInfo(view.view.font()).fixedPitch()
    # applying keeps the selection's ending: no newline appears before the blank line
    assert view.apply_all() is None
    assert tab.toPlainText() == "import math\n" + new.rstrip("\n") + "\n\nprint(area(2))\n"
    tab.undo()
    assert tab.toPlainText() == "import math\n" + OLD + "\n\nprint(area(2))\n", "one undo step"


def test_apply_one_hunk_then_the_rest():
    old = "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\nf = 6\ng = 7\nh = 8\n"
    new = "a = 10\nb = 2\nc = 3\nd = 4\ne = 5\nf = 6\ng = 7\nh = 80\n"
    hs = textdiff.hunks(old, new)
    assert len(hs) == 2
    assert textdiff.apply(old, new, {1}) == old.replace("h = 8\n", "h = 80\n")
    assert textdiff.apply(old, new, {0}) == old.replace("a = 1\n", "a = 10\n")
    assert textdiff.apply(old, new) == new
    assert textdiff.apply("x\ny", "x\nz\n") == "x\nz"


def test_hunk_link_applies_through_the_guard(gui):
    w = gui.window
    text = "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\nf = 6\ng = 7\nh = 8\n"
    tab = w.tabs.new_tab("h.py", text)
    select(tab, 0, len(text))
    view = DiffView()
    view.show_diff(SelectionGuard(tab), text.replace("a = 1", "a = 10").replace("h = 8", "h = 80"))
    assert len(view.hunks) == 2
    assert view.apply_hunk(1) is None
    assert tab.toPlainText() == text.replace("h = 8", "h = 80")
    assert len(view.hunks) == 1 and view.isVisible()
    tab.moveCursor(QTextCursor.Start)
    tab.insertPlainText("# typed above meanwhile\n")
    assert view.apply_hunk(0) is None
    assert tab.toPlainText() == "# typed above meanwhile\n" + text.replace("h = 8", "h = 80").replace("a = 1", "a = 10")


def test_the_guard_refuses_a_changed_selection_and_a_closed_tab(gui):
    w = gui.window
    tab = w.tabs.new_tab("g.py", "keep\nold line\nkeep\n")
    select(tab, 5, 13)
    guard = SelectionGuard(tab, alive=lambda: tab in w.tabs.editors())
    cur = QTextCursor(tab.document())
    cur.setPosition(7)
    cur.insertText("X")            # the user edits inside the selection
    assert "changed" in guard.replace("new line")
    assert tab.toPlainText() == "keep\nolXd line\nkeep\n"
    select(tab, 5, 14)
    guard = SelectionGuard(tab, alive=lambda: tab in w.tabs.editors())
    tab.document().setModified(False)
    w.tabs.close_tab(w.tabs.indexOf(tab))
    assert "closed" in guard.replace("new line")


def test_edit_with_the_model_lands_on_the_selection_after_typing_above_it(gui, smollm):
    """Issue 11 item 6: the old code applied at offsets captured before streaming began."""
    w = gui.window
    w.settings.max_tokens = 120
    body = "def add(a, b):\n    return a + b\n"
    tab = w.tabs.new_tab("calc.py", "# calc\n" + body + "\nprint(add(1, 2))\n")

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        select(tab, len("# calc\n"), len("# calc\n") + len(body))
        w.assistant.prompt.setPlainText("Add a docstring.")
        w.assistant.edit_selection()
        await until(lambda: w.assistant.busy(), timeout=60)
        tab.moveCursor(QTextCursor.Start)
        tab.insertPlainText("import sys\n")          # typing above while the model writes
        await until(lambda: not w.assistant.busy() and w.assistant.pending is None, timeout=180)
        await asyncio.sleep(0.1)

    gui.run(scenario())
    st = w.assistant.generation.stats
    # issue 14: an Edit with default settings is greedy and drafts from the selection (prompt lookup)
    assert st.draft_tokens > 0 and st.accepted_tokens > 0, st
    assert "lookup" in w.assistant.stats.text()
    view = w.assistant.diff
    assert view.isVisible() and view.guard is not None, w.assistant.view.toPlainText()
    new = view.new
    if assist.closed_code(w.assistant.answer) is not None:
        # the diff came as soon as the code block closed: the generation was stopped there
        assert w.assistant.generation.stats.finish_reason in ("cancelled", "stop")
    assert view.apply_all() is None
    assert tab.toPlainText() == "import sys\n# calc\n" + textdiff.finish_like(body, new) + "\nprint(add(1, 2))\n"


def test_edit_refuses_when_the_selection_changed_while_the_model_wrote(gui, smollm):
    w = gui.window
    w.settings.max_tokens = 120
    body = "def add(a, b):\n    return a + b\n"
    tab = w.tabs.new_tab("calc.py", body)

    async def scenario():
        assert await w.model_bar.load(str(smollm))
        select(tab, 0, len(body))
        w.assistant.prompt.setPlainText("Add a docstring.")
        w.assistant.edit_selection()
        await until(lambda: w.assistant.busy(), timeout=60)
        c = QTextCursor(tab.document())
        c.setPosition(len("def add(a, b):\n    return a"))
        c.insertText(" - 0 +")                       # the selected text itself changes
        await until(lambda: not w.assistant.busy() and w.assistant.pending is None, timeout=180)
        await asyncio.sleep(0.1)
        return tab.toPlainText()

    before = gui.run(scenario())
    view = w.assistant.diff
    if view.guard is not None:   # the diff was shown before the change: applying is refused
        assert "changed" in view.apply_all()
    else:
        assert "changed" in w.assistant.view.toPlainText()
    assert tab.toPlainText() == before == "def add(a, b):\n    return a - 0 + + b\n"
