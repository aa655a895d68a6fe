"""Hostile completions of HumanEval/0 against the sandbox, run as whoever starts this script.

    python tests/humaneval/sandbox_attacks.py SECRET_FILE [SECRET_FILE...] [--without a,b]

The tests run it as root and, dropped with `as_user_command`, as an ordinary user. It listens
where the completions try to send (TCP, UDP, a unix socket, an abstract unix socket), scores
each completion with `Sandbox.check` as the runner does, and prints one JSON object: every
verdict, what the listeners received, the processes the completions left (they name themselves
with a token), the files left in TMPDIR and the sandbox's capabilities. `--without` leaves
protections out, to show what each one stops.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from app.bench import humaneval as he
from app.bench.sandbox import Sandbox

WRONG = "    return False\n"   # HumanEval/0's answer is not always False: only forging passes


def attacks(secrets: list[str], ports: dict, token: str) -> dict[str, str]:
    name_me = (f"import ctypes\nctypes.CDLL(None).prctl(15, {token.encode()!r}, 0, 0, 0)\n")
    return {
        "reads secrets": (
            "import os\nfound = []\n"
            f"for p in {secrets!r} + ['/etc/shadow', '/etc/passwd', '/root/.bashrc', '/proc/1/environ']:\n"
            "    try:\n        found.append(open(p).read())\n    except OSError as e:\n        print('denied', p, e)\n"
            "for d in ['/root', '/etc', '/home', '/tmp']:\n"
            "    try:\n        found.append(repr(os.listdir(d)))\n    except OSError:\n        pass\n"
            "print(*found)\nraise RuntimeError(' '.join(found)[:5000])\n"),
        "tcp to a listener": (
            f"import socket\ns = socket.create_connection(('127.0.0.1', {ports['tcp']}), timeout=2)\n"
            "s.sendall(b'LEAK')\n"),
        "udp send": (
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"s.sendto(b'LEAK', ('127.0.0.1', {ports['udp']}))\n"),
        "unix socket": (
            "import socket\ns = socket.socket(socket.AF_UNIX)\n"
            f"s.connect({ports['unix']!r})\ns.sendall(b'LEAK')\n"),
        "abstract unix socket": (
            "import socket\ns = socket.socket(socket.AF_UNIX)\n"
            f"s.connect({ports['abstract']!r})\ns.sendall(b'LEAK')\n"),
        "frame walk forges a pass": (
            "import os, sys\nvalues = []\nf = sys._getframe()\n"
            "while f is not None:\n"
            "    values += [v for v in list(f.f_locals.values()) + list(f.f_globals.values())\n"
            "               if isinstance(v, (bytes, str, int))]\n    f = f.f_back\n"
            "wire = sys.modules.get('app.bench.sandbox_wire')\n"
            "for fd in range(3, 64):\n"
            "    for msg in [('passed', ''), ('ready',), ('ok', True, (), {})]:\n"
            "        try:\n            wire.send(fd, msg)\n        except Exception:\n            pass\n"
            "    for v in values:\n"
            "        try:\n            os.write(fd, v if isinstance(v, bytes) else str(v).encode())\n"
            "        except Exception:\n            pass\n"
            "os._exit(0)\n"),
        "always-equal object": (
            "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"
            "    def __ne__(self, other):\n        return False\n    __hash__ = object.__hash__\n"
            "has_close_elements = lambda *a, **k: AlwaysEqual()\n"),
        "bool subclass": (
            "class Yes(int):\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = int.__hash__\n"
            "has_close_elements = lambda *a, **k: Yes(1)\n"),
        "output replaced by a symlink": (
            "import os\nfor n in os.listdir('.'):\n    os.remove(n)\n"
            f"os.symlink({secrets[0]!r}, '.output')\nos.symlink('/etc/shadow', 'output')\n"
            "print('x' * 100)\n"),
        "output replaced by /dev/zero": (
            "import os\nos.symlink('/dev/zero', '.output')\n"
            "os.dup2(os.open('/dev/zero', os.O_RDONLY), 1)\nprint('x')\n"),
        "output replaced by a FIFO": "import os\nos.mkfifo('.output')\nos.mkfifo('fifo')\n",
        "prints a gigabyte": "import sys\nblock = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(block)\n",
        "fork flood with setsid escapes": (
            "import os, time\n"
            "for i in range(30):\n"
            "    if os.fork() == 0:\n"
            f"{_indent(name_me, 8)}"
            "        if i % 3 == 0:\n"
            "            os.setsid()\n"
            "            if os.fork():\n"
            "                os._exit(0)\n"
            f"{_indent(name_me, 12)}"
            "        time.sleep(600)\n"
            "        os._exit(0)\n"),
        "kills its parent": "import os\nos.kill(os.getppid(), 9)\n",
        "kills everything it can": "import os, signal\nos.kill(-1, signal.SIGKILL)\n",
        "sys.exit(0) before checks": "import sys\nsys.exit(0)\n",
        "os._exit(0) before checks": "import os\nos._exit(0)\n",
        "writes outside": (
            "import os\n"
            f"for p in {secrets!r} + ['/tmp/llamadesk-attack-{token}', "
            f"os.path.expanduser('~/../llamadesk-attack-{token}')]:\n"
            "    try:\n        open(p, 'w').write('overwritten')\n    except OSError:\n        pass\n"),
        "infinite loop": "while True:\n    pass\n",
    }


def _indent(code: str, n: int) -> str:
    return "".join(" " * n + line + "\n" for line in code.splitlines())


class Listeners:
    """Everything a completion might send to, on this machine."""

    def __init__(self, folder: str, token: str):
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.unix_path = os.path.join(folder, "listener.sock")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        os.chmod(self.unix_path, 0o777)
        self.abstract_name = f"\0llamadesk-attack-{token}"
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind(self.abstract_name)
        for s in (self.tcp, self.unix, self.abstract):
            s.listen(8)
        for s in (self.tcp, self.udp, self.unix, self.abstract):
            s.setblocking(False)

    def ports(self) -> dict:
        return {"tcp": self.tcp.getsockname()[1], "udp": self.udp.getsockname()[1],
                "unix": self.unix_path, "abstract": self.abstract_name}

    def probe(self) -> list[str]:
        """Send to every listener from out here: each must hear it (else the test proves nothing)."""
        with socket.create_connection(self.tcp.getsockname()), \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_UNIX) as a, socket.socket(socket.AF_UNIX) as b:
            u.sendto(b"probe", self.udp.getsockname())
            a.connect(self.unix_path)
            b.connect(self.abstract_name)
            time.sleep(0.1)
            return self.received()

    def received(self) -> list[str]:
        got = []
        for name, s in (("tcp", self.tcp), ("unix", self.unix), ("abstract", self.abstract)):
            try:
                conn, _ = s.accept()
                got.append(f"{name} connection")
                conn.close()
            except BlockingIOError:
                pass
        try:
            got.append(f"udp {self.udp.recv(100)!r}")
        except BlockingIOError:
            pass
        return got


def processes_named(token: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and Path(f"/proc/{pid}/comm").read_text().strip() == token:
                found.append(int(pid))
        except OSError:
            continue
    return found


async def main(secrets: list[str], without: tuple[str, ...]) -> dict:
    token = "ldx" + os.urandom(4).hex()
    folder = tempfile.mkdtemp(prefix="llamadesk-attack-")
    os.chmod(folder, 0o755)
    tmp = tempfile.mkdtemp(prefix="llamadesk-attack-tmp-")
    listeners = Listeners(folder, token)
    probe = listeners.probe()
    problem = he.load_problems(task_ids=["0"])[0]
    progs = attacks(secrets, listeners.ports(), token)
    tempfile.tempdir = tmp  # where the sandbox workers make their folders
    os.environ["TMPDIR"] = tmp
    async with Sandbox(workers=2, timeout=4.0, memory_mb=512, without=without) as sb:
        caps = sb.capabilities
        verdicts = await asyncio.gather(*(sb.check(problem, WRONG + code) for code in progs.values()))
        await asyncio.sleep(0.5)
        left_during = processes_named(token)
        still_works = await sb.check(problem, problem["canonical_solution"])
    report = {
        "verdicts": {n: [v.status, v.error, v.output] for n, v in zip(progs, verdicts)},
        "still_works": still_works.passed,
        "probe": probe,
        "received": listeners.received(),
        "left_processes": sorted(set(left_during + processes_named(token))),
        "left_files": sorted(str(p) for p in Path(tmp).rglob("*")),
        "outside_writes": [p for p in (f"/tmp/llamadesk-attack-{token}",) if os.path.exists(p)],
        "capabilities": caps,
    }
    for leftover in (listeners.unix_path, folder, tmp):
        try:
            os.unlink(leftover) if leftover.endswith(".sock") else os.rmdir(leftover)
        except OSError:
            pass
    return report


if __name__ == "__main__":
    args = sys.argv[1:]
    without = ()
    if "--without" in args:
        i = args.index("--without")
        without = tuple(args[i + 1].split(","))
        del args[i:i + 2]
    print(json.dumps(asyncio.run(main(args, without))))
