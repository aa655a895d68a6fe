"""Issue 11 item 9: `models delete` resolves the real path and deletes only inside the models
folder or the HF cache; anything else exits 2 and loses nothing."""
import os
from pathlib import Path

from tests.helpers import run_cli


def _env(tmp_path):
    home, hf = tmp_path / "home", tmp_path / "hf"
    models = home / "data" / "models"
    models.mkdir(parents=True)
    hf.mkdir()
    return {**os.environ, "LLAMADESK_HOME": str(home), "HF_HUB_CACHE": str(hf)}, models, hf


def _refused(r):
    lines = r.stderr.strip().splitlines()
    return r.returncode == 2 and len(lines) == 1 and "not deleting" in lines[0]


def test_dot_dot_out_of_the_models_folder_is_refused(tmp_path):
    env, models, _ = _env(tmp_path)
    victim = tmp_path / "victim.gguf"
    victim.write_text("precious")
    r = run_cli("models", "delete", f"{models}/../../../victim.gguf", env=env)
    assert _refused(r), (r.returncode, r.stderr)
    assert victim.read_text() == "precious"


def test_dot_dot_out_of_the_hf_cache_is_refused_not_reported_deleted(tmp_path):
    env, _, hf = _env(tmp_path)
    victim = tmp_path / "victim2.gguf"
    victim.write_text("precious")
    r = run_cli("models", "delete", f"{hf}/../victim2.gguf", env=env)
    assert _refused(r), (r.returncode, r.stdout, r.stderr)
    assert "deleted" not in r.stdout and victim.exists()


def test_symlinked_folder_inside_the_models_folder_is_followed_and_refused(tmp_path):
    env, models, _ = _env(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.gguf").write_text("precious")
    (models / "elsewhere").symlink_to(outside)
    r = run_cli("models", "delete", str(models / "elsewhere" / "keep.gguf"), env=env)
    assert _refused(r), (r.returncode, r.stderr)
    assert (outside / "keep.gguf").exists()


def test_what_is_inside_is_deleted_and_a_link_keeps_its_target(tmp_path):
    env, models, hf = _env(tmp_path)
    original = tmp_path / "mine.gguf"
    original.write_text("the user's own file")
    (models / "linked.gguf").symlink_to(original)
    r = run_cli("models", "delete", str(models / "linked.gguf"), env=env)
    assert r.returncode == 0, r.stderr
    assert not os.path.lexists(models / "linked.gguf") and original.exists()

    repo = hf / "models--a--b"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / ("c" * 40)).mkdir(parents=True)
    blob = repo / "blobs" / ("d" * 64)
    blob.write_text("weights")
    link = repo / "snapshots" / ("c" * 40) / "m.gguf"
    link.symlink_to(Path("..") / ".." / "blobs" / blob.name)
    r = run_cli("models", "delete", str(link), env=env)
    assert r.returncode == 0, r.stderr
    assert not os.path.lexists(link) and not blob.exists()
