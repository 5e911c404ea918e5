"""Context-length refusals: recognised in each server's wording, their numbers read, mapped to
ModelContextLengthError, raised by the real client without blind retries; and the second try's budget."""

from __future__ import annotations

import json

import pytest

from qwqbot.conversation import Prompt
from qwqbot.errors import ModelBadRequestError, ModelContextLengthError, ModelNotFoundError
from qwqbot.fitting import FittedCall, retry_budget
from qwqbot.model.client import ModelClient, RetryPolicy
from qwqbot.model.context_length import Overflow, read_overflow
from qwqbot.model.errors_map import error_for_status
from qwqbot.model.events import Completion
from tests.fakes.model_server import error, think_stream

VLLM = ("This model's maximum context length is 32768 tokens. However, you requested 40000 tokens "
        "(39000 in the messages, 1000 in the completion). Please reduce the length of the messages or "
        "completion.")


@pytest.mark.parametrize(("body", "expected"), [
    ({"object": "error", "message": VLLM, "type": "BadRequestError", "code": 400},
     Overflow(32768, None, 39000)),
    ({"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages "
                           "resulted in 9000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}},
     Overflow(8192, None, 9000)),
    ({"statusCode": 400, "message": VLLM}, Overflow(32768, None, 39000)),  # AI/ML API's shape
    ({"error": {"message": "'max_tokens' or 'max_completion_tokens' is too large: 32768. This model's "
                           "maximum context length is 40960 tokens and your request has 9000 input tokens "
                           "(32768 > 40960 - 9000)."}}, Overflow(40960, None, 9000)),  # newer vLLM
    ({"error": {"message": "This endpoint's maximum context length is 131,072 tokens. However, you "
                           "requested about 140,000 tokens (139,000 of text input, 1,000 in the output).",
                "code": 400}}, Overflow(131072, None, 139000)),  # OpenRouter
    # OpenRouter passing on a provider's refusal inside its own
    ({"error": {"message": "Provider returned error", "code": 400, "metadata": {"raw": json.dumps(
        {"error": {"message": VLLM}})}}}, Overflow(32768, None, 39000)),
    ({"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 32769. Given: 40000 "
               "`inputs` tokens and 1000 `max_new_tokens`"}, Overflow(32769, None, 40000)),  # TGI, Together
    ({"code": "InvalidParameter", "message": "Range of input length should be [1, 129024]"},
     Overflow(None, 129024, None)),  # DashScope
    ({"error": {"message": "request (40000 tokens) exceeds the available context size (32768 tokens), "
                           "try increasing it"}}, Overflow(32768, None, 40000)),  # llama.cpp
    ({"message": "Prompt contains 66385 tokens, too large for model with 32768 maximum context length"},
     Overflow(32768, None, 66385)),  # Mistral
    ({"error": {"message": "The decoder prompt (length 140000) is longer than the maximum model length of "
                           "131072."}}, Overflow(131072, None, 140000)),  # vLLM, prompt alone
    ({"error": {"message": "Prompt is too long.", "code": "context_length_exceeded"}},
     Overflow(None, None, None)),
])
def test_length_refusals_are_read(body, expected):
    assert read_overflow(400, json.dumps(body)) == expected


@pytest.mark.parametrize(("status", "body"), [
    (400, {"error": {"message": "temperature must be between 0 and 2"}}),
    (400, {"error": {"message": "The model `x` does not exist", "code": "model_not_found"}}),
    (429, {"error": {"message": "This model's maximum context length is 8192 tokens."}}),  # not a 400
    (500, VLLM),
])
def test_other_refusals_are_not_length_refusals(status, body):
    assert read_overflow(status, json.dumps(body)) is None


def test_error_for_status_names_the_window_and_keeps_the_numbers():
    err = error_for_status(400, json.dumps({"object": "error", "message": VLLM}), model="Qwen/QwQ-32B",
                           base_url="http://x/v1")
    assert isinstance(err, ModelContextLengthError) and isinstance(err, ModelBadRequestError)
    assert (err.kind, err.status) == ("context_length", 400)
    assert (err.context_limit, err.prompt_limit, err.prompt_tokens) == (32768, None, 39000)
    assert "context window of 32,768 tokens" in err.user_message
    assert "QWQBOT_CONTEXT_TOKENS" in err.hint
    # a model that does not exist is still that
    assert isinstance(error_for_status(400, '{"error": {"message": "model qwq does not exist"}}',
                                       model="qwq", base_url="http://x/v1"), ModelNotFoundError)


async def test_the_client_raises_it_at_once(model_server):
    model_server.enqueue(error(400, {"object": "error", "message": VLLM}), think_stream("r", "never sent"))
    client = ModelClient(base_url=model_server.base_url, api_key="test-key", model="Qwen/QwQ-32B",
                         retry=RetryPolicy(max_retries=3, base_delay=0))
    try:
        with pytest.raises(ModelContextLengthError) as info:
            await client.complete([{"role": "user", "content": "hi"}])
    finally:
        await client.aclose()
    assert info.value.context_limit == 32768
    assert len(model_server.requests) == 1  # the same prompt again would be refused again


def refusal(*, context_limit: int | None = None, prompt_limit: int | None = None,
            prompt_tokens: int | None = None) -> ModelContextLengthError:
    return ModelContextLengthError("too long", context_limit=context_limit, prompt_limit=prompt_limit,
                                   prompt_tokens=prompt_tokens)


@pytest.mark.parametrize(("numbers", "sent", "budget"), [
    ({"context_limit": 32768}, 40000, 32768 - 8192),  # the window's room next to max_tokens
    ({"context_limit": 32768, "prompt_tokens": 50000}, 40000, int(24576 * 40000 / 50000)),  # it counts more
    ({"context_limit": 32768, "prompt_tokens": 30000}, 40000, 24576),  # it counts less: its room stands
    ({"prompt_limit": 20000}, 30000, 20000),  # DashScope: the prompt's own limit
    ({}, 40000, 30000),  # nothing stated: drop a quarter
    ({"context_limit": 131072}, 40000, 30000),  # a window we fit by our count: it counts otherwise
    ({"context_limit": 8192}, 40000, 0),  # max_tokens fills the whole window
])
def test_retry_budget(numbers, sent, budget):
    assert retry_budget(refusal(**numbers), sent_tokens=sent, max_tokens=8192) == budget


def prompt(tokens: int, text: str) -> Prompt:
    return Prompt(messages=[{"role": "user", "content": text}], included=1, omitted=0,
                  estimated_tokens=tokens)


async def test_fitted_call_asks_again_once_with_the_smaller_prompt():
    sent: list[str] = []
    budgets: list[int] = []

    async def call(messages):
        sent.append(messages[0]["content"])
        if len(sent) == 1:
            raise refusal(context_limit=10_000, prompt_tokens=12_000)
        return Completion()

    async def rebuild(budget):
        budgets.append(budget)
        return prompt(5_000, "smaller")

    fitted = FittedCall(prompt(12_000, "whole"), rebuild=rebuild, max_tokens=2_000)
    await fitted.complete(call)
    assert sent == ["whole", "smaller"] and budgets == [8_000]
    assert fitted.prompt.messages[0]["content"] == "smaller" and fitted.refits == 1


async def test_fitted_call_shows_a_second_refusal_and_never_asks_a_third_time():
    calls = 0

    async def call(messages):
        nonlocal calls
        calls += 1
        raise refusal(context_limit=10_000)

    async def rebuild(budget):
        return prompt(budget, "smaller")

    with pytest.raises(ModelContextLengthError):
        await FittedCall(prompt(12_000, "whole"), rebuild=rebuild, max_tokens=2_000).complete(call)
    assert calls == 2


async def test_a_window_with_no_room_names_the_settings_without_asking_again():
    async def call(messages):
        raise refusal(context_limit=4096, prompt_tokens=5000)

    async def rebuild(budget):
        raise AssertionError("nothing can fit")

    with pytest.raises(ModelContextLengthError) as info:
        await FittedCall(prompt(5000, "whole"), rebuild=rebuild, max_tokens=8192).complete(call)
    assert "4,096 tokens" in info.value.user_message and "8,192" in info.value.user_message
    assert "QWQBOT_CONTEXT_TOKENS to 4096" in info.value.hint
