"""The Engine interface that the GUI, the CLI, the HumanEval runner and `serve` use, and
`open_engine`, the one load pipeline (a model file -> the local worker, a URL -> a server).

    engine = await open_engine("model.gguf")            # or "http://host:8080/v1"
    gen = engine.generate(prompt, GenerateParams(max_tokens=64))
    async for text in gen: ...
    gen.stats          # GenerationStats once the stream ended (cached_tokens included)
    engine.capabilities  # infill, tokenize, chat template, context size, parallel slots
    await engine.close()

Implementations: `client.EngineClient` (llama.cpp in a worker process) and
`remote.RemoteEngine` (an OpenAI-compatible server, plus llama-server's own endpoints).
"""
from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.engine.protocol import GenerateParams


class EngineError(Exception):
    """A request could not be served; the message is one line for the user.
    `exit_code`: what the CLI exits with (2: the user's input is wrong, 1: a failure at run time)."""
    exit_code = 1


class EngineCrashed(EngineError):
    def __init__(self, message: str, returncode: int | None, log_tail: list[str]):
        super().__init__(message)
        self.returncode = returncode
        self.log_tail = log_tail


class ModelLoadError(EngineError):
    exit_code = 2


class BadSource(EngineError):
    """The model file or URL, key or model name given cannot work (exit 2)."""
    exit_code = 2


class PromptTooLong(EngineError):
    exit_code = 2


@dataclass
class ModelInfo:
    path: str                # the model file, or the server's URL (no user info, no query)
    name: str
    architecture: str
    layers: int
    context_length: int
    quantization: str
    file_size: int
    chat_template: str | None
    n_ctx: int = 0
    n_gpu_layers: int = 0
    n_threads: int = 0
    load_s: float = 0.0
    bos_token: str = ""
    eos_token: str = ""
    gpu_offload: bool = False
    n_seq: int = 1           # sequences the local engine decodes together (parallel slots)
    contexts: int = 1        # llama contexts the slots are spread over (P.Load.contexts)
    exact: bool = False      # loaded without weight repacking (P.Load.exact)
    infill: bool = False     # has fill-in-the-middle tokens (Code Llama 7B/13B do, the 34B models not)
    fim_tokens: dict = field(default_factory=dict)  # infill role -> token text (completion/fim.py)
    offload_note: str = ""   # why this many GPU layers
    remote: dict | None = None  # for a server: url, endpoints found, its claims about its model


@dataclass
class Capabilities:
    infill: bool
    tokenize: bool
    chat_template: str | None
    n_ctx: int
    parallel_slots: int
    # The engine lays out fill-in-the-middle itself from prefix, suffix and context chunks
    # (llama-server's /infill knows its model's FIM tokens; a server reports none to us).
    infill_endpoint: bool = False


@dataclass
class GenerationStats:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    ttft_s: float          # request sent -> first text arrived, seen by the caller
    tokens_per_s: float    # tokens after the first / time after the first
    total_s: float
    finish_reason: str
    draft_tokens: int = 0      # prompt-lookup decoding: tokens proposed ...
    accepted_tokens: int = 0   # ... and confirmed by the model
    in_flight: int = 1         # most sequences the engine decoded together during this one
    moved: int = 0             # times the local engine moved it to an idle context (P.Done.moved)

    @property
    def acceptance(self) -> float | None:
        return self.accepted_tokens / self.draft_tokens if self.draft_tokens else None


def cancelled_stats() -> GenerationStats:
    return GenerationStats(0, 0, 0, 0.0, 0.0, 0.0, "cancelled")


class _End:
    pass


@dataclass(eq=False)  # compared and hashed by identity: engines keep them in sets
class Generation:
    """One queued or running request: an async iterator of text chunks."""
    prompt: str
    params: GenerateParams
    id: int = 0
    stats: GenerationStats | None = None
    text: str = ""
    _queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    _cancel_requested: bool = False
    _client: "Engine | None" = None
    _task: asyncio.Task | None = None
    on_progress: Callable[[str, float], None] | None = None

    def __aiter__(self):
        return self

    async def __anext__(self) -> str:
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # iterating again ends again
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._queue.put_nowait(_End())
            raise item
        return item

    async def result(self) -> str:
        """Wait for the end and return the whole text (raises what the stream raised)."""
        async for _ in self:
            pass
        return self.text

    def cancel(self) -> None:
        if self._cancel_requested:
            return
        self._cancel_requested = True
        if self._client is not None:
            self._client._cancel(self)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    # for the engines: hand the consumer a chunk, an error, the end
    def _emit(self, text: str) -> None:
        self.text += text
        self._queue.put_nowait(text)

    def _fail(self, exc: BaseException) -> None:
        self._queue.put_nowait(exc)

    def _end(self) -> None:
        self._queue.put_nowait(_End())


class Engine(abc.ABC):
    """What every engine offers. `info` is None until a model is loaded (or a server connected)."""
    kind = "local"
    info: ModelInfo | None = None

    @abc.abstractmethod
    def generate(self, prompt: str, params: GenerateParams | None = None,
                 on_progress: Callable[[str, float], None] | None = None) -> Generation:
        """Queue one completion of `prompt` (already in the model's prompt format)."""

    def infill(self, prefix: str, suffix: str, *, extra: list[dict] = (), prompt: str = "",
               params: GenerateParams | None = None) -> Generation:
        """Fill in the middle, the engine laying out the prompt (only where
        `capabilities.infill_endpoint`). `extra`: [{"filename", "text"}] context chunks;
        `prompt`: the cursor's line before the cursor, kept apart from `prefix`."""
        raise EngineError("this engine takes only finished prompts (no infill endpoint)")

    @abc.abstractmethod
    def cancel(self, *, queued: bool = False) -> None:
        """Stop the running generation(s) (and, with queued=True, drop those waiting)."""

    @abc.abstractmethod
    def _cancel(self, gen: Generation) -> None:
        """Stop this one generation (Generation.cancel calls it)."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    def kill(self) -> None:
        """Stop at once, without waiting (the window is closing): the local engine kills its
        worker; a remote one drops its streams, which makes the server stop generating."""
        self.cancel(queued=True)

    def chat(self, messages: list[dict], params: GenerateParams | None = None) -> Generation:
        """One chat turn in the model's own chat format (rendered here from its template)."""
        from app.engine import prompts

        info = self.info
        if info is None:
            raise EngineError("no model is loaded")
        if not info.chat_template:
            raise BadSource("this model has no chat template")
        p = prompts.render_messages(messages, info.chat_template, info.bos_token, info.eos_token)
        params = params or GenerateParams()
        params.stop = list(params.stop) + p.stop
        return self.generate(p.text, params)

    def record(self) -> dict:
        """What a results file says about the model (never a key; a URL without user info)."""
        info = self.info
        if info is None:
            return {}
        if info.remote is not None:
            return {"engine": "remote", "url": info.path, "name": info.name, "n_ctx": info.n_ctx,
                    "server_claims": info.remote.get("claims", {}),
                    "server_claims_note": "reported by the server; not verifiable from here"}
        return {"engine": "local", "path": info.path, "name": info.name, "file": Path(info.path).name,
                "quantization": info.quantization, "file_size": info.file_size,
                "n_ctx": info.n_ctx, "n_gpu_layers": info.n_gpu_layers, "weight_repacking": not info.exact,
                "contexts": info.contexts}

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


def is_url(source: str) -> bool:
    return "://" in str(source)


async def open_engine(source: str | Path, *, n_ctx: int = 4096, gpu_layers: str | int = "auto",
                      threads: int | None = None, api_model: str | None = None,
                      api_key: str | None = None, ca_bundle: str | None = None,
                      into: Engine | None = None, remote: bool | None = None,
                      progress: Callable[[str, float], None] | None = None,
                      parallel: int = 1, exact: bool = False, contexts: int | None = None) -> Engine:
    """Open a model file in the local worker (`into`: an EngineClient to load it into) or
    connect to a server (`remote`: the source is a URL; None: decide from its look).
    `contexts`: llama contexts the `parallel` slots are spread over (None: for an exact load,
    what the parallel probe measured best for this file, backend and count, which it measures
    as the self-test loads; else 1: an editor's load keeps one prompt cache for all its slots).
    Raises EngineError (BadSource for what the user must fix)."""
    if remote or (remote is None and is_url(str(source))):
        from app.engine.remote import RemoteEngine

        engine = RemoteEngine(str(source), api_model=api_model, api_key=api_key, ca_bundle=ca_bundle)
        try:
            await engine.connect()
        except BaseException:
            await engine.close()
            raise
        return engine

    from app.engine import hardware
    from app.engine.client import EngineClient
    from app.models import gguf_file

    if n_ctx <= 0:
        raise BadSource("the context size must be positive")
    try:
        file_info = await asyncio.to_thread(gguf_file.inspect, source)
    except gguf_file.GGUFError as exc:
        raise BadSource(str(exc)) from None
    # free memory now, once, off the caller's thread (the GUI's): nvidia-smi may take seconds
    hw = await asyncio.to_thread(hardware.detect)
    try:
        # (each of the `parallel` slots holds a context of its own: n_seq x n_ctx of KV cache)
        hardware.check_context_here(file_info, n_ctx * max(1, parallel), hw)
    except hardware.ContextTooLarge as exc:
        raise BadSource(f"context {n_ctx}: {exc}") from None
    n_gpu, why = hardware.resolve_gpu_layers(gpu_layers, file_info, n_ctx * max(1, parallel), hw)
    if contexts is None:
        from app.engine import parallel_probe

        contexts = 1 if parallel <= 1 or n_gpu or not exact else await asyncio.to_thread(
            parallel_probe.cached_contexts, source, hardware.detect_backend(), parallel)
    engine = into if into is not None else EngineClient()
    try:
        info = await engine.load(source, n_ctx=n_ctx, n_gpu_layers=n_gpu,
                                 n_threads=hardware.bound_threads(threads, hw), progress=progress,
                                 n_seq=max(1, parallel), exact=exact, contexts=contexts)
    except BaseException:
        if into is None:
            await engine.close()
        raise
    info.offload_note = why
    return engine
