"""Completion at the cursor against a real llama-server (issue 15, FIM against remote servers):
with a model that has FIM tokens, ghost text goes through the server's /infill (prefix, suffix,
the context ring as `input_extra`); with SmolLM2 (none), /infill is not detected and the
prompt is prefix-only, the suffix used only to trim."""
import json
import time

import pytest

from app.completion.completer import Completer
from app.completion.fim import SERVER, FimTokens
from app.completion.ring import Ring
from app.engine.base import EngineError, open_engine
from app.engine.protocol import GenerateParams
from tests.completion import tiny_fim
from tests.helpers import arun, run_cli
from tests.servers import procs
from tests.servers.slots import cancel_midway_and_watch_the_slot

PREFIX = "import os\n\ndef add(a, b):\n    return "
SUFFIX = "a + b\n\nprint(add(1, 2))\n"  # inside a line: the answer ends at its end, not cut off


@pytest.fixture(scope="module")
def fim_server(llama_server_bin, server_logs, tmp_path_factory):
    """llama-server with the tiny Qwen-style FIM model; verbose, so that its log shows the
    prompt it laid out for each request."""
    path = tiny_fim.write(str(tmp_path_factory.mktemp("fim") / "tiny-qwen.gguf"), "qwen")
    server = procs.start_llama_server(llama_server_bin, path, server_logs, threads=1, extra=["-v"])
    yield server
    server.stop()


def _ring() -> Ring:
    ring = Ring()
    ring.pick("\n".join(f"helper_{i} = {i}" for i in range(8)), "util.py")
    ring.flush()
    return ring


def _laid_out_prompts(server, containing: str, n: int) -> list[str]:
    """The prompts the server built for its finished requests, from its own log (which it
    writes a moment after the answer)."""
    for _ in range(100):
        out = []
        for line in server.log_path.read_text(errors="replace").splitlines():
            at = line.find("streamed chunk: data: ")
            if at >= 0 and '"stop":true' in line and containing in line:
                out.append(json.loads(line[at + len("streamed chunk: data: "):])["prompt"])
        if len(out) >= n:
            return out
        time.sleep(0.1)
    return out


def _in_order(text: str, parts: list[str]) -> bool:
    at = 0
    for p in parts:
        at = text.find(p, at)
        if at < 0:
            return False
        at += len(p)
    return True


def test_ghost_text_goes_through_the_servers_infill_and_reuses_its_cache(fim_server):
    async def go():
        async with await open_engine(fim_server.url) as eng:
            c = Completer(eng, FimTokens.from_dict(eng.info.fim_tokens), ring=_ring(), max_tokens=6)
            spot = c.spot(PREFIX + SUFFIX, len(PREFIX), "main.py")
            first = await c.complete(spot)
            typed = PREFIX + "x"
            second = await c.complete(c.spot(typed + SUFFIX, len(typed), "main.py"))
            return eng.capabilities, c.server_infill, spot, first, second

    caps, server_infill, spot, first, second = arun(go(), 120)
    assert caps.infill and caps.infill_endpoint and server_infill
    assert spot.prompt.family == SERVER and spot.prompt.text == ""
    parts = spot.prompt.server
    assert parts["prefix"] == "import os\n\ndef add(a, b):\n" and parts["prompt"] == "    return "
    assert parts["suffix"] == SUFFIX
    assert [c["filename"] for c in parts["extra"]] == ["util.py"]
    # text streamed back, with the server's token counts
    assert first.source == second.source == "engine"
    assert first.raw and first.completion_tokens >= 1 and "\n" not in first.shown and first.prompt_tokens > 0
    # the keystroke re-evaluated the cursor's line and the few suffix tokens, not the context
    new = second.prompt_tokens - second.cached_tokens
    assert second.cached_tokens > 0 and new < second.cached_tokens, (second.prompt_tokens,
                                                                     second.cached_tokens)
    # the server laid the prompt out with its model's FIM tokens: ring chunk, prefix, suffix
    q = tiny_fim.STYLES["qwen"]
    laid = _laid_out_prompts(fim_server, "import os", 2)
    assert len(laid) == 2
    for prompt, line in zip(laid, ("    return ", "    return x")):
        assert _in_order(prompt, [q["sep"], "util.py", "helper_7 = 7", q["pre"], "def add(a, b):",
                                  line, q["suf"], "a + b", "print(add(1, 2))", q["mid"]]), prompt


def test_cancel_stops_the_servers_infill(fim_server):
    async def go():
        async with await open_engine(fim_server.url) as eng:
            gen = eng.infill("def f():\n", "\n", prompt="    ",
                             params=GenerateParams(max_tokens=3000, temperature=0.0))
            return (gen, *await cancel_midway_and_watch_the_slot(fim_server.url, gen))

    gen, s, decoded, again = arun(go(), 120)
    assert gen.stats.finish_reason == "cancelled" and gen.text
    assert not s["is_processing"] and decoded < 3000 and again == decoded


def test_complete_fim_cli_uses_the_servers_infill(fim_server, tmp_path):
    pre, suf = tmp_path / "a.py", tmp_path / "b.py"
    pre.write_text(PREFIX)
    suf.write_text(SUFFIX)
    r = run_cli("complete", "--fim", "--engine", fim_server.url, "--prefix-file", str(pre),
                "--suffix-file", str(suf), "--max-tokens", "4", "--stats", timeout=120)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    assert stats["format"] == SERVER and stats["completion_tokens"] >= 1


def test_smollm_on_llama_server_stays_prefix_only(llama_server):
    doc = "import os\n\ndef add(a, b):\n" + "\n\nprint(add(1, 2))\n"

    async def go():
        async with await open_engine(llama_server.url) as eng:
            c = Completer(eng, FimTokens.from_dict(eng.info.fim_tokens), ring=_ring(), max_tokens=30)
            spot = c.spot(doc, len("import os\n\ndef add(a, b):\n"), "main.py")
            with pytest.raises(EngineError):
                eng.infill("a", "b")
            return eng.endpoints, eng.capabilities, c.server_infill, spot, await c.complete(spot)

    endpoints, caps, server_infill, spot, res = arun(go(), 180)
    assert endpoints["props"] and not endpoints["infill"]
    assert not caps.infill and not caps.infill_endpoint and not server_infill
    assert spot.prompt.family == "prefix-only" and spot.prompt.server is None
    assert spot.prompt.text.endswith("def add(a, b):\n") and "print(add" not in spot.prompt.text
    assert "helper_7" in spot.prompt.text  # the ring still goes in, as plain snippets
    assert res.source == "engine" and res.shown.strip()
    assert "print(add(1, 2))" not in res.shown
