"""Engine worker: a child process that owns one `llama_cpp.Llama` and serves JSON-line requests.

Runs as `python -m app.engine.worker`. stdin carries requests, the original stdout carries
events; fd 1 is pointed at stderr first so that anything llama.cpp prints from C cannot corrupt
the protocol. A reader thread takes `cancel` at once while the main thread is inside a
generation; generation checks the flag between prompt batches and between tokens, so a cancel
never has to interrupt C code.
"""
from __future__ import annotations

import codecs
import os
import queue
import sys
import threading
import time

from app.engine import protocol as P
from app.engine.stops import StopMatcher

MIN_REUSE = 64  # tokens of shared prefix worth keeping in the KV cache


class Worker:
    def __init__(self, out):
        self.out = out
        self.out_lock = threading.Lock()
        self.jobs: queue.Queue = queue.Queue()
        self.cancelled: set[int] = set()
        self.cancel_lock = threading.Lock()
        self.llm = None
        self.n_batch = 512

    # --- plumbing ------------------------------------------------------------------------
    def send(self, msg) -> None:
        data = P.encode(msg)
        with self.out_lock:
            self.out.write(data)
            self.out.flush()

    def read_requests(self, stream) -> None:
        for line in stream:
            if not line.strip():
                continue
            try:
                req = P.decode_request(line)
            except (ValueError, KeyError, TypeError) as exc:
                self.send(P.Error("bad_request", f"unreadable request: {exc}"))
                continue
            if isinstance(req, P.Cancel):
                with self.cancel_lock:
                    self.cancelled.add(req.id)
            else:
                self.jobs.put(req)
        self.jobs.put(P.Shutdown())

    def is_cancelled(self, req_id: int) -> bool:
        with self.cancel_lock:
            return req_id in self.cancelled

    # --- requests ------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            req = self.jobs.get()
            if isinstance(req, P.Shutdown):
                return
            try:
                if isinstance(req, P.Load):
                    self.load(req)
                elif isinstance(req, P.Generate):
                    self.generate(req)
                elif isinstance(req, P.Unload):
                    self.unload()
            except Exception as exc:  # report, keep serving: the model may still be usable
                self.send(P.Error("internal", f"{type(exc).__name__}: {exc}", getattr(req, "id", None)))

    def unload(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
        self.send(P.Unloaded())

    def load(self, req: P.Load) -> None:
        import llama_cpp
        from llama_cpp import llama_cpp as C

        if self.llm is not None:
            self.llm.close()
            self.llm = None
        t0 = time.perf_counter()

        @C.llama_progress_callback
        def on_progress(fraction, _user):
            self.send(P.Progress("load", round(float(fraction), 3)))
            return True

        # Llama() exposes no progress hook; give the default params ours (ref kept alive above).
        default_params = C.llama_model_default_params

        def params_with_progress():
            params = default_params()
            params.progress_callback = on_progress
            return params

        C.llama_model_default_params = params_with_progress
        _tolerate_bad_chat_templates()
        try:
            kwargs = dict(model_path=req.path, n_ctx=req.n_ctx, n_gpu_layers=req.n_gpu_layers,
                          n_batch=req.n_batch, verbose=False)
            if req.n_threads:
                kwargs.update(n_threads=req.n_threads, n_threads_batch=req.n_threads)
            self.llm = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            self.send(P.Error("load_failed", str(exc)))
            return
        finally:
            C.llama_model_default_params = default_params
        self.n_batch = req.n_batch
        llm = self.llm
        self.send(P.Loaded(
            n_ctx=llm.n_ctx(), n_gpu_layers=req.n_gpu_layers, n_threads=llm.n_threads,
            load_s=time.perf_counter() - t0,
            bos_token=_token_text(llm, llm.token_bos()), eos_token=_token_text(llm, llm.token_eos()),
            gpu_offload=bool(llama_cpp.llama_supports_gpu_offload())))

    def generate(self, req: P.Generate) -> None:
        import llama_cpp

        llm = self.llm
        if llm is None:
            self.send(P.Error("bad_request", "no model is loaded", req.id))
            return
        t0 = time.perf_counter()
        p = req.params
        tokens = llm.tokenize(req.prompt.encode("utf-8"), add_bos=True, special=True)
        if not tokens:
            self.send(P.Error("bad_request", "the prompt is empty", req.id))
            return
        # llama.cpp may round the context up; Llama's token buffer keeps the size asked for.
        n_ctx = min(llm.n_ctx(), len(llm.input_ids))
        room = n_ctx - len(tokens)
        if room <= 0:
            self.send(P.Error("context_overflow", f"the prompt has {len(tokens)} tokens; the context "
                              f"holds {n_ctx}", req.id))
            return
        max_tokens = room if p.max_tokens is None or p.max_tokens <= 0 else min(p.max_tokens, room)

        # Reuse the cached prefix, then evaluate the rest of the prompt but its last token in
        # batches, checking for cancel between them. Llama.generate() then sees all but the last
        # token cached and only evaluates that one before sampling, exactly as a plain call does.
        cached = _common_prefix(llm._input_ids, tokens[:-1])
        if cached < MIN_REUSE:
            # A short shared prefix saves nothing, and llama.cpp's results depend on where the
            # new tokens land in the cache: start clean so that unrelated requests (HumanEval
            # tasks one after another) give exactly what a fresh process gives.
            cached = 0
            # Reset the cells but not their memory: zeroing a 4096-token cache costs ~30 ms.
            if llm._ctx.memory is not None:
                llama_cpp.llama_memory_clear(llm._ctx.memory, False)
        llm.n_tokens = cached
        todo = len(tokens) - 1
        for start in range(cached, todo, self.n_batch):
            if self.is_cancelled(req.id):
                return self._finish(req, "cancelled", len(tokens), cached, 0, t0, None)
            llm.eval(tokens[start:min(start + self.n_batch, todo)])
            self.send(P.Progress("prompt", round(llm.n_tokens / len(tokens), 3), req.id))

        if p.seed is not None:
            llm.set_seed(p.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopMatcher(p.stop)
        n_out, t_first, reason = 0, None, "length"
        temp = p.temperature if p.temperature > 0 else 0.0
        for tok in llm.generate(tokens, top_k=p.top_k, top_p=p.top_p, min_p=p.min_p, temp=temp,
                                repeat_penalty=p.repeat_penalty):
            if t_first is None:
                t_first = time.perf_counter()
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
                reason = "stop"
                break
            n_out += 1
            text, hit = stops.feed(decoder.decode(llm.detokenize([tok])))
            if text:
                self.send(P.Chunk(req.id, text))
            if hit:
                reason = "stop"
                break
            if n_out >= max_tokens:
                break
            if self.is_cancelled(req.id):
                reason = "cancelled"
                break
        if reason != "stop" or not stops.hit:
            tail = stops.flush(decoder.decode(b"", final=True))
            if tail:
                self.send(P.Chunk(req.id, tail))
        self._finish(req, reason, len(tokens), cached, n_out, t0, t_first)

    def _finish(self, req, reason, n_prompt, cached, n_out, t0, t_first) -> None:
        now = time.perf_counter()
        with self.cancel_lock:
            self.cancelled.discard(req.id)
        self.send(P.Done(req.id, reason, n_prompt, cached, n_out,
                         prompt_s=(t_first or now) - t0,
                         generation_s=now - t_first if t_first else 0.0))


def _tolerate_bad_chat_templates() -> None:
    """Llama() compiles every chat template in the file, and one that does not compile fails the
    whole load (blamed on the file). LlamaDesk renders templates itself (engine/prompts.py, with
    limits), so a broken template must fail only the requests that use it, with its own message."""
    import jinja2
    from llama_cpp import llama_chat_format as F

    if getattr(F.Jinja2ChatFormatter, "_llamadesk_tolerant", False):
        return
    original = F.Jinja2ChatFormatter.__init__

    def init(self, template, *args, **kwargs):
        try:
            original(self, template, *args, **kwargs)
        except jinja2.TemplateError:
            original(self, "{{ raise_exception('this model file has a broken chat template') }}",
                     *args, **kwargs)

    F.Jinja2ChatFormatter.__init__ = init
    F.Jinja2ChatFormatter._llamadesk_tolerant = True


def _common_prefix(cached, tokens) -> int:
    n = 0
    for a, b in zip(cached, tokens):
        if a != b:
            break
        n += 1
    return n


def _token_text(llm, token: int) -> str:
    if token is None or token < 0:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace")


def main() -> int:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    worker = Worker(out)
    try:
        import llama_cpp
        version = llama_cpp.__version__
    except Exception as exc:  # no engine installed: say so instead of dying silently
        worker.send(P.Error("load_failed", f"llama-cpp-python is not usable: {exc}"))
        return 1
    reader = threading.Thread(target=worker.read_requests, args=(sys.stdin.buffer,), daemon=True)
    reader.start()
    worker.send(P.Ready(os.getpid(), version))
    worker.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
