"""The bot's own model of Slack's rate limits, and calls that retry until they land."""

from __future__ import annotations

import asyncio
import time

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.calls import Calls, Undeliverable
from qwqbot.slack.limits import Bucket, Gate, Limits, Priority, Window


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_allows_per_minute_calls_in_any_60_seconds():
    clock = Clock()
    window = Window(3, clock)
    for _ in range(3):
        assert window.wait() == 0
        window.take()
        clock.now += 10
    # 3 calls at t=0, 10, 20; now t=30: the next fits when the first leaves, at t=60.
    assert window.wait() == pytest.approx(30)
    clock.now = 1060.01
    assert window.wait() == 0


def test_window_pause_after_a_429():
    clock = Clock()
    window = Window(100, clock)
    window.pause(7)
    assert window.wait() == pytest.approx(7)


def test_bucket_bursts_then_refills_at_its_rate():
    clock = Clock()
    bucket = Bucket(5, 1.0, clock)
    for _ in range(5):
        assert bucket.wait() == 0
        bucket.take()
    assert bucket.wait() == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.wait() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.wait() == 0


async def test_gate_serves_priority_first_then_arrival_order():
    gate = Gate(Bucket(1, 20.0, time.monotonic))  # one now, then one per 50 ms
    order: list[str] = []

    async def caller(name: str, priority: int) -> None:
        await gate.enter(priority)
        order.append(name)

    tasks = [asyncio.create_task(caller("first", Priority.STATUS))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(caller(n, p)) for n, p in
              [("status-2", Priority.STATUS), ("answer-1", Priority.ANSWER),
               ("answer-2", Priority.ANSWER)]]
    await asyncio.gather(*tasks)
    assert order == ["first", "answer-1", "answer-2", "status-2"]


async def test_a_cancelled_waiter_does_not_block_the_gate():
    gate = Gate(Bucket(1, 10.0, time.monotonic))
    await gate.enter(0)
    stuck = asyncio.create_task(gate.enter(0))
    await asyncio.sleep(0.01)
    stuck.cancel()
    await asyncio.wait_for(gate.enter(0), timeout=1)
    assert gate.waiting == 0


def test_posts_draw_on_the_channel_and_the_workspace():
    limits = Limits()
    assert len(limits.gates("chat.postMessage", "C1")) == 2
    assert len(limits.gates("chat.update", "C1")) == 1
    assert limits.gates("users.list", None) == []


def test_a_refused_post_pauses_only_its_channel():
    clock = Clock()
    limits = Limits(clock=clock)
    limits.refused("chat.postMessage", "C1", 5)
    assert not limits.ready("chat.postMessage", "C1")
    assert limits.ready("chat.postMessage", "C2")


def _client(slack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test-token", base_url=slack.api_url, retry_handlers=[])


async def test_calls_wait_out_429s_for_as_long_as_it_takes(slack):
    slack.rate_limit_next("chat.postMessage", count=3, retry_after=1)
    calls = Calls(_client(slack), Limits())
    response = await calls.call("chat.postMessage", channel="C1", text="hello")
    assert response["ok"]
    assert calls.refusals["chat.postMessage"] == 3
    assert [m["text"] for m in slack.messages("C1")][-1] == "hello"


async def test_calls_retry_5xx_with_backoff(slack):
    slack.server_error_next("chat.postMessage", count=2, status=503)
    calls = Calls(_client(slack), Limits())
    await calls.call("chat.postMessage", channel="C1", text="after the outage")
    assert slack.messages("C1")[-1]["text"] == "after the outage"


async def test_calls_give_up_with_undeliverable_at_the_deadline(slack):
    slack.server_error_next("chat.postMessage", count=50, status=500)
    calls = Calls(_client(slack), Limits(), give_up_after=1.5)
    with pytest.raises(Undeliverable) as caught:
        await calls.call("chat.postMessage", channel="C1", text="never")
    assert caught.value.error == "HTTP 500"
    assert not any(m.get("text") == "never" for m in slack.messages("C1"))


async def test_calls_pass_other_errors_to_the_caller(slack):
    slack.fail_next("chat.postMessage", "not_in_channel")
    calls = Calls(_client(slack), Limits())
    with pytest.raises(SlackApiError) as caught:
        await calls.call("chat.postMessage", channel="C1", text="hi")
    assert caught.value.response["error"] == "not_in_channel"
