"""Issue 11 items 16-18: `llamadesk complete` says what is wrong with a context, a chat template,
a thread count or a prompt, and leaves quietly when its reader goes away. Real model, real
subprocesses."""
import json
import os
import subprocess
import sys

import pytest

from app.models import gguf_file
from tests.helpers import run_cli

LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def with_template(smollm, folder, template: str):
    """A copy of SmolLM2 whose chat template is replaced (padded to the same length)."""
    old = gguf_file.inspect(smollm).chat_template.encode()
    new = template.encode()
    assert len(new) <= len(old)
    data = smollm.read_bytes()
    assert data.count(old) == 1
    path = folder / "templated.gguf"
    path.write_bytes(data.replace(old, new + b" " * (len(old) - len(new))))
    return path


def one_line(r) -> str:
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("ctx,expect", [("100000000", "KV cache"), ("99999999999", "more than llama.cpp")])
def test_context_that_cannot_fit_is_refused_before_loading(smollm, ctx, expect):
    """Item 16: the planner refuses it; the file and its architecture are not blamed."""
    line = one_line(run_cli("complete", "--model", str(smollm), "--ctx", ctx, "--format", "raw", "hi"))
    assert expect in line and "architecture" not in line and "damaged" not in line


def test_chat_template_syntax_error_is_named_and_raw_still_works(smollm, tmp_path):
    """Item 16: the model loads; only the chat format fails, saying it is the template."""
    model = with_template(smollm, tmp_path, "{% for m in messages %}{{ m.content }}")
    line = one_line(run_cli("complete", "--model", str(model), "--format", "chat", "hi"))
    assert "syntax error" in line and "architecture" not in line
    r = run_cli("complete", "--model", str(model), "--format", "raw", "--max-tokens", "4", "def f():")
    assert r.returncode == 0, r.stderr


def test_chat_template_that_loops_forever_is_stopped(smollm, tmp_path):
    """Item 17: a 10^5 x 10^5 loop in the template ends with a reason, not a hang."""
    model = with_template(smollm, tmp_path, LOOP)
    line = one_line(run_cli("complete", "--model", str(model), "--format", "chat", "hi", timeout=240))
    assert "chat template" in line and "loop steps" in line


def test_huge_thread_count_is_bounded(smollm):
    """Item 16: --threads 100000 runs with at most the machine's CPUs."""
    r = run_cli("complete", "--model", str(smollm), "--threads", "100000", "--format", "raw",
                "--max-tokens", "4", "--stats", "def f():")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    assert 1 <= stats["threads"] <= (os.cpu_count() or 1)


def test_prompt_that_is_not_utf8_is_decoded_with_replacement(smollm):
    """Item 18: from an argument and from stdin."""
    base = [sys.executable, "-m", "app", "complete", "--model", str(smollm), "--format", "raw",
            "--max-tokens", "4"]
    for args, stdin in (([b"def f():  # caf\xe9 \xff"], None), ([b"-"], b"def f():  # caf\xe9 \xff\n")):
        r = subprocess.run([os.fsencode(a) for a in base] + args, input=stdin, capture_output=True,
                           timeout=180)
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode == 0, err
        assert "not valid UTF-8" in err and "Traceback" not in err


def test_closed_pipe_ends_quietly(smollm):
    """Item 18: `llamadesk complete ... | head -c 5`."""
    p = subprocess.Popen([sys.executable, "-m", "app", "complete", "--model", str(smollm), "--format",
                          "raw", "--max-tokens", "200", "--temperature", "1", "--seed", "1",
                          "def quicksort(items):"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.read(5)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(180)
    assert len(first) == 5
    assert err.strip() == "", err
    assert p.returncode == 141
