"""Several sequences decoded together in the local worker (continuous batching, issue 14)."""
from __future__ import annotations

import asyncio

from app.engine.client import EngineClient
from app.engine.protocol import GenerateParams
from tests.helpers import arun, generate_alone

THREADS = 1   # the machine is shared: two threads that wait on each other collapse under load
PROMPTS = ["def fibonacci(n):\n", "class Stack:\n    def __init__(self):\n", "import os\n\ndef list_files(path):\n"]


def test_sequences_together_match_one_at_a_time_and_stats_add_up(smollm):
    params = GenerateParams(max_tokens=24)

    async def go():
        async with EngineClient() as client:
            info = await client.load(smollm, n_ctx=1024, n_threads=THREADS, n_seq=3)
            assert info.n_seq == 3 and client.capabilities.parallel_slots == 3
            solo = [await generate_alone(client, p, params) for p in PROMPTS]
            gens = [client.generate(p, params) for p in PROMPTS]
            texts = await asyncio.gather(*(g.result() for g in gens))
            return solo, texts, [g.stats for g in gens]

    solo, texts, stats = arun(go())
    for (solo_text, solo_stats), text, st in zip(solo, texts, stats):
        print(f"in flight {st.in_flight}: {text!r} | alone: {solo_text!r}")
        assert st.in_flight == 3 and solo_stats.in_flight == 1
        assert st.prompt_tokens == solo_stats.prompt_tokens
        assert st.completion_tokens == solo_stats.completion_tokens
        assert text == solo_text   # SmolLM2 Q4_1 gives the same greedy text in a batch of 3
    assert sum(s.completion_tokens for s in stats) == sum(s.completion_tokens for _, s in solo)


def test_cancel_stops_one_sequence_and_the_others_finish(smollm):
    long = GenerateParams(max_tokens=48)

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=THREADS, n_seq=3)
            alone = [await generate_alone(client, p, long) for p in PROMPTS]
            gens = [client.generate(p, long) for p in PROMPTS]
            victim = gens[1]
            seen_at_cancel = None
            async for _ in victim:
                if seen_at_cancel is None and len(victim.text) >= 8:
                    seen_at_cancel = victim.text
                    victim.cancel()
            others = await asyncio.gather(gens[0].result(), gens[2].result())
            # The cancelled sequence's count covers exactly its text: decoding that many tokens
            # alone gives the same text.
            again = await generate_alone(client, PROMPTS[1], GenerateParams(max_tokens=victim.stats.completion_tokens))
            return alone, gens, seen_at_cancel, others, again

    alone, gens, seen_at_cancel, others, again = arun(go())
    victim = gens[1]
    print(f"cancelled after {victim.stats.completion_tokens} tokens: {victim.text!r} "
          f"(had {seen_at_cancel!r} when cancelling)")
    assert victim.stats.finish_reason == "cancelled"
    assert victim.stats.completion_tokens < 48
    assert victim.text.startswith(seen_at_cancel)
    assert alone[1][0].startswith(victim.text)
    assert again[0] == victim.text and again[1].completion_tokens == victim.stats.completion_tokens
    for i, text in ((0, others[0]), (2, others[1])):
        # Finished exactly as alone (a batched token gets the logits it gets alone).
        print(f"sequence {i}: {text!r}\n     alone: {alone[i][0]!r}")
        assert gens[i].stats.finish_reason == alone[i][1].finish_reason == "length"
        assert gens[i].stats.completion_tokens == alone[i][1].completion_tokens == 48
        assert text == alone[i][0]


def test_cancel_takes_effect_within_one_step(smollm):
    """Sent while the worker is busy decoding: at most one more token comes (the step under way)."""
    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=THREADS, n_seq=2)
            keep = client.generate(PROMPTS[0], GenerateParams(max_tokens=40))
            victim = client.generate(PROMPTS[2], GenerateParams(max_tokens=200))
            async for _ in victim:
                # its first chunk is one token (the worker sends a request's first chunk at
                # once; later ones may carry several tokens)
                victim.cancel()
                break
            await victim.result()
            await keep.result()
            return victim.stats, keep.stats

    victim, keep = arun(go())
    print(f"victim: {victim.completion_tokens} tokens; the other: {keep.completion_tokens}, {keep.finish_reason}")
    assert victim.finish_reason == "cancelled"
    # 1 token read when cancelling; tokens already in the pipe and the step under way may add a few
    assert victim.completion_tokens <= 1 + 3
    assert keep.finish_reason == "length" and keep.completion_tokens == 40


def test_new_request_takes_a_free_slot_mid_generation(smollm):
    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=THREADS, n_seq=2)
            first = client.generate(PROMPTS[0], GenerateParams(max_tokens=64))
            async for _ in first:
                break   # it is generating now
            second = client.generate(PROMPTS[1], GenerateParams(max_tokens=6))
            await second.result()
            first_done_when_second_ended = first.done
            await first.result()
            return first.stats, second.stats, first_done_when_second_ended

    first, second, first_done = arun(go())
    assert not first_done, "the second request waited for the first instead of joining it"
    assert second.in_flight == 2 and first.in_flight == 2
    assert second.completion_tokens == 6 and first.completion_tokens == 64


def test_in_flight_counts_only_sequences_generating_together(smollm):
    """A prompt is read in calls of its own: a sequence that ends while another reads a long
    prompt was never decoded beside it."""
    long_prompt = "".join(f"def helper_{i}(x):\n    return x * {i} + {i * 7}\n\n" for i in range(150))

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=4096, n_threads=THREADS, n_seq=2)
            short = client.generate(PROMPTS[0], GenerateParams(max_tokens=3))
            read_while_short_ran = []
            reader = client.generate(long_prompt, GenerateParams(max_tokens=2), on_progress=lambda stage, f: (
                read_while_short_ran.append(stage == "prompt" and f < 1.0 and not short.done)))
            await short.result()
            short_ended_before_reader_generated = reader.text == ""
            await reader.result()
            return short.stats, reader.stats, any(read_while_short_ran) and short_ended_before_reader_generated

    short, reader, overlapped = arun(go())
    print(f"short in flight {short.in_flight}, reader in flight {reader.in_flight}, "
          f"reader prompt {reader.prompt_tokens} tokens")
    assert reader.prompt_tokens > 1500 and overlapped, "the two did not run at the same time"
    assert short.in_flight == 1 and reader.in_flight == 1


def test_a_generating_sequence_gets_a_token_every_128_prompt_tokens_another_reads(smollm):
    """While one request reads a long prompt, another that generates is not held up by whole
    n_batch calls (512 tokens): the prompt is read 128 tokens a call meanwhile, and reads to the
    same first token as alone."""
    long_prompt = "".join(f"def helper_{i}(x):\n    return x * {i} + {i * 7}\n\n" for i in range(150))
    params = GenerateParams(max_tokens=2)

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=4096, n_threads=THREADS, n_seq=2)
            talker = client.generate(PROMPTS[0], GenerateParams(max_tokens=400))
            while not talker.text:
                await asyncio.sleep(0.01)
            seen = []   # the talker's text at each prompt call of the reader
            reader = client.generate(long_prompt, params, on_progress=lambda stage, f: (
                stage == "prompt" and f < 1.0 and not talker.done and seen.append(len(talker.text))))
            text = await reader.result()
            talker.cancel()
            await talker.result()
            await client.load(smollm, n_ctx=4096, n_threads=THREADS, n_seq=2)   # nothing cached
            return await generate_alone(client, long_prompt, params), (text, reader.stats), seen

    alone, beside, seen = arun(go())
    calls, advanced = len(seen), sum(b > a for a, b in zip(seen, seen[1:]))
    print(f"reader: {beside[1].prompt_tokens} prompt tokens in {calls + 1} calls beside the talker, "
          f"which advanced between {advanced} of them")
    assert beside[1].prompt_tokens // 128 <= calls + 1 <= -(-beside[1].prompt_tokens // 128)
    assert advanced >= calls - 2
    assert beside[0] == alone[0]


def test_each_slot_keeps_its_prefix(smollm):
    """Two slots: an unrelated request in between no longer evicts the first prompt's cache."""
    shared = "".join(f"def helper_{i}(x):\n    return x * {i}\n\n" for i in range(12))

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=THREADS, n_seq=2)
            await generate_alone(client, shared + "def a():\n", GenerateParams(max_tokens=4))
            await generate_alone(client, "Write a haiku about the sea.", GenerateParams(max_tokens=4))
            _, st = await generate_alone(client, shared + "def b():\n", GenerateParams(max_tokens=4))
            return st

    st = arun(go())
    print(f"prompt {st.prompt_tokens} tokens, cached {st.cached_tokens}")
    assert st.cached_tokens >= 64 and st.cached_tokens > st.prompt_tokens - 8


def test_seeded_sampling_is_per_sequence(smollm):
    def params(seed):
        return GenerateParams(max_tokens=20, temperature=0.9, top_k=0, top_p=1.0, min_p=0.0, seed=seed)

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=THREADS, n_seq=2)
            alone = [await generate_alone(client, PROMPTS[0], params(s)) for s in (1, 2)]
            gens = [client.generate(PROMPTS[0], params(s)) for s in (1, 2)]
            together = await asyncio.gather(*(g.result() for g in gens))
            return [a[0] for a in alone], together

    alone, together = arun(go())
    print(alone, together)
    assert alone[0] != alone[1]
    assert together == alone


def test_a_self_test_request_streams_in_fewer_messages_and_the_same_text(smollm):
    """A self-test reads only the whole text: its chunks are held 0.25 s (worker.SELFTEST_COALESCE_S),
    an editor's 0.03 s, so with sequences in flight the app is woken far less often."""
    def params(purpose):
        return GenerateParams(max_tokens=96, stop=["zzz"], purpose=purpose)

    async def pieces(client, purpose):
        gen = client.generate(PROMPTS[0], params(purpose))
        count = 0
        async for _ in gen:
            count += 1
        return count, gen.text

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=2)
            return await pieces(client, "selftest"), await pieces(client, "")

    (n_self, text_self), (n_edit, text_edit) = arun(go())
    print(f"self-test: {n_self} messages, editor: {n_edit}")
    assert text_self == text_edit
    assert n_self * 3 <= n_edit
