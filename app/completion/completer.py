"""One suggestion at the cursor, from the text to what the editor shows.

    completer = Completer(engine, FimTokens.from_dict(info.fim_tokens))
    # no FIM tokens known, but the engine lays out infill itself (llama-server's /infill):
    # the prompt's parts go to engine.infill instead (completer.server_infill)
    spot = completer.spot(text, pos, "a.py")
    shown = completer.cached(spot)            # type-through / cache: no request
    result = await completer.complete(spot)   # the engine; stops at the block's end

The editor's controller, `llamadesk complete --fim` and the latency benchmark share it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.completion import fim, trim
from app.completion.cache import SuggestionCache
from app.completion.ring import Ring
from app.completion.stats import CompletionStats
from app.engine.protocol import GenerateParams

ALIGN_LINES = 32  # the prefix window starts on a multiple of this: Enter does not shift it


@dataclass
class Spot:
    """The cursor's surroundings, and the prompt for them."""
    prefix: str          # local window before the cursor
    suffix: str          # the rest of the cursor's line and a few lines after it
    cursor_line: str     # the cursor's line up to the cursor
    line_suffix: str     # the cursor's line after the cursor
    next_lines: list[str]
    prompt: fim.FimPrompt
    filename: str = ""


@dataclass
class Result:
    shown: str                  # "" shows nothing
    raw: str
    source: str                 # engine, cache
    latency_s: float
    cancelled: bool = False
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    stats: object = None
    extra: dict = field(default_factory=dict)


def local_window(text: str, pos: int, n_prefix: int, n_suffix: int):
    before, after = text[:pos], text[pos:]
    lines_before = before.split("\n")
    first = max(0, len(lines_before) - 1 - n_prefix)
    first -= first % ALIGN_LINES
    prefix = "\n".join(lines_before[first:])
    after_lines = after.split("\n")
    line_suffix = after_lines[0]
    next_lines = after_lines[1:1 + n_suffix]
    suffix = "\n".join([line_suffix, *next_lines])
    return prefix, suffix, lines_before[-1], line_suffix, next_lines


class Completer:
    def __init__(self, engine, tokens: fim.FimTokens | None = None, *, ring: Ring | None = None,
                 cache: SuggestionCache | None = None, stats: CompletionStats | None = None,
                 max_lines: int = 8, max_tokens: int = 96, n_prefix: int = 128,
                 n_suffix: int = 8):
        self.engine = engine
        self.tokens = tokens or fim.FimTokens()
        self.ring = ring if ring is not None else Ring()
        self.cache = cache if cache is not None else SuggestionCache()
        self.stats = stats if stats is not None else CompletionStats()
        self.max_lines = max_lines
        self.max_tokens = max_tokens
        self.n_prefix = n_prefix
        self.n_suffix = n_suffix

    @property
    def server_infill(self) -> bool:
        """Our own FIM layout when the model's tokens are known, else the engine's where it has
        one; otherwise prefix-only."""
        return not self.tokens.infill and self.engine.capabilities.infill_endpoint

    def spot(self, text: str, pos: int, filename: str = "") -> Spot:
        prefix, suffix, cursor_line, line_suffix, next_lines = local_window(
            text, pos, self.n_prefix, self.n_suffix)
        context = self.ring.context(exclude_text=prefix + suffix)
        if self.server_infill:
            prompt = fim.for_server(prefix, cursor_line, suffix, context)
        else:
            prompt = fim.build(self.tokens, prefix, suffix if self.tokens.infill else "", context,
                               filename)
        return Spot(prefix, suffix, cursor_line, line_suffix, next_lines, prompt, filename)

    def cached(self, spot: Spot) -> str | None:
        hit = self.cache.get(spot.prefix, spot.suffix)
        if hit is None:
            return None
        return trim.finalize(hit, spot.cursor_line, spot.line_suffix, spot.next_lines,
                             self.max_lines)

    def params(self, spot: Spot) -> GenerateParams:
        stop = list(spot.prompt.stop)
        if spot.line_suffix.strip():
            stop.append("\n")  # inside a line: finish the line only
        return GenerateParams(max_tokens=self.max_tokens, temperature=0.0, stop=stop)

    def warm(self, spot: Spot):
        """Have the engine read this spot's prompt (one token, never shown): the cursor moved
        here, and the first keystroke should find the prompt cached."""
        params = self.params(spot)
        params.max_tokens = 1
        return self._send(spot, params)

    def start(self, spot: Spot):
        """Send the request; returns the engine's Generation (cancel() it to drop it)."""
        return self._send(spot, self.params(spot))

    def _send(self, spot: Spot, params: GenerateParams):
        if spot.prompt.server is not None:
            return self.engine.infill(**spot.prompt.server, params=params)
        return self.engine.generate(spot.prompt.text, params)

    async def finish(self, spot: Spot, gen, t0: float | None = None, on_text=None) -> Result:
        """Read the stream, showing what is known so far (`on_text`), stop it where the block
        ends, and trim what it says. A request cancelled by its caller shows nothing."""
        t0 = time.perf_counter() if t0 is None else t0
        raw, shown, first_paint, block_done = "", "", None, False
        async for chunk in gen:
            if gen._cancel_requested:
                break  # cancelled by the caller: its text must never be shown
            raw += chunk
            partial = trim.finalize(raw, spot.cursor_line, spot.line_suffix, spot.next_lines,
                                    self.max_lines)
            if partial != shown:
                shown = partial
                if first_paint is None and shown:
                    first_paint = time.perf_counter() - t0
                if on_text:
                    on_text(shown)
            if not spot.line_suffix.strip() and trim.block_ended(raw, spot.cursor_line,
                                                                 self.max_lines):
                block_done = True
                gen.cancel()  # the rest would be cut anyway: free the engine
                break
        cancelled = gen._cancel_requested and not block_done
        async for _ in gen:  # after a cancel: wait for the engine's figures
            pass
        st = gen.stats
        end = time.perf_counter() - t0
        res = Result("" if cancelled else shown, raw, "engine",
                     first_paint if first_paint is not None else end, cancelled=cancelled,
                     stats=st)
        res.extra["total_s"] = end
        if st is not None:
            res.prompt_tokens, res.cached_tokens = st.prompt_tokens, st.cached_tokens
            res.completion_tokens = st.completion_tokens
        return res

    async def complete(self, spot: Spot) -> Result:
        """Cache first, else one engine request; the result goes into the cache."""
        t0 = time.perf_counter()
        hit = self.cached(spot)
        if hit is not None:
            self.stats.cache_hits += 1
            return Result(hit, hit, "cache", time.perf_counter() - t0)
        self.stats.requests += 1
        res = await self.finish(spot, self.start(spot), t0)
        if not res.cancelled:
            self.remember(spot, res.shown)
            self.stats.request_done(res.latency_s)
        return res

    def remember(self, spot: Spot, shown: str) -> None:
        self.cache.put(spot.prefix, spot.suffix, shown)
