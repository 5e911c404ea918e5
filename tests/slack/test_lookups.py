"""Bursts of mentions against the fake Slack: no auth.test per request, one users.info per
person however many ask at once, and a bounded number of lookups in flight."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from qwqbot.slack import limits as limits_module
from qwqbot.slack.channels import Channels
from qwqbot.slack.limits import Limits
from qwqbot.slack.lookup import LOOKUP_SLOTS
from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT, Harness


async def test_a_burst_of_mentions_calls_auth_test_never_and_users_info_once_each(harness):
    slack = harness.slack
    users = [f"UB{i:03d}" for i in range(50)]
    for u in users:
        slack.add_user(u, name=u.lower())
    for c in range(5):
        slack.add_channel(f"CB{c}", name=f"burst{c}", members=set(users))
    harness.model.default = think_stream("t", "ok")
    slack.set_latency(0.01)  # lookups overlap, as they do against real Slack
    slack.clear_calls()
    posts = await asyncio.gather(*(harness.post(f"CB{i % 5}", u, f"<@{BOT}> q{i}")
                                   for i, u in enumerate(users)))
    for i, ts in enumerate(posts):
        await harness.finished(f"CB{i % 5}", ts, timeout=60)
    assert slack.calls_to("auth.test") == []
    looked_up = Counter(c.params["user"] for c in slack.calls_to("users.info"))
    assert set(users) <= set(looked_up)
    assert max(looked_up.values()) == 1, looked_up.most_common(3)
    # the prompt's place, the status and the stream share one conversations.info each
    places = Counter(c.params["channel"] for c in slack.calls_to("conversations.info"))
    assert places == Counter({f"CB{c}": 1 for c in range(5)}), places


async def test_one_message_naming_300_people_looks_them_up_8_at_a_time(
        slack, model_server, tmp_path, monkeypatch):
    # The tier's 90 a minute would make this test last minutes: raised here (and in the
    # fake) so what is measured is the concurrency bound alone.
    monkeypatch.setitem(limits_module.PER_MINUTE, "users.info", 1000)
    slack.set_method_limit("users.info", per_minute=1000)
    users = [f"UM{i:03d}" for i in range(300)]
    for u in users:
        slack.add_user(u, name=u.lower())
    model_server.default = think_stream("t", "ok")
    h = Harness(slack, model_server, str(tmp_path / "bot.db"))
    await h.start()
    try:
        slack.set_latency(0.02)
        text = f"<@{BOT}> who are " + " ".join(f"<@{u}>" for u in users)
        ts = await h.post("C1", "U1", text)
        await h.finished("C1", ts, timeout=60)
    finally:
        await h.stop()
    looked_up = Counter(c.params["user"] for c in slack.calls_to("users.info"))
    assert set(users) <= set(looked_up) and max(looked_up.values()) == 1
    assert 1 < slack.peak_in_flight["users.info"] <= LOOKUP_SLOTS
    assert slack.rate_limit_stats()["limited"] == 0


async def test_channel_info_is_asked_once_while_in_flight_and_takes_room_in_its_tier(slack):
    from slack_sdk.web.async_client import AsyncWebClient

    slack.set_latency(0.05)
    limits = Limits()
    channels = Channels(AsyncWebClient(token="xoxb-test-token", base_url=slack.api_url),
                        limits=limits)
    names = await asyncio.gather(*(channels.info("C1", fresh=True) for _ in range(20)))
    assert {n["name"] for n in names if n} == {"general"}
    assert len(slack.calls_to("conversations.info")) == 1
    assert limits.room("conversations.info") == 45 - 1


@pytest.mark.parametrize("method", ["users.info", "conversations.info"])
def test_lookups_are_planned_at_their_tier(method):
    assert Limits().room(method) == {"users.info": 90, "conversations.info": 45}[method]
