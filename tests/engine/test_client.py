"""EngineClient against the real SmolLM2 model in a real worker process."""
import asyncio
import os
import signal

import pytest
from llama_cpp import Llama

from app.engine.client import EngineClient, EngineCrashed
from app.engine.protocol import GenerateParams
from tests.helpers import arun

THREADS = 2
CTX = 2048
PROMPTS = [
    "def fibonacci(n):",
    "<|im_start|>user\nWrite a Python function that checks whether a number is prime.<|im_end|>\n"
    "<|im_start|>assistant\n",
]
# The cancel tests check that the worker honours a cancel itself (same pid after): the client's
# kill-after-grace fallback must not stand in for it on a loaded machine, whatever its speed.
PATIENT = 600.0
# A long, varied prompt: repeated text would make the model loop, which is fine, but long
# prompts are what cancel-during-prompt and prefix reuse are about.
LONG_PROMPT = "".join(f"def helper_{i}(x, y):\n    return x * {i} + y - {i % 7}\n\n" for i in range(300))


def plain_greedy(path, prompt, max_tokens):
    llm = Llama(str(path), n_ctx=CTX, n_threads=THREADS, n_threads_batch=THREADS, verbose=False)
    try:
        return llm(prompt, max_tokens=max_tokens, temperature=0.0)["choices"][0]["text"]
    finally:
        llm.close()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_output_equals_plain_llama_cpp(smollm, prompt):
    expected = plain_greedy(smollm, prompt, 64)

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=CTX, n_threads=THREADS)
            gen = client.generate(prompt, GenerateParams(max_tokens=64))
            chunks = [c async for c in gen]
            return chunks, gen.stats

    chunks, stats = arun(go())
    assert len(chunks) > 5, "the answer must arrive as a stream, not in one piece"
    assert "".join(chunks) == expected
    assert stats.completion_tokens <= 64 and stats.prompt_tokens > 0
    assert stats.tokens_per_s > 0 and stats.ttft_s > 0


def test_cancel_during_generation_keeps_model_loaded(smollm):
    async def go():
        async with EngineClient(cancel_grace_s=PATIENT) as client:
            await client.load(smollm, n_ctx=4096, n_threads=THREADS)
            pid = client.worker_pid
            gen = client.generate("Count from one to one thousand: one, two, three,",
                                  GenerateParams(max_tokens=3000))
            n = after_cancel = 0
            async for _ in gen:
                n += 1
                after_cancel += n > 5
                if n == 5:
                    gen.cancel()
            after = await client.generate("def add(a, b):", GenerateParams(max_tokens=8)).result()
            return gen.stats, after_cancel, pid, client.worker_pid, after

    stats, after_cancel, pid_before, pid_after, after = arun(go(), timeout=120)
    assert stats.finish_reason == "cancelled"
    # the worker checks for a cancel between tokens: only what was already in the pipe follows
    assert after_cancel <= 8, f"{after_cancel} chunks arrived after the cancel"
    assert stats.completion_tokens < 100
    assert pid_before == pid_after, "cancel must not restart the worker"
    assert after.strip()


def test_cancel_during_long_prompt(smollm):
    async def go():
        async with EngineClient(cancel_grace_s=PATIENT) as client:
            await client.load(smollm, n_ctx=8192, n_threads=THREADS, n_batch=256)
            pid = client.worker_pid
            seen = []
            gen = None

            def on_progress(stage, fraction):
                seen.append(fraction)
                if stage == "prompt" and len(seen) == 1:
                    gen.cancel()

            gen = client.generate(LONG_PROMPT, GenerateParams(max_tokens=16), on_progress=on_progress)
            text = await gen.result()
            after = await client.generate("def add(a, b):", GenerateParams(max_tokens=8)).result()
            return gen.stats, seen, text, pid, client.worker_pid, after

    stats, seen, text, pid_before, pid_after, after = arun(go(), timeout=120)
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens == 0 and text == ""
    assert stats.prompt_tokens > 5000
    # progress comes per batch: the cancel is honoured within a batch or two, not at the end
    assert len(seen) <= 3 and max(seen) < 0.5, f"prompt evaluation went on after cancel: {seen}"
    assert pid_before == pid_after
    assert after.strip()


def test_prefix_is_reused_between_requests(smollm):
    prompt = LONG_PROMPT[:6000]

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=4096, n_threads=THREADS)
            first = client.generate(prompt, GenerateParams(max_tokens=4))
            await first.result()
            second = client.generate(prompt + "\ndef main():", GenerateParams(max_tokens=4))
            await second.result()
            return first.stats, second.stats

    first, second = arun(go())
    assert first.cached_tokens == 0
    assert first.prompt_tokens > 1000
    assert second.cached_tokens >= first.prompt_tokens - 2


def test_requests_are_served_one_at_a_time_in_order(smollm):
    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=CTX, n_threads=THREADS)
            log = []
            gens = [client.generate(p, GenerateParams(max_tokens=24)) for p in ("def a():", "def b():", "def c():")]

            async def consume(tag, gen):
                async for chunk in gen:
                    log.append(tag)

            await asyncio.gather(*(consume(t, g) for t, g in zip("abc", gens)))
            alone = await client.generate("def b():", GenerateParams(max_tokens=24)).result()
            return log, gens, alone

    log, gens, alone = arun(go())
    assert [g.id for g in gens] == sorted(g.id for g in gens)
    order = [t for i, t in enumerate(log) if i == 0 or log[i - 1] != t]
    assert order == ["a", "b", "c"], f"streams interleaved: {order}"
    assert gens[1].text == alone


def test_killed_worker_gives_crash_error_and_next_request_restarts(smollm):
    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=CTX, n_threads=THREADS)
            pid = client.worker_pid
            gen = client.generate("Count from one to one thousand: one, two,", GenerateParams(max_tokens=1500))
            n = 0
            with pytest.raises(EngineCrashed) as err:
                async for _ in gen:
                    n += 1
                    if n == 3:
                        os.kill(pid, signal.SIGKILL)
            after = client.generate("def add(a, b):", GenerateParams(max_tokens=8))
            text = await after.result()
            return err.value, pid, client.worker_pid, text, client.state

    err, pid_before, pid_after, text, state = arun(go())
    assert "SIGKILL" in str(err) and err.returncode == -signal.SIGKILL
    assert pid_after != pid_before
    assert text.strip()
    assert state == "ready"


def test_generate_without_model_is_a_clear_error():
    async def go():
        async with EngineClient() as client:
            return await client.generate("x").result()

    with pytest.raises(Exception, match="no model is loaded"):
        arun(go())
