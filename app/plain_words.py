"""Errors as a person reads them: no `[Errno -2]`, no `OSError:` prefix, and the few system
messages that mean nothing to most people put in words that say what to check.

The engine, downloads and the self-test raise messages that often end in an OSError's text (a
socket's, a file's); the GUI and the CLI show them through `plain()`."""
from __future__ import annotations

import re

_ERRNO = re.compile(r"\[(?:Errno|WinError) -?\d+\]\s*")
# The system's words (lower case) and what to say instead.
_WORDS = {
    "name or service not known": "unknown host name (check the address, or the network)",
    "nodename nor servname provided, or not known": "unknown host name (check the address, or the network)",
    "temporary failure in name resolution": "no network to look the host name up",
    "no address associated with hostname": "unknown host name (check the address, or the network)",
    "connection refused": "nothing answers at that address (is the server running?)",
    "network is unreachable": "no network",
    "no route to host": "no network route to that host",
    "no space left on device": "the disk is full",
    "permission denied": "permission denied",
    "no such file or directory": "the file or folder does not exist",
    "read-only file system": "the disk is read-only",
}


def plain(error: BaseException | str) -> str:
    """One line in plain words for an exception or a message."""
    if isinstance(error, OSError) and error.strerror and not str(error).startswith(error.strerror):
        text = error.strerror + (f": {error.filename}" if error.filename else "")
    else:
        text = str(error) or type(error).__name__ if isinstance(error, BaseException) else str(error)
    text = _ERRNO.sub("", text.strip().splitlines()[0] if text.strip() else text)
    low = text.lower()
    for system, words in _WORDS.items():
        at = low.find(system)
        if at >= 0 and system != words:
            text = text[:at] + words + text[at + len(system):]
            low = text.lower()
    return text
