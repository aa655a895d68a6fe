"""RemoteEngine: a model served over HTTP by an OpenAI-compatible server (llama.cpp's
llama-server, vLLM, Ollama, LM Studio, llama-cpp-python's server, `llamadesk serve`).

The prompt formats stay ours: the text LlamaDesk builds goes to `/v1/completions` as is, so a
remote Phind gets exactly the prompt a local one gets. llama-server's own endpoints (`/props`
for the context size, model file and chat template; `/infill`; `/tokenize`; `/health`) are
detected at connect and used where present.

Every failure becomes an EngineError with one line for the user; `BadSource` (exit 2) for what
the user must fix (a malformed URL, a rejected key, an unknown model, an untrusted certificate),
plain EngineError (exit 1) for an unreachable server or a failure while generating. The API key
is sent in the Authorization header and appears in no message; URLs shown or recorded have no
user info and no query.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import ssl
import time
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from app.engine.base import (BadSource, Capabilities, Engine, EngineError, Generation, GenerationStats,
                             ModelInfo, PromptTooLong, cancelled_stats)
from app.engine.protocol import GenerateParams


INFILL = "/infill"
# llama-server's stop_type -> the finish_reason OpenAI's stream (and our stats) use
NATIVE_FINISH = {"eos": "stop", "word": "stop", "limit": "length"}


class ServerUnreachable(EngineError):
    exit_code = 1


def public_url(url: str) -> str:
    """The URL without user info, query or fragment: what may be shown, logged or recorded."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<malformed URL>"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def base_url(url: str) -> str:
    """The server's root from what the user typed: with or without /v1, with or without a slash."""
    u = public_url(url).rstrip("/")
    return u[:-3] if u.endswith("/v1") else u


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # raises on a bad port
    except ValueError as exc:
        raise BadSource(f"malformed server URL {public_url(url)!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadSource(f"malformed server URL {public_url(url)!r}: expected http://HOST[:PORT][/v1] "
                        f"or https://...")


def retry_after_s(value: str | None, default: float) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return default


class RemoteEngine(Engine):
    kind = "remote"
    has_chat = True

    def __init__(self, url: str, *, api_model: str | None = None, api_key: str | None = None,
                 ca_bundle: str | None = None, stall_s: float = 120.0, connect_timeout_s: float = 10.0,
                 retries: int = 3, retry_wait_max_s: float = 20.0,
                 on_state: Callable[[str, str], None] | None = None):
        self._raw_url = url
        self.url = public_url(url)
        self.base = base_url(url)
        self.api_model = api_model
        self._key = api_key
        self.ca_bundle = ca_bundle
        self.stall_s = stall_s
        self.connect_timeout_s = connect_timeout_s
        self.retries = retries
        self.retry_wait_max_s = retry_wait_max_s
        self.on_state = on_state
        self.info: ModelInfo | None = None
        self.models: list[str] = []
        self.endpoints: dict[str, bool] = {}
        self.props: dict = {}
        self.latency_s = 0.0
        self._http: httpx.AsyncClient | None = None
        self._running: set[Generation] = set()
        self._pending: list[Generation] = []
        self._next_id = 1

    # --- connection ----------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            verify: ssl.SSLContext | bool = True
            if self.ca_bundle:
                verify = ssl.create_default_context(cafile=self.ca_bundle)
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            parts = urlsplit(self._raw_url)
            # A key from --api-key-env wins; user info in the URL is basic auth only without one.
            auth = (parts.username, parts.password or "") if parts.username and not self._key else None
            self._http = httpx.AsyncClient(
                base_url=self.base, headers=headers, auth=auth, verify=verify,
                timeout=httpx.Timeout(self.stall_s, connect=self.connect_timeout_s),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
        return self._http

    def _scrub(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, "***")
        return text.replace(self._raw_url, self.url)

    def _transport_error(self, exc: Exception) -> EngineError:
        where = f"the server at {self.url}"
        if isinstance(exc, httpx.ConnectError):
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
                return BadSource(f"{where} has a certificate this computer does not trust; give the "
                                 f"CA with --ca-bundle FILE")
            low = str(exc).lower()
            if "name or service not known" in low or "nodename nor servname" in low or \
                    "name resolution" in low or "no address associated" in low:
                return ServerUnreachable(f"unknown host {urlsplit(self.url).hostname!r} ({where})")
            return ServerUnreachable(f"cannot connect to {where}: {self._scrub(str(exc)) or 'connection refused'}")
        if isinstance(exc, httpx.TimeoutException):
            return ServerUnreachable(f"{where} sent nothing for {self.stall_s:.0f} s")
        return ServerUnreachable(f"lost the connection to {where}: {self._scrub(str(exc)) or type(exc).__name__}")

    async def _get_json(self, path: str, *, probe: bool = False):
        try:
            r = await self._client().get(path)
        except httpx.HTTPError as exc:
            if probe:
                return None
            raise self._transport_error(exc) from None
        if r.status_code != 200:
            if probe:
                return None
            if r.status_code == 404:
                raise BadSource(f"{self.url} has no {path}: is it an OpenAI-compatible server?")
            raise self._status_error(r.status_code, r.text, r.headers)
        try:
            return r.json()
        except ValueError:
            if probe:
                return None
            raise EngineError(f"the server at {self.url} answered {path} with something that is not JSON") from None

    def _status_error(self, status: int, body: str, headers=None) -> EngineError:
        msg = _server_message(body)
        if status in (401, 403):
            return BadSource(f"the server at {self.url} rejected the API key (HTTP {status}); "
                             f"set it with --api-key-env VAR")
        if status == 404:
            return BadSource(f"the server at {self.url} has no model {self.api_model!r} "
                             f"(HTTP 404{': ' + msg if msg else ''})")
        if status == 400 and any(k in msg.lower() for k in ("context", "too long", "exceed")):
            return PromptTooLong(f"the prompt does not fit the server's context: {msg}")
        if status in (429, 503):
            return EngineError(f"the server at {self.url} is busy (HTTP {status}) and stayed busy "
                               f"after {self.retries} retries")
        return EngineError(f"the server at {self.url} answered HTTP {status}{': ' + msg if msg else ''}")

    async def connect(self) -> ModelInfo:
        """List the models, pick one, and find which of llama-server's own endpoints exist."""
        _check_url(self._raw_url)
        t0 = time.perf_counter()
        listing = await self._get_json("/v1/models")
        self.latency_s = time.perf_counter() - t0
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise EngineError(f"{self.url} does not look like an OpenAI-compatible server "
                              f"(/v1/models has no model list)")
        self.models = [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if self.api_model is None:
            if not self.models:
                raise BadSource(f"the server at {self.url} lists no models; name one with --api-model")
            self.api_model = self.models[0]
        elif self.api_model not in self.models:
            raise BadSource(f"the server at {self.url} has no model {self.api_model!r} "
                            f"(it has: {', '.join(self.models) or 'none'})")
        meta = next((m for m in data if isinstance(m, dict) and m.get("id") == self.api_model), {})
        props = await self._get_json("/props", probe=True)
        self.props = props if isinstance(props, dict) else {}
        self.endpoints = {"props": bool(self.props),
                          "health": await self._get_json("/health", probe=True) is not None,
                          "tokenize": await self._probe_tokenize(),
                          "slots": await self._get_json("/slots", probe=True) is not None}
        self.endpoints["infill"] = bool(self.props) and await self._probe_infill()
        settings = self.props.get("default_generation_settings") or {}
        n_ctx = int(settings.get("n_ctx") or self.props.get("n_ctx") or meta.get("max_model_len")
                    or (meta.get("meta") or {}).get("n_ctx_train") or 0)
        model_path = self.props.get("model_path") or ""
        claims = {k: v for k, v in (("model_path", model_path), ("id", self.api_model),
                                    ("owned_by", meta.get("owned_by")),
                                    ("n_ctx_train", (meta.get("meta") or {}).get("n_ctx_train")),
                                    ("n_params", (meta.get("meta") or {}).get("n_params")),
                                    ("size", (meta.get("meta") or {}).get("size"))) if v}
        self.info = ModelInfo(
            path=self.url, name=self.api_model, architecture="", layers=0, context_length=n_ctx,
            quantization="", file_size=0, chat_template=self.props.get("chat_template") or None,
            n_ctx=n_ctx, bos_token=self.props.get("bos_token") or "",
            eos_token=self.props.get("eos_token") or "", infill=self.endpoints["infill"],
            load_s=self.latency_s,
            remote={"url": self.url, "models": self.models, "endpoints": self.endpoints,
                    "parallel_slots": self.parallel_slots, "claims": claims})
        return self.info

    async def _probe_tokenize(self) -> bool:
        try:
            r = await self._client().post("/tokenize", json={"content": "a"})
            return r.status_code == 200 and isinstance(r.json().get("tokens"), list)
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    async def _probe_infill(self) -> bool:
        try:
            r = await self._client().post("/infill", json={"input_prefix": "a", "input_suffix": "",
                                                           "n_predict": 1, "cache_prompt": False})
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def parallel_slots(self) -> int:
        return max(1, int(self.props.get("total_slots") or 1))

    @property
    def capabilities(self) -> Capabilities:
        info = self.info
        return Capabilities(infill=bool(self.endpoints.get("infill")),
                            tokenize=bool(self.endpoints.get("tokenize")),
                            chat_template=info.chat_template if info else None,
                            n_ctx=info.n_ctx if info else 0, parallel_slots=self.parallel_slots,
                            infill_endpoint=bool(self.endpoints.get("infill")))

    def describe(self) -> list[tuple[str, str]]:
        """Rows for `doctor` and the model bar's tooltip."""
        found = [k for k, v in self.endpoints.items() if v]
        rows = [("server", self.url), ("server model", self.api_model or ""),
                ("server models", ", ".join(self.models)),
                ("server latency", f"{self.latency_s * 1000:.0f} ms"),
                ("server endpoints", "OpenAI /v1" + (" + llama-server " + ", ".join("/" + f for f in found)
                                                       if found else " only")),
                ("server context", str(self.info.n_ctx) if self.info and self.info.n_ctx else "unknown"),
                ("server parallel slots", str(self.parallel_slots))]
        if self.props.get("model_path"):
            rows.append(("server model file", f"{self.props['model_path']} (the server's claim)"))
        return rows

    async def tokenize(self, text: str) -> list[int]:
        if not self.endpoints.get("tokenize"):
            raise EngineError("this server has no /tokenize")
        r = await self._client().post("/tokenize", json={"content": text})
        return r.json()["tokens"]

    # --- generate ------------------------------------------------------------------------------
    def generate(self, prompt: str, params: GenerateParams | None = None,
                 on_progress: Callable[[str, float], None] | None = None) -> Generation:
        params = params or GenerateParams()
        return self._start(prompt, params, "/v1/completions", {"prompt": prompt})

    def infill(self, prefix: str, suffix: str, *, extra: list[dict] = (), prompt: str = "",
               params: GenerateParams | None = None) -> Generation:
        """Fill in the middle through llama-server's /infill, which lays the prompt out with its
        model's own FIM tokens and `extra` as file chunks (as llama.vim sends its ring)."""
        if not self.endpoints.get("infill"):
            raise EngineError(f"the server at {self.url} has no /infill (or its model no FIM tokens)")
        params = params or GenerateParams()
        body = {"input_prefix": prefix, "input_suffix": suffix, "prompt": prompt,
                "input_extra": [{"filename": c.get("filename") or "", "text": c["text"]} for c in extra]}
        return self._start(prefix + prompt, params, INFILL, body)

    def chat_remote(self, messages: list[dict], params: GenerateParams | None = None) -> Generation:
        """A chat turn in the server's chat format (for a server that does not show its template)."""
        params = params or GenerateParams()
        return self._start(json.dumps(messages), params, "/v1/chat/completions", {"messages": messages})

    def _start(self, prompt: str, params: GenerateParams, path: str, body: dict) -> Generation:
        gen = Generation(prompt, params, _client=self)
        gen.id, self._next_id = self._next_id, self._next_id + 1
        self._pending.append(gen)
        gen._task = asyncio.ensure_future(self._serve(gen, path, body))

        def finished(task):  # a task cancelled before it ran never reached _serve's finally
            if task.cancelled() and gen.stats is None:
                gen.stats = cancelled_stats()
                if gen in self._pending:
                    self._pending.remove(gen)
                gen._end()
        gen._task.add_done_callback(finished)
        return gen

    def _body(self, params: GenerateParams, body: dict, path: str) -> dict:
        # A greedy request still ran llama-server's whole sampler chain over the vocabulary
        # (262,144 entries for Gemma 3: a softmax per token) unless top_k cut it first; top_k 1
        # picks the same token and saved 1.4 of 26.6 ms a token here.
        top_k = 1 if params.temperature <= 0 else params.top_k
        if path == INFILL:  # llama-server's own request format, not OpenAI's
            out = {"stream": True, "cache_prompt": True, "n_predict": params.max_tokens,
                   "temperature": max(0.0, params.temperature), "top_p": params.top_p,
                   "top_k": top_k, "min_p": params.min_p,
                   "repeat_penalty": params.repeat_penalty, **body}
        else:
            out = {"model": self.api_model, "stream": True, "stream_options": {"include_usage": True},
                   "max_tokens": params.max_tokens, "temperature": max(0.0, params.temperature),
                   "top_p": params.top_p, "top_k": top_k, "min_p": params.min_p,
                   "repeat_penalty": params.repeat_penalty, **body}
        if params.purpose == "selftest" and self.endpoints.get("props"):
            # llama-server reads the rest of a prompt after a cached prefix in calls of other
            # widths, whose kernels round otherwise: a second self-test then gave other text
            # (2,211 tokens against 1,859, one task of 16 changed). Only llama.cpp knows the field.
            out["cache_prompt"] = False
        if params.stop:
            out["stop"] = params.stop
        if params.seed is not None:
            out["seed"] = params.seed
        return out

    def cancel(self, *, queued: bool = False) -> None:
        for gen in list(self._running) + (list(self._pending) if queued else []):
            gen.cancel()

    def _cancel(self, gen: Generation) -> None:
        # Cancelling the task leaves the `async with` of the stream, which closes the connection;
        # the server sees the client go and stops generating.
        if gen._task is not None and not gen._task.done():
            gen._task.cancel()

    async def _serve(self, gen: Generation, path: str, body: dict) -> None:
        try:
            if self.info is None:
                raise EngineError("not connected to a server")
            self._pending.remove(gen)
            self._running.add(gen)
            await self._stream(gen, path, self._body(gen.params, body, path))
        except asyncio.CancelledError:
            gen.stats = cancelled_stats()
        except EngineError as exc:
            self._failed(gen, exc)
        except httpx.HTTPError as exc:
            self._failed(gen, self._transport_error(exc))
        except Exception as exc:  # anything else still ends the stream with one message
            gen._fail(EngineError(f"the request to {self.url} failed: {self._scrub(str(exc))}"))
        finally:
            if gen in self._pending:
                self._pending.remove(gen)
            self._running.discard(gen)
            gen._end()

    def _failed(self, gen: Generation, exc: EngineError) -> None:
        gen._fail(exc)
        if self.on_state and exc.exit_code == 1 and not isinstance(exc, PromptTooLong):
            self.on_state("lost", str(exc))  # the GUI offers to reconnect

    async def _stream(self, gen: Generation, path: str, body: dict) -> None:
        http = self._client()
        t_sent = time.perf_counter()
        waited = 0.0
        for attempt in range(self.retries + 1):
            async with http.stream("POST", path, json=body) as r:
                if r.status_code in (429, 503) and attempt < self.retries:
                    wait = min(retry_after_s(r.headers.get("retry-after"), 1.0 + attempt),
                               self.retry_wait_max_s - waited)
                    if wait >= 0:
                        await r.aclose()
                        waited += wait
                        await asyncio.sleep(wait)
                        continue
                if r.status_code != 200:
                    text = (await r.aread()).decode("utf-8", "replace")
                    raise self._status_error(r.status_code, text, r.headers)
                await self._read_events(gen, r, t_sent, chat=path.endswith("chat/completions"),
                                        native=path == INFILL)
                return

    async def _read_events(self, gen: Generation, r: httpx.Response, t_sent: float, chat: bool,
                           native: bool = False) -> None:
        """OpenAI's event stream, or (`native`) llama-server's own: `content` per event, the
        last one with `stop: true`, `stop_type` and `timings`, and no [DONE]."""
        t_first = None
        finish, usage, timings, n_chunks, done = None, {}, {}, 0, False
        lines = r.aiter_lines()
        try:
            async for line in lines:
                if not line.startswith("data:"):
                    continue  # comments, event names, blank separators
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                try:
                    ev = json.loads(data)
                    if not isinstance(ev, dict):
                        raise ValueError("not an object")
                except ValueError:
                    raise EngineError(f"the server at {self.url} sent a malformed event: "
                                      f"{self._scrub(data[:80])!r}") from None
                if "error" in ev:
                    err = ev["error"]
                    msg = err.get("message") if isinstance(err, dict) else str(err)
                    if "context" in str(msg).lower():
                        raise PromptTooLong(f"the prompt does not fit the server's context: {msg}")
                    raise EngineError(f"the server at {self.url} failed: {self._scrub(str(msg))}")
                usage = ev.get("usage") or usage
                timings = ev.get("timings") or timings
                if native:
                    text = ev.get("content")
                    if isinstance(text, str) and text:
                        if t_first is None:
                            t_first = time.perf_counter()
                        n_chunks += 1
                        gen._emit(text)
                    if ev.get("stop") is True:
                        finish = NATIVE_FINISH.get(ev.get("stop_type"), "stop")
                        done = True
                        break
                    continue
                for choice in ev.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                    if text:
                        if t_first is None:
                            t_first = time.perf_counter()
                        n_chunks += 1
                        gen._emit(text)
                    finish = choice.get("finish_reason") or finish
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            # Once an event carried finish_reason the answer is whole; some servers
            # (llama-cpp-python's) drop the connection instead of ending it cleanly after it.
            if finish is None:
                raise EngineError(f"the server at {self.url} closed the connection mid-answer "
                                  f"({type(exc).__name__})") from None
        except httpx.ReadTimeout:
            raise EngineError(f"the server at {self.url} sent nothing for {self.stall_s:.0f} s; "
                              f"gave up on this answer") from None
        finally:
            await lines.aclose()  # closed here, in this loop, not by the garbage collector later
        if not done and finish is None:
            raise EngineError(f"the server at {self.url} closed the connection mid-answer")
        t_end = time.perf_counter()
        t_first = t_first or t_end
        completion = int(usage.get("completion_tokens") or timings.get("predicted_n") or n_chunks)
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens")
                     or timings.get("cache_n") or 0)
        after = t_end - t_first
        gen.stats = GenerationStats(
            prompt_tokens=int(usage.get("prompt_tokens") or timings.get("prompt_n") or 0) + (
                int(timings.get("cache_n") or 0) if "prompt_tokens" not in usage else 0),
            cached_tokens=cached, completion_tokens=completion, ttft_s=t_first - t_sent,
            tokens_per_s=(completion - 1) / after if after > 0 and completion > 1 else 0.0,
            total_s=t_end - t_sent, finish_reason=finish or "stop")

    # --- shutdown ------------------------------------------------------------------------------
    async def close(self) -> None:
        tasks = [g._task for g in list(self._running) + self._pending if g._task]
        self.cancel(queued=True)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _server_message(body: str) -> str:
    try:
        obj = json.loads(body)
    except ValueError:
        return body.strip().splitlines()[0][:200] if body.strip() else ""
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)[:300]
    if err:
        return str(err)[:300]
    if isinstance(obj, dict) and obj.get("detail"):
        return str(obj["detail"])[:300]
    return body[:200]
