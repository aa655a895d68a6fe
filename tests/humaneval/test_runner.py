"""The run loop and its folder: one run per folder, bad input refused in one line, no lost verdicts."""
import json
import os
import signal
import subprocess
import sys

import pytest

from app.bench import humaneval as he
from app.bench.run_folder import RunFolder, RunFolderBusy
from tests.helpers import arun, run_cli


def read_rows(path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def one_line_exit_2(r, expect: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert expect in lines[0], lines[0]


def test_second_run_on_a_locked_folder_exits_2_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out):  # this process holds the folder, as a running `humaneval` would
        r = run_cli("humaneval", "--canonical", "--limit", "2", "--out", str(out))
        one_line_exit_2(r, f"process {os.getpid()}")
        assert not (out / "results.jsonl").exists() and not (out / "run.json").exists()
    r = run_cli("humaneval", "--canonical", "--limit", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    with RunFolder(out):
        one_line_exit_2(run_cli("humaneval", "--resume", str(out)), f"process {os.getpid()}")


def test_two_runs_started_together_never_share_a_folder(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "app", "humaneval", "--canonical", "--limit", "30", "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    rows = read_rows(out / "results.jsonl")
    assert len(rows) == 30 and len({(x["task_id"], x["sample"]) for x in rows}) == 30


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from app.bench.run_folder import RunFolder; "
                               "RunFolder(sys.argv[1]).lock(); print('held', flush=True); time.sleep(600)", str(out)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunFolderBusy, match=f"process {holder.pid}"):
        RunFolder(out).lock()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    RunFolder(out).lock().unlock()


def test_run_file_is_replaced_not_rewritten_in_place(tmp_path):
    folder = RunFolder(tmp_path / "run").lock()
    folder.write_settings({"samples": 1})
    inode = (folder.path / "run.json").stat().st_ino
    folder.write_settings({"samples": 2})
    assert (folder.path / "run.json").stat().st_ino != inode, "a reader could see a half-written file"
    assert folder.read_settings() == {"samples": 2}
    assert sorted(p.name for p in folder.path.iterdir()) == [".lock", "run.json"]


@pytest.mark.parametrize("args, expect", [
    (["--timeout", "0"], "--timeout"), (["--timeout", "-1"], "--timeout"), (["--timeout", "nan"], "--timeout"),
    (["--timeout", "inf"], "--timeout"), (["--limit", "-1"], "--limit"), (["--limit", "0"], "--limit"),
    (["--samples", "0"], "--samples"), (["--workers", "0"], "--workers"),
])
def test_out_of_range_numbers_exit_2(tmp_path, args, expect):
    r = run_cli("humaneval", "--canonical", *args, "--out", str(tmp_path / "run"))
    one_line_exit_2(r, expect)
    assert not (tmp_path / "run").exists()


def test_out_pointing_at_a_file_exits_2(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    one_line_exit_2(run_cli("humaneval", "--canonical", "--limit", "1", "--out", str(target)), "is a file")
    assert target.read_text() == "keep me"


def test_resume_of_a_folder_with_a_corrupt_middle_line_exits_2(tmp_path):
    out = tmp_path / "run"
    assert run_cli("humaneval", "--canonical", "--limit", "3", "--out", str(out)).returncode == 0
    results = out / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    lines[1] = '{"task_id": "HumanEval/1", "sam\n'
    results.write_text("".join(lines))
    (out / "summary.json").unlink()
    one_line_exit_2(run_cli("humaneval", "--resume", str(out)), "results.jsonl:2")
    assert results.read_text() == "".join(lines), "the damaged log must be left for the user to repair"


@pytest.mark.parametrize("bad_id", [["HumanEval/0"], {"id": "HumanEval/0"}])
def test_a_task_id_that_is_not_a_string_exits_2(tmp_path, bad_id):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/1", "completion": "    return 1\n"}) + "\n"
                       + json.dumps({"task_id": bad_id, "completion": "    return 1\n"}) + "\n")
    one_line_exit_2(run_cli("humaneval", "--evaluate", str(samples), "--out", str(tmp_path / "a")), "sample 2")
    problems = tmp_path / "problems.jsonl"
    good = he.load_problems(limit=1)[0]
    problems.write_text(json.dumps(good) + "\n" + json.dumps({**good, "task_id": bad_id}) + "\n")
    one_line_exit_2(run_cli("humaneval", "--canonical", "--problems", str(problems), "--out", str(tmp_path / "b")),
                    "entry 2")


def test_a_resume_refuses_another_model_file(tmp_path, smollm):
    out = tmp_path / "run"
    r = run_cli("humaneval", "--model", str(smollm), "--limit", "1", "--max-tokens", "16", "--out", str(out),
                timeout=600)
    assert r.returncode == 0, r.stderr
    saved = json.loads((out / "run.json").read_text())
    from app.bench.runner import file_sha256

    assert saved["model_sha256"] == file_sha256(smollm) and saved["model"] == str(smollm.resolve())
    other = tmp_path / "other.gguf"
    other.write_bytes(smollm.read_bytes()[:-1] + b"\0")  # same size, other bytes
    (out / "run.json").write_text(json.dumps({**saved, "model": str(other), "limit": 2}))
    before = (out / "results.jsonl").read_text()
    one_line_exit_2(run_cli("humaneval", "--resume", str(out), timeout=600), "not the model file")
    assert (out / "results.jsonl").read_text() == before


def test_generation_error_keeps_the_verdicts_being_scored(tmp_path, smollm):
    """Scoring of task 1 is still running (its test sleeps) when generating task 2 fails.

    Task 1 was generated before (an interrupted run), so its program does not depend on what
    the model writes; task 2 is generated by the real engine, which refuses it."""
    from app.bench.runner import HumanEvalRun
    from app.bench.sandbox import Sandbox
    from app.engine.client import EngineClient, EngineError

    first, second = he.load_problems(limit=2)
    first = {**first, "test": "import time\ntime.sleep(2)\n" + first["test"]}
    second = {**second, "prompt": second["prompt"] * 40}  # longer than the context: the engine refuses it
    out = tmp_path / "run"
    out.mkdir()
    (out / "samples.jsonl").write_text(json.dumps({"task_id": first["task_id"], "sample": 0,
                                                   "completion": first["canonical_solution"]}) + "\n")

    async def go():
        async with EngineClient() as engine, Sandbox(workers=1) as sandbox:
            await engine.load(smollm, n_ctx=512, n_threads=2)
            run = HumanEvalRun(out, [first, second], protocol=he.make_protocol("codex", max_tokens=24),
                               engine=engine, sandbox=sandbox)
            with pytest.raises(EngineError, match="context"):
                await run.run()

    arun(go(), timeout=300)
    rows = read_rows(out / "results.jsonl")
    assert [r["task_id"] for r in rows] == [first["task_id"]], "the verdict scored during the failure was lost"
    assert rows[0]["verdict"] == "passed", rows[0]
    RunFolder(out).lock().unlock()  # and the folder is free again
