import pytest

from app.models import gguf_file
from tests.models.fixtures import write_bad_files


def test_reads_smollm_header(smollm):
    info = gguf_file.inspect(smollm)
    assert info.architecture == "llama"
    assert info.n_layers == 30 and len(info.layer_bytes) == 30
    assert info.context_length == 8192
    assert info.quantization == "Q4_1"
    assert info.vocab_size == 49152
    assert info.head_count == 9 and info.head_count_kv == 3 and info.key_length == 64
    assert "<|im_start|>" in info.chat_template
    assert info.tied_output  # SmolLM2 has no output.weight
    assert 0.9 < info.tensor_bytes / info.file_size < 1.0


def test_bad_files_are_rejected_with_one_line(tmp_path, smollm):
    for name, (path, expect) in write_bad_files(tmp_path, smollm).items():
        if name == "nosucharch":
            continue  # a valid GGUF: only llama.cpp can say it cannot load it (see CLI tests)
        with pytest.raises(gguf_file.GGUFError) as err:
            gguf_file.inspect(path)
        msg = str(err.value)
        assert expect in msg, (name, msg)
        assert "\n" not in msg


def test_missing_and_directory(tmp_path):
    with pytest.raises(gguf_file.GGUFError, match="not found"):
        gguf_file.inspect(tmp_path / "nope.gguf")
    with pytest.raises(gguf_file.GGUFError, match="is a directory"):
        gguf_file.inspect(tmp_path)


def test_unknown_architecture_is_still_a_valid_header(tmp_path, smollm):
    path, _ = write_bad_files(tmp_path, smollm)["nosucharch"]
    assert gguf_file.inspect(path).architecture == "nosucharch"


def test_hostile_counts_leave_the_local_model_list_whole(tmp_path, smollm):
    """Issue 11 item 14: a huge block_count and a tensor named blk.x.* are refused cleanly,
    and the model list still shows every other file."""
    from app.models import local

    folder = tmp_path / "models"
    bad = write_bad_files(folder, smollm)
    (folder / "good.gguf").symlink_to(smollm)
    listed = {m.name: m for m in local.folder_models(folder)}
    assert listed["good.gguf"].usable
    for name in ("huge_block_count.gguf", "bad_layer_name.gguf"):
        assert not listed[name].usable and bad[name.split(".")[0]][1] in listed[name].problem
