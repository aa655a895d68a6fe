"""The sandbox against hostile programs, as root and as an ordinary user (issue 10, items 1-5, 18)."""
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.bench import humaneval as he
from app.bench import sandbox as sandbox_module
from app.bench.sandbox import Sandbox
from tests.helpers import arun, run_cli
from tests.humaneval.sandbox_users import as_user_command, remove_home, user_home, users

ATTACKS = str(Path(__file__).with_name("sandbox_attacks.py"))


def run_as(who: str, argv: list[str], home: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = as_user_command(argv, home) if who == "user" else argv
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=None if who == "user" else {**os.environ, "PYTHONPATH": os.getcwd()})


@pytest.mark.parametrize("who,without", [(w, "") for w in users()] + [("user", "landlock")],
                         ids=lambda x: x or "all")
def test_hostile_completions_fail_leak_nothing_send_nothing_leave_nothing(who, without):
    """`user, landlock`: the namespaces alone hold (kernels before Landlock scopes signals)."""
    home = user_home()
    secret = Path(home if who == "user" else "/root") / f".llamadesk-victim-{os.getpid()}"
    marker = f"TOPSECRET-{os.urandom(6).hex()}"
    secret.write_text(marker)
    secret.chmod(0o600)
    if who == "user" and os.geteuid() == 0:
        os.chown(secret, *(os.stat(home).st_uid,) * 2)
    try:
        r = run_as(who, [sys.executable, ATTACKS, str(secret)] + (["--without", without] if without else []), home)
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert secret.read_text() == marker, "a completion overwrote a file outside its folder"
    finally:
        secret.unlink(missing_ok=True)
        remove_home(home)
    verdicts = report["verdicts"]
    for name, (status, error, output) in verdicts.items():
        assert status != "passed", f"{name} passed: {error} {output}"
        assert marker not in error + output, f"{name} leaked the secret"
    assert marker not in r.stderr
    shadow = Path("/etc/shadow").read_text()[:40] if os.geteuid() == 0 else "root:"
    assert not any(shadow in e + o for _, e, o in verdicts.values()), "/etc/shadow leaked"
    # every listener was reachable from outside the sandbox, and heard nothing from inside
    assert sorted(p.split()[0] for p in report["probe"]) == ["abstract", "tcp", "udp", "unix"]
    assert report["received"] == []
    assert report["left_processes"] == [], "processes that escaped with setsid() outlived the run"
    assert report["left_files"] == [] and report["outside_writes"] == []
    assert report["still_works"], "the sandbox must still score after all that"
    assert verdicts["infinite loop"][0] == "timed out"
    assert "not plain data" in verdicts["always-equal object"][1]
    assert "not plain data" in verdicts["bool subclass"][1]
    assert "MB of output" in verdicts["prints a gigabyte"][1]
    caps = report["capabilities"]
    if caps["landlock_abi"] >= 6 or not caps["missing"].get("namespaces"):
        assert caps["reads_confined"] and caps["network_blocked"] and caps["writes_confined"]
    if who == "root":
        assert caps["unprivileged_uid"] >= 0x70000000


def test_protections_are_recorded_and_a_missing_one_is_warned_once(caplog, monkeypatch):
    monkeypatch.setattr(sandbox_module, "_warned", set())

    async def go():
        async with Sandbox(workers=1, without=("cgroup", "landlock")) as a, \
                Sandbox(workers=1, without=("cgroup", "landlock")) as b:
            limits = Path(f"/proc/{a._workers[0].proc.pid}/limits").read_text()
            return a.capabilities, b.capabilities, await a.run_program("import os\nassert os.getcwd()\n"), limits

    async def bare():
        async with Sandbox(workers=1, without=("namespaces", "landlock", "seccomp")) as c:
            p = he.load_problems(task_ids=["0"])[0]
            return c.capabilities, await c.check(p, p["canonical_solution"])

    bare_caps, scored = arun(bare())
    assert scored.passed, scored  # with what is there, it still scores
    assert {"namespaces", "landlock"} <= set(bare_caps["missing"])
    caps, caps2, v, limits = arun(go())
    assert v.passed, v
    assert set(caps["missing"]) == {"cgroup", "landlock"}
    assert "process" in caps["tree_memory"] and "landlock" not in " ".join(caps["applied"])
    warned = [r.getMessage() for r in caplog.records if r.name == "llamadesk.sandbox"]
    assert sum("without cgroup" in w for w in warned) == 1 and sum("without landlock" in w for w in warned) == 1
    assert caps["slot"] != caps2["slot"]
    # the worker itself is bounded too (item 2): a finite soft address-space limit
    soft = [line.split()[3] for line in limits.splitlines() if line.startswith("Max address space")][0]
    assert soft != "unlimited" and int(soft) < 8 * 2**30


FORK_HOLDERS = r'''
import os, time
r, w = os.pipe()
kids = []
for i in range(6):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        try:
            x = bytearray(SIZE)
            x[::4096] = b"\1" * len(range(0, SIZE, 4096))
            os.write(w, b"h%d\n" % os.getpid())
            time.sleep(600)
        except MemoryError:
            pass
        os._exit(0)
    kids.append(pid)
os.close(w)
os.set_blocking(r, False)
reported, alive = set(), set(kids)
deadline = time.monotonic() + 20
while alive - reported and time.monotonic() < deadline:
    for k in list(alive):
        if os.waitpid(k, os.WNOHANG)[0]:
            alive.discard(k)
    try:
        reported |= {int(x) for x in os.read(r, 4096)[1:].split(b"\nh") if x.strip()}
    except BlockingIOError:
        pass
    time.sleep(0.05)
print("holding", len(alive & reported), flush=True)
'''


@pytest.mark.parametrize("path", ["cgroup", "process count"] if os.geteuid() == 0 else ["process count"])
def test_six_children_of_700mb_cannot_hold_more_than_1gb_together(path):
    prog = FORK_HOLDERS.replace("SIZE", str(700 * 2**20))

    async def go():
        async with Sandbox(workers=1, timeout=30, memory_mb=1024,
                           without=() if path == "cgroup" else ("cgroup",)) as sb:
            return await sb.run_program(prog), sb.capabilities

    v, caps = arun(go())
    assert ("cgroup" in caps["tree_memory"]) == (path == "cgroup")
    assert "holding" in v.output, v
    assert int(v.output.split("holding")[1].split()[0]) <= 1, v.output


def test_memory_limit_as_an_ordinary_user():
    home = user_home()
    prog = FORK_HOLDERS.replace("SIZE", str(700 * 2**20))
    script = ("import asyncio, json\nfrom app.bench.sandbox import Sandbox\n"
              "async def go():\n    async with Sandbox(workers=1, timeout=30, memory_mb=1024) as sb:\n"
              f"        v = await sb.run_program({prog!r})\n"
              "        print(json.dumps([v.output, sb.capabilities['tree_memory']]))\n"
              "asyncio.run(go())\n")
    try:
        r = run_as("user", [sys.executable, "-c", script], home)
    finally:
        remove_home(home)
    assert r.returncode == 0, r.stderr
    output, tree = json.loads(r.stdout)
    assert int(output.split("holding")[1].split()[0]) <= 1, output


def test_two_runs_at_once_do_not_disturb_each_other(tmp_path):
    problems = he.load_problems(limit=20)
    slow = "    import time\n    time.sleep(0.3)\n"
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p["task_id"], "completion": slow + p["canonical_solution"]}) + "\n"
                               for p in problems))
    cmd = [sys.executable, "-m", "app", "humaneval", "--evaluate", str(samples), "--workers", "2"]
    procs = [subprocess.Popen(cmd + ["--out", str(tmp_path / f"run{i}")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.strip().splitlines()[-1] == "pass@1 = 1.000 (20/20)", out


def test_a_cancelled_run_does_not_hand_its_verdict_to_the_next():
    async def go():
        async with Sandbox(workers=1, timeout=10) as sb:
            try:
                await asyncio.wait_for(sb.run_program("import time\ntime.sleep(1.5)\nraise SystemExit(3)\n"), 0.3)
            except asyncio.TimeoutError:
                pass
            return await sb.run_program("print('second')\n")

    v = arun(go())
    assert v.passed and "second" in v.output, v


def test_no_sandbox_process_or_folder_outlives_close(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))

    def children(pid: int) -> list[int]:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    async def go():
        sb = Sandbox(workers=2, timeout=2.0)
        await sb.start()
        pids = [w.proc.pid for w in sb._workers]
        await sb.run_program("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n")
        kids = [k for p in pids for k in children(p)]  # e.g. a pid namespace's init
        # one worker dies without closing (as when the app is killed): its processes go too
        sb._workers[0].proc.kill()
        await sb._workers[0].proc.wait()
        await sb.close()
        # the next worker in that slot removes what the killed one left
        again = Sandbox(workers=2)
        await again.start()
        await again.close()
        return pids + kids

    pids = arun(go())
    time.sleep(0.5)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("who", users())
def test_stdlib_imports_work_inside(who):
    prog = ("import hashlib, xml.dom.minidom, sqlite3, csv, ctypes, decimal, zlib\n"
            "assert hashlib.md5(b'a').hexdigest()[:4] == '0cc1'\n"
            "assert sqlite3.connect(':memory:').execute('select 2').fetchone() == (2,)\n")
    script = ("import asyncio\nfrom app.bench.sandbox import Sandbox\n"
              "async def go():\n    async with Sandbox(workers=1) as sb:\n"
              f"        v = await sb.run_program({prog!r})\n        print(v.status, v.error)\n"
              "asyncio.run(go())\n")
    home = user_home()
    try:
        r = run_as(who, [sys.executable, "-c", script], home)
    finally:
        remove_home(home)
    assert r.stdout.split()[:1] == ["passed"], r.stdout + r.stderr


def test_canonical_solutions_score_through_the_cli(tmp_path):
    r = run_cli("humaneval", "--canonical", "--tasks", "32,38,50", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "pass@1 = 1.000 (3/3)"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["sandbox"]["verdict"].startswith("trusted checker")
    assert summary["sandbox"]["applied"] and "missing" in summary["sandbox"]


def test_forged_passes_fail_through_the_cli_and_nothing_leaks_into_results(tmp_path):
    """The runner scores with the trusted checker (Sandbox.check), not by exit status."""
    from tests.humaneval.sandbox_attacks import WRONG, attacks

    secret = Path("/root" if os.geteuid() == 0 else str(Path.home())) / f".llamadesk-cli-victim-{os.getpid()}"
    marker = f"TOPSECRET-{os.urandom(6).hex()}"
    secret.write_text(marker)
    secret.chmod(0o600)
    try:
        progs = attacks([str(secret)], {"tcp": 9, "udp": 9, "unix": "/nonexistent", "abstract": "\0x"}, "ldxcli")
        chosen = ["os._exit(0) before checks", "sys.exit(0) before checks", "frame walk forges a pass",
                  "always-equal object", "bool subclass", "reads secrets"]
        samples = tmp_path / "hostile.jsonl"
        samples.write_text("".join(json.dumps({"task_id": "HumanEval/0", "completion": WRONG + progs[n]}) + "\n"
                                   for n in chosen))
        r = run_cli("humaneval", "--evaluate", str(samples), "--out", str(tmp_path / "run"))
    finally:
        secret.unlink(missing_ok=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"pass@1 = 0.000 (0/{len(chosen)})", r.stdout
    written = (tmp_path / "run" / "results.jsonl").read_text()
    assert marker not in written and marker not in r.stdout + r.stderr
    if os.geteuid() == 0:
        assert Path("/etc/shadow").read_text()[:40] not in written
