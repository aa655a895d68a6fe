"""The raw-JSONL filter (app/bench/decontam_filter.py), compiled and fallback: it may let a line
through that holds no match, never hold one back, whatever JSON escapes, Unicode or casing the
line uses; and the fast path reports what parsing every line reports."""
import json
import random

import pytest

from app.bench import decontam_filter
from app.bench.decontam import Matcher, Settings, normalise, prepare_tasks
from app.bench.decontam_inputs import walk_strings
from app.bench.decontam_run import run_check

# Short prompts, so that each one whole is its task's needle; some hold text that looks like a
# JSON escape once normalised ("u00e9", "ufeed"), or digits and hex letters only.
PROBLEMS = [{"task_id": f"T/{i}", "prompt": p} for i, p in enumerate([
    "def cafe_u00e9_menu(items): return sorted(items)",
    "Return the number of vowels in the given string s.",
    "assert f(0xdeadbeef) == 3735928559  # ufeed 0x0041",
    "class KlassStrasse:  # keeps the street names",
    "def bfnrt_letters(text): return text.strip('\\n')",
])]
# Between two characters of a prompt, anything that normalising drops.
NOISE = [" ", "\n", "\t", "\r\n", "\\", "/", '"', "'", "—", "\u00a0", "😀", "\u2028", "\x00", "\x1b", "::"]


@pytest.fixture(params=["compiled", "fallback"])
def impl(request, monkeypatch):
    if request.param == "compiled":
        assert decontam_filter._rawscan is not None, "the C filter was not built: pip install -e . builds it"
    else:
        monkeypatch.setattr(decontam_filter, "_rawscan", None)
    return request.param


def escape_some_ascii(raw: str, rng: random.Random) -> str:
    """JSON text with some ASCII letters and digits inside strings written as \\u00XX escapes."""
    out, in_string, i = [], False, 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            out.append(raw[i:i + 2])
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        elif in_string and c.isascii() and c.isalnum() and rng.random() < 0.2:
            c = f"\\u{ord(c):04{'x' if rng.random() < 0.5 else 'X'}}"
        out.append(c)
        i += 1
    return "".join(out)


def disguise(text: str, rng: random.Random, casefold: bool) -> str:
    out = []
    for ch in text:
        if casefold and ch.isalpha() and rng.random() < 0.3:
            ch = ch.swapcase()
        if casefold and ch == "k" and rng.random() < 0.5:
            ch = "\u212a"   # KELVIN SIGN: casefolds to "k"
        out.append(ch)
        if rng.random() < 0.15:
            out.append(rng.choice(NOISE))
    text = "".join(out)
    if casefold and rng.random() < 0.5:
        text = text.replace("ss", "ß")   # casefolds to "ss"
    return text


def make_lines(rng: random.Random, casefold: bool, count: int = 400) -> list[str]:
    lines = []
    for n in range(count):
        filler = "".join(rng.choice("abcdefghij klmnop(),.:\n\t") for _ in range(rng.randint(0, 80)))
        text = filler
        if rng.random() < 0.5:
            prompt = rng.choice(PROBLEMS)["prompt"]
            if rng.random() < 0.3:   # a near miss: one character changed
                k = rng.randrange(len(prompt))
                prompt = prompt[:k] + ("Q" if prompt[k] != "Q" else "Z") + prompt[k + 1:]
            text = filler + disguise(prompt, rng, casefold) + filler[::-1]
        if rng.random() < 0.2:   # a literal backslash before text that looks like an escape
            text = text.replace("u00e9", "\\u00e9").replace("ufeed", "\\\\ufeed")
        record = {"id": n, "text": text} if rng.random() < 0.7 else {"meta": {"parts": [filler, text], "k": n}}
        raw = json.dumps(record, ensure_ascii=rng.random() < 0.5)
        lines.append(escape_some_ascii(raw, rng) if rng.random() < 0.3 else raw)
        if rng.random() < 0.05:
            lines.append(rng.choice(["", "   ", "\t", "{}", "[]", '{"x": ""}', "{not json"]))
    return lines


def truly_contaminated(lines: list[str], needles: list[str], casefold: bool) -> set[int]:
    found = set()
    for i, line in enumerate(lines):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        for _, text in walk_strings(obj, None):
            norm = normalise(text, casefold)
            if any(x in norm for x in needles):
                found.add(i)
    return found


@pytest.mark.parametrize("casefold", [False, True])
def test_every_line_holding_a_needle_is_let_through(impl, casefold):
    settings = Settings(casefold=casefold)
    tasks = prepare_tasks(PROBLEMS, settings)
    needles = sorted({x for t in tasks for x in t.substrings})
    lines = make_lines(random.Random(11 + casefold), casefold)
    data = ("\n".join(lines) + "\n").encode()
    truth = truly_contaminated(lines, needles, casefold)
    assert len(truth) > 60   # the disguises leave plenty to find

    found = Matcher(tasks, settings).lines.lines(data)
    if found is None:   # the fallback with casefolding: this chunk is parsed line by line
        assert impl == "fallback" and casefold
        return
    count, hits = found
    assert truth <= hits, f"missed lines {sorted(truth - hits)[:5]}"
    assert count == sum(1 for line in lines if line.strip())
    if impl == "compiled" and not casefold:   # (with casefolding it lets every non-ASCII line through;
        assert len(hits) < 1.6 * len(truth), (len(hits), len(truth))   # the fallback every escaped one)


@pytest.mark.parametrize("casefold", [False, True])
def test_fast_path_flags_what_parsing_every_line_flags(impl, casefold, tmp_path):
    lines = make_lines(random.Random(5), casefold, count=300)
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fast = run_check([str(path)], PROBLEMS, Settings(casefold=casefold))
    full = run_check([str(path)], PROBLEMS, Settings(casefold=casefold, validate_json=True))
    assert fast["contaminated_task_ids"] == full["contaminated_task_ids"]
    assert [t["match"] for t in fast["tasks"]] == [t["match"] for t in full["tasks"]]
    tasks = prepare_tasks(PROBLEMS, Settings(casefold=casefold))
    expected = {t.task_id for t in tasks
                if truly_contaminated(lines, sorted(set(t.substrings)), casefold)}
    assert set(fast["contaminated_task_ids"]) == expected and expected


def test_blank_lines_crlf_and_a_last_line_without_newline_are_counted(impl):
    lines = Matcher(prepare_tasks(PROBLEMS, Settings()), Settings()).lines.lines
    assert lines(b'{"a": 1}\r\n\r\n   \n{}\n\n[]\n\t\n{"t": "x"}') == (4, set())
    assert lines(b'{"a": "x"}\n{}') == (2, set())   # the last line normalises to nothing
    assert lines(b'{"a": "x"}\n{"t": ""}') == (2, set())
    assert lines(b"   ") == (0, set())


def test_exhaustive_mode_finds_any_window_of_a_long_prompt(impl):
    """Every 50-character window is a needle: the stride follows the window, not the prompt."""
    prompt = "def count_vowels(s):\n    " + "Return the number of vowels in the given string s, " \
             "counting y as a vowel only at the end. " * 3
    problems = [{"task_id": "L/0", "prompt": prompt}]
    settings = Settings(exhaustive=True)
    lines = Matcher(prepare_tasks(problems, settings), settings).lines.lines
    rng = random.Random(3)
    for start in range(0, len(prompt) - 80, 7):
        piece = disguise(prompt[start:start + 75], rng, casefold=False)
        data = (json.dumps({"pad": "zz", "text": "q " + piece + " q"}) + "\n").encode()
        if any(normalise(prompt)[i:i + 50] in normalise(piece) for i in range(len(normalise(prompt)) - 49)):
            assert lines(data) == (1, {0}), (start, piece)


def test_a_non_ascii_needle_has_every_line_parsed(tmp_path):
    problems = [{"task_id": "U/0", "prompt": "def straße(länge): return länge * 2  # Straße"}]
    tasks = prepare_tasks(problems, Settings())
    assert Matcher(tasks, Settings()).lines.lines(b'{"t": "x"}\n') is None
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"t": "straße länge return länge 2 Straße"}) + "\n"
                    + json.dumps({"t": problems[0]["prompt"]}) + "\n")
    report = run_check([str(path)], problems, Settings())
    assert report["contaminated_task_ids"] == ["U/0"] and report["tasks"][0]["match"]["record"] == 2
