"""Prompt formats, quoted from the model cards, with their stop strings.

llama-cpp-python's built-in `phind` chat format does not match Phind's card (it adds a colon,
fixes the system prompt and sets no stop), so the Phind formats are built here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.engine import family

PHIND_SYSTEM = "You are an intelligent programming assistant."
FORMATS = ("raw", "phind-v2", "phind-v1", "chat")


@dataclass
class Prompt:
    text: str
    stop: list[str] = field(default_factory=list)
    format: str = "raw"


def phind_v2(user: str, system: str = PHIND_SYSTEM) -> Prompt:
    """Phind-CodeLlama-34B-v2 card: Alpaca/Vicuna-style headings."""
    text = f"### System Prompt\n{system}\n\n### User Message\n{user}\n\n### Assistant\n"
    # The model ends its turn with EOS; these stop it if it starts writing the next turn itself.
    return Prompt(text, ["### User Message", "### System Prompt"], "phind-v2")


def phind_v1(user: str) -> Prompt:
    """Phind v1 / Python-v1 cards: not chat-tuned, "add `\\n: ` at the end of your task"."""
    return Prompt(f"{user}\n: ", [], "phind-v1")


def raw(text: str) -> Prompt:
    return Prompt(text, [], "raw")


class ChatTemplateError(ValueError):
    pass


def chat(user: str, template: str, system: str | None = None, bos_token: str = "",
         eos_token: str = "") -> Prompt:
    messages = ([{"role": "system", "content": system}] if system else []) + \
               [{"role": "user", "content": user}]
    return render_messages(messages, template, bos_token, eos_token)


def render_messages(messages: list[dict], template: str, bos_token: str = "",
                    eos_token: str = "") -> Prompt:
    """Render the GGUF's own `tokenizer.chat_template` in a sandbox (the template comes from a
    downloaded file, so it must not reach Python objects)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise ChatTemplateError(message)

    try:
        text = env.from_string(template).render(
            messages=messages, add_generation_prompt=True, bos_token=bos_token,
            eos_token=eos_token, raise_exception=raise_exception)
    except TemplateError as exc:
        raise ChatTemplateError(f"the model's chat template failed: {exc}") from None
    # The engine adds BOS itself when tokenizing; a template that writes it would double it.
    if bos_token and text.startswith(bos_token):
        text = text[len(bos_token):]
    return Prompt(text, [eos_token] if eos_token else [], "chat")


def pick_format(name: str, chat_template: str | None) -> str:
    """Format for a model, from its file or general.name: Phind cards first, then its template."""
    return family.prompt_format(chat_template, name)


def build(fmt: str, user: str, *, model_name: str = "", chat_template: str | None = None,
          system: str | None = None, bos_token: str = "", eos_token: str = "") -> Prompt:
    if fmt == "auto":
        fmt = pick_format(model_name, chat_template)
    if fmt == "raw":
        return raw(user)
    if fmt == "phind-v2":
        return phind_v2(user, system or PHIND_SYSTEM)
    if fmt == "phind-v1":
        return phind_v1(user)
    if fmt == "chat":
        if not chat_template:
            raise ChatTemplateError("this model has no chat template; use --format raw or phind-v2")
        return chat(user, chat_template, system, bos_token, eos_token)
    raise ValueError(f"unknown prompt format {fmt!r} (choose from auto, {', '.join(FORMATS)})")
