"""The contamination check: planted copies are found, ordinary code is not, inputs are robust."""
import csv
import gzip
import json
import random
import sysconfig
from pathlib import Path

import pytest

from app.bench import decontam_inputs
from app.bench import humaneval as he
from app.bench.decontam import Settings, normalise
from app.bench.decontam_run import run_check
from tests.helpers import run_cli

PROBLEMS = he.load_problems()
BY_ID = {p["task_id"]: p for p in PROBLEMS}


def mangle(text: str) -> str:
    """Same letters and digits, different whitespace, quotes, punctuation and line breaks."""
    return (text.replace("    ", "\t").replace('"""', "'''").replace(", ", " ,  ")
            .replace("\n", "\r\n  ").replace("(", "( ").replace(":", " :"))


def check(paths, **kw):
    workers = kw.pop("workers", 1)
    return run_check([str(p) for p in paths], PROBLEMS, Settings(**kw), workers=workers)


def dirty(report) -> set[str]:
    return set(report["contaminated_task_ids"])


@pytest.fixture
def planted(tmp_path) -> Path:
    rng = random.Random(5)
    path = tmp_path / "train.jsonl"
    with open(path, "w") as fh:
        for i in range(300):
            body = "".join(f"def f{i}_{k}(x):\n    return x + {k}\n" for k in range(rng.randint(3, 30)))
            if i == 100:
                body += "\n# borrowed\n" + mangle(BY_ID["HumanEval/12"]["prompt"]) + "\n# end\n"
            if i == 200:
                body = "Solve this:\n" + mangle(BY_ID["HumanEval/130"]["prompt"]) + body
            fh.write(json.dumps({"text": body, "meta": {"repo": f"r{i}"}}) + "\n")
    return path


@pytest.mark.parametrize("exhaustive", [False, True])
def test_planted_copies_are_flagged(planted, exhaustive):
    report = check([planted], exhaustive=exhaustive)
    assert dirty(report) == {"HumanEval/12", "HumanEval/130"}
    task = next(t for t in report["tasks"] if t["task_id"] == "HumanEval/12")
    assert task["match"]["file"] == str(planted) and task["match"]["record"] == 101
    assert task["match"]["field"] == "text"
    assert task["match"]["substring"] in normalise(BY_ID["HumanEval/12"]["prompt"])
    if exhaustive:
        assert task["window_fraction"] == 1.0
    assert len(report["clean_task_ids"]) == 162


def test_standard_library_flags_nothing():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    folders = [stdlib / "json", stdlib / "email", stdlib / "asyncio", stdlib / "collections"]
    for exhaustive in (False, True):
        report = check(folders, exhaustive=exhaustive)
        assert dirty(report) == set(), report["contaminated_task_ids"]
        assert report["inputs"]["records"] > 50


def test_same_seed_same_result_and_seed_is_recorded(planted):
    a, b, c = check([planted], seed=11), check([planted], seed=11), check([planted], seed=12)
    assert a["tasks"] == b["tasks"]
    assert a["settings"]["seed"] == 11
    assert [t["substrings"] for t in a["tasks"]] != [t["substrings"] for t in c["tasks"]]
    assert all(len(t["substrings"]) == 3 for t in a["tasks"])


def change_every(norm_text: str, step: int) -> str:
    """Change one letter in every `step` characters of the normalised text."""
    chars = list(norm_text)
    for i in range(step // 2, len(chars), step):
        chars[i] = "Q" if chars[i] != "Q" else "Z"
    return "".join(chars)


def test_letter_changed_every_40_chars_is_flagged_by_neither_mode(tmp_path):
    p = BY_ID["HumanEval/20"]["prompt"]
    path = tmp_path / "near.jsonl"
    path.write_text(json.dumps({"text": "x = 1\n" + change_every(normalise(p), 40)}) + "\n")
    assert dirty(check([path])) == set()
    assert dirty(check([path], exhaustive=True)) == set()


def test_single_letter_change_is_found_by_exhaustive_with_fraction_below_one(tmp_path):
    task = next(p for p in PROBLEMS if len(normalise(p["prompt"])) >= 150)
    norm = normalise(task["prompt"])
    mid = len(norm) // 2
    changed = norm[:mid] + ("Q" if norm[mid] != "Q" else "Z") + norm[mid + 1:]
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"text": changed}) + "\n")
    report = check([path], exhaustive=True)
    item = next(t for t in report["tasks"] if t["task_id"] == task["task_id"])
    assert item["contaminated"]
    assert 0 < item["window_fraction"] < 1


def test_malformed_lines_are_skipped_and_reported(tmp_path):
    """--validate-json parses every line; by default only the lines that could hold a match are
    parsed, so a malformed line is reported when it holds a prompt, and counted as a line if not."""
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"text": BY_ID["HumanEval/7"]["prompt"]})
    broken = json.dumps({"text": BY_ID["HumanEval/9"]["prompt"]})[:-2]
    path.write_text('{"text": "fine"}\n{not json\n' + good + "\n[1, 2\n\n" + broken + "\n")
    report = check([path], validate_json=True)
    assert dirty(report) == {"HumanEval/7"}
    assert {m["line"] for m in report["inputs"]["malformed"]} == {2, 4, 6}
    assert report["inputs"]["files"][0]["records"] == 2
    report = check([path])
    assert dirty(report) == {"HumanEval/7"}
    assert {m["line"] for m in report["inputs"]["malformed"]} == {6}
    assert report["inputs"]["files"][0]["records"] == 4
    assert report["settings"]["validate_json"] is False


def test_gzip_json_csv_text_and_folders(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with gzip.open(data / "a.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"text": "intro " + mangle(BY_ID["HumanEval/1"]["prompt"])}) + "\n")
    (data / "b.json").write_text(json.dumps([{"code": "pass"}, {"code": BY_ID["HumanEval/2"]["prompt"]}]))
    with open(data / "c.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "content"])
        w.writerow(["1", "nothing"])
        w.writerow(["2", mangle(BY_ID["HumanEval/3"]["prompt"])])
    (data / "sub").mkdir()
    (data / "sub" / "d.py").write_text("import os\n" + BY_ID["HumanEval/4"]["prompt"] + "    return 0\n")
    (data / "sub" / "blob.bin").write_bytes(b"\0\1\2" * 100)
    report = check([data])
    assert dirty(report) == {f"HumanEval/{i}" for i in (1, 2, 3, 4)}
    where = {t["task_id"]: t["match"] for t in report["tasks"] if t["contaminated"]}
    assert where["HumanEval/2"]["record"] == 2 and where["HumanEval/2"]["field"] == "code"
    assert where["HumanEval/3"]["record"] == 2 and where["HumanEval/3"]["field"] == "content"
    assert any(f.get("skipped") == "binary file" for f in report["inputs"]["files"])


def test_fields_are_checked_on_their_own(tmp_path):
    task = next(p for p in PROBLEMS if 60 < len(normalise(p["prompt"])) < 98)
    p = normalise(task["prompt"])
    half = len(p) // 2  # each field shorter than one 50-character window
    path = tmp_path / "split.jsonl"
    path.write_text(json.dumps({"a": p[:half], "b": p[half:], "c": BY_ID["HumanEval/8"]["prompt"]}) + "\n")
    both = tmp_path / "joined.jsonl"
    both.write_text(json.dumps({"a": p}) + "\n")
    assert task["task_id"] in dirty(check([both], exhaustive=True))
    assert task["task_id"] not in dirty(check([path], exhaustive=True))  # no match across fields
    assert dirty(check([path], fields=["a", "b"])) == set()
    assert dirty(check([path], fields=["c"])) == {"HumanEval/8"}


def test_casefold_option(tmp_path):
    path = tmp_path / "upper.jsonl"
    path.write_text(json.dumps({"text": BY_ID["HumanEval/11"]["prompt"].upper()}) + "\n")
    assert dirty(check([path])) == set()
    assert dirty(check([path], casefold=True)) == {"HumanEval/11"}


def test_parallel_units_give_the_same_report(planted, tmp_path, monkeypatch):
    big = tmp_path / "big.jsonl"
    big.write_bytes(planted.read_bytes() * 3)
    monkeypatch.setattr(decontam_inputs, "UNIT", 64 * 1024)  # many byte-range units
    one = check([big], exhaustive=True)
    two = check([big], exhaustive=True, workers=2)
    assert one["tasks"] == two["tasks"]
    assert one["inputs"]["records"] == two["inputs"]["records"] == 900


def test_cli_reports_and_unreadable_input_exits_2(planted, tmp_path):
    out = tmp_path / "report.json"
    r = run_cli("decontam", str(planted), "--out", str(out), "--seed", "3")
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert set(report["contaminated_task_ids"]) == {"HumanEval/12", "HumanEval/130"}
    assert "2 of 164" in r.stdout
    (tmp_path / "broken.jsonl.gz").write_bytes(b"this is not gzip")
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "nowhere")
    for bad in ("broken.jsonl.gz", "dangling.jsonl", "missing.txt"):
        r = run_cli("decontam", str(tmp_path / bad), "--out", str(tmp_path / "x.json"))
        assert r.returncode == 2, (bad, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_exclude_contaminated_scores_only_clean_tasks(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": BY_ID[f"HumanEval/{i}"]["prompt"]}) + "\n" for i in (0, 2)))
    report = tmp_path / "report.json"
    assert run_cli("decontam", str(data), "--out", str(report)).returncode == 0
    r = run_cli("humaneval", "--canonical", "--limit", "5", "--exclude-contaminated", str(report),
                "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "pass@1 = 1.000 (3/3)"
    assert "2 contaminated tasks excluded" in r.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["excluded_contaminated"] == ["HumanEval/0", "HumanEval/2"]
    scored = {json.loads(l)["task_id"] for l in (tmp_path / "run" / "results.jsonl").read_text().splitlines()}
    assert scored == {"HumanEval/1", "HumanEval/3", "HumanEval/4"}
