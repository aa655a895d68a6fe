"""A token evaluated inside a batch gets exactly the logits it gets alone.

This is what makes a parallel self-test score what a serial one scores, and a prompt-lookup
edit give the text plain greedy decoding gives. It holds for llama.cpp built without
llamafile's matrix kernels (`-DGGML_LLAMAFILE=OFF`, as the README installs it): those kernels
are taken for some batches of several tokens, not for one, and round differently, moving
SmolLM2's logits by up to 0.76 (measured), enough to change greedy text. SmolLM2's weights are
Q4_1, which llama.cpp does not repack at load; repacked weights (Q4_0, Q4_K, IQ4_NL) take yet
another kernel in wide steps, which the self-test avoids by loading exact (test_humaneval.py
covers that)."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

REBUILD = ('llama-cpp-python was built with llamafile kernels: reinstall it with CMAKE_ARGS='
           '"-DGGML_NATIVE=OFF -DGGML_LLAMAFILE=OFF -DLLAVA_BUILD=OFF" pip install --no-cache-dir '
           '--force-reinstall llama-cpp-python (see the README)')
TEXT = ("def merge(a, b):\n    out = []\n    i = j = 0\n    while i < len(a) and j < len(b):\n"
        "        if a[i] <= b[j]:\n            out.append(a[i])\n            i += 1\n")


class Context:
    """A bare llama.cpp context with one KV stream per sequence, as the worker makes it."""

    def __init__(self, llm, n_seq: int):
        import llama_cpp as L

        self.L = L
        params = L.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_seq_max, params.kv_unified = 1024 * n_seq, 512, n_seq, False
        params.n_threads = params.n_threads_batch = 1
        self.ctx = L.llama_init_from_model(llm._model.model, params)
        self.n_vocab = L.llama_vocab_n_tokens(llm._model.vocab)
        self.batch = L.llama_batch_init(512, 0, 1)

    def decode(self, items: list[tuple[int, int, int]]) -> list[np.ndarray]:
        """items: (token, position, sequence id); returns every item's logits."""
        b = self.batch
        for i, (tok, pos, seq) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, True
            b.seq_id[i][0] = seq
        b.n_tokens = len(items)
        assert self.L.llama_decode(self.ctx, b) == 0
        return [np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,)).copy()
                for i in range(len(items))]

    def close(self) -> None:
        self.L.llama_batch_free(self.batch)
        self.L.llama_free(self.ctx)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextmanager
def _loaded(model):
    from llama_cpp import Llama

    llm = Llama(str(model), n_ctx=256, n_threads=1, n_threads_batch=1, verbose=False)
    try:
        yield llm
    finally:
        llm.close()


def _assert_unmoved(alone: list[np.ndarray], batched: list[np.ndarray], what: str) -> None:
    moved = [float(np.abs(a - b).max()) for a, b in zip(alone, batched)]
    print(f"largest logit change {what}: {moved}")
    assert max(moved) == 0.0, REBUILD


def test_a_draft_checked_in_one_batch_gets_the_logits_of_one_token_at_a_time(smollm):
    with _loaded(smollm) as llm, Context(llm, 1) as alone, Context(llm, 1) as together:
        tokens = llm.tokenize(TEXT.encode(), add_bos=True)
        head, tail = tokens[:-12], tokens[-12:]
        for ctx in (alone, together):
            ctx.decode([(t, i, 0) for i, t in enumerate(head)])
        one_by_one = [alone.decode([(t, len(head) + i, 0)])[0] for i, t in enumerate(tail)]
        batched = together.decode([(t, len(head) + i, 0) for i, t in enumerate(tail)])
    _assert_unmoved(one_by_one, batched, f"per position in a batch of {len(tail)}")


def test_sequences_decoded_together_get_the_logits_each_gets_alone(smollm):
    with _loaded(smollm) as llm:
        prompts = [llm.tokenize(p.encode(), add_bos=True) for p in
                   (TEXT, "class Queue:\n    def __init__(self):\n        self.items = []\n", "import os\n")]
        solo = []
        for p in prompts:
            with Context(llm, 1) as ctx:
                ctx.decode([(t, i, 0) for i, t in enumerate(p[:-1])])
                solo.append(ctx.decode([(p[-1], len(p) - 1, 0)])[0])
        with Context(llm, len(prompts)) as ctx:
            # every prompt but its last token first, then the last tokens of all in one batch
            for s, p in enumerate(prompts):
                ctx.decode([(t, i, s) for i, t in enumerate(p[:-1])])
            together = ctx.decode([(p[-1], len(p) - 1, s) for s, p in enumerate(prompts)])
    _assert_unmoved(solo, together, "per sequence, decoded together")
