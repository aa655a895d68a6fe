"""Catalog, refresh from the hub, fit and recommendation, verify, local models."""
import json
import os
from pathlib import Path

import pytest

from app.models import advisor, catalog, local, speed
from tests.helpers import run_cli
from tests.models.conftest import make_gguf
from tests.models.fixtures import write_bad_files

GB = 10**9


def test_catalog_has_every_phind_quant_with_card_sizes():
    files = {f.id: f for f in catalog.files()}
    v2 = [f for f in files.values() if f.model == "phind-v2"]
    assert len(v2) == 12
    assert files["phind-v2:Q4_K_M"].filename == "phind-codellama-34b-v2.Q4_K_M.gguf"
    assert files["phind-v2:Q4_K_M"].size_bytes == 20_220_000_000
    assert files["phind-v2:Q2_K"].size_bytes == 14_210_000_000
    assert files["phind-v2:Q8_0"].size_bytes == 35_860_000_000
    assert files["phind-python-v1:Q5_K_M"].filename == "phind-codellama-34b-python-v1.Q5_K_M.gguf"
    assert files["phind-v1:Q4_K_M"].repo == "TheBloke/Phind-CodeLlama-34B-v1-GGUF"
    assert {f.license for f in files.values() if f.model.startswith(("phind", "codellama"))} == {
        "Llama 2 Community License"}
    assert files["phind-v2:Q4_K_M"].humaneval == 73.8
    assert files["codellama-7b-instruct:Q4_K_M"].infill and not files["phind-v2:Q4_K_M"].infill


def test_small_code_models_with_licence_size_humaneval_and_infill_by_family():
    files = {f.id: f for f in catalog.files()}
    expect = {  # id: (licence, GB, published HumanEval, base build)
        "qwen2.5-coder-0.5b-instruct:Q4_K_M": ("Apache-2.0", 0.398, 61.6, False),
        "qwen2.5-coder-1.5b-instruct:Q4_K_M": ("Apache-2.0", 0.986, 70.7, False),
        "qwen2.5-coder-7b-instruct:Q4_K_M": ("Apache-2.0", 4.68, 88.4, False),
        "deepseek-coder-1.3b-instruct:Q4_K_M": ("DeepSeek License Agreement", 0.874, 65.2, False),
        "deepseek-coder-6.7b-instruct:Q4_K_M": ("DeepSeek License Agreement", 4.08, 78.6, False),
        "qwen2.5-coder-0.5b:Q4_K_M": ("Apache-2.0", 0.398, 28.0, True),
        "qwen2.5-coder-1.5b:Q4_K_M": ("Apache-2.0", 0.986, 43.9, True),
        "deepseek-coder-1.3b-base:Q4_K_M": ("DeepSeek License Agreement", 0.874, 34.8, True),
    }
    for fid, (lic, gb, he, base) in expect.items():
        f = files[fid]
        assert (f.license, f.size_bytes, f.humaneval, f.base) == (lic, int(round(gb * 1e9)), he, base), fid
        assert f.infill, "Qwen2.5-Coder and deepseek-coder have fill-in-the-middle tokens"
    assert files["qwen2.5-coder-1.5b:Q8_0"].filename == "Qwen2.5-Coder-1.5B.Q8_0.gguf"
    assert files["deepseek-coder-1.3b-base:Q4_K_M"].repo == "TheBloke/deepseek-coder-1.3b-base-GGUF"
    assert not any(f.infill for f in files.values() if f.model.startswith("phind"))


# Worked by hand (decimal GB; 34B layer = (size - 0.215 head - 0.147 embeddings) / 48, plus
# 0.0168 GB of KV cache per layer at 4096 tokens; 0.7 GB reserve and 0.074 GB compute on the GPU):
#  80 GB GPU: Q8_0 needs 48 * (0.7395 + 0.0168) + 0.215 + 0.074 = 36.6 GB  -> Q8_0, whole
#  24 GB GPU: Q5_K_M needs 24.6 GB (+0.7 > 24); Q4_K_M needs 21.0 GB    -> Q4_K_M, whole
#  12 GB GPU: nothing whole; Q4_K_M: (12 - 0.7 - 0.074) / 0.4305 = 26 layers on the GPU
#  64 GB RAM, no GPU: Q4_K_M on the CPU needs 21.1 GB                   -> Q4_K_M, CPU
#  16 GB RAM, no GPU: 34B Q3_K_M needs 17.2 GB; 13B Q4_K_M needs 7.87 + 3.36 KV + ... = 11.3 GB
@pytest.mark.parametrize("vram,ram,expected,layers", [
    (80 * GB, 64 * GB, "phind-v2:Q8_0", 49),
    (24 * GB, 64 * GB, "phind-v2:Q4_K_M", 49),
    (12 * GB, 32 * GB, "phind-v2:Q4_K_M", 26),
    (None, 64 * GB, "phind-v2:Q4_K_M", 0),
    (None, 16 * GB, "codellama-13b-instruct:Q4_K_M", 0),
])
def test_best_quant_of_phind_for_fixed_machines(vram, ram, expected, layers):
    rec = advisor.best_quant("phind-v2", advisor.Machine(vram, ram))
    if expected.startswith("codellama"):   # the 34B does not fit: Code Llama 13B's quant does
        assert rec.file is None
        rec = advisor.best_quant("codellama-13b-instruct", advisor.Machine(vram, ram))
    assert rec.file.id == expected
    assert rec.plan.n_gpu_layers == layers
    assert "GB" in rec.reason and rec.reason.endswith(".") and ". " not in rec.reason  # one sentence


def test_best_quant_sentences_give_numbers():
    phind = lambda m: advisor.best_quant("phind-v2", m)  # noqa: E731
    assert "fits whole on the GPU" in phind(advisor.Machine(24 * GB, 64 * GB)).reason
    part = phind(advisor.Machine(12 * GB, 32 * GB)).reason
    assert "26 of 48 layers on the GPU" in part and "12.0 GB" in part
    small = phind(advisor.Machine(None, 16 * GB)).reason
    assert small.startswith("Phind-CodeLlama-34B-v2 does not fit (its Q3_K_M needs 17.2 GB")
    assert advisor.recommend(advisor.Machine(None, 0.3 * GB)).file is None


def test_advice_on_a_small_cpu_machine_recommends_small_fast_files():
    laptop = advisor.Machine(None, 20 * GB, speed=speed.Speed(8e9))   # 8 GB/s: a modest laptop
    advice = advisor.advise(laptop)
    for rec in (advice.ask, advice.complete):
        assert rec.file is not None and "34b" not in rec.file.id and not rec.slow
        assert advice.tps[rec.file.id] >= advisor.INTERACTIVE_TPS
    assert not advice.ask.file.base and advice.complete.file.base and advice.complete.file.infill
    assert advice.tps["phind-v2:Q4_K_M"] < 1.0          # 20 GB read per token at 8 GB/s
    assert advisor.recommend(laptop).file.id == advice.ask.file.id
    assert "tokens/s here" in advice.ask.reason and advice.ask.reason.endswith(".")


def test_advice_says_so_when_nothing_is_fast_enough_and_names_the_fastest():
    crawl = advisor.Machine(None, 20 * GB, speed=speed.Speed(0.5e9))
    rec = advisor.advise(crawl).ask
    assert rec.slow and rec.reason.startswith("Nothing in the catalog reaches 3 tokens/s")
    fastest = max((f for f in catalog.files() if not f.base and advisor.fit(f, crawl).fits
                   and f.quant in advisor.QUANTS[advisor.QUANTS.index(advisor.MIN_QUANT):]),
                  key=lambda f: advisor.predictions(crawl)[f.id])
    assert rec.file.size_bytes == fastest.size_bytes and "fastest is" in rec.reason


def test_a_big_gpu_gets_a_bigger_model_whole_on_it():
    advice = advisor.advise(advisor.Machine(24 * GB, 64 * GB))
    assert advice.ask.plan.full_gpu and advice.ask.file.humaneval >= 78
    assert advice.tps[advice.ask.file.id] > advice.tps["phind-v2:Q4_K_M"]


def test_calibration_from_one_measured_speed():
    s = speed.calibrate(10e9, 100_000_000, 50.0)          # 20 ms per token, 10 ms of it reading
    assert abs(s.overhead_s - 0.010) < 1e-9 and s.tokens_per_s(100_000_000) == pytest.approx(50.0)
    assert s.tokens_per_s(1_000_000_000) == pytest.approx(1 / 0.110)
    fast_threads = speed.calibrate(1e9, 100_000_000, 50.0)   # faster than the probe: trust the run
    assert fast_threads.tokens_per_s(100_000_000) == pytest.approx(50.0)
    gpu = speed.calibrate(10e9, 4_000_000_000, 40.0, on_gpu=True)
    assert gpu.gpu_bandwidth > 100e9
    speed.save(s)
    assert speed.load() == s


def test_calibration_takes_the_threads_arithmetic_where_it_is_slower_than_memory():
    # 20 ms a token with 2 threads, 35 with 1: the arithmetic takes 15 ms with 2 threads, slower
    # than the 10 ms the probe's bandwidth allows, so 100 MB cost 15 ms and 5 ms are fixed.
    s = speed.calibrate(10e9, 100_000_000, 50.0, half_threads_tps=1 / 0.035, threads=2)
    assert s.cpu_bandwidth == pytest.approx(100_000_000 / 0.015)
    assert s.overhead_s == pytest.approx(0.005) and s.tokens_per_s(100_000_000) == pytest.approx(50.0)
    assert s.tokens_per_s(1_000_000_000) == pytest.approx(1 / 0.155)
    # 25 ms with 1 thread: the arithmetic (5 ms) is faster than memory, which then sets the cost
    memory = speed.calibrate(10e9, 100_000_000, 50.0, half_threads_tps=1 / 0.025, threads=2)
    assert memory.cpu_bandwidth == 10e9 and memory.overhead_s == pytest.approx(0.010)
    assert speed.calibrate(10e9, 100_000_000, 50.0, half_threads_tps=60.0, threads=2).cpu_bandwidth == 10e9
    # 8 threads, 30 ms with 4: a(8) = 10 ms, as fast as memory; 34 ms with 4: 14 ms, slower
    assert speed.calibrate(10e9, 100_000_000, 50.0, half_threads_tps=1 / 0.030, threads=8).cpu_bandwidth == pytest.approx(10e9)
    assert speed.calibrate(10e9, 100_000_000, 50.0, half_threads_tps=1 / 0.034, threads=8).overhead_s == pytest.approx(0.006)


def test_fit_labels():
    f = catalog.find("phind-v2:Q4_K_M")
    assert advisor.fit(f, advisor.Machine(24 * GB, 64 * GB)).label == "whole on the GPU"
    assert advisor.fit(f, advisor.Machine(12 * GB, 64 * GB)).label == "26/48 layers on the GPU"
    assert advisor.fit(f, advisor.Machine(None, 64 * GB)).label == "CPU only"
    assert advisor.fit(f, advisor.Machine(None, 8 * GB)).label == "does not fit"


def test_models_refresh_updates_sizes_and_hashes(hub, tmp_path):
    served = {}
    for m in catalog.MODELS:
        name = m.file_pattern.format(quant="Q4_K_M")
        data = make_gguf(tmp_path / name, seed=len(served))
        served[f"{m.key}:Q4_K_M"] = hub.state.add(m.repo, name, data, commit="c" * 40)
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint}
    r = run_cli("models", "refresh", env=env)
    assert r.returncode == 0, r.stderr
    n = len(catalog.MODELS)
    assert f"refreshed {n} files from {n} repositories" in r.stdout
    listed = json.loads(run_cli("models", "list", "--json", env=env).stdout)
    by_id = {f["id"]: f for f in listed["files"]}
    for fid, hf in served.items():
        assert by_id[fid]["size_bytes"] == len(hf.data)
        assert by_id[fid]["sha256"] == hf.sha256 and by_id[fid]["size_source"] == "hub"
    assert by_id["phind-v2:Q8_0"]["size_source"] == "model card"
    for f in listed["files"]:
        assert {"filename", "size_bytes", "quant", "fit", "downloaded"} <= f.keys()


def test_models_refresh_offline_is_a_clear_error():
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9"}
    r = run_cli("models", "refresh", env=env)
    assert r.returncode == 2 and "refresh failed" in r.stderr and "Traceback" not in r.stderr


def test_models_verify(tmp_path, smollm):
    assert run_cli("models", "verify", str(smollm)).returncode == 0
    for name, (path, expect) in write_bad_files(tmp_path, smollm).items():
        r = run_cli("models", "verify", str(path))
        if name == "nosucharch":
            assert r.returncode == 0  # a well-formed header; llama.cpp decides at load time
            continue
        assert r.returncode == 2, name
        assert expect in r.stderr and len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)


def test_import_list_and_delete_local_models(tmp_path, smollm):
    folder = tmp_path / "models"
    m = local.import_model(smollm, folder=folder)
    assert m.usable and Path(m.path).parent == folder
    (folder / "half.gguf").write_bytes(smollm.read_bytes()[:1000])
    listed = {x.name: x for x in local.folder_models(folder)}
    assert listed["SmolLM2-135M-Instruct.Q4_1.gguf"].usable
    assert not listed["half.gguf"].usable and "truncated" in listed["half.gguf"].problem
    with pytest.raises(ValueError, match="needs"):
        local.import_model(smollm, folder=tmp_path / "other", capacity=10_000_000)
    with pytest.raises(Exception, match="HTML|not a GGUF"):
        bad = tmp_path / "page.gguf"
        bad.write_text("<html>nope</html>")
        local.import_model(bad, folder=folder)
    local.delete_model(m.path, folder=folder)
    assert not Path(m.path).exists()
    with pytest.raises(ValueError, match="not deleting"):
        local.delete_model(smollm, folder=folder, cache=tmp_path / "hf")
    assert smollm.exists()


def test_models_measure_then_list_predicts_from_the_measurement(smollm, tmp_path):
    r = run_cli("models", "measure", str(smollm), timeout=600)
    assert r.returncode == 0, r.stderr
    assert "tokens/s with SmolLM2-135M-Instruct.Q4_1.gguf" in r.stdout
    listed = json.loads(run_cli("models", "list", "--json").stdout)
    measured = listed["machine"]["speed"]
    assert measured["measured_tps"] > 0 and measured["probe_bandwidth"] > 0
    tps = {f["id"]: f["tokens_per_s"] for f in listed["files"]}
    assert tps["qwen2.5-coder-0.5b-instruct:Q4_K_M"] > tps["qwen2.5-coder-7b-instruct:Q4_K_M"] > 0
    assert listed["recommended"] and listed["recommended_for_completion"]
    bad = run_cli("models", "measure", str(tmp_path / "missing.gguf"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
