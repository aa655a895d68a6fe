"""Run a command as an ordinary user from a root test, with the interpreter within reach.

The venv's interpreter may live under a folder only root can enter (/root is 0700, pyenv puts
Python in /root/.pyenv). The command runs in a private mount namespace where that folder is
replaced by an empty tmpfs (0755) holding only a bind mount of the interpreter's tree: the
user reaches Python and nothing else of root's. Nothing changes outside that namespace.
"""
from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile

ORDINARY_UID = 45678  # no /etc/passwd entry needed


def users() -> list[str]:
    """Whom the sandbox tests run as: root and an ordinary user when we are root, else just us."""
    return ["root", "user"] if os.geteuid() == 0 else ["user"]


def _closed_ancestor(path: str) -> tuple[str, str] | None:
    """(the first folder above `path` that others cannot enter, its child on the way to `path`)."""
    parts = os.path.realpath(path).split("/")[1:]
    for i in range(1, len(parts)):
        folder = "/" + "/".join(parts[:i])
        if not os.stat(folder).st_mode & 0o001:
            return folder, folder + "/" + parts[i]
    return None


def user_home() -> str:
    home = tempfile.mkdtemp(prefix="llamadesk-user-")
    os.chmod(home, 0o700)
    if os.geteuid() == 0:
        os.chown(home, ORDINARY_UID, ORDINARY_UID)
    return home


def remove_home(home: str) -> None:
    shutil.rmtree(home, ignore_errors=True)


def as_user_command(argv: list[str], home: str) -> list[str]:
    """`argv` as ORDINARY_UID (when we are root; else unchanged), with HOME and TMPDIR = home."""
    env = ["env", f"HOME={home}", f"TMPDIR={home}", f"PYTHONPATH={os.getcwd()}",
           f"LLAMADESK_HOME={home}/llamadesk", "PATH=/usr/bin:/bin"]
    if os.geteuid() != 0:
        return env + argv
    steps = []
    closed = _closed_ancestor(sys.base_prefix)
    if closed:
        folder, child = closed
        steps = [f"S=$(mktemp -d) && mount --bind {shlex.quote(child)} \"$S\"",
                 f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(folder)}",
                 f"mkdir -p {shlex.quote(child)} && mount --bind \"$S\" {shlex.quote(child)}"]
    drop = ["setpriv", f"--reuid={ORDINARY_UID}", f"--regid={ORDINARY_UID}", "--clear-groups", "--"]
    script = " && ".join(steps + ["exec " + shlex.join(drop + env + argv)])
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]
