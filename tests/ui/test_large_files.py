"""A large file shows at once: only the first screens are lexed before the first paint, the rest
when idle; over 20 MB it opens as plain text with a note (issue 11, item 7)."""
import os
import subprocess
import sys

from PySide6.QtCore import QEvent, QObject

from tests.helpers import run_cli
from tests.ui.conftest import until


class FirstPaint(QObject):
    """Notes the highlighter's lexer calls when the editor's viewport is first painted."""

    def __init__(self):
        super().__init__()
        self.tab = None
        self.lex_calls = None

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint and self.lex_calls is None and self.tab is not None:
            self.lex_calls = self.tab.highlighter.lex_calls
        return False


def test_only_the_visible_part_is_lexed_before_the_first_paint(gui, tmp_path, qapp):
    big = tmp_path / "big.py"
    lines = 60_000
    big.write_text("".join(f'def f{i}(x):\n    return x + {i}  # "{i}"\n' for i in range(lines // 2)))
    w = gui.window
    probe = FirstPaint()
    created = []

    def watch(tab):
        probe.tab = tab
        tab.viewport().installEventFilter(probe)
        created.append(tab)

    w.tabs.tab_created.connect(watch)
    tab = w.tabs.open_file(str(big))
    assert tab is created[0]
    gui.run(until(lambda: probe.lex_calls is not None, timeout=30))
    assert probe.lex_calls <= 400, f"{probe.lex_calls} blocks lexed before the window showed the file"
    # then the rest, in idle time, with the right state carried from the top
    from app.ui.editor.highlighter import PENDING

    gui.run(until(lambda: not tab.loading and not tab.highlighter.pending(), timeout=240))
    assert tab.document().blockCount() == lines + 1 and tab.toPlainText() == big.read_text()
    assert not tab.isReadOnly() and not tab.dirty
    last = tab.document().lastBlock().previous()
    assert last.userState() not in (PENDING, -1)
    assert tab.highlighter.lex_calls >= lines
    assert last.layout().formats(), "the last line is highlighted too"


def test_over_20_mb_opens_as_plain_text_with_a_note(gui, tmp_path):
    from app.ui.editor import text_file

    big = tmp_path / "huge.py"
    line = "value = compute(1, 2, 3)  # a line of python that is long enough\n"
    with open(big, "w") as fh:
        fh.write(line * (text_file.PLAIN_BYTES // len(line) + 10))
    notes = []
    w = gui.window
    w.tabs.notice.connect(notes.append)
    tab = w.tabs.open_file(str(big))
    assert tab is not None and tab.plain
    gui.run(until(lambda: tab.highlighter._started, timeout=30))
    assert tab.highlighter.lex_calls == 0
    assert notes and "plain text" in notes[-1] and "huge.py" in notes[-1]
    assert "plain text" in w.tabs.tabToolTip(w.tabs.indexOf(tab))


def shot(tmp_path, *args, timeout=60):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_screenshot_with_a_fifo_or_binary_to_open_does_not_block(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\0\1\2" * 1000)
    for target in (fifo, binary):
        out = tmp_path / "x.png"
        r = shot(tmp_path, "--open", str(target), "--screenshot", str(out), "--panel", "editor")
        assert r.returncode == 0, r.stderr
        assert out.exists()
        said = [line for line in r.stderr.splitlines() if line.startswith("llamadesk:")]
        assert len(said) == 1 and str(target) in said[0]


def test_screenshot_to_an_unwritable_path_exits_2_with_one_line(tmp_path):
    for out in (tmp_path / "missing" / "x.png", tmp_path):
        r = run_cli("--screenshot", str(out), "--panel", "editor",
                    env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert r.returncode == 2
        said = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(said) == 1 and said[0].startswith("llamadesk: cannot write the screenshot"), r.stderr


def test_a_file_still_loading_takes_keys_where_typed_and_is_neither_saved_nor_autosaved(gui, tmp_path):
    from PySide6.QtGui import QTextCursor

    big = tmp_path / "big.txt"
    big.write_text("a line of text\n" * 200_000)
    problems = []
    w = gui.window
    w.tabs.warn = lambda title, text: problems.append(text)
    tab = w.tabs.open_file(str(big))
    assert tab.loading and not tab.isReadOnly() and not tab.dirty
    top = QTextCursor(tab.document())
    top.insertText("TOP\n")
    end = tab.textCursor()
    end.movePosition(QTextCursor.End)                       # the end of what has loaded so far
    tab.setTextCursor(end)
    tab.insertPlainText("MIDDLE\n")
    loaded_lines = tab.document().blockCount() - 1
    assert tab.loading and tab.dirty
    assert not w.tabs.save(tab) and "still loading" in problems[-1]
    tab.autosave()
    assert not (tab.recovery.session_dir / f"{tab.buffer_id}.json").exists()   # no part passed off as the whole
    gui.run(until(lambda: not tab.loading, timeout=120))
    lines = tab.toPlainText().split("\n")
    assert lines[0] == "TOP" and lines[loaded_lines - 1] == "MIDDLE"
    assert tab.toPlainText().replace("TOP\n", "", 1).replace("MIDDLE\n", "", 1) == big.read_text()
    caret = tab.textCursor()                                  # it stayed right after what was typed
    assert tab.dirty and caret.positionInBlock() == 0 and caret.block().previous().text() == "MIDDLE"
    assert w.tabs.save(tab) and big.read_text().startswith("TOP\na line of text\n")


def test_lines_inserted_above_during_the_idle_pass_leave_no_line_unlexed(gui):
    from PySide6.QtGui import QTextCursor

    from app.ui.editor.code_editor import CodeEditor
    from app.ui.editor.highlighter import PENDING, PygmentsHighlighter, lexer_for

    editor = CodeEditor()
    editor.setPlainText("".join(f"x{i} = {i}\n" for i in range(20_000)))
    hl = PygmentsHighlighter(editor.document(), lexer_for("a.py"), lazy=True)
    editor.show()
    hl.start_idle()
    gui.run(until(lambda: hl.limit is not None and hl.limit > 1000, timeout=60))
    QTextCursor(editor.document()).insertText("y = 1\n" * 25)   # above the limit
    c = QTextCursor(editor.document().findBlockByNumber(10))
    c.movePosition(QTextCursor.Down, QTextCursor.KeepAnchor, 5)
    c.removeSelectedText()                                       # and some removed
    gui.run(until(lambda: not hl.pending(), timeout=120))
    states, block = [], editor.document().firstBlock()
    while block.isValid():
        states.append(block.userState())
        block = block.next()
    assert PENDING not in states
    editor.close()
