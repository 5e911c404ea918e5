"""A server that ignores max_tokens, or sends a giant body, is read only up to a ceiling."""

from __future__ import annotations

import httpx
import pytest

from qwqbot.errors import AnswerCutOffError, ModelOverloadedError
from qwqbot.model.client import ModelClient, RetryPolicy, Sampling, Timeouts
from qwqbot.model.events import Finish, ReasoningDelta
from qwqbot.model.limits import ERROR_BODY_CAP, CharBudget, LimitExceeded, ResponseLimits
from qwqbot.model.sse import aiter_data
from tests.fakes.model_server import completion, endless, huge_error

Q = [{"role": "user", "content": "Hi?"}]
MAX_TOKENS = 100
LIMITS = ResponseLimits.for_max_tokens(MAX_TOKENS)


async def _no_sleep(seconds: float) -> None:
    return None


def make(server, *, retries=0):
    return ModelClient(
        base_url=server.base_url, api_key="test-key", model="Qwen/QwQ-32B",
        sampling=Sampling(max_tokens=MAX_TOKENS),
        timeouts=Timeouts(connect=2.0, idle=5.0, total=60.0),
        retry=RetryPolicy(max_retries=retries), sleep=_no_sleep)


def test_limits_follow_max_tokens():
    assert LIMITS.chars == MAX_TOKENS * 8
    bigger = ResponseLimits.for_max_tokens(32768)
    assert bigger.chars == 262144 and bigger.events > LIMITS.events
    assert bigger.stream_bytes > bigger.event_bytes > bigger.chars


async def test_endless_reasoning_ends_as_cut_off_with_a_bounded_partial(model_server):
    model_server.enqueue(endless("x" * 50))
    async with make(model_server) as client:
        with pytest.raises(AnswerCutOffError) as info:
            await client.complete(Q)
    partial = info.value.partial
    assert partial is not None and partial.cut_off
    # exactly the ceiling is kept, not what the server sent
    assert partial.reasoning == "x" * LIMITS.chars
    assert partial.answer == ""
    assert model_server.bytes_sent > LIMITS.chars
    assert "cut off by the token limit (100 tokens) while it was still thinking" in str(info.value)


async def test_endless_reasoning_field_then_answer_counts_both(model_server):
    model_server.enqueue(endless({"reasoning_content": "r" * 30, "content": "a" * 30}))
    async with make(model_server) as client:
        with pytest.raises(AnswerCutOffError) as info:
            await client.complete(Q)
    partial = info.value.partial
    assert partial is not None
    assert len(partial.reasoning) + len(partial.answer) == LIMITS.chars
    assert partial.answer and "mid-answer" in str(info.value)


async def test_stream_ends_with_a_length_finish(model_server):
    model_server.enqueue(endless({"reasoning_content": "abc"}))
    async with make(model_server) as client:
        events = [e async for e in client.stream(Q)]
    assert events[-1] == Finish("length")
    assert sum(len(e.text) for e in events if isinstance(e, ReasoningDelta)) == LIMITS.chars


async def test_endless_empty_deltas_stop_at_the_event_ceiling(model_server):
    model_server.enqueue(endless({}))
    async with make(model_server) as client:
        with pytest.raises(AnswerCutOffError) as info:
            await client.complete(Q)
    assert info.value.partial is not None and info.value.partial.reasoning == ""
    assert model_server.bytes_sent > LIMITS.events * 100  # every frame is > 100 bytes


async def test_one_endless_line_stops_at_the_event_byte_ceiling(model_server):
    model_server.enqueue(endless(b"data: " + b"x" * 65536))  # never a newline
    async with make(model_server) as client:
        with pytest.raises(AnswerCutOffError):
            await client.complete(Q)
    assert model_server.bytes_sent > LIMITS.event_bytes


async def test_oversized_error_body_is_read_only_up_to_the_cap(model_server):
    size = 64 * 1024 * 1024
    model_server.enqueue(huge_error(500, size))
    async with make(model_server) as client:
        with pytest.raises(ModelOverloadedError) as info:
            await client.complete(Q)
    assert model_server.bytes_sent > ERROR_BODY_CAP
    assert model_server.bytes_sent < size  # the client hung up instead of reading it all
    assert "overloaded or down (500)" in str(info.value)
    assert len(str(info.value)) < 400


async def test_json_answer_larger_than_the_ceiling_is_cut_off(model_server):
    model_server.enqueue(completion("y" * (LIMITS.event_bytes + 10)))
    async with make(model_server) as client:
        with pytest.raises(AnswerCutOffError) as info:
            await client.complete(Q, stream=False)
    assert info.value.partial is not None and info.value.partial.reasoning == ""


async def test_json_answer_past_the_character_ceiling_keeps_only_the_ceiling(model_server):
    model_server.enqueue(completion("<think>" + "z" * 5000 + "</think>answer"))
    async with make(model_server) as client:
        with pytest.raises(AnswerCutOffError) as info:
            await client.complete(Q, stream=False)
    assert info.value.partial is not None
    assert info.value.partial.reasoning == "z" * LIMITS.chars
    assert info.value.partial.answer == ""


async def test_an_answer_within_the_ceiling_is_untouched(model_server):
    model_server.enqueue(completion("<think>" + "z" * 700 + "</think>" + "w" * 100))
    async with make(model_server) as client:
        result = await client.complete(Q)
    assert (len(result.reasoning), len(result.answer)) == (700, 100)


def test_char_budget_trims_the_crossing_delta():
    budget = CharBudget(5)
    out = budget.take([ReasoningDelta("abc"), ReasoningDelta("defg"), ReasoningDelta("h")])
    assert out == [ReasoningDelta("abc"), ReasoningDelta("de")] and budget.exhausted


# -- the SSE reader on its own ---------------------------------------------------------


async def _data(chunks: list[bytes], limits: ResponseLimits = LIMITS) -> list[str]:
    async def body():
        for c in chunks:
            yield c

    response = httpx.Response(200, content=body())
    return [d async for d in aiter_data(response, limits)]


async def test_sse_line_endings_comments_and_multiline_data():
    chunks = [b": ping\r\ndata: a\r", b"\ndata: b\r\rdata: c\n\n", b"event: x\ndata: d\n\n",
              b"data: never finished"]
    assert await _data(chunks) == ["a\nb", "c", "d"]


async def test_sse_reader_raises_past_the_event_count():
    limits = ResponseLimits(chars=10, events=2, stream_bytes=10**6, event_bytes=10**6)
    with pytest.raises(LimitExceeded) as info:
        await _data([b"data: 1\n\n" * 3], limits)
    assert info.value.what == "stream events"


async def test_sse_reader_raises_past_the_body_bytes():
    limits = ResponseLimits(chars=10, events=100, stream_bytes=20, event_bytes=10**6)
    with pytest.raises(LimitExceeded) as info:
        await _data([b"data: 1\n\n"] * 5, limits)
    assert info.value.what == "stream bytes"


def test_fake_scripts_load_from_json():
    from tests.fakes.model_server import Endless, HugeError, script_from_dict

    assert script_from_dict({"kind": "endless", "frame": "x"}) == Endless("x")
    assert script_from_dict({"kind": "huge_error", "status": 503, "size": 9}) == HugeError(503, 9)
