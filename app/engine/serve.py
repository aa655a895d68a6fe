"""An OpenAI-compatible HTTP API in front of any Engine, so editors (VS Code's Continue,
llama.vscode, Zed) can use the model LlamaDesk has loaded.

`/v1/models`, `/v1/completions` (the prompt is sent as is), `/v1/chat/completions` (rendered with
the model's chat format), streamed as server-sent events or not, and `/health`. Any `model`
value is accepted, as llama-server does. Requests queue on the engine (the local one serves one
at a time; a remote one takes its server's parallel slots). A client that disconnects cancels
its generation. With an API key every /v1 request must carry `Authorization: Bearer KEY`.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import time
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from app.engine.base import Engine, EngineError, PromptTooLong
from app.engine.protocol import GenerateParams


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _params(body: dict) -> GenerateParams:
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise ValueError("stop must be a string or a list of strings")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    p = GenerateParams(max_tokens=int(max_tokens) if max_tokens is not None else 256,
                       temperature=float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0),
                       stop=stop)
    for key, cast in (("top_p", float), ("top_k", int), ("min_p", float), ("seed", int),
                      ("repeat_penalty", float)):
        if body.get(key) is not None:
            setattr(p, key, cast(body[key]))
    return p


def build_app(engine: Engine, api_key: str | None = None) -> Starlette:
    # What /health reports about the requests: in flight, and how the last one ended.
    served = {"in_flight": 0, "last": None}

    def watch(gen) -> None:
        served["in_flight"] += 1

        def ended(_task):
            served["in_flight"] -= 1
            s = gen.stats
            served["last"] = {"finish_reason": s.finish_reason if s else "error",
                              "completion_tokens": s.completion_tokens if s else 0}
        gen._task.add_done_callback(ended)

    def model_id() -> str:
        return engine.info.name if engine.info else "none"

    def authorized(request: Request) -> bool:
        if not api_key:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    async def health(request: Request):
        if engine.info is None:
            return JSONResponse({"status": "no model loaded"}, status_code=503)
        return JSONResponse({"status": "ok", **served})

    async def models(request: Request):
        if not authorized(request):
            return _error(401, "invalid API key", "authentication_error")
        data = [{"id": model_id(), "object": "model", "created": int(time.time()), "owned_by": "llamadesk"}]
        return JSONResponse({"object": "list", "data": data if engine.info else []})

    async def completions(request: Request):
        return await _complete(request, chat=False)

    async def chat_completions(request: Request):
        return await _complete(request, chat=True)

    async def _complete(request: Request, chat: bool):
        if not authorized(request):
            return _error(401, "invalid API key", "authentication_error")
        if engine.info is None:
            return _error(503, "no model is loaded", "server_error")
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            params = _params(body)
            if chat:
                messages = body.get("messages")
                if not isinstance(messages, list) or not messages:
                    raise ValueError("messages must be a non-empty list")
                messages = [{"role": m.get("role", "user"), "content": _content(m.get("content"))}
                            for m in messages]
                gen = engine.chat_remote(messages, params) if (
                    engine.kind == "remote" and not engine.info.chat_template) else engine.chat(messages, params)
            else:
                prompt = body.get("prompt")
                if isinstance(prompt, list) and len(prompt) == 1:
                    prompt = prompt[0]
                if not isinstance(prompt, str):
                    raise ValueError("prompt must be a string")
                gen = engine.generate(prompt, params)
        except (ValueError, TypeError, EngineError) as exc:
            return _error(400, str(exc))
        watch(gen)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        created = int(time.time())
        obj = "chat.completion" if chat else "text_completion"

        def usage():
            s = gen.stats
            if s is None:
                return None
            return {"prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
                    "total_tokens": s.prompt_tokens + s.completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": s.cached_tokens}}

        def choice(text: str | None, finish: str | None, final: bool = False) -> dict:
            if chat:
                key = "message" if final else "delta"
                return {"index": 0, key: {"role": "assistant", "content": text} if final or text is None
                        else {"content": text}, "finish_reason": finish}
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}

        def finish_reason() -> str:
            r = gen.stats.finish_reason if gen.stats else "stop"
            return r if r in ("stop", "length") else "stop"

        if not body.get("stream"):
            watcher = asyncio.ensure_future(_cancel_on_disconnect(request, gen))
            try:
                text = await gen.result()
            except PromptTooLong as exc:
                return _error(400, str(exc))
            except EngineError as exc:
                return _error(500, str(exc), "server_error")
            finally:
                watcher.cancel()
            return JSONResponse({"id": rid, "object": obj, "created": created, "model": model_id(),
                                 "choices": [choice(text, finish_reason(), final=True)], "usage": usage()})

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunk_obj = "chat.completion.chunk" if chat else "text_completion"

        def event(payload: dict) -> str:
            return f"data: {json.dumps(payload)}\n\n"

        async def stream():
            base = {"id": rid, "object": chunk_obj, "created": created, "model": model_id()}
            try:
                if chat:
                    yield event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                      "finish_reason": None}]})
                async for text in gen:
                    yield event({**base, "choices": [choice(text, None)]})
                end = {**base, "choices": [choice(None if chat else "", finish_reason())]}
                if chat:
                    end["choices"][0]["delta"] = {}
                yield event(end)
                if include_usage:
                    yield event({**base, "choices": [], "usage": usage()})
                yield "data: [DONE]\n\n"
            except EngineError as exc:
                yield event({"error": {"message": str(exc), "type": "server_error"}})
            finally:
                # The client went away (Starlette cancels this stream) or the stream ended:
                # either way nothing more is wanted from the engine.
                if not gen.done:
                    gen.cancel()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return Starlette(routes=[
        Route("/health", health), Route("/v1/health", health),
        Route("/v1/models", models), Route("/models", models),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/completions", completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
    ])


def _content(content) -> str:
    """Chat content as text: a string, or OpenAI's list of parts (text parts joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if content is None:
        return ""
    raise ValueError("message content must be a string or a list of text parts")


async def _cancel_on_disconnect(request: Request, gen) -> None:
    while not gen.done:
        if await request.is_disconnected():
            gen.cancel()
            return
        await asyncio.sleep(0.1)


def _listening_socket(host: str, port: int):
    """Bound before uvicorn starts, so a taken address is an OSError here and port 0 is known."""
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Server:
    """uvicorn running the app inside the current asyncio loop (the CLI's, or the GUI's qasync)."""

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 8080,
                 api_key: str | None = None):
        import uvicorn

        if not is_loopback(host) and not api_key:
            raise ValueError(f"serving on {host} (reachable from other machines) needs an API key")
        self.host, self.port = host, port
        self.server = uvicorn.Server(uvicorn.Config(build_app(engine, api_key), host=host, port=port,
                                                    log_level="warning", lifespan="off"))
        self.task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    async def start(self) -> str:
        """Listen (an OSError when the address is taken) and serve in the background."""
        sock = _listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.task = asyncio.ensure_future(self.server.serve(sockets=[sock]))
        while not self.server.started and not self.task.done():
            await asyncio.sleep(0.02)
        return self.url

    async def wait(self) -> None:
        await self.task

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


class _Bridged(Engine):
    """An engine that lives in another thread's event loop (the GUI's), used from the server's
    own loop: each generation runs there and its chunks are handed over thread-safely."""

    def __init__(self, engine: Engine, engine_loop: asyncio.AbstractEventLoop):
        self.engine, self.engine_loop = engine, engine_loop
        self.kind = engine.kind

    @property
    def info(self):
        return self.engine.info

    @property
    def capabilities(self):
        return self.engine.capabilities

    def generate(self, prompt, params=None, on_progress=None):
        return self._run(prompt, params, lambda: self.engine.generate(prompt, params))

    def chat_remote(self, messages, params=None):
        return self._run(json.dumps(messages), params, lambda: self.engine.chat_remote(messages, params))

    def _run(self, prompt, params, start):
        from app.engine.base import Generation

        here = asyncio.get_running_loop()
        proxy = Generation(prompt, params or GenerateParams(), _client=self)
        proxy._inner = None

        def finish(stats):
            proxy.stats = stats
            proxy._end()

        async def pump():
            inner = proxy._inner = start()
            if proxy._cancel_requested:
                inner.cancel()
            try:
                async for chunk in inner:
                    here.call_soon_threadsafe(proxy._emit, chunk)
            except Exception as exc:
                here.call_soon_threadsafe(proxy._fail, exc)
            here.call_soon_threadsafe(finish, inner.stats)

        proxy._task = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(pump(), self.engine_loop))
        return proxy

    def cancel(self, *, queued: bool = False) -> None:
        pass  # each generation is cancelled on its own (a client that goes away)

    def _cancel(self, gen) -> None:
        inner = getattr(gen, "_inner", None)
        if inner is not None:
            self.engine_loop.call_soon_threadsafe(inner.cancel)

    async def close(self) -> None:
        pass  # the engine belongs to its own loop's owner


class ThreadedServer:
    """The server in a thread of its own, in front of an engine that lives in the calling loop
    (the GUI's qasync loop): network I/O stays off the GUI thread."""

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 8080, api_key: str | None = None):
        self.engine, self.host, self.port, self.api_key = engine, host, port, api_key
        self.server = None
        self.thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> str:
        import threading

        import uvicorn

        sock = _listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        app = build_app(_Bridged(self.engine, asyncio.get_running_loop()), self.api_key)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[sock])),
                                       name="llamadesk-serve", daemon=True)
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            await asyncio.sleep(0.02)
        return self.url

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            for _ in range(500):  # polled: a blocking join would freeze the GUI
                if not self.thread.is_alive():
                    break
                await asyncio.sleep(0.02)
