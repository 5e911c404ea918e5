"""FakeSlack's rate limits, driven through the real slack_sdk AsyncWebClient over loopback.

The fake's clock is injected (a ManualClock the test moves), so windows and buckets are
checked at exact instants without sleeping.  Clients have ``retry_handlers=[]`` so a 429
surfaces as SlackApiError; one test installs the SDK's own rate-limit retry handler.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.rate_limits import METHOD_LIMITS
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-test-token"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def _seed(fake: FakeSlack) -> FakeSlack:
    fake.add_user("U1", name="alice")
    for cid in ("C1", "C2", "C3", "C4"):
        fake.add_channel(cid, name=f"chan-{cid}", members={"U1"})
    fake.add_channel("D1", name="D1", is_im=True, members={"U1"})
    return fake


@pytest.fixture
def slack(clock: ManualClock) -> Iterator[FakeSlack]:
    with _seed(FakeSlack(clock=clock)) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url, retry_handlers=[])


async def _refused(coro: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await coro
    err = info.value
    assert err.response.status_code == 429
    assert err.response.data == {"ok": False, "error": "ratelimited"}
    return err


def _retry_after(err: SlackApiError) -> str:
    return str(err.response.headers["Retry-After"])


async def _bot_message(slack: FakeSlack, client: AsyncWebClient) -> str:
    r = await client.chat_postMessage(channel="C1", text="seed")
    slack.forget_rate_limits()  # the post above spends nothing the tests count on
    return str(r["ts"])


# ------------------------------------------------------------------ the table


def test_every_served_method_has_a_tier_and_a_source(slack: FakeSlack) -> None:
    assert set(METHOD_LIMITS) == set(slack._dispatch)
    methods = slack.rate_limit_table()["methods"]
    for method, row in methods.items():
        assert row["source"] == f"https://docs.slack.dev/reference/methods/{method}"


def test_documented_tiers(slack: FakeSlack) -> None:
    methods = slack.rate_limit_table()["methods"]
    expected = {
        "chat.update": ("t3", 50),
        "chat.delete": ("t3", 50),
        "chat.postEphemeral": ("t4", 100),
        "chat.appendStream": ("t4", 100),
        "chat.startStream": ("t2", 20),
        "chat.stopStream": ("t2", 20),
        "users.info": ("t4", 100),
        "conversations.info": ("t3", 50),
        "conversations.replies": ("t3", 50),
        "conversations.history": ("t3", 50),
    }
    assert {m: (methods[m]["tier"], methods[m]["per_minute"]) for m in expected} == expected
    assert methods["assistant.threads.setStatus"]["tier"] == "special"
    assert methods["assistant.threads.setStatus"]["scope"] == "channel"
    assert methods["chat.postMessage"]["tier"] == "special"
    post = methods["chat.postMessage"]
    assert (post["channel_burst"], post["channel_per_second"], post["per_minute"]) == (5, 1.0, 300)


# -------------------------------------------------------------- sliding window


async def test_chat_update_51st_call_in_a_minute_is_refused(
    slack: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    ts = await _bot_message(slack, client)
    start = clock.now
    for i in range(50):  # one every half second: 0 .. 24.5 s
        await client.chat_update(channel="C1", ts=ts, text=f"edit {i}")
        clock.advance(0.5)
    err = await _refused(client.chat_update(channel="C1", ts=ts, text="refused"))
    assert clock.now - start == 25.0
    assert _retry_after(err) == "35"  # the first edit (at 0) leaves the window at 60
    assert slack.messages("C1")[0]["text"] == "edit 49"  # the refused edit changed nothing
    (limited,) = slack.limited_calls
    assert (limited.call.method, limited.rule, limited.retry_after, limited.channel) == (
        "chat.update",
        "method",
        35,
        "C1",
    )


async def test_window_slides_room_returns_as_old_calls_leave(
    slack: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    ts = await _bot_message(slack, client)
    slack.set_method_limit("chat.update", per_minute=3)
    for _ in range(3):  # at 0, 10, 20
        await client.chat_update(channel="C1", ts=ts, text="x")
        clock.advance(10)
    clock.advance(29.5)  # 59.5: the call at 0 is still inside
    assert _retry_after(await _refused(client.chat_update(channel="C1", ts=ts, text="x"))) == "1"
    clock.advance(0.5)  # 60: it left, exactly one place is free
    await client.chat_update(channel="C1", ts=ts, text="x")
    clock.advance(0.75)  # 60.75: the call at 10 leaves in 9.25 s, rounded up
    assert _retry_after(await _refused(client.chat_update(channel="C1", ts=ts, text="x"))) == "10"
    clock.advance(9.25)  # 70: it left
    await client.chat_update(channel="C1", ts=ts, text="x")
    assert len(slack.limited_calls) == 2


async def test_per_method_override_and_restore(
    slack: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    ts = await _bot_message(slack, client)
    slack.set_method_limit("chat.update", per_minute=10)
    assert slack.rate_limit_table()["methods"]["chat.update"]["per_minute"] == 10
    for _ in range(10):
        await client.chat_update(channel="C1", ts=ts, text="x")
    assert _retry_after(await _refused(client.chat_update(channel="C1", ts=ts, text="x"))) == "60"
    slack.set_method_limit("chat.update", per_minute=None)  # back to Tier 3
    for _ in range(40):
        await client.chat_update(channel="C1", ts=ts, text="x")
    await _refused(client.chat_update(channel="C1", ts=ts, text="x"))
    with pytest.raises(KeyError):
        slack.set_method_limit("chat.unknown", per_minute=1)


async def test_set_status_is_limited_per_conversation(
    slack: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    slack.set_method_limit("assistant.threads.setStatus", per_minute=2)
    for _ in range(2):
        await client.assistant_threads_setStatus(channel_id="D1", thread_ts="1.000001", status="thinking")
    await _refused(client.assistant_threads_setStatus(channel_id="D1", thread_ts="1.000001", status="x"))
    await client.assistant_threads_setStatus(channel_id="C1", thread_ts="1.000001", status="thinking")
    assert len(slack.assistant_statuses) == 3
    assert slack.rate_limit_stats()["by_channel"] == {"D1": 1}


# ------------------------------------------------------------- chat.postMessage


async def test_post_message_burst_of_five_per_channel_then_one_per_second(
    slack: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    for i in range(5):
        await client.chat_postMessage(channel="C1", text=f"m{i}")
    err = await _refused(client.chat_postMessage(channel="C1", text="sixth"))
    assert _retry_after(err) == "1"
    assert [m["text"] for m in slack.messages("C1")] == [f"m{i}" for i in range(5)]  # nothing posted
    await client.chat_postMessage(channel="C2", text="other channel")  # its own bucket
    clock.advance(1)  # one token back
    await client.chat_postMessage(channel="C1", text="after 1 s")
    await _refused(client.chat_postMessage(channel="C1", text="x"))
    clock.advance(2.5)  # 2.5 tokens: two posts, and half a token left
    await client.chat_postMessage(channel="C1", text="a")
    await client.chat_postMessage(channel="C1", text="b")
    assert _retry_after(await _refused(client.chat_postMessage(channel="C1", text="x"))) == "1"
    clock.advance(60)  # the bucket refills to 5, not more
    for _ in range(5):
        await client.chat_postMessage(channel="C1", text="burst")
    await _refused(client.chat_postMessage(channel="C1", text="x"))
    assert len(slack.messages("C1")) == 13
    assert {lc.rule for lc in slack.limited_calls} == {"channel_posts"}


async def test_post_message_to_a_user_counts_against_their_dm(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.set_post_rate(burst=1)
    r = await client.chat_postMessage(channel="D1", text="one")
    await _refused(client.chat_postMessage(channel="U1", text="two"))  # U1's DM is D1
    assert r["channel"] == "D1" and len(slack.messages("D1")) == 1
    assert slack.limited_calls[0].channel == "D1"


async def test_workspace_posting_ceiling(
    slack: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    slack.set_method_limit("chat.postMessage", per_minute=3)
    for cid in ("C1", "C2", "C3"):
        await client.chat_postMessage(channel=cid, text="x")
        clock.advance(1)
    err = await _refused(client.chat_postMessage(channel="C4", text="x"))  # a fresh channel
    assert _retry_after(err) == "57"
    assert slack.limited_calls[0].rule == "workspace_posts"
    assert slack.messages("C4") == []


async def test_start_stream_spends_the_channels_posting_budget(
    slack: FakeSlack, client: AsyncWebClient, clock: ManualClock
) -> None:
    slack.set_post_rate(burst=2)
    args = {"channel": "C1", "thread_ts": "1.000001", "recipient_user_id": "U1", "recipient_team_id": "T1"}
    await client.api_call("chat.startStream", json={**args, "markdown_text": "s"})
    await client.chat_postMessage(channel="C1", text="p")
    await _refused(client.api_call("chat.startStream", json={**args, "markdown_text": "t"}))
    await _refused(client.chat_postMessage(channel="C1", text="q"))
    assert [m["text"] for m in slack.messages("C1")] == ["s", "p"]
    assert slack.rate_limit_stats()["by_method"] == {"chat.startStream": 1, "chat.postMessage": 1}


# ------------------------------------------------------- switches and counters


async def test_rate_limits_off_lets_200_updates_through(clock: ManualClock) -> None:
    with _seed(FakeSlack(rate_limits=False, clock=clock)) as fake:
        client = AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])
        ts = (await client.chat_postMessage(channel="C1", text="seed"))["ts"]
        for i in range(200):
            await client.chat_update(channel="C1", ts=ts, text=f"e{i}")
        assert fake.limited_calls == [] and fake.rate_limited == 0
        assert fake.rate_limit_table()["enabled"] is False


async def test_set_rate_limits_at_runtime(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = await _bot_message(slack, client)
    slack.set_method_limit("chat.update", per_minute=1)
    slack.set_rate_limits(False)
    for _ in range(5):
        await client.chat_update(channel="C1", ts=ts, text="x")
    slack.set_rate_limits(True)
    assert slack.rate_limits is True
    await client.chat_update(channel="C1", ts=ts, text="x")  # calls made while off were not counted
    await _refused(client.chat_update(channel="C1", ts=ts, text="x"))


async def test_injected_429s_go_first_spend_nothing_and_are_counted_apart(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    ts = await _bot_message(slack, client)
    slack.set_method_limit("chat.update", per_minute=1)
    slack.rate_limit_next("chat.update", retry_after=7)
    assert _retry_after(await _refused(client.chat_update(channel="C1", ts=ts, text="x"))) == "7"
    await client.chat_update(channel="C1", ts=ts, text="admitted")  # the injected 429 spent no room
    assert _retry_after(await _refused(client.chat_update(channel="C1", ts=ts, text="x"))) == "60"
    slack.server_error_next("chat.update")
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C1", ts=ts, text="x")
    assert info.value.response.status_code == 500
    assert slack.rate_limited == 2 and len(slack.rate_limited_calls) == 2
    assert slack.rate_limit_stats() == {
        "limited": 1,
        "injected": 1,
        "by_method": {"chat.update": 1},
        "by_channel": {"C1": 1},
        "by_rule": {"method": 1},
    }


async def test_stats_by_method_channel_and_rule(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.set_post_rate(burst=1)
    slack.set_method_limit("users.info", per_minute=1)
    await client.chat_postMessage(channel="C1", text="x")
    await client.chat_postMessage(channel="C2", text="x")
    for cid in ("C1", "C1", "C2"):
        await _refused(client.chat_postMessage(channel=cid, text="x"))
    await client.users_info(user="U1")
    await _refused(client.users_info(user="U1"))
    stats = slack.rate_limit_stats()
    assert stats == {
        "limited": 4,
        "injected": 0,
        "by_method": {"chat.postMessage": 3, "users.info": 1},
        "by_channel": {"C1": 2, "C2": 1},
        "by_rule": {"channel_posts": 3, "method": 1},
    }
    assert slack.rate_limited == 4
    assert [lc.call for lc in slack.limited_calls] == slack.rate_limited_calls


async def test_calls_carry_monotonic_and_wall_clock_times_and_state_shows_limits(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.set_method_limit("chat.update", per_minute=7)
    before = time.time()
    await client.auth_test()
    await client.users_info(user="U1")
    after = time.time()
    first, second = slack.calls
    assert first.at <= second.at  # time.monotonic()
    assert before <= first.wall <= second.wall <= after  # time.time()
    async with aiohttp.ClientSession() as http, http.get(f"{slack.base_url}/_fake/state") as resp:
        state = json.loads(await resp.read())
    assert state["calls"][0]["wall"] == first.wall and state["calls"][0]["at"] == first.at
    table = state["rate_limits"]["methods"]
    assert table["chat.update"]["per_minute"] == 7 and table["chat.update"]["documented_per_minute"] == 50
    assert state["rate_limits"]["enabled"] is True
    assert state["rate_limit_stats"]["limited"] == 0


# ------------------------------------------------------------- the SDK's retry


async def test_sdk_retry_handler_succeeds_once_the_bucket_refills() -> None:
    # Time moves one second forward as soon as the fake has refused a call: the SDK sleeps
    # Retry-After (1) + random() real seconds, then its retry finds a token.
    fake: FakeSlack = FakeSlack(clock=lambda: 1001.0 if fake.limited_calls else 1000.0)
    with _seed(fake):
        fake.set_post_rate(burst=1)
        handler = AsyncRateLimitErrorRetryHandler(max_retry_count=1)
        client = AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[handler])
        await client.chat_postMessage(channel="C1", text="first")
        r = await client.chat_postMessage(channel="C1", text="second")
        assert r["ok"] is True
        assert [m["text"] for m in fake.messages("C1")] == ["first", "second"]
        assert len(fake.calls_to("chat.postMessage")) == 3
        (limited,) = fake.limited_calls
        assert limited.retry_after == 1 and limited.rule == "channel_posts"
