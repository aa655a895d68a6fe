"""Prompt formats, quoted from the model cards, with their stop strings.

llama-cpp-python's built-in `phind` chat format does not match Phind's card (it adds a colon,
fixes the system prompt and sets no stop), so the Phind formats are built here.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
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


# A chat template comes from a downloaded file: besides the sandbox (no Python objects), its
# render is bounded in time, loop steps and output, so that a hostile one cannot hang the app.
RENDER_TIMEOUT_S = 5.0
MAX_LOOP_STEPS = 1_000_000        # real templates loop over a handful of messages
MAX_OUTPUT_EXTRA = 1 << 20        # characters beyond the messages themselves
MAX_SEQUENCE = 1 << 22            # a string or list built by * or ** in the template


class _Budget:
    def __init__(self, timeout_s: float, max_output: int):
        self.deadline = time.monotonic() + timeout_s
        self.steps = 0
        self.max_output = max_output
        self.stopped = False      # set by the caller when it gave up waiting

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_LOOP_STEPS:
            raise SecurityError(f"it runs more than {MAX_LOOP_STEPS:,} loop steps")
        if self.stopped or (self.steps & 1023 == 0 and time.monotonic() > self.deadline):
            raise SecurityError("it takes too long")

    def check_time(self) -> None:
        if self.stopped or time.monotonic() > self.deadline:
            raise SecurityError("it takes too long")


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, budget: _Budget):
        super().__init__(trim_blocks=True, lstrip_blocks=True)
        self.budget = budget
        self.globals["range"] = self._range

    def _range(self, *args):
        r = range(*args)
        if len(r) > MAX_LOOP_STEPS:
            raise SecurityError(f"range of {len(r):,} items")
        for i in r:
            self.budget.tick()
            yield i

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64 \
                and not (isinstance(left, (int, float)) and abs(left) <= 1):
            raise SecurityError("a power too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_SEQUENCE:
                    raise SecurityError(f"a sequence of {len(seq) * n:,} items")
        self.budget.tick()
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja2's signature
        __self.budget.tick()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj, attribute):
        self.budget.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        self.budget.tick()
        return super().getitem(obj, argument)


def render_template(template: str, timeout_s: float = RENDER_TIMEOUT_S, **variables) -> str:
    """Render an untrusted Jinja chat template in the sandbox, on a thread of its own, within
    `timeout_s`, MAX_LOOP_STEPS and an output limit; ChatTemplateError says what went wrong."""
    size = sum(len(str(m.get("content", ""))) for m in variables.get("messages", ()))
    budget = _Budget(timeout_s, size + MAX_OUTPUT_EXTRA)
    env = _BoundedEnvironment(budget)

    def raise_exception(message):
        raise ChatTemplateError(str(message))

    try:
        compiled = env.from_string(template)
    except TemplateSyntaxError as exc:
        raise ChatTemplateError(f"the model's chat template has a syntax error (line {exc.lineno}): "
                                f"{exc.message}") from None
    except TemplateError as exc:
        raise ChatTemplateError(f"the model's chat template cannot be used: {exc}") from None
    result: list = []

    def run() -> None:
        try:
            parts, n = [], 0
            for piece in compiled.generate(**variables, raise_exception=raise_exception):
                n += len(piece)
                if n > budget.max_output:
                    raise SecurityError(f"its output passes {budget.max_output:,} characters")
                budget.check_time()
                parts.append(piece)
            result.append("".join(parts))
        except BaseException as exc:  # handed to the caller's thread
            result.append(exc)

    worker = threading.Thread(target=run, name="chat-template", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        budget.stopped = True  # its next loop step or call ends it
        raise ChatTemplateError(f"the model's chat template took more than {timeout_s:g} s to render; "
                                f"use another --format")
    out = result[0]
    if isinstance(out, ChatTemplateError):
        raise ChatTemplateError(f"the model's chat template refused the prompt: {out}") from None
    if isinstance(out, SecurityError):
        raise ChatTemplateError(f"the model's chat template was stopped: {out}") from None
    if isinstance(out, (TemplateError, RecursionError, MemoryError, OverflowError, ArithmeticError,
                        TypeError, ValueError, LookupError, AttributeError)):
        raise ChatTemplateError(f"the model's chat template failed: {type(out).__name__}: "
                                f"{' '.join(str(out).split())[:300]}") from None
    if isinstance(out, BaseException):
        raise out
    return out


def check_template(template: str) -> None:
    """Raise ChatTemplateError if the template does not even compile (before a model loads)."""
    try:
        ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).parse(template)
    except TemplateSyntaxError as exc:
        raise ChatTemplateError(f"the model's chat template has a syntax error (line {exc.lineno}): "
                                f"{exc.message}") from None


def chat(user: str, template: str, system: str | None = None, bos_token: str = "",
         eos_token: str = "") -> Prompt:
    messages = ([{"role": "system", "content": system}] if system else []) + \
               [{"role": "user", "content": user}]
    return render_messages(messages, template, bos_token, eos_token)


def render_messages(messages: list[dict], template: str, bos_token: str = "",
                    eos_token: str = "") -> Prompt:
    """Render the GGUF's own `tokenizer.chat_template` (untrusted: see render_template)."""
    text = render_template(template, messages=messages, add_generation_prompt=True,
                           bos_token=bos_token, eos_token=eos_token)
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
