"""EngineClient: the app's only door to the model, for asyncio code (CLI, GUI via qasync, bench).

    client = EngineClient()
    info = await client.load(path, n_ctx=4096, n_gpu_layers=0)
    gen = client.generate(prompt, GenerateParams(max_tokens=64))
    async for text in gen: ...
    gen.stats  # GenerationStats once the stream ended

Each `generate()` call is sent at once, in call order, by a task of its own; the worker decodes
as many together as it has sequence slots (`load(n_seq=...)`) and queues the rest, and events
come back routed by request id, so a consumer that stops reading never blocks the others. If the
worker dies, the running requests fail with EngineCrashed and the next one starts a new worker
and reloads.
"""
from __future__ import annotations

import asyncio
import collections
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.engine import protocol as P
from app.engine.base import (  # noqa: F401  (re-exported: the errors' old home)
    Capabilities, Engine, EngineCrashed, EngineError, Generation, GenerationStats, ModelInfo,
    ModelLoadError, PromptTooLong, cancelled_stats)
from app.engine.base import _End
from app.engine.protocol import GenerateParams
from app.interpreter import module_command
from app.models import gguf_file

WORKER_MODULE = "app.engine.worker"
START_TIMEOUT_S = 120.0


class EngineClient(Engine):
    """The local Engine: llama.cpp in a worker process, n_seq requests decoded together."""
    kind = "local"

    def __init__(self, cancel_grace_s: float = 10.0, log_lines: int = 200,
                 on_state: Callable[[str, str], None] | None = None):
        self.cancel_grace_s = cancel_grace_s
        self.on_state = on_state
        self.state = "stopped"
        self.info: ModelInfo | None = None
        self.worker_pid: int | None = None
        self.llama_cpp_version = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._events: asyncio.Queue | None = None
        self._io_tasks: list[asyncio.Task] = []
        self._log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self._lock = asyncio.Lock()
        self._load_req: P.Load | None = None
        self._gguf: gguf_file.GGUFInfo | None = None
        self._next_id = 1
        self._active: list[Generation] = []
        self._pending: list[Generation] = []
        self._streams: dict[int, asyncio.Queue] = {}

    # --- state -----------------------------------------------------------------------------
    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        if self.on_state:
            self.on_state(state, detail)

    @property
    def log_tail(self) -> list[str]:
        return list(self._log)

    @property
    def in_flight(self) -> int:
        """Requests the worker holds now (decoding, or waiting for a free sequence slot)."""
        return len(self._active)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    # --- process ---------------------------------------------------------------------------
    async def _spawn(self) -> None:
        self._set_state("starting")
        self._log.clear()
        self._proc = await asyncio.create_subprocess_exec(
            *module_command(WORKER_MODULE), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=1 << 24)
        self._events = asyncio.Queue()
        self._streams = {}
        proc, events, streams = self._proc, self._events, self._streams
        self._io_tasks = [asyncio.ensure_future(self._read_events(proc, events, streams)),
                          asyncio.ensure_future(self._read_log(proc))]
        ev = await asyncio.wait_for(self._next_event(), START_TIMEOUT_S)
        if isinstance(ev, P.Error):
            raise ModelLoadError(ev.message)
        self.worker_pid, self.llama_cpp_version = ev.pid, ev.llama_cpp_version

    async def _read_events(self, proc, events: asyncio.Queue, streams: dict) -> None:
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            try:
                ev = P.decode_event(line)
            except (ValueError, KeyError, TypeError):
                self._log.append(f"[unreadable event] {line[:200]!r}")
                continue
            streams.get(getattr(ev, "id", None), events).put_nowait(ev)
        rc = await proc.wait()
        for q in (events, *streams.values()):
            q.put_nowait(_Exited(rc))

    async def _read_log(self, proc) -> None:
        while True:
            line = await proc.stderr.readline()
            if not line:
                return
            self._log.append(line.decode("utf-8", errors="replace").rstrip())

    async def _next_event(self, queue: asyncio.Queue | None = None):
        ev = await (queue or self._events).get()
        if isinstance(ev, _Exited):
            self._proc = None
            msg = _crash_message(ev.returncode, self.log_tail)
            self._set_state("crashed", msg)
            raise EngineCrashed(msg, ev.returncode, self.log_tail)
        return ev

    def _send(self, msg) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise EngineCrashed("the engine process is not running", None, self.log_tail)
        try:
            self._proc.stdin.write(P.encode(msg))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader sees EOF and reports the crash with its exit status

    def kill(self) -> None:
        """Kill the worker now (it stopped answering). The next request starts a new one."""
        if self.alive:
            self._proc.kill()

    # --- load ------------------------------------------------------------------------------
    async def load(self, path: str | Path, n_ctx: int = 4096, n_gpu_layers: int = 0,
                   n_threads: int | None = None, n_batch: int = 512,
                   progress: Callable[[str, float], None] | None = None, n_seq: int = 1,
                   exact: bool = False, contexts: int = 1) -> ModelInfo:
        """Validate the file, start a worker if needed and load the model into it.
        n_seq sequences are decoded together, each with a context of n_ctx tokens; `exact`: a
        sequence's tokens do not depend on what else is decoded (see P.Load)."""
        info = await asyncio.to_thread(gguf_file.inspect, path)
        req = P.Load(str(Path(path).resolve()), n_ctx, n_gpu_layers, n_threads, n_batch, n_seq, exact,
                     contexts)
        async with self._lock:
            self._gguf = info
            return await self._load_locked(req, progress)

    async def _load_locked(self, req: P.Load, progress) -> ModelInfo:
        if not self.alive:
            await self._spawn()
        self._set_state("loading", Path(req.path).name)
        self._load_req = None
        self.info = None
        self._send(req)
        while True:
            ev = await self._next_event()
            if isinstance(ev, P.Progress):
                if progress:
                    progress(ev.stage, ev.fraction)
            elif isinstance(ev, P.Error):
                self._set_state("ready" if self.info else "idle", ev.message)
                gi = self._gguf
                raise ModelLoadError(
                    f"llama.cpp could not load {Path(req.path).name} (architecture "
                    f"'{gi.architecture}'; this build may not support it, or the file is damaged): "
                    f"{ev.message}")
            elif isinstance(ev, P.Loaded):
                break
        gi = self._gguf
        self._load_req = req
        self.info = ModelInfo(
            path=req.path, name=gi.name, architecture=gi.architecture, layers=gi.n_layers,
            context_length=gi.context_length, quantization=gi.quantization,
            file_size=gi.file_size, chat_template=gi.chat_template, n_ctx=ev.n_ctx,
            n_gpu_layers=ev.n_gpu_layers, n_threads=ev.n_threads, load_s=ev.load_s,
            bos_token=ev.bos_token, eos_token=ev.eos_token, gpu_offload=ev.gpu_offload,
            n_seq=ev.n_seq, contexts=ev.contexts, exact=req.exact, infill=any(k in gi.metadata for k in ("tokenizer.ggml.fim_pre_token_id",
                                                  "tokenizer.ggml.prefix_token_id")),
            fim_tokens=dict(ev.fim_tokens))
        self._set_state("ready", gi.name)
        return self.info

    async def unload(self) -> None:
        async with self._lock:
            self._load_req = None
            self.info = None
            if self.alive:
                self._send(P.Unload())
                while not isinstance(await self._next_event(), P.Unloaded):
                    pass
            self._set_state("idle")

    @property
    def capabilities(self) -> Capabilities:
        info = self.info
        return Capabilities(infill=bool(info and info.infill), tokenize=False,
                            chat_template=info.chat_template if info else None,
                            n_ctx=info.n_ctx if info else 0,
                            parallel_slots=info.n_seq if info else 1)

    # --- generate --------------------------------------------------------------------------
    def generate(self, prompt: str, params: GenerateParams | None = None,
                 on_progress: Callable[[str, float], None] | None = None) -> Generation:
        gen = Generation(prompt, params or GenerateParams(), _client=self, on_progress=on_progress)
        self._pending.append(gen)
        gen._task = asyncio.ensure_future(self._serve(gen))
        return gen

    def cancel(self, *, queued: bool = False) -> None:
        """Stop the running generations (and, with queued=True, drop those waiting)."""
        for gen in list(self._active):
            gen.cancel()
        if queued:
            for gen in list(self._pending):
                gen.cancel()

    def _cancel(self, gen: Generation) -> None:
        if gen in self._active and self.alive:
            self._send(P.Cancel(gen.id))
            asyncio.get_running_loop().call_later(self.cancel_grace_s, self._kill_if_stuck, gen)

    def _kill_if_stuck(self, gen: Generation) -> None:
        if gen in self._active and not gen.done:
            self._log.append(f"[client] request {gen.id} ignored cancel for "
                             f"{self.cancel_grace_s:.0f} s; killing the worker")
            self._stuck = gen
            self.kill()

    async def _serve(self, gen: Generation) -> None:
        try:
            async with self._lock:  # held while sending only: loads and restarts come between
                self._pending.remove(gen)
                if gen._cancel_requested:
                    gen.stats = cancelled_stats()
                    return
                stream = await self._start(gen)
            self._active.append(gen)
            try:
                await self._run(gen, stream)
            finally:
                self._active.remove(gen)
                self._streams.pop(gen.id, None)
                if not self._active and self.alive:
                    self._set_state("ready", self.info.name if self.info else "")
        except EngineCrashed as exc:
            if getattr(self, "_stuck", None) is gen:  # we killed it ourselves after a cancel
                self._stuck = None
                gen.stats = cancelled_stats()
            else:
                gen._queue.put_nowait(exc)
        except Exception as exc:
            gen._queue.put_nowait(exc)
        finally:
            gen._queue.put_nowait(_End())

    async def _start(self, gen: Generation) -> asyncio.Queue:
        if self._load_req is None:
            raise EngineError("no model is loaded")
        if not self.alive:  # the last worker died: start a new one and load the same model
            await self._load_locked(self._load_req, gen.on_progress)
        gen.id, self._next_id = self._next_id, self._next_id + 1
        stream = self._streams[gen.id] = asyncio.Queue()
        self._set_state("generating")
        self._send(P.Generate(gen.id, gen.prompt, gen.params))
        return stream

    async def _run(self, gen: Generation, stream: asyncio.Queue) -> None:
        t_sent = time.perf_counter()
        t_first = None
        if gen._cancel_requested:
            self._cancel(gen)
        while True:
            ev = await self._next_event(stream)
            if isinstance(ev, P.Chunk):
                if t_first is None:
                    t_first = time.perf_counter()
                gen.text += ev.text
                gen._queue.put_nowait(ev.text)
            elif isinstance(ev, P.Progress):
                if gen.on_progress:
                    gen.on_progress(ev.stage, ev.fraction)
            elif isinstance(ev, P.Error):
                raise (PromptTooLong if ev.kind == "context_overflow" else EngineError)(ev.message)
            elif isinstance(ev, P.Done):
                t_end = time.perf_counter()
                t_first = t_first or t_end
                after = t_end - t_first
                gen.stats = GenerationStats(
                    prompt_tokens=ev.prompt_tokens, cached_tokens=ev.cached_tokens,
                    completion_tokens=ev.completion_tokens, ttft_s=t_first - t_sent,
                    tokens_per_s=(ev.completion_tokens - 1) / after if after > 0 and ev.completion_tokens > 1 else 0.0,
                    total_s=t_end - t_sent, finish_reason=ev.finish_reason,
                    draft_tokens=ev.draft_tokens, accepted_tokens=ev.accepted_tokens,
                    in_flight=ev.in_flight, moved=ev.moved)
                return

    # --- shutdown --------------------------------------------------------------------------
    async def close(self) -> None:
        self.cancel(queued=True)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                self._send(P.Shutdown())
                proc.stdin.close()
                await asyncio.wait_for(proc.wait(), 5)
            except (asyncio.TimeoutError, EngineCrashed, OSError):
                proc.kill()
                await proc.wait()
        for t in self._io_tasks:
            try:
                await asyncio.wait_for(t, 2)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                t.cancel()
        self._proc = None
        self._set_state("stopped")

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


@dataclass
class _Exited:
    returncode: int


def _crash_message(rc: int | None, log: list[str]) -> str:
    if rc is not None and rc < 0:
        try:
            how = f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            how = f"killed by signal {-rc}"
    else:
        how = f"exit status {rc}"
    hint = ""
    for line in reversed(log):
        low = line.lower()
        if any(k in low for k in ("error", "failed", "out of memory", "assert", "abort")):
            hint = f"; last error: {line.strip()[:200]}"
            break
    if rc in (-9, 137) and not hint:
        hint = " (killed from outside, or by the system when memory ran out)"
    return f"the engine process died ({how}){hint}"
