"""HumanEval contamination check, the method of the GPT-4 Technical Report (Appendix C).

The paper's method, with each choice explicit and recorded in the report:
- evaluation and training text are normalised by removing all spaces and symbols, keeping
  letters and digits (Unicode `str.isalnum`); case is kept unless `casefold` is set;
- from each HumanEval task only the question side is used (the `prompt` field);
- three 50-character substrings are sampled per task with a recorded seed (the whole
  normalised prompt if it is shorter);
- a task is contaminated if any of its substrings occurs in a normalised training example.
  Each text field of a record is normalised and checked on its own.
Beyond the paper (labelled so in the report): `exhaustive` tests every 50-character window of
each prompt and reports the fraction of windows found.

Speed: any occurrence of a 50-character substring contains one of the 25-character blocks that
start at multiples of 26 in the text, so the scan looks up one block per 26 characters in a
set of all 25-character pieces of the substrings, and only texts with a hit are checked in full.
For JSONL, decontam_filter.py does that over raw lines before any is parsed.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.bench.decontam_filter import LineFilter

GRAM = 25
STRIDE = 26          # GRAM + STRIDE - 1 <= the substring length (50), so no occurrence is missed
_NON_ALNUM = re.compile(r"[\W_]+")   # \w is isalnum() plus "_" in Python's re
_ASCII_DELETE = "".join(chr(c) for c in range(128) if not chr(c).isalnum())
_ASCII_TABLE = str.maketrans("", "", _ASCII_DELETE)


def normalise(text: str, casefold: bool = False) -> str:
    """Letters and digits only (Unicode isalnum), as the GPT-4 report does."""
    out = text.translate(_ASCII_TABLE) if text.isascii() else _NON_ALNUM.sub("", text)
    return out.casefold() if casefold else out


@dataclass
class Settings:
    length: int = 50
    samples: int = 3
    seed: int = 0
    casefold: bool = False
    exhaustive: bool = False
    fields: list[str] | None = None
    max_record_mb: int = 64     # longer records are scanned as raw text in windows, never loaded whole
    validate_json: bool = False   # parse every JSONL line; by default only those the filter lets through

    def describe(self) -> dict:
        d = asdict(self)
        d["method"] = ("GPT-4 Technical Report, Appendix C: normalise by removing all spaces and "
                       "symbols (keep str.isalnum characters); sample 3 substrings of 50 characters "
                       "per HumanEval prompt; contaminated if any occurs in a normalised training "
                       "example; each text field checked on its own")
        d["question_side_only"] = "prompt"
        d["exhaustive_is_beyond_the_paper"] = self.exhaustive
        return d


@dataclass
class Task:
    task_id: str
    norm: str
    substrings: list[str]                  # the sampled ones (paper mode)
    windows: int = 0                       # exhaustive mode: number of windows
    found: set = field(default_factory=set)
    match: dict | None = None


def prepare_tasks(problems: list[dict], s: Settings) -> list[Task]:
    rng = random.Random(s.seed)
    tasks = []
    for p in problems:
        norm = normalise(p["prompt"], s.casefold)
        if len(norm) <= s.length:
            subs = [norm] * s.samples  # "the entire example if shorter", once per sample
        else:
            starts = rng.sample(range(len(norm) - s.length + 1), min(s.samples, len(norm) - s.length + 1))
            subs = [norm[i:i + s.length] for i in sorted(starts)]
        tasks.append(Task(p["task_id"], norm, subs, windows=max(1, len(norm) - s.length + 1)))
    return tasks


class Matcher:
    """Finds which tasks' substrings (or windows) occur in normalised texts."""

    def __init__(self, tasks: list[Task], s: Settings):
        self.tasks = tasks
        self.s = s
        needles = [t.norm for t in tasks] if s.exhaustive else [x for t in tasks for x in t.substrings]
        shortest = max(1, min(min(len(x), s.length) for x in needles))
        # Any occurrence of a needle of length >= shortest contains a block [i, i + gram) with
        # i a multiple of stride, because gram + stride - 1 <= shortest.
        self.gram = min(GRAM, (shortest + 1) // 2)
        self.stride = shortest - self.gram + 1
        grams: dict[str, set[int]] = {}
        for k, t in enumerate(tasks):
            for src in ([t.norm] if s.exhaustive else t.substrings):
                for o in range(0, len(src) - self.gram + 1):
                    grams.setdefault(src[o:o + self.gram], set()).add(k)
        self.grams = grams
        self.gram_set = frozenset(grams)
        self.lines = LineFilter(needles, grams, self.gram, self.stride, s.casefold,
                                window=s.length if s.exhaustive else None)

    def blocks(self, text: str):
        n, g, st = len(text), self.gram, self.stride
        return map(text.__getitem__, map(slice, range(0, n, st), range(g, n + g, st)))

    def blocks_hit(self, text: str) -> bool:
        """Cheap filter: could the normalised `text` hold a match?"""
        return not self.gram_set.isdisjoint(self.blocks(text))

    def candidates(self, text: str) -> set[int]:
        out: set[int] = set()
        for block in self.blocks(text):
            ks = self.grams.get(block)
            if ks:
                out |= ks
        return out

    def check_field(self, text: str, where: dict) -> bool:
        """Full check of one normalised field; records matches on the tasks."""
        L, hit = self.s.length, False
        for k in self.candidates(text):
            t = self.tasks[k]
            if self.s.exhaustive:
                if len(t.norm) <= L:
                    if 0 not in t.found and t.norm in text:
                        t.found.add(0)
                        t.match = t.match or {"substring": t.norm, **where}
                        hit = True
                    continue
                for w in range(t.windows):
                    if w not in t.found and t.norm[w:w + L] in text:
                        t.found.add(w)
                        t.match = t.match or {"substring": t.norm[w:w + L], **where}
                        hit = True
            elif t.match is None:
                for sub in t.substrings:
                    if sub in text:
                        t.match = {"substring": sub, **where}
                        hit = True
                        break
        return hit


def clean_task_ids(report_path: str | Path) -> list[str]:
    report = json.loads(Path(report_path).read_text())
    return list(report["clean_task_ids"])
