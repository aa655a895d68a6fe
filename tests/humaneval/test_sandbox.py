"""The sandbox against hostile programs: each fails, harms nothing, and leaves no process."""
import asyncio
import os
import time
from pathlib import Path

import pytest

from app.bench.sandbox import Sandbox
from tests.helpers import arun


def hostile_programs(victims: dict[str, Path]) -> dict[str, str]:
    """Each program ends in a failing check, as a wrong answer would: only the harm differs."""
    progs = {
        "infinite loop": "while True:\n    pass\n",
        "ignores SIGALRM and SIGTERM": (
            "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n"),
        "memory bomb": "x = []\nwhile True:\n    x.append(bytearray(100 * 2**20))\n",
        "fork flood with escapes": (
            "import os, time\n"
            "for i in range(30):\n"
            "    if os.fork() == 0:\n"
            "        if i % 3 == 0:\n"
            "            os.setsid()\n"
            "            if os.fork():\n"
            "                os._exit(0)\n"
            "        time.sleep(600)\n"
            "        os._exit(0)\n"
            "assert False, 'parent gives up'\n"),
        "sys.exit(0) before checks": "import sys\nsys.exit(0)\nassert False\n",
        "os._exit(0) before checks": "import os\nos._exit(0)\n",
        "kills its parent": "import os\nos.kill(os.getppid(), 9)\n",
        "kills everything it can": "import os, signal\nos.kill(-1, signal.SIGKILL)\n",
        "deletes its cwd": "import os, shutil\nfor n in os.listdir('.'):\n    shutil.rmtree(n, ignore_errors=True) if os.path.isdir(n) else os.remove(n)\nassert False\n",
        "deletes in home": (f"import os\nos.remove(os.path.expanduser('~/{victims['home'].name}'))\n"
                            f"os.remove({str(victims['home'])!r})\n"),
        "deletes absolute path": f"import os\nos.remove({str(victims['outside'])!r})\n",
        "writes outside": f"open({str(victims['outside'].parent / 'new.txt')!r}, 'w').write('x')\n",
        "prints a gigabyte": "import sys\nblock = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(block)\n",
    }
    return {name: prog + "assert False, 'the checks fail'\n" for name, prog in progs.items()}


def sandbox_descendants() -> list[str]:
    """Processes still running sleep loops from the fork flood (uid-independent check)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"sandbox_zygote" in cmd and f"PPid:\t{os.getpid()}" not in status:
            # zygote children (forked programs) share its command line
            ppid = int(status.split("PPid:")[1].split()[0])
            if b"sandbox_zygote" in Path(f"/proc/{ppid}/cmdline").read_bytes() or ppid == 1:
                found.append(pid)
    return found


def test_hostile_programs_fail_and_harm_nothing(tmp_path, monkeypatch):
    home_victim = Path.home() / f".llamadesk-sandbox-victim-{os.getpid()}"
    home_victim.write_text("keep me")
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me too")
    victims = {"home": home_victim, "outside": outside}
    try:
        async def go():
            async with Sandbox(workers=2, timeout=3.0, memory_mb=512) as sb:
                progs = hostile_programs(victims)
                verdicts = await asyncio.gather(*(sb.run(p) for p in progs.values()))
                await asyncio.sleep(0.5)
                leftovers = sandbox_descendants()
                ok = await sb.run("assert sum([1, 2]) == 3\n")
                return dict(zip(progs, verdicts)), leftovers, ok, sb.capabilities

        verdicts, leftovers, ok, caps = arun(go(), timeout=120)
        for name, v in verdicts.items():
            assert not v.passed, f"{name} passed: {v}"
        assert verdicts["infinite loop"].status == "timed out"
        assert verdicts["ignores SIGALRM and SIGTERM"].status == "timed out"
        assert "SystemExit" in verdicts["sys.exit(0) before checks"].error
        assert "before the checks finished" in verdicts["os._exit(0) before checks"].error
        assert "MB of output" in verdicts["prints a gigabyte"].error
        assert home_victim.read_text() == "keep me"
        assert outside.read_text() == "keep me too"
        assert not (tmp_path / "new.txt").exists()
        assert leftovers == [], f"sandboxed processes outlived the run: {leftovers}"
        assert ok.passed, "the sandbox must still work after all that"
        if caps["landlock_abi"] >= 6:
            assert caps["writes_confined"] and caps["signals_confined"] and caps["network_blocked"]
    finally:
        home_victim.unlink(missing_ok=True)


def test_no_sandbox_process_outlives_close():
    async def go():
        sb = Sandbox(workers=2, timeout=2.0)
        await sb.start()
        pids = [w.proc.pid for w in sb._workers]
        await sb.run("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n")
        await sb.close()
        return pids

    pids = arun(go())
    time.sleep(0.2)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_network_is_blocked_where_landlock_allows():
    async def go():
        async with Sandbox(workers=1, timeout=3.0) as sb:
            v = await sb.run("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n")
            return v, sb.capabilities

    v, caps = arun(go())
    assert not v.passed
    if caps["network_blocked"]:
        assert "Permission" in v.error


def test_stdlib_imports_work_inside():
    prog = "import hashlib, xml.dom.minidom, sqlite3, csv\nassert hashlib.md5(b'a').hexdigest()[:4] == '0cc1'\n"

    async def go():
        async with Sandbox(workers=1) as sb:
            return await sb.run(prog)

    v = arun(go())
    assert v.passed, v
