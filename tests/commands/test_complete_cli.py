"""`llamadesk complete` and `doctor` as a user runs them: real subprocesses, real model."""
import json

import pytest

from tests.helpers import run_cli
from tests.models.fixtures import write_bad_files


def test_complete_streams_and_reports_stats(smollm):
    r = run_cli("complete", "--model", str(smollm), "--format", "raw", "--max-tokens", "24",
                "--stats", "def add(a, b):")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    assert stats["completion_tokens"] <= 24
    for key in ("prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s", "load_s"):
        assert key in stats
    from app.engine import hardware

    if hardware.detect().gpu_offload:  # a GPU build on a GPU: a 135M model goes wholly onto it
        assert stats["n_gpu_layers"] > 0, stats["offload"]
    else:
        assert stats["n_gpu_layers"] == 0 and "CPU only" in stats["offload"]


def test_complete_reads_prompt_from_stdin_and_honours_stop(smollm):
    r = run_cli("complete", "--model", str(smollm), "--format", "raw", "--max-tokens", "64",
                "--stop", "\n", "-", input="def add(a, b):")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip("\n").count("\n") == 0


def test_bad_inputs_exit_2_with_one_line(tmp_path, smollm):
    cases = write_bad_files(tmp_path, smollm)
    cases["missing"] = (tmp_path / "missing.gguf", "not found")
    cases["directory"] = (tmp_path, "is a directory")
    for name, (path, expect) in cases.items():
        r = run_cli("complete", "--model", str(path), "hello")
        assert r.returncode == 2, (name, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr, (name, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, (name, r.stderr)
        assert expect in lines[0], (name, lines[0])


def test_bad_numbers_exit_2(smollm):
    r = run_cli("complete", "--model", str(smollm), "--gpu-layers", "lots", "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run_cli("complete", "--model", str(smollm), "--ctx", "0", "x")
    assert r.returncode == 2 and "positive" in r.stderr


def test_prompt_longer_than_context_exits_2(smollm):
    r = run_cli("complete", "--model", str(smollm), "--ctx", "64", "--format", "raw", "word " * 200)
    assert r.returncode == 2 and "context" in r.stderr and "Traceback" not in r.stderr


def test_doctor_and_version():
    r = run_cli("doctor")
    assert r.returncode == 0
    for key in ("llama-cpp-python", "llama.cpp backend", "GPU offload", "RAM", "CPU threads", "models folder"):
        assert key in r.stdout
    v = run_cli("--version")
    assert v.returncode == 0 and v.stdout.startswith("llamadesk ")
