"""Completion at the cursor through the real engine: SmolLM2 (no infill tokens) and a tiny
GGUF that declares FIM tokens (tiny_fim.py), each in a real worker process."""
import inspect
import json
import textwrap

import pytest
from llama_cpp import Llama

from app.completion import trim
from app.completion.completer import Completer
from app.completion.fim import FimTokens
from app.completion.ring import Ring
from app.engine.client import EngineClient
from tests.completion import tiny_fim
from tests.helpers import arun, run_cli

CTX = 2048


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("fim")
    return {style: tiny_fim.write(str(d / f"tiny-{style}.gguf"), style)
            for style in ("qwen", "codellama")}


def stdlib_text() -> str:
    import json.decoder as mod  # real code, the same on every machine with this Python
    return inspect.getsource(mod)


async def _loaded(path):
    engine = EngineClient()
    info = await engine.load(path, n_ctx=CTX, n_threads=2)
    return engine, info


# --- cache reuse across keystrokes (issue 15 item 2, must-show) ------------------------------

def test_a_keystroke_re_evaluates_only_the_new_tokens(smollm):
    text = stdlib_text()
    pos = text.index("def py_scanstring")  # the start of a line in the middle of the module
    pos = text.index("\n", pos) + 1 + len("    ")

    async def go():
        engine, info = await _loaded(smollm)
        try:
            c = Completer(engine, FimTokens.from_dict(info.fim_tokens), max_tokens=8, n_prefix=60)
            first = await c.complete(c.spot(text, pos, "decoder.py"))
            typed = text[:pos] + "ch" + text[pos:]
            second = await c.complete(c.spot(typed, pos + 2, "decoder.py"))
            return first, second
        finally:
            await engine.close()

    first, second = arun(go())
    assert first.source == second.source == "engine"
    assert first.prompt_tokens > 300 and first.cached_tokens == 0
    new = second.prompt_tokens - second.cached_tokens
    assert second.cached_tokens > 0 and new <= 3, (second.prompt_tokens, second.cached_tokens)


def test_a_cancelled_request_never_shows_its_text(smollm):
    async def go():
        engine, info = await _loaded(smollm)
        try:
            c = Completer(engine, max_tokens=48)
            spot = c.spot("def fibonacci(n):\n", len("def fibonacci(n):\n"))
            gen = c.start(spot)
            shown = []

            def on_text(t):
                shown.append(t)
                gen.cancel()  # the next keystroke arrives while the text streams in

            res = await c.finish(spot, gen, on_text=on_text)
            return res, shown, gen
        finally:
            await engine.close()

    res, shown, gen = arun(go())
    assert len(shown) == 1            # nothing painted after the cancel
    assert res.cancelled and res.shown == ""
    assert gen.stats.finish_reason == "cancelled"


# --- block end and duplicated suffix with the real model (issue 12 item 7, issue 15 item 5) ---

def test_the_test_model_stops_at_the_end_of_the_block(smollm):
    prefix = "import os\n\ndef add(a, b):\n"

    async def go():
        engine, info = await _loaded(smollm)
        try:
            c = Completer(engine, max_tokens=120, max_lines=20)
            return await c.complete(c.spot(prefix, len(prefix)))
        finally:
            await engine.close()

    res = arun(go())
    lines = res.shown.split("\n")
    assert res.shown.strip() and trim.indent_of(lines[0]) > 0
    assert all(trim.indent_of(l) > 0 for l in lines if l.strip())   # the body only
    assert len(res.raw) > len(res.shown)                              # the model went on
    assert res.completion_tokens < 120                                # and was stopped there


def test_the_duplicated_suffix_is_trimmed_with_the_real_model(smollm):
    prefix = "import os\n\ndef add(a, b):\n"

    async def go():
        engine, info = await _loaded(smollm)
        try:
            c = Completer(engine, max_tokens=30)
            alone = await c.complete(c.spot(prefix, len(prefix)))
            # now the document already holds the suggestion's last line after the cursor
            last = alone.shown.split("\n")[-1]
            doc = prefix + "\n" + last + "\n\nprint(add(1, 2))\n"
            again = await c.complete(c.spot(doc, len(prefix)))
            return alone, again, last
        finally:
            await engine.close()

    alone, again, last = arun(go())
    assert len(last.strip()) > 3
    # the model says the same again; the completer cancels once it has what it shows, so
    # either run may have received a token more than the other before the cancel took effect
    shorter, longer = sorted((alone.raw.rstrip(), again.raw.rstrip()), key=len)
    assert longer.startswith(shorter)
    assert trim.has_duplicated_suffix(alone.shown, "", [last])
    assert not trim.has_duplicated_suffix(again.shown, "", [last])
    assert again.shown == "\n".join(alone.shown.split("\n")[:-1]).rstrip()


# --- infill tokens from the GGUF (issue 15 item 3) -------------------------------------------

@pytest.mark.parametrize("style,family", [("qwen", "qwen"), ("codellama", "codellama")])
def test_infill_prompt_uses_the_models_own_fim_tokens(tiny_models, style, family):
    path = tiny_models[style]
    ring = Ring()
    ring.pick("\n".join(f"helper_{i} = {i}" for i in range(8)), "util.py")
    ring.flush()

    async def go():
        engine, info = await _loaded(path)
        try:
            c = Completer(engine, FimTokens.from_dict(info.fim_tokens), ring=ring, max_tokens=6)
            spot = c.spot("def f():\n    x\n", len("def f():\n    "), "main.py")
            return info, spot, await c.complete(spot)
        finally:
            await engine.close()

    info, spot, res = arun(go())
    expected = tiny_fim.STYLES[style]
    assert {k: info.fim_tokens.get(k) for k in ("pre", "suf", "mid")} == \
        {k: expected[k] for k in ("pre", "suf", "mid")}
    assert spot.prompt.family == family and "helper_3" in spot.prompt.text
    # the markers reach the model as its special tokens, not as their spelling in bytes
    llm = Llama(path, vocab_only=True, verbose=False)
    ids = llm.tokenize(spot.prompt.text.encode(), add_bos=True, special=True)
    for role in ("pre", "suf", "mid"):
        assert llm.tokenize(expected[role].encode(), add_bos=False, special=True)[0] in ids
    assert res.prompt_tokens == len(ids)
    assert res.source == "engine" and res.completion_tokens >= 1


# --- complete --fim (issue 15 item 8, must-show) ---------------------------------------------

def test_complete_fim_cli_with_smollm_and_with_an_infill_model(smollm, tiny_models, tmp_path):
    pre, suf, ctx = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "util.py"
    pre.write_text("import os\n\ndef add(a, b):\n")
    suf.write_text("\n\nprint(add(1, 2))\n")
    ctx.write_text(textwrap.dedent("""\
        def mul(a, b):
            return a * b

        def sub(a, b):
            return a - b
        """))
    r = run_cli("complete", "--fim", "--model", str(smollm), "--prefix-file", str(pre),
                "--suffix-file", str(suf), "--context", str(ctx), "--max-tokens", "24", "--stats",
                timeout=600)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    assert stats["format"] == "prefix-only" and stats["context_chunks"] == 1
    assert r.stdout.strip() and r.stdout.rstrip("\n") == r.stdout.rstrip("\n").rstrip()
    assert "print(add(1, 2))" not in r.stdout
    r = run_cli("complete", "--fim", "--model", tiny_models["qwen"], "--prefix-file", str(pre),
                "--suffix-file", str(suf), "--max-tokens", "4", "--stats", timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stderr.strip().splitlines()[-1])["format"] == "qwen"


def test_complete_fim_bad_usage_is_one_line_exit_2(smollm, tmp_path):
    cases = [
        ("complete", "--fim", "--model", str(smollm)),
        ("complete", "--fim", "--model", str(smollm), "--prefix-file", str(tmp_path / "missing.py")),
        ("complete", "--fim", "--model", str(smollm), "--prefix-file", str(smollm), "hello"),
        ("complete", "--model", str(smollm)),
    ]
    for args in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# --- two models: the planner fits both or names the one that does not (issue 15 item 6) -------

def test_plan_pair_fits_both_or_names_the_one_that_does_not(smollm, tiny_models):
    from app.engine import hardware
    from app.models import gguf_file

    chat, comp = gguf_file.inspect(smollm), gguf_file.inspect(tiny_models["qwen"])
    both = hardware.plan_pair(chat, 4096, comp, 4096, free_vram=None, free_ram=64 << 30)
    assert both.chat.fits and both.completion.fits and both.message.startswith("Both fit")
    need_comp = both.completion.ram_bytes
    # room for the completion model but not for the chat model beside it
    tight = hardware.plan_pair(chat, 4096, comp, 4096, free_vram=None, free_ram=need_comp + (1 << 20))
    assert tight.completion.fits and not tight.chat.fits
    assert "chat model" in tight.message and chat.name in tight.message
    none = hardware.plan_pair(chat, 4096, comp, 4096, free_vram=None, free_ram=1 << 20)
    assert not none.completion.fits and "completion model" in none.message
