"""What the assistant sends to the model: Ask, Complete at cursor and Edit selection prompts,
with the file context trimmed to fit the context window. No Qt here; the panel calls it."""
from __future__ import annotations

import re
from dataclasses import dataclass

from app.engine import prompts

CHARS_PER_TOKEN = 3.2   # code averages 3-4 characters per token; err on the side of fewer
ASK_SYSTEM = "You are an intelligent programming assistant."
_FENCE = re.compile(r"```([\w+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)
_CLOSED_FENCE = re.compile(r"^[ \t]*```([\w+-]*)[ \t]*\n(.*?)^[ \t]*```", re.S | re.M)
EARLIER_TURNS = 3         # earlier turns of the conversation sent with a question
EARLIER_CHARS = 1200      # of each earlier answer


def approx_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


@dataclass
class Context:
    text: str
    label: str          # what was included, for the indicator
    tokens: int
    trimmed: bool


def context_for(document: str, selection: str, filename: str, budget_tokens: int,
                cursor_line: int = 0) -> Context:
    """The selection if there is one, else the file, trimmed around the cursor to the budget."""
    if selection:
        text, what = selection, f"selection in {filename}"
    else:
        text, what = document, filename
    if approx_tokens(text) <= budget_tokens:
        lines = text.count("\n") + 1
        return Context(text, f"{what} ({lines} lines, ≈{approx_tokens(text)} tokens)", approx_tokens(text), False)
    lines = text.split("\n")
    keep = int(budget_tokens * CHARS_PER_TOKEN)
    lo = hi = min(max(0, cursor_line), len(lines) - 1)
    size = len(lines[lo]) + 1
    while True:  # grow a window of lines around the cursor until the budget is spent
        grown = False
        if lo > 0 and size + len(lines[lo - 1]) + 1 <= keep:
            lo -= 1
            size += len(lines[lo]) + 1
            grown = True
        if hi < len(lines) - 1 and size + len(lines[hi + 1]) + 1 <= keep:
            hi += 1
            size += len(lines[hi]) + 1
            grown = True
        if not grown:
            break
    part = "\n".join(lines[lo:hi + 1])
    return Context(part, f"{what}, lines {lo + 1}-{hi + 1} of {len(lines)} (≈{approx_tokens(part)} tokens)",
                   approx_tokens(part), True)


def chat_prompt(fmt: str, user: str, *, chat_template=None, bos="", eos="") -> prompts.Prompt:
    if fmt in ("raw", "phind-v1") or (fmt == "chat" and not chat_template):
        fmt = "phind-v2" if fmt == "raw" else fmt
    return prompts.build(fmt, user, chat_template=chat_template, system=ASK_SYSTEM,
                         bos_token=bos, eos_token=eos)


def ask_prompt(question: str, ctx: Context | None, language: str,
               earlier: list[tuple[str, str]] | None = None, **fmt) -> prompts.Prompt:
    """The question, after the code context and the last few turns of the conversation."""
    user = question
    if ctx and ctx.text.strip():
        user = f"Here is {ctx.label.split(' (')[0]}:\n```{language}\n{ctx.text}\n```\n\n{question}"
    if earlier:
        past = "\n\n".join(f"Question: {q}\nAnswer: {a[:EARLIER_CHARS]}" for q, a in earlier[-EARLIER_TURNS:])
        user = f"Earlier in this conversation:\n{past}\n\nNow: {user}"
    return chat_prompt(user=user, **fmt)


def edit_prompt(instruction: str, code: str, language: str, **fmt) -> prompts.Prompt:
    user = (f"Rewrite this code: {instruction}\nAnswer with the complete rewritten code in one "
            f"```{language} block and nothing else.\n\n```{language}\n{code}\n```")
    return chat_prompt(user=user, **fmt)


def code_blocks(answer: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block of a Markdown answer, the last one possibly open."""
    return [(lang, code.rstrip("\n")) for lang, code in _FENCE.findall(answer)]


def closed_code(answer: str) -> str | None:
    """The first fenced block once its closing fence has arrived (None before): Edit selection
    stops the generation there, the prose after it is not waited for."""
    m = _CLOSED_FENCE.search(answer)
    return m.group(2).rstrip("\n") if m else None


def first_code(answer: str) -> str:
    blocks = code_blocks(answer)
    return blocks[0][1] if blocks else answer.strip()
