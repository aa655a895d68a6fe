"""Slots spread over two llama contexts, each stepped by a thread of its own (P.Load.contexts,
context_runner.py): what a request gives does not depend on the layout, a cancel or an unload
reaches a sequence in either context, and a prompt goes where its start is cached."""
from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest

from app.engine import parallel_probe
from app.engine import protocol as P
from app.engine.client import EngineClient
from app.engine.context_runner import ThreadShare
from app.engine.protocol import GenerateParams
from app.engine.worker import Worker
from tests.helpers import arun, generate_alone

PROMPTS = ["def fibonacci(n):\n", "class Stack:\n    def __init__(self):\n",
           "import os\n\ndef list_files(path):\n", "def is_prime(n):\n"]


def test_four_sequences_over_two_contexts_give_what_each_gives_alone(smollm):
    params = GenerateParams(max_tokens=32)

    async def go():
        async with EngineClient() as one:
            await one.load(smollm, n_ctx=1024, n_threads=2, n_seq=1, exact=True)
            alone = [await one.generate(p, params).result() for p in PROMPTS]
        async with EngineClient() as split:
            info = await split.load(smollm, n_ctx=1024, n_threads=2, n_seq=4, exact=True, contexts=2)
            assert info.contexts == 2 and split.capabilities.parallel_slots == 4
            gens = [split.generate(p, params) for p in PROMPTS]
            texts = await asyncio.gather(*(g.result() for g in gens))
            return alone, texts, [g.stats for g in gens]

    alone, texts, stats = arun(go())
    for a, t, st in zip(alone, texts, stats):
        print(f"in flight {st.in_flight}: {t!r} | alone: {a!r}")
        assert t == a
    # two per context: each context decodes its two sequences together
    assert [st.in_flight for st in stats] == [2, 2, 2, 2]


def test_a_sequence_moves_to_a_context_left_idle_and_gives_what_it_gives_alone(smollm):
    """Two long requests land in the first context (the short ones between them in the second);
    once the short ones end, one long one moves with its cells to the idle context."""
    long, short = GenerateParams(max_tokens=96, stop=["zzz"]), GenerateParams(max_tokens=4)
    order = [(PROMPTS[0], long), (PROMPTS[1], short), (PROMPTS[2], long), (PROMPTS[3], short)]

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=2, n_seq=4, exact=True, contexts=2)
            alone = [await client.generate(p, params).result() for p, params in order]
            gens = [client.generate(p, params) for p, params in order]
            texts = await asyncio.gather(*(g.result() for g in gens))
            return alone, texts, [g.stats for g in gens]

    alone, texts, stats = arun(go(), timeout=240)
    for a, t, st in zip(alone, texts, stats):
        print(f"moved {st.moved}, {st.completion_tokens} tokens: {t[:40]!r}")
        assert t == a
    assert sum(st.moved for st in stats) == 1 and stats[0].moved + stats[2].moved == 1


def test_a_cancel_stops_a_sequence_in_the_second_context_and_the_others_finish(smollm):
    long = GenerateParams(max_tokens=64)

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=2, n_seq=2, contexts=2)
            alone = await generate_alone(client, PROMPTS[0], long)
            gens = [client.generate(p, long) for p in PROMPTS[:2]]   # one per context
            victim = gens[1]
            async for _ in victim:
                if len(victim.text) >= 8:
                    victim.cancel()
            other = await gens[0].result()
            return alone, other, victim.stats, gens[0].stats

    (alone_text, alone_stats), other, cancelled, done = arun(go())
    print(f"cancelled after {cancelled.completion_tokens} tokens; the other: {done.completion_tokens}")
    assert cancelled.finish_reason == "cancelled" and cancelled.completion_tokens < 64
    assert other == alone_text and done.completion_tokens == alone_stats.completion_tokens


def test_a_prompt_goes_to_the_context_that_holds_its_start(smollm):
    shared = "".join(f"def helper_{i}(x):\n    return x * {i}\n\n" for i in range(12))

    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=2, n_seq=2, contexts=2)
            await generate_alone(client, "Write a haiku about the sea.", GenerateParams(max_tokens=4))
            await generate_alone(client, shared + "def a():\n", GenerateParams(max_tokens=4))
            _, st = await generate_alone(client, shared + "def b():\n", GenerateParams(max_tokens=4))
            return st

    st = arun(go())
    print(f"prompt {st.prompt_tokens} tokens, cached {st.cached_tokens}")
    assert st.cached_tokens >= 64 and st.cached_tokens > st.prompt_tokens - 8


def test_an_unload_ends_the_requests_of_every_context_and_a_load_serves_again(smollm):
    async def go():
        async with EngineClient() as client:
            await client.load(smollm, n_ctx=1024, n_threads=2, n_seq=2, contexts=2)
            gens = [client.generate(p, GenerateParams(max_tokens=400)) for p in PROMPTS[:2]]
            await asyncio.sleep(1.0)
            await client.unload()
            ends = await asyncio.gather(*(g.result() for g in gens), return_exceptions=True)
            await client.load(smollm, n_ctx=1024, n_threads=2, n_seq=2, contexts=2)
            again = await client.generate(PROMPTS[0], GenerateParams(max_tokens=8)).result()
            return ends, again

    ends, again = arun(go(), timeout=120)
    print(ends, repr(again))
    assert all(isinstance(e, Exception) and "unloaded" in str(e) for e in ends)
    assert again


def test_threads_go_to_the_contexts_that_have_work():
    share = ThreadShare(4)
    assert share.threads_for() == 4
    share.add(0, 1)
    assert share.threads_for() == 4      # the only busy context takes every thread
    share.add(1, 2)
    assert share.threads_for() == 2
    share.add(0, -1)
    assert share.threads_for() == 4


@pytest.mark.parametrize("one,split,expected", [
    # the split faster at every count
    ({1: 50.0, 2: 52.0, 4: 70.0}, {2: 70.0, 4: 80.0}, (4, {1: 1, 2: 2, 4: 2})),
    # slower at every count
    ({1: 50.0, 2: 52.0, 4: 70.0}, {2: 50.0, 4: 60.0}, (4, {1: 1, 2: 1, 4: 1})),
    # faster 2 wide only; within 3% counts as no faster (a context costs memory)
    ({1: 50.0, 2: 52.0, 4: 70.0}, {2: 60.0, 4: 71.0}, (4, {1: 1, 2: 2, 4: 1})),
])
def test_the_probe_keeps_the_faster_layout_for_each_count(one, split, expected):
    assert parallel_probe.choose(one, split) == expected


def test_decodes_of_several_threads_run_on_the_main_thread_whoever_steps_the_context():
    """libgomp keeps a team per calling thread and stops spinning once teams outnumber the cores
    (context_runner.WideDecode): a context stepped by a runner thread decodes wide on the worker's
    main thread, and a one-thread decode stays where it is called. (Only which thread calls
    llama_decode is recorded here; the tests above decode for real through the same path.)"""
    worker = Worker(io.BytesIO())
    ran_on = {}   # (caller, threads) -> the thread llama_decode ran on
    worker.decode_now = lambda ctx, batch: ran_on.__setitem__(batch, threading.get_ident()) or 0
    main = threading.Thread(target=worker.run)
    main.start()
    while worker.main_ident is None:
        time.sleep(0.01)

    def caller(i):
        for n in (1, 2, 4):
            worker.decode(None, (i, n, threading.get_ident()), n)

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    worker.jobs.put(P.Shutdown())
    main.join()
    assert len(ran_on) == 9
    assert all(ran_on[k] == k[2] for k in ran_on if k[1] == 1), "a one-thread decode left its caller"
    assert {ran_on[k] for k in ran_on if k[1] > 1} == {main.ident}, "a wide decode ran off the main thread"
