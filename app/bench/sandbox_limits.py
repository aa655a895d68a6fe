"""Limits that span a program's whole process tree, and machine-wide sandbox slots.

`TreeMemory`: a memory cgroup (v1 or v2) per slot, where one is writable (as root, usually):
every process the program starts is charged to it, so six children of 700 MB cannot hold more
than the budget together. Without one the sandbox caps the process count instead (see
sandbox_zygote.Zygote._limits).

`acquire_slot`: a slot number unique on this machine for as long as the calling process lives,
held by flock on `SLOT_DIR/slot-N.lock` (a killed process leaves no stale lock). As root a slot
is a uid, so two runs at once never sweep up each other's programs.
"""
from __future__ import annotations

import fcntl
import os
import signal
import time

from app.bench import confine

SLOT_DIR = "/tmp/llamadesk-sandbox-slots"   # machine-wide on purpose: not under HOME or TMPDIR


def acquire_slot(root: bool) -> tuple[int, int]:
    """(slot, fd of its lock file); the slot stays ours until the fd is closed."""
    os.makedirs(SLOT_DIR, exist_ok=True)
    try:
        os.chmod(SLOT_DIR, 0o1777)  # every user's runs share it, like /tmp itself
    except PermissionError:
        pass
    if os.path.islink(SLOT_DIR):
        raise RuntimeError(f"{SLOT_DIR} is a symlink; remove it")
    for slot in range(confine.MAX_SLOTS):
        if root and _uid_taken(confine.SANDBOX_UID_BASE + slot):
            continue
        path = os.path.join(SLOT_DIR, f"slot-{slot}.lock")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, fd
        except OSError:
            os.close(fd)
    raise RuntimeError(f"all {confine.MAX_SLOTS} sandbox slots are in use")


def _uid_taken(uid: int) -> bool:
    try:
        import pwd

        pwd.getpwuid(uid)
        return True
    except (KeyError, ImportError):
        return False


class TreeMemory:
    """A memory cgroup for one slot's programs, or None from `create` where none is writable."""

    def __init__(self, path: str, version: int):
        self.path = path
        self.version = version
        self.procs = os.path.join(path, "cgroup.procs")

    @classmethod
    def create(cls, slot: int) -> "TreeMemory | None":
        if not confine.IS_LINUX:
            return None
        for version, parent in _memory_cgroups():
            path = os.path.join(parent, f"llamadesk-sandbox-{slot}")
            try:
                os.makedirs(path, exist_ok=True)
                tm = cls(path, version)
                tm.set_limit(256 * 2**20)
                return tm
            except OSError:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
        return None

    def set_limit(self, nbytes: int) -> None:
        if nbytes == getattr(self, "_limit", None):
            return
        self._limit = nbytes
        if self.version == 1:
            # memsw must stay >= the plain limit at every step: order depends on the direction
            files = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
            cur = int(_read(os.path.join(self.path, files[0])) or 0)
            if nbytes > cur:
                files.reverse()
            for name in files:
                p = os.path.join(self.path, name)
                if os.path.exists(p):
                    _write(p, str(nbytes))
        else:
            _write(os.path.join(self.path, "memory.max"), str(nbytes))
            swap = os.path.join(self.path, "memory.swap.max")
            if os.path.exists(swap):
                _write(swap, "0")

    def join_fd(self) -> int:
        """An fd on cgroup.procs; a forked child writes b"0" to it to move itself in."""
        return os.open(self.procs, os.O_WRONLY | os.O_CLOEXEC)

    def kill_all(self) -> None:
        for attempt in range(2000):
            pids = [int(p) for p in (_read(self.procs) or "").split()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.0002 if attempt < 20 else 0.005)  # a killed process leaves within microseconds

    def remove(self) -> None:
        self.kill_all()
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


def _memory_cgroups() -> list[tuple[int, str]]:
    """(version, folder of our own cgroup) for each mounted hierarchy with a memory controller."""
    mounts: list[tuple[int, str, str]] = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                left, right = line.split(" - ", 1)
                fstype, _, opts = right.split()[:3]
                mnt, root = left.split()[4], left.split()[3]
                if fstype == "cgroup" and "memory" in opts.split(","):
                    mounts.append((1, mnt, root))
                elif fstype == "cgroup2":
                    mounts.append((2, mnt, root))
        with open("/proc/self/cgroup") as fh:
            own = [line.rstrip("\n").split(":", 2) for line in fh]
    except OSError:
        return []
    found = []
    for version, mnt, root in mounts:
        for _, controllers, path in own:
            if (version == 1 and "memory" in controllers.split(",")) or (version == 2 and controllers == ""):
                rel = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
                folder = os.path.normpath(os.path.join(mnt, rel))
                if version == 2 and "memory" not in (_read(os.path.join(folder, "cgroup.controllers")) or ""):
                    continue
                found.append((version, folder))
    return sorted(found)


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
