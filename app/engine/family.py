"""Which model family a model is, from its file name, its GGUF `general.name` or the id a server
gives it: the one place that decides "is this a Phind model" and what follows from it."""
from __future__ import annotations


def is_phind(*names: str) -> bool:
    return "phind" in " ".join(n for n in names if n).lower()


def phind_version(*names: str) -> str | None:
    """"v2" or "v1" (v1 and Python-v1 share a card), or None for a model that is not Phind's."""
    if not is_phind(*names):
        return None
    return "v2" if "v2" in " ".join(n for n in names if n).lower() else "v1"


def prompt_format(chat_template: str | None, *names: str) -> str:
    """The prompt format its card asks for: Phind's own, else the GGUF's chat template, else raw."""
    version = phind_version(*names)
    if version:
        return f"phind-{version}"
    return "chat" if chat_template else "raw"


def chat_format(*names: str) -> str:
    """Format of an instruction (the HumanEval instruct protocol, the assistant): Phind v2's
    headings for any Phind model, the model's own chat template otherwise."""
    return "phind-v2" if is_phind(*names) else "chat"


def humaneval_protocol(*names: str) -> str:
    """Phind's published evaluation for Phind models, Codex's for the rest."""
    return "phind" if is_phind(*names) else "codex"
