"""Infill prompts, chosen from the fill-in-the-middle tokens the model itself declares.

The GGUF's tokenizer metadata names the FIM token ids (`tokenizer.ggml.fim_pre_token_id`,
... or the older `prefix_token_id` / `suffix_token_id` / `middle_token_id`); the engine reports
their texts when it loads the model (`ModelInfo.fim_tokens`). The layout follows those tokens,
never the file name:

- Code Llama 7B/13B (`<PRE>`, `<SUF>`, `<MID>`): `<PRE> {prefix} <SUF>{suffix} <MID>`, as in
  the model card; it has no file tokens, so project context goes in as plain snippets.
- StarCoder-style (`<fim_prefix>`, `<fim_suffix>`, `<fim_middle>`, StarCoder2 `<file_sep>`) and
  Qwen2.5-Coder (`<|fim_prefix|>`, ..., `<|file_sep|>`, `<|repo_name|>`): repository-level
  layout, one `file_sep` section per context chunk, then the current file with the FIM tokens.
- No infill tokens (SmolLM2, Gemma, Phind-CodeLlama-34B): the text before the cursor only;
  the suffix then serves only to trim what the model repeats (trim.trim_overlap).
- A server that lays out infill itself (llama-server's `/infill`, which knows its model's FIM
  tokens while we know none): the parts go to it as they are (`for_server`).

Order for the cache: context first (changes rarely), then the prefix; with infill tokens the
suffix (a few lines) and the middle token come after it, so a keystroke at the end of the
prefix re-evaluates only the new characters and those few suffix tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("pre", "suf", "mid", "pad", "rep", "sep")
SNIPPET = "\n\n--- snippet ---\n\n"  # as llama-server separates chunks for models without file tokens


@dataclass(frozen=True)
class FimTokens:
    """The texts of the model's FIM tokens ('' when the model has none for a role)."""
    pre: str = ""
    suf: str = ""
    mid: str = ""
    pad: str = ""
    rep: str = ""
    sep: str = ""

    @classmethod
    def from_dict(cls, d: dict | None) -> "FimTokens":
        d = d or {}
        return cls(**{r: str(d.get(r) or "") for r in ROLES})

    @property
    def infill(self) -> bool:
        return bool(self.pre and self.suf and self.mid)

    @property
    def family(self) -> str:
        if not self.infill:
            return "prefix-only"
        if self.pre.strip() == "<PRE>":
            return "codellama"
        if self.pre.startswith("<|"):
            return "qwen"
        return "starcoder"


@dataclass
class Chunk:
    filename: str
    text: str


SERVER = "server-infill"


@dataclass
class FimPrompt:
    text: str
    stop: list[str] = field(default_factory=list)
    family: str = "prefix-only"
    server: dict | None = None  # Engine.infill's arguments, for the SERVER family (text is "")


def build(tokens: FimTokens, prefix: str, suffix: str, context: list[Chunk] = (),
          filename: str = "") -> FimPrompt:
    family = tokens.family
    t = tokens
    stops = [s for s in (t.pre, t.suf, t.mid, t.sep, t.rep, t.pad) if s]
    if family == "prefix-only":
        extra = "".join(f"{SNIPPET}{c.text}" for c in context)
        if extra:
            extra += SNIPPET
        return FimPrompt(extra + prefix, stops, family)
    if family == "codellama":
        extra = "".join(f"{SNIPPET}{c.text}" for c in context)
        if extra:
            extra += SNIPPET
        # The card's layout: a space after <PRE> and before <SUF>/<MID>.
        return FimPrompt(f"{t.pre} {extra}{prefix} {t.suf}{suffix} {t.mid}", stops, family)
    head = ""
    if t.sep:
        if t.rep:
            head += f"{t.rep}project\n"
        for c in context:
            head += f"{t.sep}{c.filename}\n{c.text}"
            if not c.text.endswith("\n"):
                head += "\n"
        head += f"{t.sep}{filename or 'file'}\n"
    else:
        head = "".join(f"{SNIPPET}{c.text}" for c in context) + (SNIPPET if context else "")
    return FimPrompt(f"{head}{t.pre}{prefix}{t.suf}{suffix}{t.mid}", stops, family)


def for_server(prefix: str, cursor_line: str, suffix: str, context: list[Chunk] = ()) -> FimPrompt:
    """The parts for an engine's own infill layout. The cursor's line goes apart as `prompt`
    (as llama.vim sends it): the server tokenizes it on its own, so typing never changes how the
    lines above tokenize, and their cached tokens stay valid."""
    if cursor_line and prefix.endswith(cursor_line):
        above, line = prefix[:-len(cursor_line)], cursor_line
    else:
        above, line = prefix, ""
    return FimPrompt("", [], SERVER, {
        "prefix": above, "suffix": suffix, "prompt": line,
        "extra": [{"filename": c.filename, "text": c.text} for c in context]})


def from_server_props(props: dict) -> FimTokens:
    """A server's `/props` (llama-server) as FimTokens, where it names them; else none."""
    d = {}
    for role in ROLES:
        for key in (f"fim_{role}_token", f"fim_{role}"):
            v = props.get(key) or (props.get("default_generation_settings") or {}).get(key)
            if isinstance(v, str) and v:
                d[role] = v
    return FimTokens.from_dict(d)
