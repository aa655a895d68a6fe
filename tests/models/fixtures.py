"""Broken and hostile GGUF files, built byte by byte (what a user could hand us by mistake)."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import gguf
import numpy as np


def header(n_tensors: int, n_kv: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_bad_files(folder: Path, smollm: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, a piece of the expected one-line message)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}

    def put(name, data, expect):
        p = folder / name
        p.write_bytes(data)
        out[name.split(".")[0]] = (p, expect)

    put("empty.gguf", b"", "is empty")
    put("html.gguf", b"<!DOCTYPE html>\n<html><body>Repository not found</body></html>\n", "HTML")
    put("random.gguf", os.urandom(4096), "not a GGUF model")
    with open(smollm, "rb") as fh:
        put("truncated.gguf", fh.read(5_000_000), "truncated")
    put("absurd_kv.gguf", header(1, 1 << 60), "corrupt header")
    put("absurd_tensors.gguf", header(1 << 40, 0), "corrupt header")
    put("absurd_string.gguf", header(0, 1) + struct.pack("<Q", 1 << 62), "corrupt header")
    put("absurd_array.gguf", header(0, 1) + gguf_string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 1 << 58), "corrupt header")
    put("bad_version.gguf", header(0, 0, version=99), "version 99")
    put("tiny_header.gguf", b"GGUF\x03\x00", "truncated")

    arch = folder / "nosucharch.gguf"
    w = gguf.GGUFWriter(str(arch), "nosucharch")
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_tensor("blk.0.attn_q.weight", np.zeros((32, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out["nosucharch"] = (arch, "nosucharch")

    def tiny_model(name: str, block_count: int, tensor: str, expect: str) -> None:
        p = folder / name
        w = gguf.GGUFWriter(str(p), "llama")
        w.add_uint64("llama.block_count", block_count)  # u64: the header may claim anything
        w.add_context_length(128)
        w.add_tensor(tensor, np.zeros((32, 32), dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        out[name.split(".")[0]] = (p, expect)

    # issue 11 item 14: counts and names that the header reader must not trust
    tiny_model("huge_block_count.gguf", 1 << 40, "blk.0.attn_q.weight", "block_count")
    tiny_model("bad_layer_name.gguf", 1, "blk.x.attn_q.weight", "no valid layer number")
    return out
