"""Project context as llama.vim gathers it: a ring of chunks from files the user opened, saved
or copied from. New chunks wait in a queue and enter the ring one at a time when the user
pauses, so the start of the prompt (and the engine's cache of it) changes rarely."""
from __future__ import annotations

import re
from collections import deque

from app.completion.fim import Chunk

_WORD = re.compile(r"\W+")
SIMILAR = 0.9       # chunks this alike count as one: the newer replaces the older
MIN_LINES = 3       # a chunk shorter than this says too little to be worth its tokens
CHARS_PER_TOKEN = 3.5


def similarity(a: str, b: str) -> float:
    """Share of words in common (llama.vim's measure): 0 unrelated, 1 the same words."""
    ta = [w for w in _WORD.split(a) if w]
    tb = [w for w in _WORD.split(b) if w]
    if not ta and not tb:
        return 1.0
    seen = set(ta)
    common = sum(1 for w in tb if w in seen)
    return 2.0 * common / (len(ta) + len(tb))


class Ring:
    def __init__(self, n_chunks: int = 16, chunk_lines: int = 64, budget_tokens: int = 1024):
        self.n_chunks = n_chunks
        self.chunk_lines = chunk_lines
        self.budget_tokens = budget_tokens
        self.chunks: list[Chunk] = []
        self.queued: deque[Chunk] = deque(maxlen=16)
        self.evicted = 0

    def pick(self, text: str, filename: str, around_line: int | None = None) -> bool:
        """Queue a chunk of `text`: the lines around `around_line`, or all of a short text.
        Returns False for a chunk too small or already held."""
        if self.n_chunks <= 0:
            return False
        lines = text.split("\n")
        if len(lines) > self.chunk_lines:
            centre = len(lines) // 2 if around_line is None else around_line
            start = max(0, min(centre - self.chunk_lines // 2, len(lines) - self.chunk_lines))
            lines = lines[start:start + self.chunk_lines]
        if sum(1 for l in lines if l.strip()) < MIN_LINES:
            return False
        body = "\n".join(lines).rstrip("\n") + "\n"
        if any(c.text == body for c in (*self.chunks, *self.queued)):
            return False
        for held in (self.queued, self.chunks):
            for c in list(held):
                if similarity(c.text, body) > SIMILAR:
                    held.remove(c)
                    self.evicted += 1
        self.queued.append(Chunk(filename, body))
        return True

    def update(self) -> bool:
        """Move one queued chunk into the ring (call when the user pauses). True if it changed."""
        if not self.queued:
            return False
        if len(self.chunks) >= self.n_chunks:
            self.chunks.pop(0)
        self.chunks.append(self.queued.popleft())
        return True

    def flush(self) -> None:
        while self.update():
            pass

    def context(self, exclude_text: str = "") -> list[Chunk]:
        """The chunks for a prompt, oldest first, within the token budget; chunks that the
        local window already shows (`exclude_text`) are left out."""
        out, used = [], 0
        for c in reversed(self.chunks):
            cost = len(c.text) / CHARS_PER_TOKEN
            if used + cost > self.budget_tokens:
                break
            if exclude_text and c.text.strip() and c.text.strip() in exclude_text:
                continue
            out.append(c)
            used += cost
        return out[::-1]
