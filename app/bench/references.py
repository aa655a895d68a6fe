"""Published HumanEval pass@1 figures (percent), with where each comes from."""
from __future__ import annotations

from dataclasses import dataclass

CODE_LLAMA_PAPER = "Rozière et al., Code Llama: Open Foundation Models for Code (2023), Table 2"
PHIND_V1_CARD = "huggingface.co/Phind/Phind-CodeLlama-34B-v1 (model card)"
PHIND_PY_CARD = "huggingface.co/Phind/Phind-CodeLlama-34B-Python-v1 (model card)"
PHIND_V2_CARD = "huggingface.co/Phind/Phind-CodeLlama-34B-v2 (model card)"
GPT4_REPORT = "OpenAI, GPT-4 Technical Report (2023), Table 2"


@dataclass(frozen=True)
class Reference:
    model: str
    pass_at_1: float
    source: str


REFERENCES = [
    Reference("Code Llama 7B", 33.5, CODE_LLAMA_PAPER),
    Reference("Code Llama 13B", 36.0, CODE_LLAMA_PAPER),
    Reference("Code Llama 34B", 48.8, CODE_LLAMA_PAPER),
    Reference("Code Llama - Python 7B", 38.4, CODE_LLAMA_PAPER),
    Reference("Code Llama - Python 13B", 43.3, CODE_LLAMA_PAPER),
    Reference("Code Llama - Python 34B", 53.7, CODE_LLAMA_PAPER),
    Reference("Code Llama - Instruct 7B", 34.8, CODE_LLAMA_PAPER),
    Reference("Code Llama - Instruct 13B", 42.7, CODE_LLAMA_PAPER),
    Reference("Code Llama - Instruct 34B", 41.5, CODE_LLAMA_PAPER),
    Reference("Unnatural Code Llama 34B", 62.2, CODE_LLAMA_PAPER),
    Reference("Phind-CodeLlama-34B-v1", 67.6, PHIND_V1_CARD),
    Reference("Phind-CodeLlama-34B-Python-v1", 69.5, PHIND_PY_CARD),
    Reference("Phind-CodeLlama-34B-v2", 73.8, PHIND_V2_CARD),
    Reference("GPT-4", 67.0, GPT4_REPORT),
    Reference("GPT-3.5", 48.1, GPT4_REPORT),
]


def for_model(name: str) -> Reference | None:
    """The published figure for a local model file, matched by name (e.g. a Phind quant)."""
    from app.engine import family

    version = family.phind_version(name)
    if version == "v2":
        return REFERENCES[12]
    if version:
        return REFERENCES[11] if "python" in name.lower() else REFERENCES[10]
    return None
