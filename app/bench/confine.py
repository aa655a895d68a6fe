"""OS means of confining a process, each a small function that reports whether it worked.

Linux, in the order the sandbox applies them:
- namespaces: a private mount namespace whose root is a read-only tmpfs holding only the
  interpreter's tree, /usr, the dynamic linker's cache, four device nodes and the programs'
  folder (bind mounts at their own paths, so the interpreter finds its standard library), and
  an empty network namespace (no TCP, UDP or abstract unix sockets to anyone). As root they
  need nothing; as an ordinary user they come with a user namespace.
- no capability: as root a program runs as an unprivileged slot uid (see SANDBOX_UID_BASE);
  in a user namespace every capability is dropped; no_new_privs in both cases.
- Landlock: reads only beneath the same trees, writes only in the program's folder, no TCP,
  no signals or abstract sockets outside the sandbox (what the kernel's ABI version allows).
- seccomp: socket() fails, so even without a network namespace nothing is sent.
- the child-subreaper flag, so that processes that escape with setsid() stay findable.
macOS: resource limits only. Windows: none of these; the caller falls back to timeouts and a
tree kill.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import struct
import sys

IS_LINUX = sys.platform.startswith("linux")

# Slot uids (root only): 0x70000000 + slot, slot < MAX_SLOTS. systemd's UIDS-GIDS.md lists
# 1879048192-2147483647 as unused: clear of system users (<1000), regular users (1000-60000),
# systemd-homed (60001-60513), dynamic users (61184-65519), nobody, the common subuid ranges
# of rootless containers (100000+n*65536) and LXD's (1000000+). They need no /etc/passwd entry;
# a slot whose uid has one anyway is skipped.
SANDBOX_UID_BASE = 0x70000000
MAX_SLOTS = 4096

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if os.name == "posix" else None

# Landlock (linux/landlock.h). The syscall numbers are the same on every architecture.
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE = 1 << 4, 1 << 5
FS_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER, PR_CAPBSET_DROP, PR_CAP_AMBIENT = 38, 36, 24, 47
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
# statvfs f_flag bits that a bind remount must keep (the kernel locks them in user namespaces)
_KEEP_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
               (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
               (os.ST_RELATIME, MS_RELATIME)) if IS_LINUX else ()

DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


def landlock_abi() -> int:
    if not IS_LINUX or _libc is None:
        return 0
    abi = _libc.syscall(ctypes.c_long(_SYS_CREATE), None, ctypes.c_size_t(0),
                        ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(0, abi)


def landlock_confine(writable_dir: str, readable: list[str], abi: int) -> bool:
    """Reads only beneath `readable` (and the writable folder), writes only beneath
    `writable_dir` and to /dev/null; no TCP, no signals or abstract sockets out.

    Irreversible for this process and its children. Returns False when the kernel lacks Landlock.
    """
    if abi < 1:
        return False
    write = FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE
    if abi >= 2:
        write |= FS_REFER
    if abi >= 3:
        write |= FS_TRUNCATE
    read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
    fs = read | write | (FS_IOCTL_DEV if abi >= 5 else 0)
    attr = _RulesetAttr(fs, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _libc.syscall(ctypes.c_long(_SYS_CREATE), ctypes.byref(attr), ctypes.c_size_t(size),
                            ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        file_rights = FS_EXECUTE | FS_READ_FILE
        rules = [(writable_dir, read | write)] + [(p, read) for p in readable]
        rules.append(("/dev/null", file_rights | FS_WRITE_FILE | (FS_TRUNCATE if abi >= 3 else 0)))
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # not there (e.g. no /lib64): nothing to allow
            try:
                if not os.path.isdir(path):
                    rights &= FS_EXECUTE | FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE
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


# --- namespaces ------------------------------------------------------------------------------

def enter_namespaces(as_root: bool) -> str:
    """Give this (single-threaded) process a private mount and an empty network namespace.

    Returns "" on success, else why not. As an ordinary user a user namespace comes first, in
    which our uid maps to itself: we keep our files, and the children can drop every capability.
    """
    if not IS_LINUX or _libc is None:
        return "not Linux"
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | (0 if as_root else CLONE_NEWUSER)
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        return f"unshare: {_errno_text()}"
    if not as_root:
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as exc:
            return f"user namespace maps: {exc.strerror}"
    if _mount(None, "/", None, MS_REC | MS_PRIVATE) != 0:
        return f"making mounts private: {_errno_text()}"
    return ""


def enter_pid_namespace() -> bool:
    """Children forked from now on start a new pid namespace (needs enter_namespaces first)."""
    return IS_LINUX and _libc is not None and _libc.unshare(ctypes.c_int(CLONE_NEWPID)) == 0


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mount(src, target, fstype, flags: int, data: str | None = None) -> int:
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    return _libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def readable_trees() -> list[str]:
    """What a program may read: the interpreter's own tree, /usr (shared libraries, and the
    standard library of a distribution Python), the top-level library links, ld.so's cache."""
    trees = ["/usr"]
    for p in (sys.base_prefix, getattr(sys, "_MEIPASS", None),
              os.path.dirname(os.path.realpath(sys.executable))):
        if p:
            p = os.path.realpath(p)
            if not any(p == t or p.startswith(t + "/") for t in trees):
                trees.append(p)
    for top in ("/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"):
        if os.path.isdir(top) and not os.path.islink(top):
            trees.append(top)
    if os.path.exists("/etc/ld.so.cache"):
        trees.append("/etc/ld.so.cache")
    return trees


def build_root(root: str, trees: list[str], writable: str) -> str:
    """A read-only tmpfs at `root` holding `trees` (read-only) and `writable` (read-write), each
    at its own path, the top-level symlinks (/lib -> usr/lib) and the DEVICES. Returns "" or why not."""
    old_umask = os.umask(0o022)
    try:
        os.makedirs(root, exist_ok=True)
        if _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0:
            return f"tmpfs: {_errno_text()}"
        for top in ("/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"):
            if os.path.islink(top):
                os.symlink(os.readlink(top), root + top)
        for path in trees:
            if why := _bind(path, root + path, readonly=True):
                return why
        for dev in DEVICES:
            if os.path.exists(dev) and (why := _bind(dev, root + dev, readonly=dev != "/dev/null")):
                return why
        if why := _bind(writable, root + writable, readonly=False):
            return why
        if _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0:
            return f"read-only root: {_errno_text()}"
        return ""
    finally:
        os.umask(old_umask)


def _bind(src: str, target: str, readonly: bool) -> str:
    if os.path.isdir(src):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    if _mount(src, target, None, MS_BIND | MS_REC) != 0:
        return f"bind {src}: {_errno_text()}"
    if readonly:
        st = os.statvfs(src)
        keep = sum(ms for st_flag, ms in _KEEP_FLAGS if st.f_flag & st_flag)
        if _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | keep) != 0:
            return f"read-only {src}: {_errno_text()}"
    return ""


# --- privileges ------------------------------------------------------------------------------

class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_privileges(uid: int | None) -> bool:
    """No capability left, ever: as root become `uid` (setuid clears every capability);
    otherwise empty the bounding, ambient and all three capability sets. Then no_new_privs."""
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if not IS_LINUX or _libc is None:
        return uid is not None
    for cap in range(64):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    _libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    ok = _libc.capset(ctypes.byref(header), data) == 0
    return _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 and ok


# --- seccomp: socket() fails -----------------------------------------------------------------

_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198), "arm64": (0xC00000B7, 198)}


def deny_sockets() -> bool:
    """Every socket() call fails with EACCES (socketpair() still works: it reaches no one)."""
    arch = _ARCH.get(platform.machine().lower())
    if not IS_LINUX or _libc is None or arch is None:
        return False
    audit_arch, nr_socket = arch
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    errno_eacces, allow = 0x00050000 | 13, 0x7FFF0000
    prog = [
        (ld_abs, 0, 0, 4),                 # arch
        (jeq, 1, 0, audit_arch),
        (ret, 0, 0, allow),                # another ABI: leave it alone
        (ld_abs, 0, 0, 0),                 # syscall number
        (jge, 2, 0, 0x40000000),           # x32 numbers: refuse them all
        (jeq, 1, 0, nr_socket),
        (ret, 0, 0, allow),
        (ret, 0, 0, errno_eacces),
    ]
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Prog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


# --- processes -------------------------------------------------------------------------------

def die_with_parent() -> bool:
    """SIGKILL this process when its parent ends (PR_SET_PDEATHSIG)."""
    return IS_LINUX and _libc is not None and _libc.prctl(1, 9, 0, 0, 0) == 0


def become_child_subreaper() -> bool:
    return IS_LINUX and _libc is not None and _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


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


def processes_of_uid(uid: int) -> int | None:
    """How many processes run as `uid` now (for an RLIMIT_NPROC that counts them all), or
    None where there is no /proc to count them in."""
    n = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if entry.isdigit():
            try:
                n += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                continue
    return n


def unmount(path: str) -> bool:
    """Detach a mount (and everything beneath it) from this mount namespace."""
    return IS_LINUX and _libc is not None and _libc.umount2(path.encode(), ctypes.c_int(2)) == 0  # MNT_DETACH
