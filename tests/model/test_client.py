"""The real httpx client against the loopback OpenAI-compatible fake (real SSE)."""

from __future__ import annotations

import json
import traceback

import httpx
import pytest

from qwqbot.errors import (
    AnswerCutOffError,
    ModelAuthError,
    ModelBadRequestError,
    ModelConnectionError,
    ModelCreditsError,
    ModelNotFoundError,
    ModelOverloadedError,
    ModelProtocolError,
    ModelRateLimitedError,
    ModelTimeoutError,
)
from qwqbot.model.client import ModelClient, RetryPolicy, Sampling, Timeouts
from qwqbot.model.events import AnswerDelta, Finish, ReasoningDelta, Usage
from tests.fakes.model_server import (
    completion,
    drop,
    error,
    garbled,
    hang,
    slow_headers,
    stream,
    think_stream,
)

Q = [{"role": "user", "content": "Hi?"}]


class Sleeps:
    """Records backoff delays instead of sleeping, so retry tests run instantly."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make(server, *, key="test-key", retries=3, idle=5.0, total=60.0, connect=2.0, model=None,
         sleeps=None, base_url=None):
    return ModelClient(
        base_url=base_url or server.base_url, api_key=key, model=model or "Qwen/QwQ-32B",
        sampling=Sampling(max_tokens=2048),
        timeouts=Timeouts(connect=connect, idle=idle, total=total),
        retry=RetryPolicy(max_retries=retries), sleep=sleeps or Sleeps())


async def test_streams_inline_think_as_typed_events(model_server):
    model_server.enqueue(think_stream("Let me think.", "Hello!", chunk_size=3,
                                      usage={"prompt_tokens": 9, "completion_tokens": 12,
                                             "total_tokens": 21,
                                             "completion_tokens_details": {"reasoning_tokens": 7}}))
    async with make(model_server) as client:
        events = [e async for e in client.stream(Q)]
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)).strip() == "Let me think."
    assert "".join(e.text for e in events if isinstance(e, AnswerDelta)) == "Hello!"
    assert Usage(9, 12, 7, 21) in events
    assert events[-1] == Finish("stop")
    # the reasoning arrived in several deltas, before any answer delta
    kinds = [type(e) for e in events if isinstance(e, ReasoningDelta | AnswerDelta)]
    assert kinds.count(ReasoningDelta) > 1 and kinds.index(AnswerDelta) > kinds.index(ReasoningDelta)


async def test_request_carries_qwq_sampling_and_usage_request(model_server):
    model_server.enqueue(think_stream("r", "a"))
    async with make(model_server) as client:
        await client.complete(Q)
    req = model_server.requests[0]
    assert req.headers["authorization"] == "Bearer test-key"
    body = req.json
    assert body["model"] == "Qwen/QwQ-32B" and body["messages"] == Q
    assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"]) == (0.6, 0.95, 40, 0.0)
    assert body["max_tokens"] == 2048
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_missing_opening_tag(model_server):
    model_server.enqueue(think_stream("The user greets me.", "Hi!", opening_tag=False))
    async with make(model_server) as client:
        result = await client.complete(Q)
    assert (result.reasoning, result.answer) == ("The user greets me.", "Hi!")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_fields(model_server, field):
    model_server.enqueue(stream([{field: "Two plus "}, {field: "two."}, "It is ", "4."]))
    async with make(model_server) as client:
        result = await client.complete(Q)
    assert (result.reasoning, result.answer) == ("Two plus two.", "It is 4.")


async def test_usage_captured_from_final_chunk(model_server):
    model_server.enqueue(think_stream("r", "a", usage={"prompt_tokens": 5, "completion_tokens": 3,
                                                       "total_tokens": 8}))
    async with make(model_server) as client:
        result = await client.complete(Q)
    assert result.usage == Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8)


async def test_non_streaming_request(model_server):
    model_server.enqueue(completion("Four.", reasoning_content="2+2", usage={
        "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}))
    async with make(model_server) as client:
        result = await client.complete(Q, stream=False)
    assert "stream" not in model_server.requests[0].json
    assert (result.reasoning, result.answer, result.finish_reason) == ("2+2", "Four.", "stop")
    assert result.usage is not None and result.usage.total_tokens == 3


async def test_server_that_ignores_stream_true_answers_json(model_server):
    model_server.enqueue(completion("<think>hm</think>\n\nOK"))
    async with make(model_server) as client:
        result = await client.complete(Q)
    assert (result.reasoning, result.answer) == ("hm", "OK")


async def test_cut_off_by_token_limit_keeps_reasoning_so_far(model_server):
    model_server.enqueue(stream(["<think>First, ", "consider"], finish_reason="length"))
    async with make(model_server) as client:
        with pytest.raises(AnswerCutOffError) as info:
            await client.complete(Q)
    assert info.value.partial.reasoning == "First, consider"
    assert "cut off by the token limit (2,048 tokens) while it was still thinking" in str(info.value)
    assert "QWQBOT_MAX_TOKENS" in info.value.hint


# -- error mapping ---------------------------------------------------------------------


async def test_401_bad_key(model_server):
    async with make(model_server, key="wrong") as client:
        with pytest.raises(ModelAuthError) as info:
            await client.complete(Q)
    assert "rejected the API key (401)" in str(info.value) and "AIML_API_KEY" in info.value.hint
    assert "wrong" not in info.value.one_line()
    assert len(model_server.requests) == 1  # not retried


async def test_403_out_of_credits_aimlapi_body(model_server):
    model_server.enqueue(error(403, {"message": "Insufficient credits", "statusCode": 403}))
    async with make(model_server) as client:
        with pytest.raises(ModelCreditsError) as info:
            await client.complete(Q)
    assert "out of credits" in str(info.value) and "Insufficient credits" in str(info.value)


async def test_404_model_not_available_names_model_and_base_url(model_server):
    async with make(model_server, model="qwen/qwq-99b") as client:
        with pytest.raises(ModelNotFoundError) as info:
            await client.complete(Q)
    msg = info.value.one_line()
    assert "qwen/qwq-99b" in msg and model_server.base_url in msg and "QWQBOT_MODEL" in msg


async def test_400_saying_model_deprecated_is_model_not_found(model_server):
    model_server.enqueue(error(400, {"error": {"message": "Model Qwen/QwQ-32B is deprecated"}}))
    async with make(model_server) as client:
        with pytest.raises(ModelNotFoundError):
            await client.complete(Q)


async def test_other_400_is_bad_request_with_server_text(model_server):
    model_server.enqueue(error(400, {"error": {"message": "messages too long"}}))
    async with make(model_server) as client:
        with pytest.raises(ModelBadRequestError, match="messages too long"):
            await client.complete(Q)


async def test_429_honours_retry_after_then_succeeds(model_server):
    sleeps = Sleeps()
    model_server.enqueue(error(429, headers={"Retry-After": "3"}), think_stream("r", "done"))
    async with make(model_server, sleeps=sleeps) as client:
        result = await client.complete(Q)
    assert result.answer == "done"
    assert len(sleeps.delays) == 1 and 3 <= sleeps.delays[0] < 3 + 0.5 / 4 + 1e-9


async def test_429_persisting_gives_rate_limited_after_retries(model_server):
    sleeps = Sleeps()
    model_server.default = error(429, headers={"Retry-After": "1"})
    async with make(model_server, retries=2, sleeps=sleeps) as client:
        with pytest.raises(ModelRateLimitedError) as info:
            await client.complete(Q)
    assert len(model_server.requests) == 3 and len(sleeps.delays) == 2
    assert info.value.retry_after == 1 and "rate limiting" in str(info.value)


async def test_long_retry_after_is_not_waited_out(model_server):
    model_server.enqueue(error(429, headers={"Retry-After": "3600"}))
    async with make(model_server) as client:
        with pytest.raises(ModelRateLimitedError) as info:
            await client.complete(Q)
    assert len(model_server.requests) == 1 and "3600 s" in info.value.hint


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_retried_with_growing_jittered_backoff(model_server, status):
    sleeps = Sleeps()
    model_server.enqueue(error(status), error(status), error(status), think_stream("r", "ok"))
    async with make(model_server, sleeps=sleeps) as client:
        assert (await client.complete(Q)).answer == "ok"
    assert len(sleeps.delays) == 3
    assert all(0 <= d <= 0.5 * 2**i for i, d in enumerate(sleeps.delays))


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_persisting_is_overloaded(model_server, status):
    model_server.default = error(status, "<html><body>Bad gateway</body></html>")
    async with make(model_server, retries=1) as client:
        with pytest.raises(ModelOverloadedError) as info:
            await client.complete(Q)
    assert f"overloaded or down ({status})" in str(info.value)
    assert "<html>" not in str(info.value)


async def test_504_is_a_timeout_and_retried(model_server):
    model_server.default = error(504)
    async with make(model_server, retries=1) as client:
        with pytest.raises(ModelTimeoutError, match=r"timed out .* \(504\)"):
            await client.complete(Q)
    assert len(model_server.requests) == 2


async def test_connection_refused_retried_then_clear_error(model_server):
    dead = f"http://127.0.0.1:{model_server.port}/v1"
    model_server.stop()
    sleeps = Sleeps()
    async with make(model_server, base_url=dead, retries=2, sleeps=sleeps) as client:
        with pytest.raises(ModelConnectionError) as info:
            await client.complete(Q)
    assert f"Could not reach the model server at {dead}" in str(info.value)
    assert len(sleeps.delays) == 2


async def test_connect_timeout_is_reported_as_such():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = ModelClient(base_url="http://model.invalid/v1", api_key="k", model="m",
                         timeouts=Timeouts(connect=3), retry=RetryPolicy(max_retries=0),
                         transport=httpx.MockTransport(handler))
    with pytest.raises(ModelTimeoutError, match="within 3 s"):
        await client.complete(Q)
    await client.aclose()


async def test_slow_headers_hit_idle_timeout_and_are_retried(model_server):
    model_server.enqueue(slow_headers(2.0, think_stream("r", "late")), think_stream("r", "ok"))
    async with make(model_server, idle=0.3) as client:
        assert (await client.complete(Q)).answer == "ok"


async def test_idle_stream_after_output_is_not_retried(model_server):
    model_server.enqueue(hang(["<think>thinking hard"], seconds=5))
    async with make(model_server, idle=0.3) as client:
        with pytest.raises(ModelTimeoutError, match=r"went quiet for 0\.3 s") as info:
            await client.complete(Q)
    assert len(model_server.requests) == 1
    assert info.value.partial is not None and info.value.partial.reasoning == "thinking hard"


async def test_idle_before_any_output_is_retried(model_server):
    model_server.enqueue(hang([], seconds=5), think_stream("r", "ok"))
    async with make(model_server, idle=0.3) as client:
        assert (await client.complete(Q)).answer == "ok"
    assert len(model_server.requests) == 2


async def test_overall_ceiling(model_server):
    model_server.enqueue(stream(["<think>"] + ["x"] * 50, chunk_delay=0.05))
    async with make(model_server, total=0.6, idle=5) as client:
        with pytest.raises(ModelTimeoutError, match=r"longer than the 0\.6-second limit"):
            await client.complete(Q)
    assert len(model_server.requests) == 1


async def test_stream_dropped_mid_answer(model_server):
    model_server.enqueue(drop(["<think>a</think>", "Half an ans"]))
    async with make(model_server) as client:
        with pytest.raises(ModelConnectionError, match="broke off") as info:
            await client.complete(Q)
    assert len(model_server.requests) == 1
    assert info.value.partial is not None and info.value.partial.answer == "Half an ans"


async def test_stream_dropped_before_output_is_retried(model_server):
    model_server.enqueue(drop([]), think_stream("r", "ok"))
    async with make(model_server) as client:
        assert (await client.complete(Q)).answer == "ok"


async def test_clean_eof_without_finish_is_an_error(model_server):
    model_server.enqueue(hang(["<think>a</think>b"], seconds=0.05))
    async with make(model_server) as client:
        with pytest.raises(ModelConnectionError, match="stopped before it was finished"):
            await client.complete(Q)


async def test_garbled_sse(model_server):
    model_server.default = garbled(["data: {not json"])
    async with make(model_server, retries=1) as client:
        with pytest.raises(ModelProtocolError, match="not a chat completion"):
            await client.complete(Q)
    assert len(model_server.requests) == 2


async def test_error_inside_a_200_stream(model_server):
    model_server.enqueue(garbled(['data: {"error": {"message": "Provider overloaded", "code": 503}}']))
    async with make(model_server, retries=0) as client:
        with pytest.raises(ModelOverloadedError, match="Provider overloaded"):
            await client.complete(Q)


async def test_list_models(model_server):
    async with make(model_server) as client:
        assert await client.list_models() == ["Qwen/QwQ-32B"]


# -- one splitter path for every way an answer arrives ---------------------------------

THOUGHT = "<think>\nTwo plus two.\n</think>\n\nIt is 4."
# The same answer as a stream and as the JSON a server sends when it ignores ``stream: true``.
ANSWERS = {
    "inline tags": (think_stream("Two plus two.", "It is 4.", chunk_size=4), completion(THOUGHT)),
    "no opening tag": (think_stream("Two plus two.", "It is 4.", opening_tag=False),
                       completion(THOUGHT.removeprefix("<think>\n"))),
    "reasoning_content": (
        stream([{"reasoning_content": "Two plus "}, {"reasoning_content": "two."}, "It is ", "4."]),
        completion("It is 4.", reasoning_content="Two plus two.")),
    "reasoning": (stream([{"reasoning": "Two plus two."}, "It is 4."]),
                  completion("It is 4.", reasoning="Two plus two.")),
}


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("path", ["sse", "json to stream: true", "stream: false"])
async def test_every_path_splits_an_answer_the_same_way(model_server, name, path):
    streamed, whole = ANSWERS[name]
    # stream: false gets the stream script aggregated into one chat.completion by the fake
    model_server.enqueue(whole if path == "json to stream: true" else streamed)
    async with make(model_server) as client:
        result = await client.complete(Q, stream=path != "stream: false")
    assert (result.reasoning, result.answer, result.finish_reason) == (
        "Two plus two.", "It is 4.", "stop")


async def test_reasoning_field_in_a_json_answer_to_stream_true(model_server):
    model_server.enqueue(completion("Four.", reasoning="2+2"))
    async with make(model_server) as client:
        events = [e async for e in client.stream(Q)]
    assert model_server.requests[0].json["stream"] is True
    assert [e for e in events if isinstance(e, ReasoningDelta | AnswerDelta)] == [
        ReasoningDelta("2+2"), AnswerDelta("Four.")]
    assert events[-1] == Finish("stop")


# -- causes are kept for the operator, messages stay clean -----------------------------


async def test_connection_refused_keeps_the_transport_error_as_cause(model_server, caplog):
    dead = f"http://127.0.0.1:{model_server.port}/v1"
    model_server.stop()
    async with make(model_server, base_url=dead, retries=1) as client:
        with caplog.at_level("WARNING", logger="qwqbot.model.client"), \
                pytest.raises(ModelConnectionError) as info:
            await client.complete(Q)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert str(info.value) == f"Could not reach the model server at {dead}."
    # both the retry and the give-up line name what lay underneath
    assert caplog.text.count("(ConnectError") == 2


async def test_dropped_stream_keeps_the_protocol_error_as_cause(model_server):
    model_server.enqueue(drop(["<think>a</think>", "Half"]))
    async with make(model_server) as client:
        with pytest.raises(ModelConnectionError, match="broke off") as info:
            await client.complete(Q)
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)


async def test_garbled_sse_keeps_the_json_error_as_cause(model_server):
    model_server.default = garbled(["data: {not json"])
    async with make(model_server, retries=0) as client:
        with pytest.raises(ModelProtocolError) as info:
            await client.complete(Q)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


async def test_idle_timeout_keeps_the_timeout_as_cause(model_server):
    model_server.enqueue(hang(["<think>thinking"], seconds=5))
    async with make(model_server, idle=0.3) as client:
        with pytest.raises(ModelTimeoutError, match="went quiet") as info:
            await client.complete(Q)
    assert isinstance(info.value.__cause__, TimeoutError | httpx.ReadTimeout)


async def test_connect_timeout_keeps_httpx_error_as_cause():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = ModelClient(base_url="http://model.invalid/v1", api_key="k", model="m",
                         retry=RetryPolicy(max_retries=0), transport=httpx.MockTransport(handler))
    with pytest.raises(ModelTimeoutError) as info:
        await client.list_models()
    assert isinstance(info.value.__cause__, httpx.ConnectTimeout)
    await client.aclose()


async def test_a_key_that_breaks_the_header_is_not_chained(model_server):
    # h11 quotes an illegal header value in full, and this one is "Bearer <key>".
    key = "sk-secret-\x00-tail"
    async with make(model_server, key=key, retries=0) as client:
        with pytest.raises(ModelConnectionError) as info:
            await client.complete(Q)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "sk-secret" not in "".join(traceback.format_exception(info.value))
    assert model_server.requests == []


async def test_server_echoing_the_key_is_scrubbed_from_the_message(model_server):
    model_server.enqueue(error(400, {"error": {"message": "key test-key is not allowed here"}}))
    async with make(model_server) as client:
        with pytest.raises(ModelBadRequestError) as info:
            await client.complete(Q)
    assert "The server said: key *** is not allowed here" in str(info.value)
    assert "test-key" not in info.value.one_line()
