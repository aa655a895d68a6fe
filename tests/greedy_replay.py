"""Plain greedy decoding in-process, one token a step, recording how close each choice was.

Used to judge a difference between two decodings: where lookup (or a batched run) first
differs from plain greedy decoding, the top two logits of plain decoding tell whether that
position was a near-tie (llama.cpp's batched arithmetic is not bit-identical to one token at
a time)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Replay:
    tokens: list[int]
    gaps: list[float]       # top-1 minus top-2 logit at each step
    texts: list[str]        # text after each step
    batch_diff: float | None = None   # max |logit| change at batch_check_at when batched


def replay(model_path, prompt: str, max_tokens: int, n_ctx: int = 4096, n_batch: int = 512,
           batch_check_at: int | None = None) -> Replay:
    """With batch_check_at=i, also evaluate step i's input inside a batch of 2 (as lookup's
    verification does) and keep how far those logits are from the one-token ones."""
    import llama_cpp as L
    from llama_cpp import Llama

    llm = Llama(str(model_path), n_ctx=n_ctx, n_batch=n_batch, n_threads=1, n_threads_batch=1,
                verbose=False)
    try:
        ctx, vocab = llm._ctx.ctx, llm._model.vocab
        n_vocab = L.llama_vocab_n_tokens(vocab)
        prompt_tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        batch = L.llama_batch_init(n_batch, 0, 1)
        out, gaps, texts = [], [], []
        replayed_batch_diff: list[float] = []

        def decode(tokens, pos0):
            for start in range(0, len(tokens), n_batch):
                chunk = tokens[start:start + n_batch]
                for i, t in enumerate(chunk):
                    batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, pos0 + start + i, 1
                    batch.seq_id[i][0], batch.logits[i] = 0, i == len(chunk) - 1
                batch.n_tokens = len(chunk)
                assert L.llama_decode(ctx, batch) == 0
            return np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, -1), shape=(n_vocab,)).copy()

        logits = decode(prompt_tokens, 0)
        raw = b""
        mem = L.llama_get_memory(ctx)
        for step in range(max_tokens):
            if step == batch_check_at and step >= 2:
                end = len(prompt_tokens) + len(out)
                L.llama_memory_seq_rm(mem, 0, end - 2, -1)
                for i, t in enumerate(out[-2:]):
                    batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, end - 2 + i, 1
                    batch.seq_id[i][0], batch.logits[i] = 0, True
                batch.n_tokens = 2
                assert L.llama_decode(ctx, batch) == 0
                batched = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, 1), shape=(n_vocab,))
                self_diff = float(np.abs(batched - logits).max())
                replayed_batch_diff.append(self_diff)
            top2 = np.partition(logits, -2)[-2:]
            tok = int(np.argmax(logits))
            if L.llama_vocab_is_eog(vocab, tok):
                break
            gaps.append(float(abs(top2[1] - top2[0])))
            out.append(tok)
            raw += llm.detokenize([tok])
            texts.append(raw.decode("utf-8", errors="replace"))
            logits = decode([tok], len(prompt_tokens) + len(out) - 1)
        L.llama_batch_free(batch)
        return Replay(out, gaps, texts, replayed_batch_diff[0] if replayed_batch_diff else None)
    finally:
        llm.close()


def first_difference(replayed: Replay, other: str) -> int | None:
    """The step at which `other` stops matching the replayed text (None: it never does)."""
    for i, text in enumerate(replayed.texts):
        if not other.startswith(text):
            return i
    return None
