"""Engine worker: a child process that owns one `llama_cpp.Llama` and serves JSON-line requests.

Runs as `python -m app.engine.worker`. stdin carries requests, the original stdout carries
events; fd 1 is pointed at stderr first so that anything llama.cpp prints from C cannot corrupt
the protocol. A reader thread takes requests and `cancel` at once while the main thread decodes;
the main thread admits new requests and checks cancels between batch steps (batch_loop.py), so
a cancel never has to interrupt C code and several requests run at once. With P.Load.contexts
above 1 the slots are spread over that many llama contexts of the one model: the main thread
steps the first, a thread each the others (context_runner.py), and a request goes to the
context that holds its prompt's start or else to the least loaded one.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time

from app.engine import protocol as P
from app.engine.batch_loop import MIN_REUSE, BatchLoop, Moved
from app.engine.context_runner import ContextRunner, ThreadShare, WideDecode, set_threads

# A request's chunks that follow one another within this go out as one message: each message
# wakes the app, and on a machine whose cores all run llama.cpp's threads each wake-up costs a
# step (about 5% of a small model's speed at one message a token). 30 ms is a frame at 30 fps;
# the first chunk, and every chunk of a slow model, still goes out at once.
COALESCE_S = 0.03
# A self-test reads only a request's whole text (bench/runner.py): its chunks go out 4 times a
# second, so that with several sequences in flight the app is not woken for each of them.
SELFTEST_COALESCE_S = 0.25
# An exact load on a CPU decodes at most this many tokens per call: from 8 tokens a call,
# llama.cpp multiplies K-quant weights that are not repacked with a tiled kernel
# (ggml-cpu/tiled/tiled.cpp) that rounds unlike the one-token kernel (Gemma-3-270M's logits
# moved by up to 2.2, and 8 sequences in flight changed completions), and on AVX2 it is also
# slower than the one-token kernel below about 16 tokens. Prompts keep whole calls: they are
# read the same way alone and beside others.
EXACT_CPU_STEP = 7


class Worker:
    def __init__(self, out):
        self.out = out
        self.decode_now = _llama_decode
        self.out_lock = threading.Lock()
        self.jobs: queue.Queue = queue.Queue()
        self.cancelled: set[int] = set()
        self.cancel_lock = threading.Lock()
        self.llm = None
        self.loop: BatchLoop | None = None        # the first context, stepped by run()
        self.runners: list[ContextRunner] = []    # the others (P.Load.contexts), each in a thread
        self.extra_contexts: list = []
        self.share: ThreadShare | None = None     # with runners: threads per context
        self.owner: dict[int, int] = {}           # request id -> index of the context running it
        self.loads = 0                            # models loaded so far (Moved.model)
        self.stopping = False                     # the runners are being stopped
        self.main_ident: int | None = None        # the thread in run(): the one to decode wide
        self.deferred: list = []                  # requests taken while serving WideDecodes
        self.held: dict[int, str] = {}        # request id -> text not sent yet
        self.sent_at: dict[int, float] = {}   # request id -> when its last chunk went out
        self.coalesce_s: dict[int, float] = {}   # request id -> its window where not COALESCE_S

    # --- plumbing ------------------------------------------------------------------------
    def send(self, msg) -> None:
        with self.out_lock:
            if isinstance(msg, P.Chunk):
                text = self.held.pop(msg.id, "") + msg.text
                now = time.perf_counter()
                if now - self.sent_at.get(msg.id, 0.0) < self.coalesce_s.get(msg.id, COALESCE_S):
                    self.held[msg.id] = text
                    return
                self.sent_at[msg.id] = now
                msg = P.Chunk(msg.id, text)
            else:
                rid = getattr(msg, "id", None)
                if rid in self.held:  # what was held goes before the request's next event
                    self._write(P.Chunk(rid, self.held.pop(rid)))
                if isinstance(msg, (P.Done, P.Error)):
                    self.sent_at.pop(rid, None)
                    self.coalesce_s.pop(rid, None)
                    if rid in self.owner:
                        self.share.add(self.owner.pop(rid), -1)
            self._write(msg)

    def flush_held(self) -> None:
        """Before a step that may be long (a prompt to read): nothing waits through it."""
        with self.out_lock:
            for rid in list(self.held):
                self._write(P.Chunk(rid, self.held.pop(rid)))
                self.sent_at[rid] = time.perf_counter()

    def _write(self, msg) -> None:
        self.out.write(P.encode(msg))
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

    def forget_cancel(self, req_id: int) -> None:
        with self.cancel_lock:
            self.cancelled.discard(req_id)

    # --- requests ------------------------------------------------------------------------
    def decode(self, ctx, batch, n_threads: int) -> int:
        """llama_decode, on the main thread where it takes several threads (WideDecode)."""
        if n_threads <= 1 or self.main_ident in (None, threading.get_ident()):
            return self.decode_now(ctx, batch)
        job = WideDecode(lambda: self.decode_now(ctx, batch))
        self.jobs.put(job)
        job.done.wait()
        return job.outcome()

    def _next_request(self, block: bool):
        if self.deferred:
            return self.deferred.pop(0)
        try:
            return self.jobs.get(block=block)
        except queue.Empty:
            return None

    def run(self) -> None:
        """Take requests between batch steps: wait for one when idle, only peek when busy."""
        self.main_ident = threading.get_ident()
        while True:
            busy = self.loop is not None and self.loop.busy
            req = self._next_request(block=not busy)
            while req is not None:
                if isinstance(req, P.Shutdown):
                    self._stop_runners()   # out of llama.cpp before the interpreter ends
                    return
                self.handle(req)
                req = self._next_request(block=False)
            if self.loop is not None and self.loop.busy:
                self.step(self.loop)

    def step(self, loop: BatchLoop) -> None:
        """One step of a context, on the thread that steps it (run(), or its ContextRunner)."""
        if self.held and loop.reading_prompt:
            self.flush_held()   # nothing waits through a step that may be long (a prompt to read)
        if self.share is not None:
            set_threads(loop, self.share.threads_for())
        else:
            set_threads(loop, self.asked_threads(loop))
        try:
            loop.step()
        except Exception as exc:  # the context state is unknown: fail what runs, go on
            loop.abort_all("internal", f"{type(exc).__name__}: {exc}")
        if self.runners:
            self.balance(loop)

    def asked_threads(self, loop: BatchLoop) -> int:
        """The loaded thread count, or fewer for a request that asks while it runs alone."""
        seqs = loop.active + list(loop.waiting)
        if len(seqs) == 1 and seqs[0].params.threads:
            return max(1, min(seqs[0].params.threads, self.llm.n_threads))
        return self.llm.n_threads

    def handle(self, req) -> None:
        try:
            if isinstance(req, P.Load):
                self.load(req)
            elif isinstance(req, P.Generate):
                self.generate(req)
            elif isinstance(req, P.Unload):
                self.unload()
            elif isinstance(req, WideDecode):
                req.run()
            elif isinstance(req, Moved):
                if self.loop is not None and req.model == self.loads:
                    self.loop.adopt(req)
                else:   # moved as its model was unloaded
                    self._drop_moved_or_request(None, req.seq.id)
        except Exception as exc:  # report, keep serving: the model may still be usable
            rid = req.seq.id if isinstance(req, Moved) else getattr(req, "id", None)
            self.send(P.Error("internal", f"{type(exc).__name__}: {exc}", rid))

    def _stop_runners(self) -> None:
        with self.out_lock:
            self.stopping = True   # no sequence moves to a context that has stopped
        for runner in self.runners:
            runner.inbox.put(None)
        for runner in self.runners:
            # a runner may be waiting for this thread to decode for it (WideDecode): serve those,
            # keep every other request for after, in order
            while runner.thread.is_alive():
                try:
                    item = self.jobs.get(timeout=0.05)
                except queue.Empty:
                    continue
                if isinstance(item, WideDecode):
                    item.run()
                else:
                    self.deferred.append(item)
            runner.thread.join()
        for runner in self.runners:
            for item in runner.leftovers():
                self._drop_moved_or_request(item.seq if isinstance(item, Moved) else None,
                                            item.seq.id if isinstance(item, Moved) else item[0].id)

    def _drop_moved_or_request(self, seq, rid: int) -> None:
        if seq is not None and self.loop is not None:
            self.loop._free_sampler(seq)
        self.forget_cancel(rid)
        self.send(P.Error("internal", "the model was unloaded", rid))

    def _drop_model(self) -> None:
        self._stop_runners()
        loops = [self.loop] + [r.loop for r in self.runners] if self.loop is not None else []
        for loop in loops:
            loop.abort_all("internal", "the model was unloaded")
            loop.close()
        for ctx in self.extra_contexts:
            ctx.close()
        self.loop, self.runners, self.extra_contexts, self.share = None, [], [], None
        self.owner.clear()
        if self.llm is not None:
            self.llm.close()
            self.llm = None

    def unload(self) -> None:
        self._drop_model()
        self.send(P.Unloaded())

    def load(self, req: P.Load) -> None:
        import llama_cpp
        from llama_cpp import llama_cpp as C

        self._drop_model()
        t0 = time.perf_counter()
        n_seq = max(1, req.n_seq)
        n_contexts = max(1, min(req.contexts, n_seq))
        # slots per context, the first ones taking what does not divide evenly
        sizes = [n_seq // n_contexts + (i < n_seq % n_contexts) for i in range(n_contexts)]

        @C.llama_progress_callback
        def on_progress(fraction, _user):
            self.send(P.Progress("load", round(float(fraction), 3)))
            return True

        # Llama() exposes neither a progress hook nor the sequence count: give the default
        # params ours (ref kept alive above). One KV stream per sequence, so each holds n_ctx.
        default_params = C.llama_model_default_params
        default_ctx_params = C.llama_context_default_params

        def params_with_progress():
            params = default_params()
            params.progress_callback = on_progress
            params.use_extra_bufts = not req.exact
            return params

        def ctx_params_with_sequences():
            params = default_ctx_params()
            params.n_seq_max = sizes[0]
            params.kv_unified = False
            return params

        C.llama_model_default_params = params_with_progress
        C.llama_context_default_params = ctx_params_with_sequences
        _tolerate_bad_chat_templates()
        try:
            kwargs = dict(model_path=req.path, n_ctx=req.n_ctx * sizes[0], n_gpu_layers=req.n_gpu_layers,
                          n_batch=req.n_batch, verbose=False)
            if req.n_threads:
                kwargs.update(n_threads=req.n_threads, n_threads_batch=req.n_threads)
            self.llm = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            self.send(P.Error("load_failed", str(exc)))
            return
        finally:
            C.llama_model_default_params = default_params
            C.llama_context_default_params = default_ctx_params
        llm = self.llm
        n_ctx_seq = min(llm.n_ctx() // sizes[0], req.n_ctx)
        on_cpu = req.n_gpu_layers == 0 or not llama_cpp.llama_supports_gpu_offload()

        def batch_loop(n, ctx=None):
            loop = BatchLoop(llm, n, n_ctx_seq, req.n_batch, self.send, self.is_cancelled,
                             self.forget_cancel, max_step=EXACT_CPU_STEP if req.exact and on_cpu else 0,
                             exact=req.exact, ctx=ctx)
            if on_cpu:   # a GPU decode stays on the thread that made its context
                loop.decode_call = self.decode
            return loop

        self.loop = batch_loop(sizes[0])
        self.loads += 1
        self.stopping = False
        try:
            extra = self._extra_contexts(llm, sizes[1:], n_ctx_seq)
        except (ValueError, RuntimeError) as exc:
            self._drop_model()
            self.send(P.Error("load_failed", f"could not make {n_contexts} llama contexts: {exc}"))
            return
        if extra:
            self.share = ThreadShare(llm.n_threads)
            self.runners = [ContextRunner(batch_loop(n, ctx.ctx), self.step) for n, ctx in zip(sizes[1:], extra)]
        self.send(P.Loaded(
            n_ctx=n_ctx_seq, n_gpu_layers=req.n_gpu_layers, n_threads=llm.n_threads,
            load_s=time.perf_counter() - t0,
            bos_token=_token_text(llm, llm.token_bos()), eos_token=_token_text(llm, llm.token_eos()),
            gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()), n_seq=n_seq,
            fim_tokens=_fim_tokens(llm), contexts=n_contexts))

    def _extra_contexts(self, llm, sizes: list[int], n_ctx_seq: int) -> list:
        """Contexts of the loaded model beside Llama's own, with its settings and their slots."""
        from llama_cpp import _internals

        for n in sizes:
            params = type(llm.context_params).from_buffer_copy(llm.context_params)
            params.n_seq_max = n
            params.n_ctx = n_ctx_seq * n
            self.extra_contexts.append(_internals.LlamaContext(model=llm._model, params=params, verbose=False))
        return self.extra_contexts

    def balance(self, loop: BatchLoop) -> None:
        """After a step of `loop` (on its thread): where it decodes two or more sequences while
        another context has nothing, nothing waits and no request is on its way, one of them
        moves there with its cells (BatchLoop.detach_one): the last long answers of a self-test
        then decode side by side instead of two wide in one context."""
        loops = [self.loop] + [r.loop for r in self.runners]
        src = loops.index(loop)
        if self.share.load.get(src, 0) < 2 or not self.jobs.empty() or not loop.can_detach():
            return
        with self.out_lock:   # reserve the idle context, so that no request is sent there meanwhile
            idle = [i for i in range(len(loops)) if self.share.load.get(i, 0) == 0
                    and (i == 0 or self.runners[i - 1].inbox.empty())]
            if self.stopping or not idle:
                return
            dst = idle[0]
            self.share.add(dst, 1)
        moved = loop.detach_one()   # the cells' copy, outside the lock: the other streams go on
        with self.out_lock:
            if moved is None or self.stopping:
                self.share.add(dst, -1)
                if moved is not None:   # the model goes away: the request ends here
                    loop.adopt(moved)
                return
            moved.model = self.loads
            self.owner[moved.seq.id] = dst
            self.share.add(src, -1)
        if dst == 0:
            self.jobs.put(moved)
        else:
            self.runners[dst - 1].take(moved)

    def _pick(self, tokens: list[int]) -> int:
        """The context for a new request: one whose slot holds the prompt's start (completion at
        the cursor reuses it) where it has a free slot, else the least loaded."""
        loops = [self.loop] + [r.loop for r in self.runners]
        load = [self.share.load.get(i, 0) for i in range(len(loops))]
        free = [i for i, loop in enumerate(loops) if load[i] < len(loop.slots)]
        reuse = max(free, key=lambda i: loops[i].cached_prefix(tokens), default=None)
        if reuse is not None and loops[reuse].cached_prefix(tokens) >= MIN_REUSE:
            return reuse
        return min(range(len(loops)), key=lambda i: (load[i] / len(loops[i].slots), i))

    def generate(self, req: P.Generate) -> None:
        if req.params.purpose == "selftest":
            with self.out_lock:
                self.coalesce_s[req.id] = SELFTEST_COALESCE_S
        if self.loop is None:
            self.send(P.Error("bad_request", "no model is loaded", req.id))
            return
        if self.runners:
            tokens = self.loop.tokenize(req)
            with self.out_lock:
                index = self._pick(tokens)
                self.owner[req.id] = index
                self.share.add(index, 1)
            if index > 0:
                self.runners[index - 1].give(req, tokens)
                return
        self.loop.submit_or_fail(req, tokens if self.runners else None)


def _llama_decode(ctx, batch) -> int:
    import llama_cpp

    return llama_cpp.llama_decode(ctx, batch)


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


def _token_text(llm, token: int) -> str:
    if token is None or token < 0:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace")


def _fim_tokens(llm) -> dict:
    """The infill tokens llama.cpp found (from the GGUF's fim_*/prefix_* token ids), as text."""
    import llama_cpp

    out = {}
    for role in ("pre", "suf", "mid", "pad", "rep", "sep"):
        fn = getattr(llama_cpp, f"llama_vocab_fim_{role}", None)
        tok = fn(llm._model.vocab) if fn else -1
        if tok is not None and tok >= 0:
            out[role] = _token_text(llm, tok)
    return out


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
