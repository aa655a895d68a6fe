"""`llamadesk serve` read by the official `openai` client: streamed and not, chat, a client that
disconnects mid-stream, and the key rules (issue 13, item 8)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import openai
import pytest

from tests.helpers import run_cli
from tests.servers import procs

PROMPT = "def fibonacci(n):\n    "


class Serve:
    def __init__(self, *args: str, env=None):
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve", *args, "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, start_new_session=True)
        self.banner = self.proc.stdout.readline()  # printed once it listens
        if "serving" not in self.banner:
            self.proc.kill()
            raise RuntimeError(f"serve did not start: {self.banner}{self.proc.stdout.read()}")

    def health(self) -> dict:
        return httpx.get(self.url.removesuffix("/v1") + "/health", timeout=10).json()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def served(smollm):
    s = Serve("--model", str(smollm), "--threads", "2")
    yield s
    s.stop()


def test_completions_streamed_and_not_equal_local(served, smollm):
    client = openai.OpenAI(base_url=served.url, api_key="unused")
    whole = client.completions.create(model="anything", prompt=PROMPT, max_tokens=40, temperature=0)
    parts = client.completions.create(model="whatever-else", prompt=PROMPT, max_tokens=40,
                                      temperature=0, stream=True)
    streamed = "".join(c.choices[0].text for c in parts if c.choices)
    local = run_cli("complete", PROMPT, "--model", str(smollm), "--format", "raw", "--max-tokens", "40",
                    "--threads", "2")
    assert local.returncode == 0, local.stderr
    assert whole.choices[0].text == streamed == local.stdout[:-1]
    assert whole.usage.completion_tokens > 0 and whole.choices[0].finish_reason in ("stop", "length")


def test_chat_streamed_uses_the_models_chat_format(served, smollm):
    client = openai.OpenAI(base_url=served.url, api_key="unused")
    msg = [{"role": "user", "content": "Say hello."}]
    parts = client.chat.completions.create(model="x", messages=msg, max_tokens=24, temperature=0, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
    whole = client.chat.completions.create(model="x", messages=msg, max_tokens=24, temperature=0)
    local = run_cli("complete", "Say hello.", "--model", str(smollm), "--format", "chat",
                    "--max-tokens", "24", "--threads", "2")
    assert streamed == whole.choices[0].message.content == local.stdout[:-1]
    assert "<|im_start|>" not in streamed


def test_models_and_health(served):
    client = openai.OpenAI(base_url=served.url, api_key="unused")
    ids = [m.id for m in client.models.list()]
    assert len(ids) == 1 and ids[0]
    assert served.health()["status"] == "ok"


def test_disconnect_mid_stream_cancels_the_generation(served):
    client = openai.OpenAI(base_url=served.url, api_key="unused")
    stream = client.completions.create(model="x", prompt="Once upon a time", max_tokens=3000,
                                       temperature=0.9, seed=5, stream=True)
    got = 0
    for chunk in stream:
        got += 1
        if got == 3:
            break
    stream.close()  # the client goes away
    for _ in range(600):
        h = served.health()
        if h["in_flight"] == 0:
            break
        time.sleep(0.1)
    assert h["in_flight"] == 0
    assert h["last"]["finish_reason"] == "cancelled"
    assert h["last"]["completion_tokens"] < 3000


def test_serve_over_a_remote_engine(llama_cpp_server):
    s = Serve("--engine", llama_cpp_server.url)
    try:
        client = openai.OpenAI(base_url=s.url, api_key="unused")
        out = client.completions.create(model="m", prompt=PROMPT, max_tokens=16, temperature=0)
        assert out.choices[0].text
    finally:
        s.stop()


def test_non_loopback_needs_a_key(smollm):
    r = run_cli("serve", "--model", str(smollm), "--host", "0.0.0.0", "--port", "0")
    assert r.returncode == 2 and "--api-key-env" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_key_is_required_when_set(smollm):
    env = {**os.environ, "SERVE_KEY": "sk-serve-41d2"}
    s = Serve("--model", str(smollm), "--api-key-env", "SERVE_KEY", env=env)
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=s.url, api_key="wrong").models.list()
        assert openai.OpenAI(base_url=s.url, api_key="sk-serve-41d2").models.list().data
    finally:
        s.stop()
