"""The most a continuous batcher could gain on a workload, from a machine's step costs.

Given the tokens each task generates (in the order the tasks are submitted) and what one decode
step costs at each width (how many sequences it decodes), a batcher with `slots` slots that
refills a slot the moment a task ends decodes the workload in `batched_s`; one at a time it
takes `sum(tokens) * cost(1)`. Their ratio is a ceiling for N=slots over N=1: prompts, the
sandbox and the pipe only add to both. `full` is the ceiling with every slot busy for the
whole run (no task ending before another: what llama-batched-bench measures)."""
from __future__ import annotations


def batched_s(tokens: list[int], step_s: dict[int, float], slots: int) -> float:
    queue, active, total = list(tokens), [], 0.0
    while queue or active:
        while len(active) < slots and queue:
            active.append(queue.pop(0))
        total += step_s[len(active)]
        active = [left - 1 for left in active if left > 1]
    return total


def bounds(tokens: list[int], step_s: dict[int, float], slots: int = 4) -> dict:
    """`step_s` needs width 1 and `slots`; a width between them that was not measured is
    interpolated."""
    step_s = dict(step_s)
    for w in range(2, slots):
        if w not in step_s:
            step_s[w] = step_s[1] + (step_s[slots] - step_s[1]) * (w - 1) / (slots - 1)
    alone = sum(tokens) * step_s[1]
    return {"this_workload": round(alone / batched_s(tokens, step_s, slots), 3),
            "all_slots_full": round(slots * step_s[1] / step_s[slots], 3)}
