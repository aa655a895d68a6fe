"""Saving keeps the file as it was (mode, symlink, line endings, encoding), atomically; files
that are not text files are refused with one line (issue 11, items 5 and 7)."""
import os
import stat

import pytest


@pytest.fixture
def opened(gui):
    problems = []
    gui.window.tabs.warn = lambda title, text: problems.append(text)

    def open_(path):
        tab = gui.window.tabs.open_file(str(path))
        return tab, problems

    return open_


def edit_and_save(gui, tab, extra="# edited\n"):
    c = tab.textCursor()
    c.movePosition(c.MoveOperation.End)
    c.insertText(extra)
    assert gui.window.tabs.save(tab)


def test_save_keeps_mode_crlf_and_writes_through_a_symlink(gui, opened, tmp_path):
    real = tmp_path / "real" / "tool.sh"
    real.parent.mkdir()
    real.write_bytes(b"#!/bin/sh\r\necho hi\r\n")
    real.chmod(0o755)
    link = tmp_path / "link.sh"
    link.symlink_to(real)
    tab, problems = opened(link)
    assert tab is not None, problems
    edit_and_save(gui, tab, "echo more\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"#!/bin/sh\r\necho hi\r\necho more\r\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o755
    assert sorted(p.name for p in real.parent.iterdir()) == ["tool.sh"]  # no temp file left behind


@pytest.mark.parametrize("encoding, data", [
    ("utf-16", "x = 'ü'\n".encode("utf-16")),
    ("utf-8-sig", "x = 'ü'\n".encode("utf-8-sig")),
    ("latin-1", "x = 'ü'\n".encode("latin-1")),
])
def test_save_keeps_the_encoding(gui, opened, tmp_path, encoding, data):
    f = tmp_path / "enc.py"
    f.write_bytes(data)
    tab, problems = opened(f)
    assert tab is not None, problems
    assert tab.toPlainText() == "x = 'ü'\n"
    edit_and_save(gui, tab, "y = 'é'\n")
    assert f.read_bytes() == "x = 'ü'\ny = 'é'\n".encode(encoding)


def test_a_character_the_encoding_cannot_hold_is_refused_and_the_file_kept(gui, opened, tmp_path):
    f = tmp_path / "old.txt"
    f.write_bytes("café\n".encode("latin-1"))
    tab, problems = opened(f)
    c = tab.textCursor()
    c.insertText("✓ ")
    assert not gui.window.tabs.save(tab)
    assert "latin-1" in problems[-1] and "\n" not in problems[-1]
    assert f.read_bytes() == "café\n".encode("latin-1") and tab.dirty


def test_fifo_device_folder_and_binary_are_refused(opened, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x7fELF\0\0\0\1" * 100)
    for path in (fifo, "/dev/zero", tmp_path, binary):
        tab, problems = opened(path)
        assert tab is None
        assert problems and str(path) in problems[-1] and "\n" not in problems[-1]
        assert "Errno" not in problems[-1]


def test_a_missing_file_is_described_in_plain_words(opened, tmp_path):
    tab, problems = opened(tmp_path / "gone.py")
    assert tab is None and problems[-1].endswith("no such file or directory.") and "Errno" not in problems[-1]


def test_read_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    from app.ui.editor import text_file

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(text_file.FileProblem, match="not a regular file"):
        text_file.read(str(fifo))
