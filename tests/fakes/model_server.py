"""Loopback fake of an OpenAI-compatible chat completions server.

The server speaks the real wire format (chunked ``text/event-stream`` with the
full ``chat.completion.chunk`` envelope, ``data: [DONE]``, OpenAI-style error
bodies) so the project's real httpx client can be exercised against it.

It runs on ``127.0.0.1`` (random free port) inside a background thread with its
own event loop, so it works the same from synchronous tests, from async tests
(whatever loop pytest-asyncio uses) and from a subprocess (see ``main``)::

    with FakeModelServer() as server:
        server.enqueue(think_stream("Let me think.", "Hello!"))
        ...  # point the client at server.base_url with api key "test-key"
        assert server.requests[0].json["stream"] is True

Behaviour of each script kind on the wire:

* ``stream``: 200 SSE. One ``data: {chunk}\\n\\n`` per part, each written
  (and flushed) separately, then a chunk with an empty delta and the
  ``finish_reason``, then - when ``usage`` is given or the request asked for
  ``stream_options.include_usage`` - a chunk with ``"choices": []`` and
  ``usage``, then ``data: [DONE]\\n\\n``.  When the request asked for
  ``include_usage`` every chunk also carries ``"usage": null`` (as OpenAI
  does).  If the *request* had ``stream`` false/absent, the parts are
  aggregated into a normal ``chat.completion`` JSON instead, like a real
  server would.
* ``completion``: 200 ``application/json`` ``chat.completion``, whatever the
  request's ``stream`` flag was (so it also simulates a server that ignores
  ``stream: true``).
* ``error``: the given status, headers and body (dict -> JSON, str -> sent
  verbatim, None -> a default OpenAI-style error object).
* ``garbled``: 200 SSE; every line is written verbatim as its own chunk,
  followed by a blank line (``"\\n\\n"``) unless it already ends with
  ``"\\n"``.  No envelope, no ``[DONE]`` is added.  The body then ends cleanly.
* ``hang``: 200 SSE; the parts as chunks, then silence for ``seconds``, then the
  chunked body is *terminated cleanly*: the client sees a clean EOF with no
  finish chunk and no ``[DONE]``.  (A client with a shorter read timeout sees a
  read timeout first.)
* ``drop``: 200 SSE; the parts as chunks, then the TCP connection is closed
  without the terminating zero-length chunk.  The client sees the parts and
  then a *transport error*: httpx raises ``httpx.RemoteProtocolError``
  ("peer closed connection without sending complete message body: incomplete
  chunked read") while iterating the body.
* ``endless``: 200 SSE; the same frame over and over (a part as a chunk, or raw bytes
  written verbatim) until the client goes away or ``max_bytes`` have been written - a
  server that ignores ``max_tokens``.  ``FakeModelServer.bytes_sent`` counts its bytes.
* ``huge_error``: the given status with a chunked ``text/plain`` body of ``size`` bytes,
  written until the client goes away; also counted in ``bytes_sent``.
* ``slow_headers``: sleeps ``seconds`` before doing anything (no status line or
  headers are sent meanwhile), then plays ``then``.

Scripts are consumed only by ``POST /v1/chat/completions`` requests that pass
the auth check (401), have a JSON object body (400), name the served model
(400 if missing, 404 if different), carry a ``messages`` list (400) and, when
``context_window`` is set, fit it (400).  Every request, including rejected
ones, is recorded in ``FakeModelServer.requests``.

A context window (``FakeModelServer(context_window=N)``) makes the server count
each prompt exactly as a QwQ-32B server does (``tests/fakes/chatml.py``: the
chat template rendered, then Qwen2.5's tokenizer), record the count in
``prompt_counts``, report it as ``usage.prompt_tokens``, and refuse a prompt
whose tokens plus ``max_tokens`` exceed ``N`` with a 400 in the wording of
``overflow_style``:

* ``"vllm"``: ``{"object": "error", "message": "This model's maximum context
  length is N tokens. However, you requested T tokens (P in the messages, M in
  the completion). Please reduce the length of the messages or completion.",
  "type": "BadRequestError", "code": 400}``;
* ``"openai"``: ``{"error": {"message": "This model's maximum context length is
  N tokens. However, your messages resulted in P tokens. Please reduce the
  length of the messages.", "code": "context_length_exceeded", ...}}`` (the
  prompt alone too long; with ``max_tokens`` the vLLM sentence instead);
* ``"aimlapi"``: AI/ML API's shape, ``{"statusCode": 400, "message": ...}``, with
  the vLLM sentence as the upstream's message;
* ``"bare"``: ``{"error": {"message": "Prompt is too long.", "code":
  "context_length_exceeded"}}``, no numbers.

The non-streaming behaviour of ``hang``/``drop``/``garbled`` is the same as the
streaming one (they simulate broken servers).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiohttp import web

from tests.fakes import chatml
from tests.fakes.threaded import ThreadedServer

__all__ = [
    "Completion",
    "Drop",
    "Endless",
    "Error",
    "FakeModelServer",
    "Garbled",
    "Hang",
    "HugeError",
    "Part",
    "RecordedRequest",
    "Script",
    "SlowHeaders",
    "Stream",
    "completion",
    "drop",
    "endless",
    "error",
    "garbled",
    "hang",
    "huge_error",
    "script_from_dict",
    "slow_headers",
    "stream",
    "think_stream",
]

Part: TypeAlias = str | dict[str, Any]
"""A stream part: ``str`` -> ``delta[field] = part``; ``dict`` -> the delta verbatim."""


# --------------------------------------------------------------------------- #
# Scripts
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Stream:
    parts: Sequence[Part]
    finish_reason: str | None = "stop"
    usage: dict[str, Any] | None = None
    chunk_delay: float = 0.0
    field: str = "content"


@dataclass(frozen=True)
class Completion:
    content: str | None
    reasoning_content: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = "stop"
    usage: dict[str, Any] | None = None


@dataclass(frozen=True)
class Error:
    status: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Garbled:
    lines: Sequence[str]


@dataclass(frozen=True)
class Hang:
    after_parts: Sequence[Part] = ()
    seconds: float = 3600.0


@dataclass(frozen=True)
class Drop:
    after_parts: Sequence[Part] = ()


@dataclass(frozen=True)
class SlowHeaders:
    seconds: float
    then: Script


@dataclass(frozen=True)
class Endless:
    frame: Part | bytes
    field: str = "content"
    max_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class HugeError:
    status: int
    size: int
    text: str = "overloaded "


Script: TypeAlias = (
    Stream | Completion | Error | Garbled | Hang | Drop | SlowHeaders | Endless | HugeError
)


def stream(
    parts: Iterable[Part],
    *,
    finish_reason: str | None = "stop",
    usage: dict[str, Any] | None = None,
    chunk_delay: float = 0.0,
    field: str = "content",
) -> Stream:
    """SSE stream; ``str`` parts go to ``delta[field]``, dict parts are deltas verbatim."""
    return Stream(tuple(parts), finish_reason, usage, chunk_delay, field)


def completion(
    content: str | None,
    *,
    reasoning_content: str | None = None,
    reasoning: str | None = None,
    finish_reason: str | None = "stop",
    usage: dict[str, Any] | None = None,
) -> Completion:
    """Non-streaming ``chat.completion`` JSON (sent even if the request asked to stream)."""
    return Completion(content, reasoning_content, reasoning, finish_reason, usage)


def error(
    status: int,
    body: dict[str, Any] | str | None = None,
    headers: dict[str, str] | None = None,
) -> Error:
    """Error response: dict body -> JSON, str body -> verbatim, None -> default OpenAI-style."""
    return Error(status, body, dict(headers) if headers else None)


def garbled(lines: Iterable[str]) -> Garbled:
    """200 SSE whose lines are written verbatim (each followed by a blank line)."""
    return Garbled(tuple(lines))


def hang(after_parts: Iterable[Part] = (), seconds: float = 3600.0) -> Hang:
    """Send ``after_parts`` as chunks, stay silent ``seconds``, then clean EOF without [DONE]."""
    return Hang(tuple(after_parts), seconds)


def drop(after_parts: Iterable[Part] = ()) -> Drop:
    """Send ``after_parts`` as chunks, then close the TCP connection mid-body."""
    return Drop(tuple(after_parts))


def slow_headers(seconds: float, then: Script) -> SlowHeaders:
    """Wait ``seconds`` before sending the status line/headers, then play ``then``."""
    return SlowHeaders(seconds, then)


def endless(frame: Part | bytes, *, field: str = "content",
            max_bytes: int = 512 * 1024 * 1024) -> Endless:
    """Stream ``frame`` (a part as a chunk; bytes verbatim) until the client leaves; never a
    finish chunk.  ``max_bytes`` only keeps a client that never stops from running forever."""
    return Endless(frame, field, max_bytes)


def huge_error(status: int, size: int, text: str = "overloaded ") -> HugeError:
    """``status`` with a ``size``-byte text body (``text`` repeated), streamed in chunks."""
    return HugeError(status, size, text)


def think_stream(
    reasoning: str,
    answer: str,
    *,
    opening_tag: bool = True,
    chunk_size: int = 7,
    finish_reason: str | None = "stop",
    usage: dict[str, Any] | None = None,
    chunk_delay: float = 0.0,
) -> Stream:
    """QwQ-style inline reasoning, chopped into ``chunk_size``-character content deltas.

    The full text is ``"<think>\\n" + reasoning + "\\n</think>\\n\\n" + answer``;
    with ``opening_tag=False`` the leading ``"<think>\\n"`` is omitted (QwQ often
    emits only the closing tag).  Tags may be split across chunks.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    text = ("<think>\n" if opening_tag else "") + reasoning + "\n</think>\n\n" + answer
    pieces = [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    return stream(pieces, finish_reason=finish_reason, usage=usage, chunk_delay=chunk_delay)


def _parts_from_json(raw: Any) -> tuple[Part, ...]:
    if not isinstance(raw, list):
        raise ValueError(f"parts must be a list, got {raw!r}")
    out: list[Part] = []
    for item in raw:
        if not isinstance(item, (str, dict)):
            raise ValueError(f"a part must be a string or an object, got {item!r}")
        out.append(item)
    return tuple(out)


def script_from_dict(d: Mapping[str, Any]) -> Script:
    """Build a script from ``{"kind": "stream" | "think_stream" | "completion" | ..., ...}``.

    The other keys are the keyword arguments of the matching constructor;
    ``slow_headers`` takes ``{"seconds": s, "then": {...nested script...}}``.
    """
    args = dict(d)
    kind = args.pop("kind", None)
    if kind == "stream":
        return stream(_parts_from_json(args.pop("parts")), **args)
    if kind == "think_stream":
        return think_stream(args.pop("reasoning"), args.pop("answer"), **args)
    if kind == "completion":
        return completion(args.pop("content", None), **args)
    if kind == "error":
        return error(int(args.pop("status")), args.pop("body", None), args.pop("headers", None))
    if kind == "garbled":
        return garbled([str(x) for x in args.pop("lines")])
    if kind == "hang":
        return hang(_parts_from_json(args.pop("after_parts", [])), float(args.pop("seconds", 3600.0)))
    if kind == "drop":
        return drop(_parts_from_json(args.pop("after_parts", [])))
    if kind == "endless":
        frame = args.pop("frame")
        if not isinstance(frame, (str, dict)):
            raise ValueError(f"an endless frame must be a string or an object, got {frame!r}")
        return endless(frame, **args)
    if kind == "huge_error":
        return huge_error(int(args.pop("status")), int(args.pop("size")), **args)
    if kind == "slow_headers":
        return slow_headers(float(args.pop("seconds")), script_from_dict(args.pop("then")))
    raise ValueError(f"unknown script kind {kind!r}")


# --------------------------------------------------------------------------- #
# Server
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lowercased."""
    json: Any | None
    """Parsed JSON body, or None if the body was empty or not valid JSON."""


def _error_body(message: str, type_: str, code: str | int | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=dict(headers or {}),
    )


def _rough_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _prompt_text(req: Any) -> str:
    out: list[str] = []
    if isinstance(req, dict):
        for msg in req.get("messages") or []:
            if isinstance(msg, dict):
                content = msg.get("content")
                out.append(content if isinstance(content, str) else json.dumps(content))
    return "".join(out)


def _usage(req: Any, completion_text: str) -> dict[str, int]:
    exact = req.get("_prompt_tokens") if isinstance(req, dict) else None
    p = exact if isinstance(exact, int) else _rough_tokens(_prompt_text(req))
    c = _rough_tokens(completion_text)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _overflow_body(style: str, window: int, prompt: int, completion: int) -> dict[str, Any]:
    """A context-length refusal, worded as the server of ``style`` words it."""
    requested = (f"This model's maximum context length is {window} tokens. However, you requested "
                 f"{prompt + completion} tokens ({prompt} in the messages, {completion} in the "
                 "completion). Please reduce the length of the messages or completion.")
    if style == "vllm":
        return {"object": "error", "message": requested, "type": "BadRequestError", "param": None,
                "code": 400}
    if style == "openai":
        message = (f"This model's maximum context length is {window} tokens. However, your messages "
                   f"resulted in {prompt} tokens. Please reduce the length of the messages."
                   if prompt > window else requested)
        return _error_body(message, "invalid_request_error", "context_length_exceeded")
    if style == "aimlapi":
        return {"statusCode": 400, "message": requested}
    if style == "bare":
        return _error_body("Prompt is too long.", "invalid_request_error", "context_length_exceeded")
    raise ValueError(f"unknown overflow style {style!r}")


_DEFAULT_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class FakeModelServer(ThreadedServer):
    """Fake OpenAI-compatible server running in a background thread.

    ``enqueue`` scripts (FIFO, one consumed per accepted chat completion
    request); ``default`` is used when the queue is empty (if None, the
    server answers 500 "no scripted response").
    """

    _thread_name = "FakeModelServer"

    def __init__(self, *, api_key: str | None = "test-key", model: str = "Qwen/QwQ-32B",
                 port: int = 0, context_window: int | None = None,
                 overflow_style: str = "vllm") -> None:
        """``port``: 0 for any free port; a fixed one lets a test bring a server back where
        a stopped one was (connection refused, then recovery). ``context_window``: count
        prompts exactly and refuse those that do not fit (see the module docstring); it and
        ``overflow_style`` may be changed while the server runs."""
        self.api_key = api_key
        self.model = model
        self.context_window = context_window
        self.overflow_style = overflow_style
        #: the exact prompt count of every chat request checked against ``context_window``
        self.prompt_counts: list[int] = []
        self.default: Script | None = None
        self.requests: list[RecordedRequest] = []
        #: bytes written by endless and huge_error scripts so far
        self.bytes_sent = 0
        self._queue: collections.deque[Script] = collections.deque()
        self._lock = threading.Lock()
        super().__init__()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._want_port = port

    # ----------------------------------------------------------------- public

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeModelServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pending(self) -> int:
        """Number of enqueued scripts not consumed yet."""
        with self._lock:
            return len(self._queue)

    def enqueue(self, *responses: Script) -> None:
        with self._lock:
            self._queue.extend(responses)


    # ---------------------------------------------------------------- plumbing

    async def _astart(self) -> None:
        app = web.Application(middlewares=[self._track_and_record])
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", self._want_port)
        await site.start()
        self._port = int(runner.addresses[0][1])

    async def _astop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _track_and_record(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            raw = await request.read()
            parsed: Any | None = None
            if raw:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
            rec = RecordedRequest(
                method=request.method,
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                json=parsed,
            )
            with self._lock:
                self.requests.append(rec)
            try:
                return await handler(request)
            except ConnectionError:
                # The client went away mid-response; nothing more to say.
                resp = web.StreamResponse()
                return resp
        finally:
            if task is not None:
                self._tasks.discard(task)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return _json_response(
                401,
                {
                    "error": {
                        "message": "Invalid API key",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
        return None

    async def _models(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        return _json_response(
            200,
            {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 1700000000, "owned_by": "qwen"}],
            },
        )

    def _next_script(self) -> Script | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            return self.default

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        try:
            req = json.loads(await request.read())
        except ValueError:
            req = None
        if not isinstance(req, dict):
            return _json_response(
                400,
                _error_body("We could not parse the JSON body of your request.", "invalid_request_error"),
            )
        model = req.get("model")
        if not model:
            return _json_response(
                400, _error_body("you must provide a model parameter", "invalid_request_error")
            )
        if model != self.model:
            return _json_response(
                404,
                _error_body(
                    f"The model `{model}` does not exist",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
        if not isinstance(req.get("messages"), list):
            return _json_response(
                400, _error_body("'messages' is a required property", "invalid_request_error")
            )
        window = self.context_window
        if window is not None:
            prompt = chatml.prompt_tokens(m for m in req["messages"] if isinstance(m, dict))
            with self._lock:
                self.prompt_counts.append(prompt)
            req["_prompt_tokens"] = prompt  # for the usage this answer reports
            completion = req.get("max_tokens")
            completion = completion if isinstance(completion, int) else 0
            if prompt + completion > window:
                return _json_response(400, _overflow_body(self.overflow_style, window, prompt, completion))
        script = self._next_script()
        if script is None:
            return _json_response(
                500,
                _error_body(
                    "FakeModelServer: no scripted response (queue empty and default is None)",
                    "fake_server_error",
                ),
            )
        return await self._play(request, req, script)

    async def _play(self, request: web.Request, req: dict[str, Any], script: Script) -> web.StreamResponse:
        if isinstance(script, SlowHeaders):
            await asyncio.sleep(script.seconds)
            return await self._play(request, req, script.then)
        if isinstance(script, Error):
            return self._error_response(script)
        if isinstance(script, Completion):
            return self._completion_response(req, script)
        if isinstance(script, Stream):
            if not req.get("stream"):
                return self._completion_response(req, _aggregate(script))
            return await self._stream_response(request, req, script)
        if isinstance(script, Garbled):
            resp = await self._start_sse(request)
            for line in script.lines:
                await resp.write((line if line.endswith("\n") else line + "\n\n").encode())
            await resp.write_eof()
            return resp
        if isinstance(script, Hang):
            chunker = _Chunker(self.model, req)
            resp = await self._start_sse(request)
            for part in script.after_parts:
                await resp.write(chunker.delta(part, "content"))
            await asyncio.sleep(script.seconds)
            await resp.write_eof()
            return resp
        if isinstance(script, Drop):
            chunker = _Chunker(self.model, req)
            resp = await self._start_sse(request)
            for part in script.after_parts:
                await resp.write(chunker.delta(part, "content"))
            # close() flushes what was written, then FINs without the final
            # zero-length chunk: the client sees an incomplete chunked body.
            # aiohttp's write_eof() on the closed transport is swallowed.
            transport = request.transport
            if transport is not None:
                transport.close()
            return resp
        if isinstance(script, Endless):
            return await self._endless_response(request, req, script)
        if isinstance(script, HugeError):
            return await self._huge_error_response(request, script)
        raise TypeError(f"not a script: {script!r}")

    async def _endless_response(self, request: web.Request, req: dict[str, Any],
                                script: Endless) -> web.StreamResponse:
        chunker = _Chunker(self.model, req)
        resp = await self._start_sse(request)
        frame = (script.frame if isinstance(script.frame, bytes)
                 else chunker.delta(script.frame, script.field))
        written = 0
        while written < script.max_bytes:
            await resp.write(frame)  # raises ConnectionError once the client has gone
            written += len(frame)
            with self._lock:
                self.bytes_sent += len(frame)
        await resp.write_eof()
        return resp

    async def _huge_error_response(self, request: web.Request,
                                   script: HugeError) -> web.StreamResponse:
        resp = web.StreamResponse(status=script.status,
                                  headers={"Content-Type": "text/plain; charset=utf-8"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        piece = (script.text * (16384 // len(script.text) + 1)).encode()[:16384]
        left = script.size
        while left > 0:
            chunk = piece[:left]
            await resp.write(chunk)
            left -= len(chunk)
            with self._lock:
                self.bytes_sent += len(chunk)
        await resp.write_eof()
        return resp

    @staticmethod
    async def _start_sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        return resp

    async def _stream_response(
        self, request: web.Request, req: dict[str, Any], script: Stream
    ) -> web.StreamResponse:
        chunker = _Chunker(self.model, req)
        resp = await self._start_sse(request)
        first = True
        for part in script.parts:
            if not first and script.chunk_delay > 0:
                await asyncio.sleep(script.chunk_delay)
            first = False
            await resp.write(chunker.delta(part, script.field))
        if not first and script.chunk_delay > 0:
            await asyncio.sleep(script.chunk_delay)
        await resp.write(chunker.finish(script.finish_reason))
        if script.usage is not None or chunker.include_usage:
            usage = script.usage if script.usage is not None else _usage(req, chunker.text)
            await resp.write(chunker.usage(usage))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _completion_response(self, req: dict[str, Any], script: Completion) -> web.Response:
        message: dict[str, Any] = {"role": "assistant", "content": script.content}
        if script.reasoning_content is not None:
            message["reasoning_content"] = script.reasoning_content
        if script.reasoning is not None:
            message["reasoning"] = script.reasoning
        text = (script.content or "") + (script.reasoning_content or "") + (script.reasoning or "")
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": script.finish_reason,
                }
            ],
            "usage": script.usage if script.usage is not None else _usage(req, text),
        }
        return _json_response(200, body)

    @staticmethod
    def _error_response(script: Error) -> web.Response:
        headers = dict(script.headers or {})
        has_ct = any(k.lower() == "content-type" for k in headers)
        body = script.body
        if body is None:
            reason = web.Response(status=script.status).reason
            body = _error_body(
                reason or f"HTTP {script.status}",
                _DEFAULT_STATUS_TYPES.get(script.status, "api_error"),
                script.status,
            )
        if isinstance(body, dict):
            if not has_ct:
                headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        else:
            if not has_ct:
                looks_html = body.lstrip().startswith("<")
                headers["Content-Type"] = ("text/html" if looks_html else "text/plain") + "; charset=utf-8"
            data = body.encode()
        return web.Response(status=script.status, body=data, headers=headers)


class _Chunker:
    """Builds ``data: {chat.completion.chunk}\\n\\n`` frames for one response."""

    def __init__(self, model: str, req: Mapping[str, Any]) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model
        opts = req.get("stream_options")
        self.include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        self.text = ""

    def _frame(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage or usage is not None:
            chunk["usage"] = usage
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    def delta(self, part: Part, field_name: str) -> bytes:
        delta = {field_name: part} if isinstance(part, str) else dict(part)
        for value in delta.values():
            if isinstance(value, str):
                self.text += value
        return self._frame([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])

    def finish(self, finish_reason: str | None) -> bytes:
        return self._frame([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}])

    def usage(self, usage: dict[str, Any]) -> bytes:
        return self._frame([], usage)


def _aggregate(script: Stream) -> Completion:
    """Collapse a stream script into the equivalent non-streaming completion."""
    acc: dict[str, str] = {}
    for part in script.parts:
        delta = {script.field: part} if isinstance(part, str) else part
        for key, value in delta.items():
            if isinstance(value, str) and key != "role":
                acc[key] = acc.get(key, "") + value
    return Completion(
        content=acc.get("content", ""),
        reasoning_content=acc.get("reasoning_content"),
        reasoning=acc.get("reasoning"),
        finish_reason=script.finish_reason,
        usage=script.usage,
    )


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def _load_scripts(path: str) -> tuple[list[Script], Script | None]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, list):
        return [script_from_dict(d) for d in data], None
    if isinstance(data, dict) and ("scripts" in data or "default" in data):
        default = data.get("default")
        return (
            [script_from_dict(d) for d in data.get("scripts", [])],
            script_from_dict(default) if default is not None else None,
        )
    raise ValueError("script file must hold a list of scripts or {'scripts': [...], 'default': {...}}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.model_server",
        description="Serve a fake OpenAI-compatible API; prints base_url on the first stdout line.",
    )
    parser.add_argument(
        "--script",
        help="JSON file: a list of scripts ({'kind': 'stream', 'parts': [...]}, ...) "
        "or {'scripts': [...], 'default': {...}}",
    )
    parser.add_argument("--api-key", default="test-key", help="expected bearer key (default: test-key)")
    parser.add_argument("--no-auth", action="store_true", help="accept any/no Authorization header")
    parser.add_argument("--model", default="Qwen/QwQ-32B")
    args = parser.parse_args(argv)

    server = FakeModelServer(api_key=None if args.no_auth else args.api_key, model=args.model)
    if args.script:
        scripts, default = _load_scripts(args.script)
        server.enqueue(*scripts)
        server.default = default

    return server.serve_until_signalled(lambda: server.base_url)


if __name__ == "__main__":
    sys.exit(main())
