"""Prompt-lookup decoding (issue 14 item 3): drafts, acceptance rule, and the same text as plain
greedy decoding on the committed edit prompts."""
from __future__ import annotations

import numpy as np
import pytest

from app.engine import lookup as LK
from app.engine import protocol as P
from app.engine.batch_loop import BatchLoop
from app.engine.client import EngineClient
from app.engine.protocol import GenerateParams
from tests import edit_prompts as E
from tests.greedy_replay import replay
from tests.helpers import arun

NEAR_TIE = 1e-3
MAX_TOKENS = 120


def test_draft_continues_the_longest_match_and_stays_aligned():
    prompt = [1, 2, 3, 4, 5, 6, 7, 2, 3, 9, 9]
    lk = LK.PromptLookup(prompt)
    assert lk.draft([0, 2, 3], 3) == [4, 5, 6]       # 2-gram (2, 3): first copy is nearest the cursor
    lk.update(3, 3)
    assert lk.draft([5, 6, 7, 2, 3], 2) == [9, 9]    # the 4-gram (6, 7, 2, 3) wins over (2, 3)
    assert lk.draft([42, 43], 5) == []


def test_the_output_so_far_is_drafted_from_too():
    prompt = [1, 2, 3, 4]
    lk = LK.PromptLookup(prompt)
    # the model wrote a line of its own (7 8 9 5), then began it again: the rest is drafted
    assert lk.draft(prompt + [7, 8, 9, 5, 7, 8], 3) == [9, 5, 7]


def test_the_place_that_agrees_furthest_back_wins():
    # the longest n-gram, (2, 3, 4, 5), is at two places; only 6 tokens back do they differ
    prompt = [1, 9, 2, 3, 4, 5, 7, 0, 8, 9, 2, 3, 4, 5, 6, 0]
    assert LK.PromptLookup(prompt).draft(prompt + [8, 9, 2, 3, 4, 5], 1) == [6]
    assert LK.PromptLookup(prompt).draft(prompt + [1, 9, 2, 3, 4, 5], 1) == [7]


def test_a_shadow_scored_draft_keeps_the_copy_aligned():
    block = [10, 11, 12, 13, 14, 15, 16, 17]
    prompt = block + [0] + block + [0]           # the same block twice
    lk = LK.PromptLookup(prompt)
    history = prompt + [10, 11]
    lk.draft(history, 0)
    start = lk._last_start
    lk.observe(lk.text[start])                   # the model wrote the guessed token
    assert lk.cursor == start + 1                # the copy goes on right after it
    assert lk.draft(history + [lk.text[start]], 2) == lk.text[start + 1:start + 3]
    assert lk._last_start == start + 1


def test_an_unsent_draft_is_still_scored_against_the_models_token():
    prompt = [1, 2, 3, 4, 5, 6]
    lk = LK.PromptLookup(prompt)
    lk.accepted, lk.rejections = 1.0, 9.0   # drafting stopped paying
    history = prompt + [2, 3]
    for tok in [4, 5, 6]:
        assert lk.draft(history, 0) == [] and lk.shadow == tok
        before = lk.alpha
        lk.observe(tok)
        assert lk.alpha > before
        history.append(tok)
    lk.draft(prompt + [9, 9], 0)             # no match: nothing to score
    assert lk.shadow is None


def test_purpose_decides():
    code = "def f(x):\n    return x\n\nclass A:\n    pass\n"
    assert LK.wants_lookup("edit", "anything", None)
    assert LK.wants_lookup("ask", f"why?\n```python\n{code}```", None)
    assert not LK.wants_lookup("ask", "What is a closure?", None)
    assert not LK.wants_lookup("", code, None) and LK.wants_lookup("", "x", True)
    assert GenerateParams.for_edit(100, []).temperature == 0.0


def test_speculative_rule_keeps_the_target_distribution():
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.3, 0.2])
    counts = np.zeros(3)
    for _ in range(20000):
        counts[LK.speculative_accept(p, 1, rng)[1]] += 1
    assert np.allclose(counts / counts.sum(), p, atol=0.015)


def test_best_length_follows_the_cost_of_a_batch():
    lk = LK.PromptLookup([1, 2, 3])
    lk.accepted, lk.rejections = 90, 10
    assert lk.best_length(lambda n: 1.0 + 0.02 * n, 0, 12) == 12    # GPU-like: long drafts pay
    assert lk.best_length(lambda n: 1.0 * n, 0, 12) == 0            # cost grows with every token


def test_default_edit_uses_lookup(smollm):
    """What the assistant's Edit selection sends with default settings (GenerateParams.for_edit)."""
    case = E.edit_cases()[0]

    async def go():
        async with EngineClient() as client:
            info = await client.load(smollm, n_ctx=4096, n_threads=1)
            prompt, stop = E.build(case, info)
            gen = client.generate(prompt, E.params(stop, 60))
            await gen.result()
            return gen.stats

    st = arun(go())
    print(f"acceptance {st.acceptance:.2f} ({st.accepted_tokens}/{st.draft_tokens})")
    assert st.draft_tokens > 0 and st.accepted_tokens > 0


def _lookup_tokens(model, prompt: str, stop: list[str]) -> tuple[list[int], str, P.Done]:
    """Run the worker's batch loop in this process to see the tokens, not only the text."""
    from llama_cpp import Llama

    llm = Llama(str(model), n_ctx=4096, n_batch=512, n_threads=1, n_threads_batch=1, verbose=False)
    events = []
    loop = BatchLoop(llm, 1, 4096, 512, events.append, lambda _id: False, lambda _id: None)
    try:
        loop.submit(P.Generate(1, prompt, E.params(stop, MAX_TOKENS)))
        n_prompt = len(loop.waiting[0].prompt)
        while loop.busy:
            loop.step()
        tokens = loop.slots[0].tokens[n_prompt:]
        widths = dict(loop.widths)
    finally:
        loop.close()
        llm.close()
    text = "".join(e.text for e in events if isinstance(e, P.Chunk))
    done = next(e for e in events if isinstance(e, P.Done))
    # the loop's tally by batch width (batched_selftest's profile): each step holds this
    # sequence's token and its draft
    assert sum(steps for steps, _ in widths.values()) == done.decode_steps
    assert sum(w * steps for w, (steps, _) in widths.items()) == done.decode_steps + done.draft_tokens
    return tokens, text, done


@pytest.mark.parametrize("case", E.edit_cases(), ids=lambda c: c["name"])
def test_lookup_gives_plain_greedy_tokens(smollm, case):
    async def fmt():  # the prompt as the assistant builds it for this model
        async with EngineClient() as client:
            return await client.load(smollm, n_ctx=512, n_threads=1)
    info = arun(fmt())
    prompt, stop = E.build(case, info)
    tokens, text, done = _lookup_tokens(smollm, prompt, stop)
    plain = replay(smollm, prompt, MAX_TOKENS)
    print(f"{case['name']}: lookup accepted {done.accepted_tokens}/{done.draft_tokens} drafted tokens")
    assert done.draft_tokens > 0
    step = next((i for i, (a, b) in enumerate(zip(tokens, plain.tokens)) if a != b), None)
    if step is None:
        print("  identical to plain greedy decoding")
        assert len(tokens) >= len(plain.tokens) - 1   # the KV lacks only the last token
        return
    checked = replay(smollm, prompt, step + 1, batch_check_at=step)
    gap, moved = plain.gaps[step], checked.batch_diff
    # With llama.cpp built as the README says, a batch moves no logit, so lookup's text is
    # plain greedy decoding's; a difference is a wrong token unless the build is the cause.
    pytest.fail(f"first difference at token {step}: plain top-2 logit gap {gap:.5f} "
                f"({'near-tie' if gap < NEAR_TIE else 'not within 1e-3'}); the same position "
                f"evaluated in a batch of 2 moves the logits by up to {moved:.4f}\n"
                f"  plain : {plain.texts[step][-60:]!r}")
