"""The remote engine against real servers on 127.0.0.1: llama-cpp-python's server and llama.cpp's
llama-server (issue 13, items 1, 2, 4, 5 and 6)."""
from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from app.engine.base import EngineError, open_engine
from app.engine.protocol import GenerateParams
from app.engine.remote import RemoteEngine, base_url, public_url
from tests.helpers import arun, run_cli
from tests.servers import procs
from tests.servers.misbehaving import Misbehaving
from tests.servers.slots import cancel_midway_and_watch_the_slot, slot

PROMPT = "def fibonacci(n):\n    "


def _one_line_error(r, code):
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llamadesk: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def test_urls_lose_user_info_and_query():
    assert public_url("https://bob:s3cret@host:8443/v1?key=abc#x") == "https://host:8443/v1"
    assert base_url("http://h:8080/v1/") == "http://h:8080"
    assert base_url("http://h:8080") == "http://h:8080"


# --- must show: greedy text from a server equals the local engine's, same file ---------------

@pytest.mark.parametrize("fmt", ["raw", "auto"])
def test_llama_server_greedy_text_equals_local(llama_server, smollm, fmt):
    args = ["complete", PROMPT, "--max-tokens", "48", "--format", fmt, "--stats"]
    local = run_cli(*args, "--model", str(smollm), "--threads", "2")
    remote = run_cli(*args, "--engine", llama_server.url + "/v1")
    assert local.returncode == 0 and remote.returncode == 0, (local.stderr, remote.stderr)
    assert local.stdout.strip(), local.stderr
    assert remote.stdout == local.stdout


def test_llama_cpp_server_greedy_text_equals_local(llama_cpp_server, smollm):
    args = ["complete", PROMPT, "--max-tokens", "48", "--format", "raw"]
    local = run_cli(*args, "--model", str(smollm), "--threads", "2")
    remote = run_cli(*args, "--engine", llama_cpp_server.url)  # without /v1
    assert local.returncode == 0 and remote.returncode == 0, (local.stderr, remote.stderr)
    assert remote.stdout == local.stdout


# --- what is detected at connect ---------------------------------------------------------------

def test_llama_server_endpoints_detected(llama_server, smollm):
    async def go():
        async with await open_engine(llama_server.url) as eng:
            return eng.capabilities, eng.info, eng.endpoints, await eng.tokenize("hello world")

    caps, info, endpoints, tokens = arun(go())
    assert endpoints["props"] and endpoints["health"] and endpoints["tokenize"] and endpoints["slots"]
    assert caps.n_ctx == procs.CTX_PER_SLOT and caps.parallel_slots == 1 and caps.tokenize
    assert caps.chat_template and "im_start" in caps.chat_template
    assert info.remote["claims"]["model_path"].endswith(smollm.name)
    assert len(tokens) >= 2


def test_llama_cpp_server_is_openai_only(llama_cpp_server):
    async def go():
        async with await open_engine(llama_cpp_server.url + "/v1/") as eng:
            return eng.capabilities, eng.endpoints, eng.api_model

    caps, endpoints, model = arun(go())
    assert not any(endpoints.values())
    assert caps.parallel_slots == 1 and not caps.tokenize
    assert model  # the first id /v1/models lists


def test_doctor_shows_server_endpoints(llama_server):
    r = run_cli("doctor", "--engine", llama_server.url)
    assert r.returncode == 0, r.stderr
    assert "/props" in r.stdout and "/tokenize" in r.stdout and "(the server's claim)" in r.stdout


# --- failures end cleanly: one line, exit 2 for what the user must fix, 1 for the rest --------

def test_malformed_url_exits_2():
    for url in ("http//127.0.0.1:8080", "ftp://127.0.0.1/", "http://127.0.0.1:99999999"):
        line = _one_line_error(run_cli("complete", "x", "--engine", url), 2)
        assert "malformed server URL" in line


def test_connection_refused_exits_1():
    port = procs.free_port()  # nothing listens there
    line = _one_line_error(run_cli("complete", "x", "--engine", f"http://127.0.0.1:{port}"), 1)
    assert "cannot connect" in line


def test_unknown_host_exits_1():
    line = _one_line_error(run_cli("complete", "x", "--engine", "http://no-such-host.invalid:8080"), 1)
    assert "no-such-host.invalid" in line


def test_unknown_model_exits_2(llama_cpp_server):
    line = _one_line_error(run_cli("complete", "x", "--engine", llama_cpp_server.url,
                                   "--api-model", "no-such-model"), 2)
    assert "no model 'no-such-model'" in line


def test_rejected_key_exits_2_and_key_never_shown(llama_server_bin, smollm, server_logs, tmp_path):
    key = "sk-test-7f3a9c1e5b"
    server = procs.start_llama_server(llama_server_bin, smollm, server_logs, api_key=key)
    try:
        env = {**os.environ, "MY_KEY": "sk-wrong-0000", "LLAMADESK_HOME": str(tmp_path / "home")}
        line = _one_line_error(run_cli("complete", "x", "--engine", server.url, "--api-key-env", "MY_KEY",
                                       env=env), 2)
        assert "rejected the API key" in line and "sk-wrong" not in line
        line = _one_line_error(run_cli("complete", "x", "--engine", server.url, env=env), 2)
        assert "rejected the API key" in line
        # the right key: a HumanEval run; then no file the app wrote and no message holds the key
        env["MY_KEY"] = key
        out = tmp_path / "run"
        r = run_cli("humaneval", "--engine", f"http://user:{key}@127.0.0.1:{server.port}/v1?token={key}",
                    "--api-key-env", "MY_KEY", "--tasks", "0", "--max-tokens", "16", "--out", str(out),
                    env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        assert key not in r.stdout + r.stderr
        written = [p for root in (out, tmp_path / "home") for p in root.rglob("*") if p.is_file()]
        assert any(p.name == "summary.json" for p in written)
        for p in written:
            assert key.encode() not in p.read_bytes(), p
        summary = (out / "summary.json").read_text()
        assert f"http://127.0.0.1:{server.port}/v1" in summary and "user" not in summary
    finally:
        server.stop()


def test_prompt_longer_than_server_context_exits_2(llama_server):
    long_prompt = "word " * (procs.CTX_PER_SLOT + 200)
    line = _one_line_error(run_cli("complete", long_prompt, "--engine", llama_server.url,
                                   "--format", "raw", "--max-tokens", "4"), 2)
    assert "context" in line


def test_server_killed_mid_stream(llama_server_bin, smollm, server_logs):
    server = procs.start_llama_server(llama_server_bin, smollm, server_logs)

    async def go():
        async with await open_engine(server.url) as eng:
            gen = eng.generate("Once upon a time", GenerateParams(max_tokens=2000, temperature=0.8, seed=1))
            got = []
            with pytest.raises(EngineError) as err:
                async for chunk in gen:
                    got.append(chunk)
                    if len(got) == 3:
                        server.kill()
            return got, err.value

    try:
        got, err = arun(go(), 120)
    finally:
        server.stop()
    assert len(got) >= 3
    assert "closed the connection" in str(err) or "lost the connection" in str(err)
    assert err.exit_code == 1


def test_busy_server_honours_retry_after():
    with Misbehaving("busy", busy_status=503, busy_count=2, retry_after="0.2") as srv:
        async def go():
            async with await open_engine(srv.url) as eng:
                return await eng.generate("x").result()

        assert arun(go(), 60) == "hello world"
        assert srv.requests == 3


def test_busy_server_gives_up_within_bounds():
    with Misbehaving("busy", busy_status=429, busy_count=100, retry_after="3600") as srv:
        async def go():
            eng = RemoteEngine(srv.url, retries=3, retry_wait_max_s=0.5)
            await eng.connect()
            try:
                await eng.generate("x").result()
            finally:
                await eng.close()

        with pytest.raises(EngineError, match="busy"):
            arun(go(), 60)
        assert srv.requests <= 4


def test_stall_ends_with_one_message():
    with Misbehaving("stall") as srv:
        async def go():
            eng = RemoteEngine(srv.url, stall_s=1.0)
            await eng.connect()
            gen = eng.generate("x")
            try:
                with pytest.raises(EngineError, match="sent nothing for 1 s"):
                    await gen.result()
            finally:
                await eng.close()
            return gen.text

        assert arun(go(), 60) == "hello"


def test_malformed_event_ends_with_one_message():
    with Misbehaving("malformed") as srv:
        async def go():
            async with await open_engine(srv.url) as eng:
                await eng.generate("x").result()

        with pytest.raises(EngineError, match="malformed event"):
            arun(go(), 60)


def test_tls_private_ca(tmp_path):
    import trustme  # the test extra has it: a missing one must fail, not skip
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    with Misbehaving("ok", ssl_files=(str(cert_file), str(key_file))) as srv:
        line = _one_line_error(run_cli("complete", "x", "--engine", srv.url), 2)
        assert "--ca-bundle" in line
        r = run_cli("complete", "x", "--engine", srv.url, "--ca-bundle", str(ca_file), "--format", "raw")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "hello world\n"


# --- cancel closes the stream and the server stops generating --------------------------------

def test_cancel_stops_llama_server_generating(llama_server):
    async def go():
        async with await open_engine(llama_server.url) as eng:
            gen = eng.generate("Once upon a time", GenerateParams(max_tokens=3000, temperature=0.8, seed=3))
            s, first, again = await cancel_midway_and_watch_the_slot(llama_server.url, gen)
            return gen.stats, s, first, again

    stats, s, decoded, again = arun(go(), 120)
    assert stats.finish_reason == "cancelled"
    assert not s["is_processing"]
    assert decoded < 3000 and again == decoded


def test_llama_server_reads_a_self_test_prompt_afresh(llama_server):
    """llama-server reads the rest of a prompt after a cached prefix in calls of other widths,
    whose kernels round otherwise: a second self-test against it gave other text (one task of 16).
    Self-test requests ask it not to reuse the cache; others keep the reuse completion relies on."""
    async def twice(params):
        async with await open_engine(llama_server.url) as eng:
            stats = []
            for _ in range(2):
                gen = eng.generate(PROMPT * 4, params)
                await gen.result()
                stats.append(gen.stats)
            return stats

    plain = arun(twice(GenerateParams(max_tokens=4)), 120)
    selftest = arun(twice(GenerateParams(max_tokens=4, purpose="selftest")), 120)
    assert plain[1].cached_tokens > 0, plain
    assert selftest[0].cached_tokens == 0 and selftest[1].cached_tokens == 0, selftest


def test_a_greedy_request_asks_llama_server_for_the_top_token_only(llama_server):
    """top_k 1 spares llama-server its sampler chain over the whole vocabulary; the text is the
    one the full chain (top_k 0) gives, and a sampled request keeps its top_k."""
    async def watched(params):
        async with await open_engine(llama_server.url) as eng:
            gen, text, seen = eng.generate(PROMPT, params), "", None
            async for piece in gen:
                text += piece
                if seen is None:
                    seen = (await asyncio.to_thread(slot, llama_server.url))["params"]["top_k"]
            return text, seen

    def full_chain() -> str:
        body = {"prompt": PROMPT, "max_tokens": 48, "temperature": 0, "top_k": 0, "top_p": 1.0,
                "min_p": 0.0}
        return httpx.post(llama_server.url + "/v1/completions", json=body, timeout=120).json()["choices"][0]["text"]

    greedy_text, greedy_k = arun(watched(GenerateParams(max_tokens=48, top_k=0, top_p=1.0, min_p=0.0)), 120)
    _, sampled_k = arun(watched(GenerateParams(max_tokens=48, temperature=0.8, top_k=40, seed=1)), 120)
    assert greedy_k == 1 and sampled_k == 40
    assert greedy_text and greedy_text == full_chain()
