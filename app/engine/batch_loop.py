"""Continuous batching over one llama.cpp context: N sequences decoded together, step by step.

Each slot is one sequence id of a context made with `n_seq_max = N` and a KV stream per
sequence (`kv_unified = False`), so every slot holds a full `n_ctx` of its own and the cells
of one sequence never depend on what the others did. A step decodes one `llama_batch` with
the next token of every generating sequence (plus its prompt-lookup draft), asking for logits
only where a token is sampled or a draft checked, and samples per sequence with that
sequence's own settings and seed; then the next chunk of each prompt being read, in a call of
its own. Cancel, stops and max tokens are checked per sequence between steps, so a cancelled
sequence stops within one step and the others go on; a new request takes a free slot at the
next step (as llama-server does).
"""
from __future__ import annotations

import codecs
import collections
import ctypes
import time
from dataclasses import dataclass, field

import numpy as np

from app.engine import lookup as LK
from app.engine import protocol as P
from app.engine.stops import StopMatcher

MIN_REUSE = 64        # tokens of shared prefix worth keeping in the KV cache
PENALTY_LAST_N = 64   # what Llama.generate passes (its last_n_tokens_size)
# prompt tokens a call while another sequence generates (it waits for each such call); a
# multiple of 8, so that the pieces round as the whole call does on a CPU (llama.cpp groups
# 4 and 8 tokens); on a GPU they may not, and cost prompt speed there
SHARED_PROMPT_CALL = 128
MIN_WIDE = 8            # llama.cpp's CPU kernels change at 4 and at 8 tokens a call (README)


class RequestError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Slot:
    id: int
    tokens: list[int] = field(default_factory=list)   # exactly what its KV stream holds
    seq: "Sequence | None" = None
    last_used: int = 0
    # tokens[:full_chunks] went in as whole n_batch prompt calls from an n_batch boundary, as
    # a fresh read of any longer prompt puts them (an exact load reuses no more than these)
    full_chunks: int = 0


@dataclass
class Sequence:
    req: P.Generate
    prompt: list[int]
    t0: float
    max_tokens: int = 0
    slot: Slot | None = None
    cached: int = 0
    n_eval: int = 0                 # prompt tokens in the KV so far
    pending: int | None = None      # last sampled token, not yet in the KV
    history: list[int] = field(default_factory=list)
    n_out: int = 0
    t_first: float | None = None
    chain: object = None            # llama_sampler chain (sampling, or greedy with penalties)
    rng: np.random.Generator | None = None
    lookup: LK.PromptLookup | None = None
    draft: list[int] = field(default_factory=list)
    drafted: int = 0
    accepted: int = 0
    steps: int = 0
    in_flight: int = 1
    moved: int = 0
    stops: StopMatcher | None = None
    decoder: object = None
    # where this step's logits are in the batch
    first_logit: int = -1

    @property
    def id(self) -> int:
        return self.req.id

    @property
    def params(self) -> P.GenerateParams:
        return self.req.params


class BatchLoop:
    def __init__(self, llm, n_seq: int, n_ctx_seq: int, n_batch: int, send, is_cancelled, forget,
                 max_step: int = 0, exact: bool = False, ctx=None):
        import llama_cpp as L

        self.L = L
        self.llm = llm
        self.ctx = ctx if ctx is not None else llm._ctx.ctx   # another context of the same model
        self.n_threads: int = L.llama_n_threads(self.ctx)   # context_runner.set_threads changes it
        self.decode_call = lambda ctx, batch, n_threads: L.llama_decode(ctx, batch)   # see Worker.decode
        self.mem = L.llama_get_memory(self.ctx)
        self.vocab = llm._model.vocab
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.n_ctx = n_ctx_seq
        self.n_batch = n_batch
        # tokens per generation call (0: n_batch); see worker.EXACT_CPU_STEP
        self.max_step = max_step or n_batch
        self.exact = exact
        self.send, self.is_cancelled, self.forget = send, is_cancelled, forget
        self.batch = L.llama_batch_init(n_batch, 0, 1)
        self.slots = [Slot(i) for i in range(n_seq)]
        self.waiting: collections.deque[Sequence] = collections.deque()
        self.adopted: collections.deque[Moved] = collections.deque()   # from another context
        self.clock = 0
        self.total_tokens = 0
        self.cost = LK.DecodeCost()
        # generation calls by width: [calls, seconds] (what batching buys on this machine)
        self.widths: dict[int, list] = collections.defaultdict(lambda: [0, 0.0])

    def close(self) -> None:
        for seq in self.active + list(self.waiting) + [m.seq for m in self.adopted]:
            self._free_sampler(seq)
        self.waiting.clear()
        self.adopted.clear()
        if self.batch is not None:
            self.L.llama_batch_free(self.batch)
            self.batch = None

    # --- admission -------------------------------------------------------------------------
    @property
    def active(self) -> list[Sequence]:
        return [s.seq for s in self.slots if s.seq is not None]

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.adopted) or any(s.seq is not None for s in self.slots)

    @property
    def reading_prompt(self) -> bool:
        """The next step reads prompt tokens (a request waits, or its prompt is not all in yet)."""
        return bool(self.waiting) or any(s.seq is not None and s.seq.pending is None for s in self.slots)

    def tokenize(self, req: P.Generate) -> list[int]:
        return self.llm.tokenize(req.prompt.encode("utf-8"), add_bos=True, special=True)

    def cached_prefix(self, tokens: list[int]) -> int:
        """The longest start of `tokens` that one of the slots holds (another thread may be
        stepping this loop: a slot's list only grows or shrinks at its end, so this is a guess)."""
        return max((_common_prefix(list(s.tokens), tokens) for s in self.slots), default=0)

    def submit_or_fail(self, req: P.Generate, tokens: list[int] | None = None) -> None:
        """submit, or end the request with its error (a prompt too long, an empty one)."""
        try:
            self.submit(req, tokens)
        except RequestError as exc:
            self.forget(req.id)
            self.send(P.Error(exc.kind, str(exc), req.id))

    def submit(self, req: P.Generate, tokens: list[int] | None = None) -> None:
        if tokens is None:
            tokens = self.tokenize(req)
        if not tokens:
            raise RequestError("bad_request", "the prompt is empty")
        room = self.n_ctx - len(tokens)
        if room <= 0:
            raise RequestError("context_overflow", f"the prompt has {len(tokens)} tokens; the context "
                               f"holds {self.n_ctx}")
        p = req.params
        seq = Sequence(req, tokens, time.perf_counter())
        seq.max_tokens = room if p.max_tokens is None or p.max_tokens <= 0 else min(p.max_tokens, room)
        self.waiting.append(seq)

    # --- moving a generating sequence to another context of the same model -------------------
    def can_detach(self) -> bool:
        return not (self.waiting or self.adopted) and sum(s.pending is not None for s in self.active) >= 2

    def detach_one(self) -> "Moved | None":
        """One of this loop's generating sequences with its KV cells, taken out for an idle
        context (context_runner.py): two sequences in one context cost nearly twice one on a CPU,
        two contexts side by side do not. None unless two or more generate and none waits."""
        L = self.L
        if not self.can_detach():
            return None
        generating = [s for s in self.active if s.pending is not None]
        seq = max(generating, key=lambda s: s.max_tokens - s.n_out)
        slot = seq.slot
        size = L.llama_state_seq_get_size(self.ctx, slot.id)
        buf = (ctypes.c_uint8 * size)()
        written = L.llama_state_seq_get_data(self.ctx, buf, size, slot.id)
        if written <= 0:
            return None
        slot.seq, seq.slot = None, None   # its cells stay here as a cache, as a finished request's do
        seq.moved += 1
        return Moved(seq, ctypes.string_at(buf, written), list(slot.tokens), slot.full_chunks)

    def adopt(self, moved: "Moved") -> None:
        self.adopted.append(moved)

    def _place_adopted(self) -> None:
        L = self.L
        while self.adopted:
            free = [s for s in self.slots if s.seq is None]
            if not free:
                return
            moved = self.adopted.popleft()
            slot = min(free, key=lambda s: (bool(s.tokens), s.last_used))
            L.llama_memory_seq_rm(self.mem, slot.id, -1, -1)
            data = (ctypes.c_uint8 * len(moved.state)).from_buffer_copy(moved.state)
            if L.llama_state_seq_set_data(self.ctx, data, len(data), slot.id) == 0:
                slot.tokens.clear()
                self._free_sampler(moved.seq)
                self.forget(moved.seq.id)
                self.send(P.Error("internal", "could not move the request's cache to another context",
                                  moved.seq.id))
                continue
            self.clock += 1
            slot.tokens, slot.full_chunks, slot.last_used = moved.tokens, moved.full_chunks, self.clock
            slot.seq, moved.seq.slot = moved.seq, slot

    def _admit(self) -> None:
        self._place_adopted()
        while self.waiting:
            free = [s for s in self.slots if s.seq is None]
            if not free:
                return
            seq = self.waiting.popleft()
            self._place(seq, free)

    def _place(self, seq: Sequence, free: list[Slot]) -> None:
        L, p = self.L, seq.params
        want = seq.prompt[:-1]
        best = max(free, key=lambda s: (_common_prefix(s.tokens, want), -s.last_used))
        cached = _common_prefix(best.tokens, want)
        if self.exact:
            # Reuse only cells made by the calls a fresh read makes (full_chunks is a multiple
            # of n_batch here, so the rest is read in those calls too): a call's width picks
            # llama.cpp's kernel, and the kernels round differently (a prompt's short last
            # call, generated tokens one a call).
            cached = min(cached, best.full_chunks)
        if cached < MIN_REUSE:
            # A short shared prefix saves nothing, and llama.cpp's results depend on where the
            # new tokens land in the cache: start this slot's stream clean so that unrelated
            # requests give exactly what a fresh process gives.
            best = min(free, key=lambda s: (bool(s.tokens), s.last_used))
            cached = 0
        if cached == 0 or not L.llama_memory_seq_rm(self.mem, best.id, cached, -1):
            L.llama_memory_seq_rm(self.mem, best.id, -1, -1)
            cached = 0
        del best.tokens[cached:]
        best.full_chunks = cached + (len(seq.prompt) - cached) // self.n_batch * self.n_batch
        self.clock += 1
        best.last_used = self.clock
        best.seq = seq
        seq.slot, seq.cached, seq.n_eval = best, cached, cached
        seq.history = list(seq.prompt)
        seq.stops = StopMatcher(p.stop)
        seq.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        greedy = p.temperature <= 0
        if not greedy or p.repeat_penalty != 1.0:
            seq.chain = self._make_chain(p, greedy)
        use_lookup = LK.wants_lookup(p.purpose, seq.req.prompt, p.lookup) and p.repeat_penalty == 1.0
        if use_lookup:
            seq.lookup = LK.PromptLookup(seq.prompt)
            if not greedy:
                seq.rng = np.random.default_rng(p.seed)

    def _make_chain(self, p: P.GenerateParams, greedy: bool):
        L = self.L
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if p.repeat_penalty != 1.0:
            # Same arguments as Llama._init_sampler, so a sequence samples what Llama.generate would.
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_penalties(
                self.n_vocab, PENALTY_LAST_N, p.repeat_penalty, 0.0, 0.0))
        if greedy:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
        else:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_k(p.top_k))
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(p.top_p, 1))
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_min_p(p.min_p, 1))
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(p.temperature))
            seed = L.LLAMA_DEFAULT_SEED if p.seed is None else p.seed & 0xFFFFFFFF
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed))
        return chain

    def _free_sampler(self, seq: Sequence) -> None:
        if seq.chain is not None:
            self.L.llama_sampler_free(seq.chain)
            seq.chain = None

    # --- one step --------------------------------------------------------------------------
    def step(self) -> None:
        for seq in list(self.waiting):
            if self.is_cancelled(seq.id):
                self.waiting.remove(seq)
                self._finish(seq, "cancelled")
        for moved in list(self.adopted):
            if self.is_cancelled(moved.seq.id):
                self.adopted.remove(moved)
                self._finish(moved.seq, "cancelled")
        for seq in self.active:
            if self.is_cancelled(seq.id):
                self._finish(seq, "cancelled")
        self._admit()
        running = self.active
        if not running:
            return
        generating = [s for s in running if s.pending is not None]
        for seq in generating:   # a prompt being read is decoded in a call of its own (below)
            seq.in_flight = max(seq.in_flight, len(generating))
        for group in self._groups(generating):
            n = self._fill_generating(group)
            t = time.perf_counter()
            self._decode(n)
            for seq in group:
                self._after_decode(seq)
            # Timed up to here: a GPU decode returns early, reading the logits waits for it.
            dt = time.perf_counter() - t
            self.cost.observe(n, dt)
            tally = self.widths[n]
            tally[0] += 1
            tally[1] += dt
        # Each prompt in a call of its own, cut inside the calls it makes alone: llama.cpp's CPU
        # kernels for wide batches (repacked weights: 4 tokens or more) round differently, so
        # a prompt read beside other sequences' tokens (or a token decoded beside a prompt)
        # would not give what that request gives alone.
        for seq in running:
            if seq.pending is None and seq.slot.seq is seq:   # not finished above
                self._decode(self._fill_prompt(seq, shared=bool(generating)))
                if seq.first_logit >= 0:
                    self._after_decode(seq)

    def _decode(self, n: int) -> None:
        self.batch.n_tokens = n
        rc = self.decode_call(self.ctx, self.batch, self.n_threads)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with status {rc}")

    def _groups(self, generating: list[Sequence]) -> list[list[Sequence]]:
        """The generating sequences in calls of at most max_step tokens, as even as can be."""
        if not generating:
            return []
        k = -(-len(generating) // self.max_step)
        size = -(-len(generating) // k)
        return [generating[i:i + size] for i in range(0, len(generating), size)]

    def _fill_generating(self, generating: list[Sequence]) -> int:
        """The next token of every generating sequence, each followed by its lookup draft."""
        n = 0
        spare = self.max_step - len(generating)   # room for drafts
        for seq in generating:
            kv = len(seq.slot.tokens)
            seq.draft = []
            if seq.lookup is not None:
                limit = min(seq.max_tokens - seq.n_out - 1, self.n_ctx - kv - 2, spare)
                k = seq.lookup.best_length(self.cost, len(generating) - 1, limit)
                seq.draft = seq.lookup.draft(seq.history, k)
                spare -= len(seq.draft)
            seq.first_logit = n
            for i, tok in enumerate([seq.pending, *seq.draft]):
                self._put(n, tok, kv + i, seq.slot.id, True)
                n += 1
        return n

    def _fill_prompt(self, seq: Sequence, shared: bool = False) -> int:
        """The next call of a prompt (logits only after its last token)."""
        start = seq.n_eval
        end = self._prompt_call_end(seq, shared)
        for n, i in enumerate(range(start, end)):
            self._put(n, seq.prompt[i], i, seq.slot.id, i == len(seq.prompt) - 1)
        seq.slot.tokens.extend(seq.prompt[start:end])
        seq.n_eval = end
        seq.first_logit = end - 1 - start if end == len(seq.prompt) else -1
        if end < len(seq.prompt):
            self.send(P.Progress("prompt", round(end / len(seq.prompt), 3), seq.id))
        return end - start

    def _prompt_call_end(self, seq: Sequence, shared: bool) -> int:
        """Where the call that reading the prompt alone makes ends (n_batch tokens from where the
        cache left off), or, while another sequence generates, SHARED_PROMPT_CALL tokens on: that
        one gets a token every 128 prompt tokens instead of every n_batch (512: seconds on a CPU).
        The pieces stay inside the call alone makes and none is narrower than MIN_WIDE where it is
        not, so the prompt reads to the same logits (an exact load keeps the calls as they are)."""
        start, length = seq.n_eval, len(seq.prompt)
        end = min(length, seq.cached + ((start - seq.cached) // self.n_batch + 1) * self.n_batch)
        if not shared or self.exact:
            return end
        piece = start + SHARED_PROMPT_CALL
        return piece if end - piece >= MIN_WIDE else end

    def _put(self, i: int, tok: int, pos: int, seq_id: int, logits: bool) -> None:
        b = self.batch
        b.token[i] = tok
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq_id
        b.logits[i] = logits

    def _logits(self, i: int) -> np.ndarray:
        return np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,))

    def _after_decode(self, seq: Sequence) -> None:
        i0 = seq.first_logit
        seq.first_logit = -1
        if seq.pending is None:  # the prompt just ended: its last logits give the first token
            self.send(P.Progress("prompt", 1.0, seq.id))
            seq.t_first = time.perf_counter()
            self._emit(seq, [self._sample(seq, i0)])
            return
        seq.steps += 1
        seq.slot.tokens.append(seq.pending)
        draft = seq.draft
        if not draft:
            tok = self._sample(seq, i0)
            if seq.lookup is not None:
                seq.lookup.observe(tok)
            self._emit(seq, [tok])
            return
        new: list[int] = []
        if seq.rng is None:  # greedy: keep the drafts the model's own argmax agrees with
            for j, d in enumerate(draft):
                best = int(np.argmax(self._logits(i0 + j)))
                new.append(best)
                if best != d:
                    break
            else:
                new.append(int(np.argmax(self._logits(i0 + len(draft)))))
        else:
            p = seq.params
            for j, d in enumerate(draft):
                probs = LK.sampling_probs(self._logits(i0 + j), p.temperature, p.top_k, p.top_p, p.min_p)
                ok, tok = LK.speculative_accept(probs, d, seq.rng)
                new.append(tok)
                if not ok:
                    break
            else:
                probs = LK.sampling_probs(self._logits(i0 + len(draft)), p.temperature, p.top_k,
                                          p.top_p, p.min_p)
                new.append(LK.sample(probs, seq.rng))
        accepted = len(new) - 1
        seq.drafted += len(draft)
        seq.accepted += accepted
        seq.lookup.update(len(draft), accepted)
        seq.slot.tokens.extend(draft[:accepted])
        if accepted < len(draft):
            self.L.llama_memory_seq_rm(self.mem, seq.slot.id, len(seq.slot.tokens), -1)
        self._emit(seq, new)

    def _sample(self, seq: Sequence, i: int) -> int:
        if seq.chain is not None:
            return self.L.llama_sampler_sample(seq.chain, self.ctx, i)
        if seq.rng is not None:
            p = seq.params
            return LK.sample(LK.sampling_probs(self._logits(i), p.temperature, p.top_k, p.top_p,
                                               p.min_p), seq.rng)
        return int(np.argmax(self._logits(i)))

    def _emit(self, seq: Sequence, tokens: list[int]) -> None:
        """Stream the new tokens; finish at end-of-generation, a stop string or max tokens."""
        text, reason = "", None
        for tok in tokens:
            if self.L.llama_vocab_is_eog(self.vocab, tok):
                reason = "stop"
                break
            seq.n_out += 1
            self.total_tokens += 1
            seq.history.append(tok)
            piece, hit = seq.stops.feed(seq.decoder.decode(self.llm.detokenize([tok])))
            text += piece
            if hit:
                reason = "stop"
                break
            if seq.n_out >= seq.max_tokens:
                reason = "length"
                break
        seq.pending = tokens[-1] if reason is None else None
        if text:
            self.send(P.Chunk(seq.id, text))
        if reason is not None:
            self._finish(seq, reason)

    def _finish(self, seq: Sequence, reason: str) -> None:
        if seq.stops is not None and (reason != "stop" or not seq.stops.hit):
            tail = seq.stops.flush(seq.decoder.decode(b"", final=True))
            if tail:
                self.send(P.Chunk(seq.id, tail))
        if seq.slot is not None:
            seq.slot.seq = None
        self._free_sampler(seq)
        self.forget(seq.id)
        now = time.perf_counter()
        self.send(P.Done(seq.id, reason, len(seq.prompt), seq.cached, seq.n_out,
                         prompt_s=(seq.t_first or now) - seq.t0,
                         generation_s=now - seq.t_first if seq.t_first else 0.0,
                         draft_tokens=seq.drafted, accepted_tokens=seq.accepted,
                         decode_steps=seq.steps, in_flight=seq.in_flight, moved=seq.moved))

    def abort_all(self, kind: str, message: str) -> None:
        """The context is unusable (decode failed) or going away: fail every request, start clean."""
        for seq in self.active + list(self.waiting) + [m.seq for m in self.adopted]:
            if seq.slot is not None:
                seq.slot.seq = None
            self._free_sampler(seq)
            self.forget(seq.id)
            self.send(P.Error(kind, message, seq.id))
        self.waiting.clear()
        self.adopted.clear()
        for slot in self.slots:
            slot.tokens.clear()
        if self.mem is not None:
            self.L.llama_memory_clear(self.mem, False)


@dataclass
class Moved:
    seq: Sequence
    state: bytes            # llama_state_seq_get_data of its slot
    tokens: list[int]       # what those cells hold
    full_chunks: int
    model: int = 0          # which load of the worker it belongs to (worker.loads)


def _common_prefix(cached, tokens) -> int:
    n = 0
    for a, b in zip(cached, tokens):
        if a != b:
            break
        n += 1
    return n
