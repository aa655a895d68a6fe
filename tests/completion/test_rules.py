"""The Qt-free rules of completion at the cursor, with crafted suggestions."""
from app.completion import fim, trim
from app.completion.cache import SuggestionCache
from app.completion.completer import local_window
from app.completion.ring import Ring
from app.completion.stats import CompletionStats, percentile


# --- block end (issue 12 item 7, issue 15 item 5) --------------------------------------------

def test_block_end_stops_at_the_next_definition():
    raw = "\n    total = a + b\n    return total\n\ndef other():\n    pass\n"
    assert trim.block_end(raw, "def add(a, b):", 8) == "\n    total = a + b\n    return total"


def test_block_end_stops_where_indentation_drops_inside_a_body():
    raw = "total = a + b\n        return total\n    print('x')\n"
    assert trim.block_end(raw, "        ", 8) == "total = a + b\n        return total"


def test_block_end_keeps_nested_blocks_and_honours_max_lines():
    # the statement begun at the cursor ends when its body does (back at the cursor's indent)
    raw = "for x in xs:\n        if x:\n            y += x\n        z = 1\n    w = 2\nq = 3"
    assert trim.block_end(raw, "    ", 8) == "for x in xs:\n        if x:\n            y += x\n        z = 1"
    flat = "a = 1\n    b = 2\n    c = 3\nd = 4"
    assert trim.block_end(flat, "    ", 8) == "a = 1\n    b = 2\n    c = 3"
    assert trim.block_end(raw, "    ", 2) == "for x in xs:\n        if x:"


def test_block_ended_is_known_once_the_next_block_starts():
    assert not trim.block_ended("\n    return 1\n", "def f():", 8)
    assert trim.block_ended("\n    return 1\n\ndef g", "def f():", 8)


# --- duplicated suffix (issue 15 item 5) -----------------------------------------------------

def test_overlap_with_the_rest_of_the_line_is_trimmed():
    assert trim.finalize("a, b):", "    def f(", "):", [], 8) == "a, b"


def test_overlap_with_the_following_lines_is_trimmed():
    raw = "\n    x = compute()\n    return x\n"
    shown = trim.finalize(raw, "def f():", "", ["    return x", "", "def g():"], 8)
    assert shown == "\n    x = compute()"
    assert not trim.has_duplicated_suffix(shown, "", ["    return x"])
    assert trim.has_duplicated_suffix(raw.rstrip(), "", ["    return x"])


def test_a_short_line_cuts_only_when_what_follows_matches_too():
    raw = "    if a:\n        b()\n    }\n    c()"
    assert trim.trim_overlap(raw, "", ["    }", "    d()"]) == raw.rstrip()
    assert trim.trim_overlap(raw, "", ["    }", "    c()"]) == "    if a:\n        b()"


def test_empty_or_blank_suggestions_show_nothing():
    for raw in ("", "   ", "\n\n", "\n   \n"):
        assert trim.finalize(raw, "x = ", "", [], 8) == ""
    assert trim.finalize("):", "f(", "):", [], 8) == ""  # only what is already there


def test_inside_a_line_the_suggestion_is_one_line():
    assert trim.finalize("b, c)\nprint(a)", "f(a, ", ")", [], 8) == "b, c"


# --- infill formats from the model's own tokens (issue 15 item 3) ----------------------------

QWEN = fim.FimTokens(pre="<|fim_prefix|>", suf="<|fim_suffix|>", mid="<|fim_middle|>",
                     pad="<|fim_pad|>", rep="<|repo_name|>", sep="<|file_sep|>")
CODELLAMA = fim.FimTokens(pre="<PRE>", suf="<SUF>", mid="<MID>")
STARCODER = fim.FimTokens(pre="<fim_prefix>", suf="<fim_suffix>", mid="<fim_middle>")


def test_formats_follow_the_tokens():
    ctx = [fim.Chunk("util.py", "def helper():\n    return 1\n")]
    q = fim.build(QWEN, "def f():\n    ", "\nprint(f())", ctx, "main.py")
    assert q.family == "qwen"
    assert q.text == ("<|repo_name|>project\n<|file_sep|>util.py\ndef helper():\n    return 1\n"
                      "<|file_sep|>main.py\n<|fim_prefix|>def f():\n    <|fim_suffix|>\n"
                      "print(f())<|fim_middle|>")
    c = fim.build(CODELLAMA, "def f():\n    ", "\nprint(f())")
    assert c.family == "codellama"
    assert c.text == "<PRE> def f():\n     <SUF>\nprint(f()) <MID>"
    s = fim.build(STARCODER, "a", "b")
    assert (s.family, s.text) == ("starcoder", "<fim_prefix>a<fim_suffix>b<fim_middle>")


def test_a_model_without_infill_tokens_gets_the_prefix_only():
    p = fim.build(fim.FimTokens(), "def f():\n    ", "\nprint(f())", [fim.Chunk("u.py", "x = 1\n")])
    assert p.family == "prefix-only"
    assert p.text.endswith("def f():\n    ") and "print(f())" not in p.text
    assert p.text.startswith(fim.SNIPPET + "x = 1\n")
    # half a set of tokens is not an infill model
    assert fim.FimTokens(pre="<PRE>").family == "prefix-only"


def test_typing_changes_only_the_end_of_the_prompt():
    """Context first, then the prefix: a keystroke appends to the prompt (cache stays valid)."""
    ring = Ring()
    ring.pick("\n".join(f"line_{i} = {i}" for i in range(10)), "other.py")
    ring.flush()
    doc = "import os\n\ndef main():\n    pri"
    for tokens in (fim.FimTokens(), QWEN):
        a = fim.build(tokens, *local_window(doc, len(doc), 128, 8)[:1], "", ring.context(), "m.py")
        b = fim.build(tokens, *local_window(doc + "n", len(doc) + 1, 128, 8)[:1], "", ring.context(), "m.py")
        head = a.text[: a.text.index("pri") + 3]
        assert b.text.startswith(head)


def test_local_window_start_does_not_move_with_every_new_line():
    doc = "\n".join(f"x{i} = {i}" for i in range(300))
    starts = {local_window(doc, len(doc) - k * 10, 128, 8)[0].split("\n")[0] for k in range(5)}
    assert len(starts) == 1


# --- project context ring (issue 15 item 3) --------------------------------------------------

def test_ring_dedups_evicts_similar_and_keeps_the_budget():
    ring = Ring(n_chunks=2, chunk_lines=16, budget_tokens=10_000)
    a = "\n".join(f"alpha_{i} = {i}" for i in range(8))
    assert ring.pick(a, "a.py")
    assert not ring.pick(a, "a.py")                   # the same chunk twice
    assert ring.pick(a + "\n# tweak", "a.py")         # nearly the same: replaces the queued one
    assert len(ring.queued) == 1 and ring.evicted == 1
    ring.pick("\n".join(f"beta_{i} = {i}" for i in range(8)), "b.py")
    ring.pick("\n".join(f"gamma_{i} = {i}" for i in range(8)), "c.py")
    ring.flush()
    assert [c.filename for c in ring.chunks] == ["b.py", "c.py"]  # the oldest left the ring
    assert not ring.pick("x = 1", "tiny.py")          # too small to be worth its tokens
    small = Ring(budget_tokens=30)
    small.pick("\n".join(f"gamma_{i} = {i}" for i in range(8)), "c.py")
    small.pick("\n".join(f"delta_{i} = {i}" for i in range(8)), "d.py")
    small.flush()
    assert [c.filename for c in small.context()] == ["d.py"]


def test_ring_takes_the_lines_around_the_cursor_of_a_long_file():
    ring = Ring(chunk_lines=8)
    ring.pick("\n".join(f"v{i} = {i}" for i in range(100)), "big.py", around_line=50)
    assert ring.queued[0].text.split("\n")[0] == "v46 = 46"


# --- cache and type-through (issue 15 item 4) ------------------------------------------------

def test_cache_serves_the_same_spot_and_the_rest_after_typed_characters():
    cache = SuggestionCache(size=2)
    cache.put("def f(", ")", "a, b")
    assert cache.get("def f(", ")") == "a, b"
    assert cache.get("def f(a", ")") == ", b"
    assert cache.get("def f(x", ")") is None
    assert cache.get("def f(a, b", ")") is None  # all of it typed: nothing left to suggest
    cache.put("p2", "", "x")
    cache.put("p3", "", "y")
    assert cache.get("def f(", ")") is None       # the least recently used went


# --- stats (issue 15 item 7) -----------------------------------------------------------------

def test_stats_percentiles_and_saving(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMADESK_HOME", str(tmp_path))
    s = CompletionStats()
    for v in (0.1, 0.2, 0.3, 0.4, 1.0):
        s.request_done(v)
    s.shown, s.accepted, s.requests, s.cache_hits = 4, 1, 5, 2
    assert s.p50 == 0.3 and abs(s.p90 - 0.76) < 1e-9
    assert percentile([], 0.5) == 0.0
    s.save()
    back = CompletionStats.load_last()
    assert back.latencies_s == s.latencies_s and back.cache_hits == 2
    assert "p50 300 ms" in back.summary() and "25% accepted" in back.summary()


# --- partial accept (issue 12 item 7) --------------------------------------------------------

def test_accept_next_word_and_next_line():
    from app.completion.accept import split_ghost

    g = "total = a + b\n    return total"
    assert split_ghost(g, "word") == ("total", " = a + b\n    return total")
    assert split_ghost(" = a + b\n    return total", "word") == (" =", " a + b\n    return total")
    assert split_ghost(g, "line") == ("total = a + b", "\n    return total")
    assert split_ghost("\n    return total", "line") == ("\n    return total", "")
    assert split_ghost(g, "all") == (g, "")
    assert split_ghost("x  \n  ", "word") == ("x", "")


def test_block_end_on_an_empty_line_takes_the_indent_of_what_is_written_there():
    raw = "\treturn a + b\n\ndef subtract(a, b):\n\treturn a - b\n\ndef"
    assert trim.block_end(raw, "", 8) == "\treturn a + b"


def test_a_whole_line_suggestion_that_repeats_the_next_line_shows_nothing():
    assert trim.finalize("\treturn a + b\n\ndef x", "", "", ["\treturn a + b"], 8) == ""
    assert trim.finalize("    y = 2\n    return y", "    ", "", ["    return y"], 8) == "    y = 2"


def test_doctor_prints_the_last_runs_completion_stats(tmp_path, monkeypatch):
    from app.commands import doctor

    monkeypatch.setenv("LLAMADESK_HOME", str(tmp_path))
    rows = dict(doctor.report())
    assert rows["completion (last run)"] == "no suggestions recorded yet"
    s = CompletionStats(requests=3, shown=2, accepted=1, cache_hits=1)
    for v in (0.2, 0.3, 0.4):
        s.request_done(v)
    s.save()
    assert dict(doctor.report())["completion (last run)"].startswith("p50 300 ms, p90 380 ms over 3 requests")
