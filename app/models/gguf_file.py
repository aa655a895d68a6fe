"""Read and validate a GGUF header without loading weights.

Hand-written instead of `gguf.GGUFReader` because that reader memory-maps the file and trusts
its counts: a hostile header claiming 2**60 entries must give a one-line error, not a
multi-gigabyte allocation. Every count and length is checked against the bytes left in the file
before anything is read or allocated.
"""
from __future__ import annotations

import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO


MAGIC = b"GGUF"
MAX_KV = 1 << 16          # real files have a few dozen keys
MAX_TENSORS = 1 << 20     # a 405B model has a few thousand tensors
MAX_DIMS = 8
MAX_KEY_LEN = 1 << 16
KEPT_STRING_LEN = 1 << 20  # chat templates are a few KB; longer strings are skipped, not stored

_SCALARS = {  # GGUFValueType -> struct format
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9

# Fill-in-the-middle tokens, found as llama.cpp finds them (llama-vocab.cpp): the id under the
# role's metadata key (the newer fim_* key, then the older name), else a token whose text is
# one the model families use. A model has infill when prefix, suffix and middle are all found.
FIM_ID_KEYS = {
    "pre": ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"),
    "suf": ("tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"),
    "mid": ("tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"),
    "pad": ("tokenizer.ggml.fim_pad_token_id",),
    "rep": ("tokenizer.ggml.fim_rep_token_id",),
    "sep": ("tokenizer.ggml.fim_sep_token_id",),
}
FIM_TEXTS = {
    "pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
            "<|code_prefix|>"),
    "suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
            "<|code_suffix|>"),
    "mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
            "<|code_middle|>"),
    "pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"),
    "rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "sep": ("<|file_sep|>",),
}
_FIM_TEXT_BYTES = frozenset(t.encode() for texts in FIM_TEXTS.values() for t in texts)
_FIM_TEXT_MAX = max(len(t) for t in _FIM_TEXT_BYTES)


class GGUFError(ValueError):
    """The file is not a complete, well-formed GGUF model. The message is one line for the user."""


@dataclass
class GGUFInfo:
    path: Path
    file_size: int
    version: int
    architecture: str
    name: str
    n_layers: int
    context_length: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    vocab_size: int
    quantization: str
    chat_template: str | None
    n_tensors: int
    tensor_bytes: int
    layer_bytes: list[int] = field(default_factory=list)
    output_bytes: int = 0      # output head + final norm: offloaded as the "extra" GPU layer
    embedding_bytes: int = 0   # token embeddings stay in host memory in llama.cpp
    tied_output: bool = False  # no output.weight: the embeddings double as the output head
    key_length: int = 0
    value_length: int = 0
    metadata: dict = field(default_factory=dict)  # scalars and short strings only
    fim_texts: dict = field(default_factory=dict)  # FIM_TEXTS text -> its id in the vocabulary

    @property
    def fim_token_ids(self) -> dict[str, int]:
        """Infill role -> token id, as llama.cpp will use them."""
        out = {}
        for role, keys in FIM_ID_KEYS.items():
            for key in keys:
                v = self.metadata.get(key)
                if (isinstance(v, int) and not isinstance(v, bool) and v >= 0
                        and (not self.vocab_size or v < self.vocab_size)):
                    out[role] = v
                    break
            else:
                found = [self.fim_texts[t] for t in FIM_TEXTS[role] if t in self.fim_texts]
                if found:
                    out[role] = min(found)
        return out

    @property
    def infill(self) -> bool:
        """The model can fill in the middle (what llama-server's /infill requires)."""
        ids = self.fim_token_ids
        return all(r in ids for r in ("pre", "suf", "mid"))

    @property
    def kv_bytes_per_token(self) -> int:
        """f16 K and V cache per token, all layers."""
        return self.n_layers * self.head_count_kv * (self.key_length + self.value_length) * 2

    def summary(self) -> dict:
        return {
            "name": self.name, "architecture": self.architecture, "layers": self.n_layers,
            "context_length": self.context_length, "quantization": self.quantization,
            "file_size": self.file_size, "chat_template": self.chat_template,
            "path": str(self.path),
        }


class _Reader:
    def __init__(self, fh: BinaryIO, size: int, label: str):
        self.fh, self.size, self.label = fh, size, label

    @property
    def pos(self) -> int:
        return self.fh.tell()

    def left(self) -> int:
        return self.size - self.pos

    def read(self, n: int) -> bytes:
        if n > self.left():
            raise GGUFError(f"{self.label} is truncated: its header runs past the end of the file "
                            f"(an incomplete download?)")
        return self.fh.read(n)

    def skip(self, n: int) -> None:
        if n > self.left():
            raise GGUFError(f"{self.label} is truncated: its header runs past the end of the file "
                            f"(an incomplete download?)")
        self.fh.seek(n, os.SEEK_CUR)

    def scalar(self, fmt: str):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def u32(self) -> int:
        return self.scalar("<I")

    def u64(self) -> int:
        return self.scalar("<Q")

    def string(self, keep_limit: int = KEPT_STRING_LEN) -> str | None:
        n = self.u64()
        if n > self.left():
            raise GGUFError(f"{self.label} has a corrupt header: a string of {n} bytes is claimed "
                            f"at offset {self.pos}, more than the file holds")
        if n > keep_limit:
            self.skip(n)
            return None
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, key: str, watch: dict | None = None):
        """`watch`: for an array of strings, collects the index of each element that is one of
        the FIM token texts (the rest are skipped unread, as always)."""
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.u32(), self.u64()
            elem_min = struct.calcsize(_SCALARS[etype]) if etype in _SCALARS else 8
            if etype not in _SCALARS and etype != _STRING:
                raise GGUFError(f"{self.label} has a corrupt header: array {key!r} has unknown "
                                f"element type {etype}")
            if count * elem_min > self.left():
                raise GGUFError(f"{self.label} has a corrupt header: array {key!r} claims {count} "
                                f"elements, more than the file holds")
            if etype in _SCALARS:
                self.skip(count * elem_min)
            else:
                for i in range(count):
                    n = self.u64()
                    if watch is not None and n <= _FIM_TEXT_MAX:
                        text = self.read(n)
                        if text in _FIM_TEXT_BYTES:
                            watch.setdefault(text.decode(), i)
                    else:
                        self.skip(n)
            return _ArrayInfo(etype, count)
        raise GGUFError(f"{self.label} has a corrupt header: key {key!r} has unknown value type {vtype}")


@dataclass
class _ArrayInfo:
    etype: int
    count: int


def _looks_like_html(head: bytes) -> bool:
    text = head.lstrip().lower()
    return text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{\"error", b"<"))


def inspect(path: str | os.PathLike) -> GGUFInfo:
    """Validate `path` as a complete GGUF model file and return what its header says.

    Raises GGUFError with a one-line message for anything a user could hand us by mistake.
    """
    p = Path(path)
    label = str(p)
    if not p.exists():
        raise GGUFError(f"model file not found: {label}")
    if p.is_dir():
        raise GGUFError(f"{label} is a directory, not a GGUF model file")
    size = p.stat().st_size
    if size == 0:
        raise GGUFError(f"{label} is empty (0 bytes)")
    try:
        fh = open(p, "rb")
    except OSError as exc:
        raise GGUFError(f"cannot read {label}: {exc.strerror or exc}") from None
    with fh:
        head = fh.read(64)
        if not head.startswith(MAGIC):
            if _looks_like_html(head):
                raise GGUFError(f"{label} is an HTML/text page, not a GGUF model (a failed download?)")
            raise GGUFError(f"{label} is not a GGUF model (it starts with {head[:4]!r}, not b'GGUF')")
        if size < 24:
            raise GGUFError(f"{label} is truncated: only {size} bytes")
        fh.seek(4)
        r = _Reader(fh, size, label)
        return _parse(r, p, size)


def _parse(r: _Reader, p: Path, size: int) -> GGUFInfo:
    label = r.label
    version = r.u32()
    if version not in (2, 3):
        raise GGUFError(f"{label} has GGUF version {version}; only versions 2 and 3 are supported")
    n_tensors, n_kv = r.u64(), r.u64()
    if n_kv > MAX_KV:
        raise GGUFError(f"{label} has a corrupt header: it claims {n_kv} metadata entries")
    if n_tensors > MAX_TENSORS:
        raise GGUFError(f"{label} has a corrupt header: it claims {n_tensors} tensors")
    if n_tensors * 24 > size:
        raise GGUFError(f"{label} is truncated: its {n_tensors} tensors cannot fit in {size} bytes "
                        f"(an incomplete download?)")

    meta: dict = {}
    fim_texts: dict = {}
    for _ in range(n_kv):
        key = r.string(keep_limit=MAX_KEY_LEN)
        if key is None:
            raise GGUFError(f"{label} has a corrupt header: a metadata key is longer than {MAX_KEY_LEN} bytes")
        meta[key] = r.value(r.u32(), key, fim_texts if key == "tokenizer.ggml.tokens" else None)

    tensors = []
    for _ in range(n_tensors):
        name = r.string(keep_limit=MAX_KEY_LEN)
        n_dims = r.u32()
        if name is None or n_dims > MAX_DIMS:
            raise GGUFError(f"{label} has a corrupt header: bad tensor description at offset {r.pos}")
        dims = [r.u64() for _ in range(n_dims)]
        ttype, offset = r.u32(), r.u64()
        tensors.append((name, dims, ttype, offset))

    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(f"{label} has a corrupt header: alignment {alignment!r}")
    data_start = (r.pos + alignment - 1) // alignment * alignment
    data_size = size - data_start

    total, layer_bytes, output_bytes, embd_bytes = 0, Counter(), 0, 0
    type_counts: Counter = Counter()
    for name, dims, ttype, offset in tensors:
        nbytes = _tensor_bytes(label, name, dims, ttype)
        if offset + nbytes > data_size:
            need = data_start + offset + nbytes
            raise GGUFError(f"{label} is truncated: tensor {name!r} needs {need} bytes but the file "
                            f"has {size} (an incomplete download?)")
        total += nbytes
        if name.startswith("blk."):
            layer_bytes[_layer_index(label, name, n_tensors)] += nbytes
            if len(dims) >= 2:
                type_counts[ttype] += nbytes
        elif name.startswith(("output", "norm")):
            output_bytes += nbytes
        elif name.startswith("token_embd"):
            embd_bytes += nbytes

    tied_output = not any(t[0] == "output.weight" for t in tensors)
    if tied_output:
        output_bytes += embd_bytes  # llama.cpp uses token_embd as the head (a GPU copy if offloaded)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise GGUFError(f"{label} has no general.architecture key: not a model file")

    def arch_int(key: str, default: int = 0) -> int:
        v = meta.get(f"{arch}.{key}", default)
        return v if isinstance(v, int) and not isinstance(v, bool) else default

    n_layers = arch_int("block_count", len(layer_bytes))
    # Every layer holds at least one tensor, so a count above the tensors (themselves bounded by
    # the file size) is a lie that would make range(n_layers) hang or exhaust memory.
    if n_tensors == 0:
        raise GGUFError(f"{label} holds no tensors (a vocabulary-only file?): not a model")
    if n_layers < 0 or n_layers > n_tensors:
        raise GGUFError(f"{label} has a corrupt header: block_count {n_layers} for {n_tensors} tensors")
    n_embd = arch_int("embedding_length")
    n_head = arch_int("attention.head_count")
    n_head_kv = arch_int("attention.head_count_kv", n_head)
    head_dim = n_embd // n_head if n_head else 0
    tokens = meta.get("tokenizer.ggml.tokens")
    info = GGUFInfo(
        path=p, file_size=size, version=version, architecture=arch,
        name=meta.get("general.name") if isinstance(meta.get("general.name"), str) else p.stem,
        n_layers=n_layers, context_length=arch_int("context_length"),
        embedding_length=n_embd, head_count=n_head, head_count_kv=n_head_kv,
        vocab_size=tokens.count if isinstance(tokens, _ArrayInfo) else arch_int("vocab_size"),
        quantization=_quant_name(meta.get("general.file_type"), type_counts),
        chat_template=meta.get("tokenizer.chat_template") if isinstance(meta.get("tokenizer.chat_template"), str) else None,
        n_tensors=n_tensors, tensor_bytes=total,
        layer_bytes=[layer_bytes.get(i, 0) for i in range(n_layers)],
        output_bytes=output_bytes, embedding_bytes=embd_bytes, tied_output=tied_output,
        key_length=arch_int("attention.key_length", head_dim),
        value_length=arch_int("attention.value_length", head_dim),
        metadata={k: v for k, v in meta.items() if not isinstance(v, _ArrayInfo) and k != "tokenizer.chat_template"},
        fim_texts=fim_texts,
    )
    return info


def _layer_index(label: str, name: str, n_tensors: int) -> int:
    """The N of `blk.N.*`, refused unless it is a plausible layer number."""
    part = name.split(".")[1] if name.count(".") >= 1 else ""
    if not part.isdigit() or not part.isascii() or int(part) >= n_tensors:
        raise GGUFError(f"{label} has a corrupt header: tensor {name[:80]!r} has no valid layer number")
    return int(part)


def _tensor_bytes(label: str, name: str, dims: list[int], ttype: int) -> int:
    import gguf  # the gguf package imports numpy: only load it when a file is read

    try:
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ttype)]
    except (ValueError, KeyError):
        raise GGUFError(f"{label}: tensor {name!r} has unknown type {ttype}") from None
    n = 1
    for d in dims:
        n *= d
    if dims and dims[0] % block:
        raise GGUFError(f"{label} has a corrupt header: tensor {name!r} row of {dims[0]} is not a "
                        f"multiple of its block size {block}")
    return n // block * type_size


def _quant_name(file_type, type_counts: Counter) -> str:
    import gguf

    if isinstance(file_type, int):
        try:
            return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    if type_counts:
        return gguf.GGMLQuantizationType(type_counts.most_common(1)[0][0]).name
    return "unknown"
