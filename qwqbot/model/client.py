"""Client for any OpenAI-compatible ``/chat/completions`` endpoint.

Streams SSE and yields typed events (reasoning, answer, usage, finish). Three clocks guard a
call, because QwQ legitimately thinks for minutes: a connect timeout, an idle timeout between
chunks (a stalled stream), and an overall ceiling. Failures before any output has streamed
are retried with exponential backoff and full jitter (``Retry-After`` honoured); once output
has reached the caller a retry would duplicate it, so the error is raised instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from qwqbot.config import Settings
from qwqbot.errors import (
    AnswerCutOffError,
    ModelConnectionError,
    ModelError,
    ModelProtocolError,
    ModelRateLimitedError,
    ModelTimeoutError,
)
from qwqbot.model.errors_map import error_for_status, parse_retry_after, server_message
from qwqbot.model.events import Completion, Finish, ModelEvent, Usage
from qwqbot.model.limits import ERROR_BODY_CAP, CharBudget, LimitExceeded, ResponseLimits
from qwqbot.model.reasoning import ReasoningSplitter
from qwqbot.model.sse import aiter_data

log = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Sampling:
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.0
    presence_penalty: float | None = None
    max_tokens: int = 32768

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "min_p": self.min_p,
            # Always sent: some servers still default to 512, which cuts QwQ off mid-thought.
            "max_tokens": self.max_tokens,
        }
        if self.top_k > 0:
            body["top_k"] = self.top_k
        if self.presence_penalty is not None:
            body["presence_penalty"] = self.presence_penalty
        return body


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    connect: float = 10.0
    idle: float = 120.0
    total: float = 900.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    #: a Retry-After longer than this is not waited out: the user is told instead
    max_retry_after: float = 60.0

    def delay(self, attempt: int, err: ModelError) -> float:
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
        if isinstance(err, ModelRateLimitedError) and err.retry_after is not None:
            return err.retry_after + backoff / 4
        return backoff


class ModelClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        sampling: Sampling | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.sampling = sampling or Sampling()
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        # Kept to scrub it from server-supplied text: a provider may echo the key it refused.
        self._api_key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        t = self.timeouts
        self._http = httpx.AsyncClient(
            headers=headers,
            transport=transport,
            # read = the idle timeout: httpx applies it to each chunk read
            timeout=httpx.Timeout(connect=t.connect, read=t.idle, write=30.0, pool=t.connect),
            # Many answers stream at once; the default pool of 100 would queue the 101st.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=50),
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ModelClient:
        return cls(
            base_url=settings.aiml_api_base_url,
            api_key=settings.aiml_api_key.get() if settings.aiml_api_key else None,
            model=settings.model,
            sampling=Sampling(
                temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                min_p=settings.min_p, presence_penalty=settings.presence_penalty,
                max_tokens=settings.max_tokens,
            ),
            timeouts=Timeouts(connect=settings.connect_timeout, idle=settings.idle_timeout,
                              total=settings.total_timeout),
            retry=RetryPolicy(max_retries=settings.max_retries),
            **kwargs,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- public API --------------------------------------------------------------------

    async def stream(
        self, messages: list[Message], *, max_tokens: int | None = None, stream: bool = True,
    ) -> AsyncIterator[ModelEvent]:
        """Yield the events of one answer, retrying failures that happen before any output."""
        body = {"model": self.model, "messages": messages, **self.sampling.body()}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts.total
        attempt = 0
        while True:
            yielded = False
            try:
                async for event in self._attempt(body, deadline):
                    yielded = True
                    yield event
                return
            except ModelError as err:
                delay = self.retry.delay(attempt, err)
                give_up = (
                    yielded
                    or not err.retryable
                    or attempt >= self.retry.max_retries
                    or (isinstance(err, ModelRateLimitedError)
                        and (err.retry_after or 0) > self.retry.max_retry_after)
                    or loop.time() + delay >= deadline
                )
                if give_up:
                    log.warning("model call failed: %s (status %s, attempt %d)%s",
                                err.kind, err.status, attempt + 1, _cause(err))
                    raise
                attempt += 1
                log.warning("model call failed: %s (status %s)%s; retry %d/%d in %.1f s",
                            err.kind, err.status, _cause(err), attempt, self.retry.max_retries,
                            delay)
                await self._sleep(delay)

    async def complete(
        self, messages: list[Message], *, max_tokens: int | None = None, stream: bool = True,
        on_event: Callable[[ModelEvent, Completion], Awaitable[None] | None] | None = None,
    ) -> Completion:
        """Collect a whole answer. Raises AnswerCutOffError (with ``partial``) on
        ``finish_reason: length``; other ModelErrors carry what arrived in ``partial``."""
        completion = Completion()
        try:
            async for event in self.stream(messages, max_tokens=max_tokens, stream=stream):
                completion.add(event)
                if on_event is not None:
                    result = on_event(event, completion)
                    if result is not None:
                        await result
        except ModelError as err:
            err.partial = completion
            raise
        if completion.cut_off:
            limit = self.sampling.max_tokens if max_tokens is None else max_tokens
            where = "while it was still thinking" if not completion.answer else "mid-answer"
            raise AnswerCutOffError(
                f"The answer was cut off by the token limit ({limit:,} tokens) {where}.",
                hint="Ask a narrower question, or raise QWQBOT_MAX_TOKENS.",
                partial=completion,
            )
        return completion

    async def list_models(self) -> list[str]:
        """Model ids the server offers (``GET /models``); used by ``qwqbot check``."""
        request = self._http.build_request("GET", f"{self.base_url}/models")
        try:
            resp = await self._http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc) from exc
        except httpx.LocalProtocolError:
            raise self._unreachable() from None  # its text can quote the key: see _attempt
        except httpx.TransportError as exc:
            raise self._unreachable() from exc
        try:
            if resp.status_code != 200:
                raise self._status_error(resp.status_code, await self._read_error_body(resp),
                                         resp.headers)
            raw = await _read_capped(resp, _MODEL_LIST_CAP)
        finally:
            await resp.aclose()
        try:
            if raw is None:
                raise ValueError("model list too large")
            data = json.loads(raw).get("data", [])
            return [str(m.get("id")) for m in data if isinstance(m, dict)]
        except (ValueError, AttributeError) as exc:
            raise ModelProtocolError(
                f"{self.base_url}/models did not answer with a model list.",
                hint="Check AIML_API_BASE_URL: it should end in /v1 for most servers.",
            ) from exc

    # -- one HTTP attempt --------------------------------------------------------------

    async def _attempt(self, body: dict[str, Any], deadline: float) -> AsyncIterator[ModelEvent]:
        loop = asyncio.get_running_loop()
        request = self._http.build_request("POST", f"{self.base_url}/chat/completions", json=body)
        if body.get("stream"):
            request.headers["Accept"] = "text/event-stream"
        try:
            response = await asyncio.wait_for(
                self._http.send(request, stream=True), timeout=max(0.0, deadline - loop.time()))
        except TimeoutError as exc:
            raise self._overall_timeout() from exc
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc) from exc
        except httpx.LocalProtocolError:
            # Not chained: h11 quotes an illegal header value in full ("Illegal header value
            # b'Bearer ...'"), and the Authorization header holds the key.
            raise self._unreachable() from None
        except httpx.TransportError as exc:
            raise self._unreachable() from exc
        limits = ResponseLimits.for_max_tokens(int(body.get("max_tokens") or 0))
        try:
            if response.status_code != 200:
                content = await self._read_error_body(response)
                raise self._status_error(response.status_code, content, response.headers)
            ctype = response.headers.get("content-type", "")
            if "text/event-stream" in ctype:
                async for event in self._sse_events(response, deadline, limits):
                    yield event
            else:
                # Servers that ignore ``stream: true`` (or a non-streamed request) answer JSON.
                for event in await self._json_answer(response, limits):
                    yield event
        finally:
            # Closing an unread body drops the connection: nothing more of it is read.
            await response.aclose()

    async def _sse_events(self, response: httpx.Response, deadline: float,
                          limits: ResponseLimits) -> AsyncIterator[ModelEvent]:
        loop = asyncio.get_running_loop()
        splitter = ReasoningSplitter()
        budget = CharBudget(limits.chars)
        finish_reason: str | None = None
        finished = done = False
        events = aiter_data(response, limits)
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise self._overall_timeout()
                idle = min(self.timeouts.idle, remaining)
                try:
                    data = await asyncio.wait_for(anext(events), timeout=idle)
                except StopAsyncIteration:
                    break
                except LimitExceeded as exc:
                    _log_ceiling(exc.what, limits)
                    finish_reason, finished = "length", True
                    break
                except TimeoutError as exc:
                    if idle < self.timeouts.idle:
                        raise self._overall_timeout() from exc
                    raise self._idle_timeout() from exc
                except httpx.TimeoutException as exc:
                    raise self._idle_timeout() from exc
                except httpx.TransportError as exc:
                    raise ModelConnectionError(
                        "The connection to the model server broke off before the answer was "
                        "complete.", hint="Try again.") from exc
                if data.strip() == "[DONE]":
                    done = True
                    break
                if not data.strip():
                    continue
                chunk = self._parse_chunk(data)
                if "error" in chunk:
                    # OpenRouter-style error reported inside a 200 stream
                    err = chunk["error"]
                    code = err.get("code") if isinstance(err, dict) else None
                    raise self._status_error(code if isinstance(code, int) else 502,
                                             json.dumps(chunk), {})
                for event in budget.take(self._chunk_events(chunk, splitter)):
                    yield event
                if budget.exhausted:
                    # Counted as a cut-off, like finish_reason "length": the user is told.
                    _log_ceiling("characters", limits)
                    finish_reason, finished = "length", True
                    break
                for choice in chunk.get("choices") or []:
                    if isinstance(choice, dict) and choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
                        finished = True
        finally:
            await events.aclose()
        if not (finished or done):
            raise ModelConnectionError(
                "The model's answer stopped before it was finished (the stream ended early).",
                hint="Try again.")
        for event in budget.take(splitter.finish(finish_reason)):
            yield event

    def _chunk_events(self, chunk: dict[str, Any], splitter: ReasoningSplitter,
                      ) -> list[ModelEvent]:
        events: list[ModelEvent] = []
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                events += splitter.feed(choice.get("delta"))
        return events + _usage_events(chunk)

    async def _json_answer(self, response: httpx.Response, limits: ResponseLimits,
                           ) -> list[ModelEvent]:
        """The events of a non-streamed answer, read up to the ceiling; a larger one is
        reported as cut off (its JSON cannot be parsed half-read)."""
        try:
            raw = await _read_capped(response, limits.event_bytes)
        except httpx.HTTPError:
            raw = b""
        if raw is None:
            _log_ceiling("answer bytes", limits)
            return [Finish("length")]
        budget = CharBudget(limits.chars)
        events = budget.take(self._json_events(raw))
        if budget.exhausted:
            _log_ceiling("characters", limits)
            events = [e for e in events if not isinstance(e, Finish)] + [Finish("length")]
        return events

    def _json_events(self, raw: bytes) -> list[ModelEvent]:
        """A whole ``chat.completion``: asked for (``stream=False``), or sent by a server that
        ignores ``stream: true``. Its ``message`` goes through the splitter like a delta."""
        data = self._parse_chunk(raw.decode("utf-8", "replace"))
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ModelProtocolError("The model server's answer had no choices in it.",
                                     hint="Check AIML_API_BASE_URL points at an OpenAI-"
                                     "compatible API.")
        splitter = ReasoningSplitter()
        events = splitter.feed(choices[0].get("message")) + _usage_events(data)
        return events + splitter.finish(choices[0].get("finish_reason"))

    # -- error construction ------------------------------------------------------------

    def _parse_chunk(self, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise self._not_a_completion(data) from exc
        if not isinstance(chunk, dict):
            raise self._not_a_completion(data)
        return chunk

    def _not_a_completion(self, data: str) -> ModelProtocolError:
        return ModelProtocolError(
            "The model server sent something that is not a chat completion "
            f"({server_message(data, secret=self._api_key)[:60]!r}).",
            hint="Check AIML_API_BASE_URL points at an OpenAI-compatible API; try again.")

    async def _read_error_body(self, response: httpx.Response) -> bytes:
        """At most ERROR_BODY_CAP bytes of an error body: only 200 characters are shown."""
        try:
            raw = await _read_capped(response, ERROR_BODY_CAP, truncate=True)
        except httpx.HTTPError:
            return b""
        return raw or b""

    def _status_error(self, status: int, body: bytes | str, headers: Any) -> ModelError:
        retry_after = parse_retry_after(headers.get("retry-after") if headers else None)
        return error_for_status(status, body, model=self.model, base_url=self.base_url,
                                retry_after=retry_after, secret=self._api_key)

    def _unreachable(self) -> ModelConnectionError:
        return ModelConnectionError(
            f"Could not reach the model server at {self.base_url}.",
            hint="Check AIML_API_BASE_URL and the network, then try again.")

    def _timeout_error(self, exc: httpx.TimeoutException) -> ModelTimeoutError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return ModelTimeoutError(
                f"Could not connect to the model server at {self.base_url} within "
                f"{self.timeouts.connect:g} s.",
                hint="Check AIML_API_BASE_URL and the network, then try again.")
        return self._idle_timeout()

    def _idle_timeout(self) -> ModelTimeoutError:
        return ModelTimeoutError(
            f"The model server went quiet for {self.timeouts.idle:g} s in the middle of the answer.",
            hint="Try again; if it keeps happening the provider is overloaded.")

    def _overall_timeout(self) -> ModelTimeoutError:
        # Not retried: the loop in stream() sees the deadline has passed.
        return ModelTimeoutError(
            f"The answer took longer than the {_duration(self.timeouts.total)} limit.",
            hint="Ask a narrower question, or raise QWQBOT_TOTAL_TIMEOUT.")


#: a model list is small; a server answering megabytes to GET /models is not one
_MODEL_LIST_CAP = 4 * 1024 * 1024


async def _read_capped(response: httpx.Response, cap: int, *, truncate: bool = False,
                       ) -> bytes | None:
    """The body of a streamed ``response`` if it is at most ``cap`` bytes; past that, stop
    reading and return None (or, with ``truncate``, the first ``cap`` bytes)."""
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) > cap:
            return bytes(buf[:cap]) if truncate else None
    return bytes(buf)


def _log_ceiling(what: str, limits: ResponseLimits) -> None:
    log.warning("model server sent more than the ceiling (%s; %d characters, %d events, "
                "%d bytes allowed): stopped reading, answer reported as cut off", what,
                limits.chars, limits.events, limits.stream_bytes)


def _usage_events(body: dict[str, Any]) -> list[ModelEvent]:
    """The token counts a chunk or a whole answer carries, if any."""
    usage = body.get("usage")
    return [_usage(usage)] if isinstance(usage, dict) else []


def _usage(data: dict[str, Any]) -> Usage:
    details = data.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=_int(data.get("prompt_tokens")),
        completion_tokens=_int(data.get("completion_tokens")),
        reasoning_tokens=_int(reasoning),
        total_tokens=_int(data.get("total_tokens")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cause(err: ModelError) -> str:
    """What lay under ``err`` (``raise ... from``), for the operator's log line."""
    cause = err.__cause__
    if cause is None:
        return ""
    detail = str(cause)
    return f" ({type(cause).__name__}: {detail})" if detail else f" ({type(cause).__name__})"


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}-minute"
    return f"{seconds:g}-second"
