"""A loopback OpenAI-compatible server that misbehaves on purpose, for the failures a real
llama-server will not produce on demand (429/503 with Retry-After, a stall, malformed events),
and an HTTPS endpoint for the certificate tests. It speaks the real protocol over real HTTP."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.servers.procs import free_port


class Misbehaving:
    """mode: "ok", "busy" (429 with Retry-After for the first `busy_count` requests, then ok),
    "stall" (one event, then silence), "malformed" (one event, then a broken one)."""

    def __init__(self, mode: str = "ok", *, busy_status: int = 429, busy_count: int = 2,
                 retry_after: str = "1", ssl_files: tuple[str, str] | None = None):
        self.mode, self.busy_status, self.busy_count, self.retry_after = mode, busy_status, busy_count, retry_after
        self.requests = 0
        self.port = free_port()
        self.url = f"{'https' if ssl_files else 'http'}://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/v1/models", self.models),
                                Route("/v1/completions", self.completions, methods=["POST"])])
        kw = {"ssl_certfile": ssl_files[0], "ssl_keyfile": ssl_files[1]} if ssl_files else {}
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", **kw))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("misbehaving server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)

    async def models(self, request: Request):
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def completions(self, request: Request):
        self.requests += 1
        if self.mode == "busy" and self.requests <= self.busy_count:
            return JSONResponse({"error": {"message": "busy"}}, status_code=self.busy_status,
                                headers={"Retry-After": self.retry_after})

        def event(text, finish=None):
            return "data: " + json.dumps({"choices": [{"index": 0, "text": text,
                                                       "finish_reason": finish}]}) + "\n\n"

        async def body():
            yield event("hello")
            if self.mode == "stall":
                await asyncio.sleep(3600)
            if self.mode == "malformed":
                yield "data: {\"choices\": [{\"text\": \n\n"
                return
            yield event(" world", "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")
