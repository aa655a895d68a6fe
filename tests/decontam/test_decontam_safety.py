"""Issue 11 items 8, 19, 20: the contamination check on hostile inputs and outputs: one line
for what cannot be read, nothing hangs, memory stays bounded, the report is replaced whole."""
import gzip
import json
import os
import resource
import signal
import subprocess
import sys

from app.bench.decontam import normalise
from tests.decontam.test_decontam import BY_ID, check, dirty
from tests.helpers import run_cli


def one_line_exit_2(r) -> bool:
    lines = [l for l in r.stderr.splitlines() if l.strip() and not l.endswith("MB/s")]  # progress
    return r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr


def test_gzip_header_then_garbage_is_one_line(tmp_path):
    """Item 19: a zlib error is an unreadable input, not a traceback."""
    good = gzip.compress(json.dumps({"text": "x" * 5000}).encode() + b"\n")
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(good[:10] + os.urandom(4000))
    r = run_cli("decontam", str(path), "--out", str(tmp_path / "r.json"))
    assert one_line_exit_2(r), r.stderr
    assert "bad.jsonl.gz" in r.stderr


def test_fifo_in_an_input_folder_is_skipped_not_read(tmp_path):
    """Item 19: nobody writes to the FIFO, so reading it would block forever."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text(json.dumps({"text": BY_ID["HumanEval/5"]["prompt"]}) + "\n")
    os.mkfifo(data / "pipe.jsonl")
    out = tmp_path / "r.json"
    r = run_cli("decontam", str(data), "--out", str(out), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "pipe.jsonl" in r.stderr and "not a regular file" in r.stderr
    report = json.loads(out.read_text())
    assert report["contaminated_task_ids"] == ["HumanEval/5"]


def test_field_that_no_record_has_exits_2(tmp_path):
    """Item 19: `--field nonexistent` must not report '0 of 164 contaminated' as if it checked."""
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"text": BY_ID["HumanEval/5"]["prompt"]}) + "\n")
    r = run_cli("decontam", str(path), "--field", "nonexistent", "--out", str(tmp_path / "r.json"))
    assert one_line_exit_2(r), r.stderr
    assert "nonexistent" in r.stderr and not (tmp_path / "r.json").exists()
    r = run_cli("decontam", str(path), "--field", "text", "--out", str(tmp_path / "r.json"))
    assert r.returncode == 0 and "1 of 164" in r.stdout


def test_out_to_a_missing_folder_is_refused_before_the_scan(tmp_path):
    """Item 19: the input here is unreadable; the --out problem is found first, before any scan."""
    bad = tmp_path / "broken.jsonl.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    r = run_cli("decontam", str(bad), "--out", str(tmp_path / "no" / "such" / "r.json"))
    assert one_line_exit_2(r), r.stderr
    assert "--out" in r.stderr and "does not exist" in r.stderr


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def test_report_is_replaced_whole_or_not_at_all(tmp_path):
    """Item 8: a report write that fails midway (here: a file size limit) leaves the old report."""
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"text": "nothing to see"}) + "\n")
    out = tmp_path / "report.json"
    out.write_text('{"summary": "the previous report"}')
    r = subprocess.run([sys.executable, "-m", "app", "decontam", str(path), "--out", str(out)],
                       capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size)
    assert one_line_exit_2(r), r.stderr
    assert json.loads(out.read_text()) == {"summary": "the previous report"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "t.jsonl"]


def _long_record(path, size: int, plant_at: int, prompt: str, filler: str) -> None:
    """One JSON line of about `size` bytes with `prompt` (JSON-escaped) starting at `plant_at`."""
    escaped = json.dumps(prompt)[1:-1]
    with open(path, "w") as fh:
        fh.write('{"text": "')
        written = 10
        block = json.dumps(filler * 4096)[1:-1]
        while written + len(block) < plant_at:
            fh.write(block)
            written += len(block)
        fh.write("x" * (plant_at - written) + escaped)
        written = plant_at + len(escaped)
        while written < size:
            fh.write(block)
            written += len(block)
        fh.write('"}\n')
    with open(path, "a") as fh:
        fh.write(json.dumps({"text": "short"}) + "\n")


def test_long_record_is_scanned_in_windows_across_their_edges(tmp_path):
    """Item 20: a record over the limit is scanned as raw text, escapes undone; a prompt that
    straddles two windows (the first ends 8 MiB + 1 byte into the line) is still found."""
    prompt = BY_ID["HumanEval/9"]["prompt"]
    path = tmp_path / "long.jsonl"
    _long_record(path, 20 * 2**20, 8 * 2**20 + 1 - len(json.dumps(prompt)) // 2, prompt,
                 "def helper(x):\n    return x * 2  # ünïcode \"quoted\"\n")
    report = check([path], max_record_mb=1)
    assert dirty(report) == {"HumanEval/9"}
    assert report["tasks"][9]["match"]["line"] == 1
    assert report["inputs"]["records"] == 2
    assert [r["line"] for r in report["inputs"]["long_records"]] == [1]
    assert normalise(prompt)[:40] in normalise(prompt)


def _vm_limit(n_bytes):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (n_bytes, n_bytes))
    return apply


def test_huge_one_line_record_in_bounded_memory(tmp_path):
    """Item 20: a 400 MB one-line record under an address-space limit that the whole record
    (and its parse) could never fit in."""
    prompt = BY_ID["HumanEval/21"]["prompt"]
    path = tmp_path / "huge.jsonl"
    _long_record(path, 400 * 2**20, 300 * 2**20, prompt, "def helper(x):\n    return x * 2\n")
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "app", "decontam", str(path), "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400,
                       preexec_fn=_vm_limit(900 * 2**20))
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["contaminated_task_ids"] == ["HumanEval/21"]
    assert "scanned as raw text" in r.stderr


def test_json_file_over_the_limit_is_scanned_as_raw_text(tmp_path):
    """Item 20: a whole-file .json over --max-record-mb is not loaded whole either."""
    path = tmp_path / "big.json"
    records = [{"code": "x = 1\n" * 300_000} for _ in range(3)] + [{"code": BY_ID["HumanEval/33"]["prompt"]}]
    path.write_text(json.dumps(records))
    report = check([path], max_record_mb=1)
    assert dirty(report) == {"HumanEval/33"}
    assert len(report["inputs"]["long_records"]) == 1
    assert dirty(check([path])) == {"HumanEval/33"} and check([path])["inputs"]["records"] == 4
