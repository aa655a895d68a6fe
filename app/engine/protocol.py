"""Messages between the app and the engine worker: dataclasses, one JSON object per line.

Requests carry `op`, events carry `ev`; both are plain JSON so the worker can be driven (and
debugged) by hand: `echo '{"op": "load", ...}' | python -m app.engine.worker`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar


@dataclass
class GenerateParams:
    max_tokens: int = 256
    temperature: float = 0.0       # <= 0 means greedy
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    # What the request is for: "edit", "ask", "complete", "selftest" or "". The engine picks
    # prompt-lookup decoding from it (edit: always; ask: when the prompt holds code) unless
    # `lookup` says; a llama.cpp server reads a self-test's prompt afresh (RemoteEngine._body).
    purpose: str = ""
    lookup: bool | None = None
    # Decode with this many threads while the request runs alone (at most the loaded count):
    # speed.measure times the model at two counts to tell compute from memory reads.
    threads: int | None = None

    @classmethod
    def for_edit(cls, max_tokens: int, stop: list[str], **kw) -> "GenerateParams":
        """An Edit selection: greedy (the rewrite should be the model's best, and prompt-lookup
        decoding then gives the same text faster), marked so the engine uses lookup."""
        return cls(max_tokens=max_tokens, temperature=0.0, stop=stop, purpose="edit", **kw)


# --- app -> worker ---------------------------------------------------------------------------

@dataclass
class Load:
    op: ClassVar[str] = "load"
    path: str
    n_ctx: int = 4096
    n_gpu_layers: int = 0
    n_threads: int | None = None
    n_batch: int = 512
    n_seq: int = 1           # sequences decoded together; each holds n_ctx tokens
    # Keep weights as stored: llama.cpp's CPU build repacks Q4_0/Q4_K/IQ4_NL weights at load for
    # faster wide batches, whose kernel rounds unlike the one-token one, so a sequence decoded
    # beside others (or after a 4-token prompt chunk) would not give what it gives alone.
    exact: bool = False
    # llama contexts the slots are spread over, each stepped by a thread of its own (worker.py)
    contexts: int = 1


@dataclass
class Generate:
    op: ClassVar[str] = "generate"
    id: int
    prompt: str
    params: GenerateParams = field(default_factory=GenerateParams)


@dataclass
class Cancel:
    op: ClassVar[str] = "cancel"
    id: int


@dataclass
class Unload:
    op: ClassVar[str] = "unload"


@dataclass
class Shutdown:
    op: ClassVar[str] = "shutdown"


# --- worker -> app ---------------------------------------------------------------------------

@dataclass
class Ready:
    ev: ClassVar[str] = "ready"
    pid: int
    llama_cpp_version: str


@dataclass
class Progress:
    ev: ClassVar[str] = "progress"
    stage: str           # "load" or "prompt"
    fraction: float
    id: int | None = None


@dataclass
class Loaded:
    ev: ClassVar[str] = "loaded"
    n_ctx: int
    n_gpu_layers: int
    n_threads: int
    load_s: float
    bos_token: str
    eos_token: str
    gpu_offload: bool
    n_seq: int = 1
    fim_tokens: dict = field(default_factory=dict)  # infill role (pre, suf, mid, ...) -> token text
    contexts: int = 1


@dataclass
class Chunk:
    ev: ClassVar[str] = "chunk"
    id: int
    text: str


@dataclass
class Done:
    ev: ClassVar[str] = "done"
    id: int
    finish_reason: str    # stop, length, cancelled
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    prompt_s: float       # worker-side time from request to first token
    generation_s: float   # worker-side time after the first token
    draft_tokens: int = 0     # prompt-lookup tokens proposed ...
    accepted_tokens: int = 0  # ... and confirmed by the model
    decode_steps: int = 0     # batches this sequence took part in after its prompt
    in_flight: int = 1        # most sequences decoded together while this one ran
    moved: int = 0            # times it moved to an idle llama context (worker.balance)


@dataclass
class Error:
    ev: ClassVar[str] = "error"
    kind: str             # load_failed, bad_request, context_overflow, internal
    message: str
    id: int | None = None


@dataclass
class Unloaded:
    ev: ClassVar[str] = "unloaded"


_REQUESTS = {c.op: c for c in (Load, Generate, Cancel, Unload, Shutdown)}
_EVENTS = {c.ev: c for c in (Ready, Progress, Loaded, Chunk, Done, Error, Unloaded)}


def encode(msg) -> bytes:
    body = asdict(msg)
    if hasattr(type(msg), "op"):
        body["op"] = msg.op
    else:
        body["ev"] = msg.ev
    return (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")


def _build(cls, body: dict):
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in body.items() if k in names}
    if cls is Generate and isinstance(kwargs.get("params"), dict):
        kwargs["params"] = GenerateParams(**kwargs["params"])
    return cls(**kwargs)


def decode_request(line: bytes | str):
    body = json.loads(line)
    return _build(_REQUESTS[body["op"]], body)


def decode_event(line: bytes | str):
    body = json.loads(line)
    return _build(_EVENTS[body["ev"]], body)
