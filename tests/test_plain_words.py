"""Errors in plain words: no `[Errno -2]` in what a person reads."""
import socket

from app.plain_words import plain


def test_errno_tags_go_and_system_words_become_plain():
    assert plain("cannot reach the hub for a/b: [Errno -2] Name or service not known") == \
        "cannot reach the hub for a/b: unknown host name (check the address, or the network)"
    assert "Errno" not in plain(socket.gaierror(-2, "Name or service not known"))
    assert plain("cannot connect to the server at http://h:1: [Errno 111] Connection refused").endswith(
        "nothing answers at that address (is the server running?)")
    assert plain(OSError(28, "No space left on device", "/m/a.gguf")) == "the disk is full: /m/a.gguf"
    assert plain(ValueError()) == "ValueError"
    assert plain("a message of our own") == "a message of our own"
