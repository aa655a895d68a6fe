"""OS means of confining a process, each a small function that reports whether it worked.

Linux: Landlock (writes only inside one folder, no TCP, no signals or abstract sockets outside
the sandbox), an unprivileged uid when running as root (so that RLIMIT_NPROC applies and
`kill(-1)` can sweep everything the sandbox started), and the child-subreaper flag so that
processes that escape with setsid() are reparented to us and can be found. macOS: resource
limits. Windows: none of these; the caller falls back to timeouts and a tree kill.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

IS_LINUX = sys.platform.startswith("linux")
SANDBOX_UID_BASE = 61000  # one uid per worker slot; they need no /etc/passwd entry

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if os.name == "posix" else None

# Landlock (linux/landlock.h). The syscall numbers are the same on every architecture.
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
FS_WRITE_FILE, FS_READ_FILE = 1 << 1, 1 << 2
FS_REMOVE_DIR, FS_REMOVE_FILE = 1 << 4, 1 << 5
FS_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
PR_SET_NO_NEW_PRIVS, PR_SET_KEEPCAPS, PR_SET_CHILD_SUBREAPER = 38, 8, 36
CAP_DAC_READ_SEARCH = 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _syscall(*args) -> int:
    return _libc.syscall(*[ctypes.c_long(a) if isinstance(a, int) else a for a in args])


def landlock_abi() -> int:
    if not IS_LINUX or _libc is None:
        return 0
    abi = _libc.syscall(ctypes.c_long(_SYS_CREATE), None, ctypes.c_size_t(0),
                        ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(0, abi)


def landlock_confine(writable_dir: str, abi: int) -> bool:
    """Allow writes only beneath `writable_dir` (and to /dev/null); deny TCP and signals out.

    Irreversible for this process and its children. Returns False when the kernel lacks Landlock.
    """
    if abi < 1:
        return False
    fs = FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE
    if abi >= 2:
        fs |= FS_REFER
    if abi >= 3:
        fs |= FS_TRUNCATE
    if abi >= 5:
        fs |= FS_IOCTL_DEV
    attr = _RulesetAttr(fs, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(ctypes.c_long(_SYS_CREATE), ctypes.byref(attr), ctypes.c_size_t(size),
                            ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        file_rights = FS_WRITE_FILE | (FS_TRUNCATE if abi >= 3 else 0)
        for path, rights in ((writable_dir, fs), ("/dev/null", file_rights)):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneath(rights, fd)
                if _libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_int(ruleset),
                                 ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                                 ctypes.c_uint32(0)) < 0:
                    return False
            finally:
                os.close(fd)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return _libc.syscall(ctypes.c_long(_SYS_RESTRICT), ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0
    finally:
        os.close(ruleset)


def become_child_subreaper() -> bool:
    return IS_LINUX and _libc is not None and _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_to_uid(uid: int) -> None:
    """Root only: become `uid`, keeping just CAP_DAC_READ_SEARCH so that Python can still read
    its standard library wherever root installed it (e.g. under a 0700 /root). Writes are
    governed by Landlock; the capability gives no write, kill or rlimit power."""
    if IS_LINUX:
        _libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if IS_LINUX:
        header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (_CapData * 2)()
        data[0].effective = data[0].permitted = 1 << CAP_DAC_READ_SEARCH
        _libc.capset(ctypes.byref(header), data)


def child_pids(parent: int) -> list[int]:
    """Direct children of `parent`, from /proc (Linux)."""
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        pass
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return pids
