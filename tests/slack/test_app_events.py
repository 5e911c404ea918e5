"""Requests Slack sends about the app itself: app_rate_limited, tokens_revoked."""

from __future__ import annotations

import asyncio
import json
import logging

from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT, sign


async def test_app_rate_limited_is_answered_200_and_logged_once(harness, caplog):
    body = json.dumps({"token": "legacy", "type": "app_rate_limited", "team_id": "T1",
                       "minute_rate_limited": 1518467820, "api_app_id": "A1"})
    with caplog.at_level(logging.WARNING):
        response = await harness.http.post(harness.url, content=body, headers={
            "Content-Type": "application/json", **sign(body)})
    assert response.status_code == 200
    lines = [r for r in caplog.records if "rate limiting event deliveries" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


async def test_tokens_revoked_stops_web_api_calls_and_the_next_mention_is_not_answered(
        harness, caplog):
    with caplog.at_level(logging.WARNING):
        response = await harness.deliver({"type": "tokens_revoked",
                                          "tokens": {"oauth": [], "bot": [BOT]}})
        assert response.status_code == 200
        await harness.slack.wait_for(lambda: any(
            "no more Web API calls" in r.getMessage() for r in caplog.records))
    harness.slack.clear_calls()
    ts = await harness.post("C1", "U1", f"<@{BOT}> still there?")
    # events are acked before Bolt runs: wait until Bolt has handled both of them
    await asyncio.gather(*harness.bot._dispatches)
    assert harness.answers("C1", ts) == []
    assert harness.slack.calls == []
    assert harness.bot_replies("C1", ts) == []


async def test_tokens_revoked_for_someone_else_changes_nothing(harness):
    await harness.deliver({"type": "tokens_revoked", "tokens": {"oauth": ["U1"], "bot": []}})
    harness.model.enqueue(think_stream("t", "Still here."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> still there?")
    row = await harness.finished("C1", ts)
    assert row["status"] == "done"
