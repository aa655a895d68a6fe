"""The committed edit prompts (tests/bench/data/edit_prompts.json), built the way the assistant's
Edit selection builds them, and the parameters a default GUI Edit sends."""
from __future__ import annotations

import json
from pathlib import Path

from app import assist
from app.engine.prompts import pick_format
from app.engine.protocol import GenerateParams

DATA = Path(__file__).parent / "bench" / "data" / "edit_prompts.json"


def edit_cases() -> list[dict]:
    return json.loads(DATA.read_text())


def build(case: dict, info) -> tuple[str, list[str]]:
    fmt = {"fmt": pick_format(f"{info.name} {info.path}", info.chat_template),
           "chat_template": info.chat_template, "bos": info.bos_token, "eos": info.eos_token}
    p = assist.edit_prompt(case["instruction"], case["code"], case["language"], **fmt)
    return p.text, p.stop


def params(stop: list[str], max_tokens: int, lookup: bool | None = None) -> GenerateParams:
    return GenerateParams.for_edit(max_tokens, stop, lookup=lookup)
