"""Prompt-lookup decoding: draft the next tokens by finding the recent output in the prompt.

An edit mostly copies the selected code back with a few changes, so the tokens that followed
the last few output tokens in the prompt are a good guess for what comes next. The batch loop
evaluates the guess in one batch and keeps the prefix that the model itself confirms, so the
output is the model's own (greedy: the same tokens; sampling: the same distribution).

No dependency on llama.cpp here: tokens are ints, logits numpy arrays.
"""
from __future__ import annotations

import heapq
import re

import numpy as np

MAX_NGRAM = 4
MIN_NGRAM = 2   # a single-token match drafts mostly noise, and a wrong draft costs a wider batch
MAX_DRAFT = 12
AGREEMENT = 32   # tokens compared backwards to choose between places that match
CANDIDATES = 64  # places weighed at most (a newline and an indent match hundreds)
# Weight of what was seen one drafted token ago: an edit copies for a while, then writes new
# text, then copies again, so the acceptance rate that counts is the recent one.
MEMORY = 0.9

_CODE_LINE = re.compile(r"^(?:\s{2,}|\t)\S|[;{}]\s*$|^\s*(?:def|class|return|import|from|for|if|while|"
                        r"function|const|let|var|public|private|#include|fn|func)\b|[=(]\S*\)")


def wants_lookup(purpose: str, prompt: str, lookup: bool | None) -> bool:
    """Edits always copy code back; a question does only when it quotes code."""
    if lookup is not None:
        return lookup
    if purpose == "edit":
        return True
    return purpose == "ask" and holds_code(prompt)


def holds_code(text: str) -> bool:
    if "```" in text:
        return True
    return sum(1 for line in text.splitlines() if _CODE_LINE.search(line)) >= 3


class PromptLookup:
    """Drafts from the n-gram index of the prompt and of the output so far; remembers where the
    last match was.

    The output counts as a source too (as in Hugging Face's prompt lookup, which searches the
    whole context): a renamed name, a repeated line or a pattern the edit has set up earlier
    is copied from what the model wrote, not from the prompt."""

    def __init__(self, prompt: list[int]):
        self.text: list[int] = []  # the prompt, then every token the model has output
        self.accepted = 3          # prior: 3 of 4 drafted tokens kept (geometric model below)
        self.rejections = 1
        self.cursor = -1           # index in text where the copied text is expected to continue
        self._last_start = -1
        self.shadow: int | None = None   # the first token of a draft that was not worth sending
        self.index: dict[tuple, list[int]] = {}
        self._extend(prompt)

    def _extend(self, tokens: list[int]) -> None:
        text, index = self.text, self.index
        old = len(text)
        text.extend(tokens)
        for end in range(max(old + 1, MIN_NGRAM), len(text) + 1):   # old was indexed before
            for n in range(MIN_NGRAM, min(MAX_NGRAM, end) + 1):
                index.setdefault(tuple(text[end - n:end]), []).append(end)

    @property
    def alpha(self) -> float:
        """Chance that the next drafted token is kept, given the ones before it were."""
        return self.accepted / (self.accepted + self.rejections)

    def draft(self, history: list[int], k: int) -> list[int]:
        """Up to k tokens that followed the longest suffix of `history` earlier in the text.

        `history` is the prompt followed by the output so far (it only grows)."""
        if len(history) > len(self.text):
            self._extend(history[len(self.text):])
        self.shadow = None
        end = len(self.text)
        for n in range(MAX_NGRAM, MIN_NGRAM - 1, -1):
            if len(history) < n:
                continue
            starts = [s for s in self.index.get(tuple(history[-n:]), ()) if s < end]
            if len(starts) > CANDIDATES:
                starts = heapq.nsmallest(CANDIDATES, starts, key=lambda s: abs(s - self.cursor))
            if starts:
                # Several places match: take the one that matches furthest back (a line the
                # output repeats, the code it copies), then the one aligned with the copy.
                start = min(starts, key=lambda s: (-self._agreement(s, history, n),
                                                   s < self.cursor, abs(s - self.cursor)))
                self._last_start = start
                if k <= 0:
                    # Not sent, but checked against the model's next token (free): the rate
                    # keeps following the text while drafting does not pay.
                    self.shadow = self.text[start]
                    return []
                return self.text[start:start + k]
        self._last_start = -1
        return []

    def _agreement(self, start: int, history: list[int], n: int) -> int:
        """How many tokens before `start` equal the end of history (n are known to)."""
        text, i = self.text, n
        limit = min(AGREEMENT, start, len(history))
        while i < limit and text[start - 1 - i] == history[-1 - i]:
            i += 1
        return i

    def update(self, drafted: int, accepted: int, emitted: int | None = None) -> None:
        """`emitted`: tokens the model wrote this step (a sent draft: the accepted ones and the
        token after them); the copied text goes on after as many text tokens."""
        if self._last_start >= 0:
            self.cursor = self._last_start + (accepted + 1 if emitted is None else emitted)
        rejected = int(accepted < drafted)
        fade = MEMORY ** (accepted + rejected)
        self.accepted = self.accepted * fade + accepted
        self.rejections = self.rejections * fade + rejected

    def observe(self, token: int) -> None:
        """The model's token after a step that sent no draft: score the draft it would have been."""
        if self.shadow is not None:
            self.update(1, int(token == self.shadow), emitted=1)
            self.shadow = None

    def best_length(self, cost, others: int, limit: int) -> int:
        """The draft length with the most expected tokens per second of decode time.

        A step with k drafts yields 1 + a + a^2 + ... + a^k tokens on average and costs
        cost(others + 1 + k). Where a batch costs nearly its length (a busy CPU), drafting
        pays only for text that is copied almost surely; where it is nearly free (a GPU),
        long drafts pay even when half of them fail."""
        a = self.alpha
        best_k, best = 0, 1.0 / cost(others + 1)
        gain = 1.0
        for k in range(1, min(limit, MAX_DRAFT) + 1):
            gain += a ** k
            rate = gain / cost(others + 1 + k)
            if rate > best:
                best_k, best = k, rate
        return best_k


REFIT = 16   # decode steps between refits of the cost model, once it has seen a few


class DecodeCost:
    """Seconds a decode of n tokens takes, fitted as a + b*n over recent small batches.

    Starts from b = a/4 (batching is cheap: a GPU, an idle CPU) so that drafts are tried and
    the fit sees batches of several sizes; the measurements then take over."""

    def __init__(self, window: int = 256):
        self.window = window
        self.obs: list[tuple[int, float]] = []
        self.a, self.b = 1.0, 0.25
        self._unfitted = 0

    def observe(self, n: int, seconds: float) -> None:
        # called after every decode step: only record here; the fit (a numpy polyfit, about
        # 0.4 ms, 3% of a small model's step) is made when a draft length is chosen
        if n > 4 * MAX_DRAFT:   # prompt chunks cost differently (attention over many tokens)
            return
        self.obs.append((n, seconds))
        if len(self.obs) > 2 * self.window:
            del self.obs[: len(self.obs) - self.window]
        self._unfitted += 1

    def _fit(self) -> None:
        obs = self.obs[-self.window:]
        ns = np.array([o[0] for o in obs], dtype=float)
        ts = np.array([o[1] for o in obs], dtype=float)
        if len(obs) >= 8 and np.ptp(ns) > 0:
            b, a = np.polyfit(ns, ts, 1)
            self.a, self.b = max(a, 1e-6), max(b, 0.0)
        else:
            self.a = max(float(np.median(ts)) / (1 + 0.25 * float(np.median(ns))), 1e-6)
            self.b = 0.25 * self.a
        self._unfitted = 0

    def __call__(self, n: int) -> float:
        # early on every new step counts; later a refit every REFIT steps follows the machine
        if self._unfitted and (len(self.obs) < 4 * REFIT or self._unfitted >= REFIT):
            self._fit()
        return self.a + self.b * n


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def sampling_probs(logits: np.ndarray, temp: float, top_k: int, top_p: float, min_p: float) -> np.ndarray:
    """The distribution llama.cpp's chain (top-k, top-p, min-p, temperature, dist) samples from."""
    x = logits.astype(np.float64)
    keep = np.ones(x.shape[0], dtype=bool)
    if 0 < top_k < x.shape[0]:
        cut = np.partition(x, -top_k)[-top_k]
        keep &= x >= cut
    if top_p < 1.0:
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(-x[idx], kind="stable")]
        p = softmax(x[order])
        n = int(np.searchsorted(np.cumsum(p), top_p) + 1)
        keep[:] = False
        keep[order[:max(1, n)]] = True
    if min_p > 0.0:
        keep &= x >= x[keep].max() + np.log(min_p)
    out = np.zeros_like(x)
    out[keep] = softmax(x[keep] / temp)
    return out


def speculative_accept(p: np.ndarray, draft: int, rng: np.random.Generator) -> tuple[bool, int]:
    """The standard rule for a deterministic draft: keep it with probability p(draft); otherwise
    sample from p with the draft removed (the residual max(0, p - q), renormalised)."""
    if rng.random() < p[draft]:
        return True, draft
    residual = p.copy()
    residual[draft] = 0.0
    total = residual.sum()
    if total <= 0.0:
        return True, draft
    return False, int(rng.choice(residual.shape[0], p=residual / total))


def sample(p: np.ndarray, rng: np.random.Generator) -> int:
    return int(rng.choice(p.shape[0], p=p))
