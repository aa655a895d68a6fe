import os

import gguf
import numpy as np
import pytest

from tests.hubserver import HubServer


def make_gguf(path, n_bytes: int = 2_000_000, seed: int = 0) -> bytes:
    """A small, complete GGUF file (llama architecture, random weights)."""
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(f"test-model-{seed}")
    w.add_block_count(2)
    w.add_context_length(512)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_file_type(0)
    per = max(1, n_bytes // 8 // 4)
    for i in range(2):
        w.add_tensor(f"blk.{i}.ffn_up.weight", rng.standard_normal((per // 64 * 64 // 64, 64)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


@pytest.fixture
def hub(monkeypatch):
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield server


@pytest.fixture
def small_gguf(tmp_path_factory) -> bytes:
    return make_gguf(tmp_path_factory.mktemp("g") / "small.gguf")
