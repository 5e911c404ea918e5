"""Fault injection through the real app and the loopback fakes. After every fault: the
user was told, what was stored is intact, and the very next question is answered."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading

import pytest

from tests.fakes.model_server import (
    FakeModelServer,
    drop,
    error,
    garbled,
    hang,
    think_stream,
)
from tests.slack.harness import BOT, sign


def told(harness, channel, ts):
    replies = harness.bot_replies(channel, ts)
    return json.dumps([m.get("blocks", []) for m in replies]) + json.dumps(
        [m.get("text", "") for m in replies])


def intact(harness):
    db = harness.store.db
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


async def still_serving(harness, channel="C1"):
    harness.model.enqueue(think_stream("fine", "Back to normal."))
    ts = await harness.post(channel, "U2", f"<@{BOT}> are you still there?")
    row = await harness.finished(channel, ts)
    assert row["status"] == "done"
    assert "Back to normal." in told(harness, channel, ts)


# (script, what the user reads, how many requests it takes: retryable faults are tried twice)
MODEL_FAULTS = [
    pytest.param(error(401), "rejected the API key", 1, id="401"),
    pytest.param(error(403, {"message": "Insufficient credits"}), "out of credits", 1, id="403"),
    pytest.param(error(404, {"error": {"message": "model not found"}}), "is not available", 1,
                 id="404"),
    pytest.param(error(429, headers={"Retry-After": "0"}), "rate limiting", 2, id="429"),
    pytest.param(error(500), "overloaded or down (500)", 2, id="500"),
    pytest.param(error(503), "overloaded or down (503)", 2, id="503"),
    pytest.param(error(504), "timed out", 2, id="504"),
    pytest.param(drop(["<think>x</think>", "half an ans"]), "broke off", 1, id="stops-mid-answer"),
    pytest.param(garbled(["data: {this is not json"]), "not a chat completion", 2,
                 id="garbled-sse"),
]


@pytest.mark.parametrize(("script", "words", "tries"), MODEL_FAULTS)
async def test_model_faults(harness, script, words, tries):
    before = intact(harness)
    harness.model.enqueue(*[script] * tries)  # QWQBOT_MAX_RETRIES is 1 in the harness
    ts = await harness.post("C1", "U1", f"<@{BOT}> question")
    row = await harness.finished("C1", ts)
    assert row["status"] == "failed"
    assert words in told(harness, "C1", ts)
    assert intact(harness) == before + 1  # the question is kept for the Retry
    await still_serving(harness)


@pytest.mark.parametrize("harness", [{"QWQBOT_IDLE_TIMEOUT": "0.4"}], indirect=True)
async def test_idle_stream(harness):
    harness.model.enqueue(hang(["<think>stuck"], seconds=3))
    ts = await harness.post("C1", "U1", f"<@{BOT}> question")
    assert (await harness.finished("C1", ts))["error_kind"] == "timeout"
    assert "went quiet" in told(harness, "C1", ts)
    await still_serving(harness)


async def test_model_connection_refused_then_back(slack, tmp_path):
    from tests.slack.harness import Harness

    model = FakeModelServer().start()
    port = model.port
    h = Harness(slack, model, str(tmp_path / "bot.db"))
    await h.start()
    try:
        model.stop()  # nothing listens there any more
        ts = await h.post("C1", "U1", f"<@{BOT}> anyone home?")
        row = await h.finished("C1", ts)
        assert row["error_kind"] == "connection"
        assert "Could not reach the model server" in told(h, "C1", ts)
        h.model = FakeModelServer(port=port).start()  # the provider comes back
        await still_serving(h)
    finally:
        await h.stop()
        h.model.stop()


@pytest.mark.parametrize(("method", "inject"), [
    ("chat.postMessage", "rate_limit"), ("chat.update", "rate_limit"),
    ("chat.postMessage", "server_error"), ("chat.update", "server_error"),
])
async def test_slack_429_and_5xx_lose_nothing(harness, method, inject):
    harness.model.enqueue(think_stream("r", "Delivered despite Slack."))
    if inject == "rate_limit":
        harness.slack.rate_limit_next(method, count=2, retry_after=0)
    else:
        harness.slack.server_error_next(method, count=2, status=503)
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    assert (await harness.finished("C1", ts))["status"] == "done"
    assert "Delivered despite Slack." in told(harness, "C1", ts)
    await still_serving(harness)


@pytest.mark.parametrize("harness", [{"QWQBOT_PROGRESS_INTERVAL": "60"}], indirect=True)
@pytest.mark.parametrize("slack_error", ["msg_too_long", "invalid_blocks"])
async def test_refused_payloads(harness, slack_error):
    harness.model.enqueue(think_stream("r", "Still readable."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    await harness.slack.wait_for(lambda: harness.slack.calls_to("chat.postMessage"))
    harness.slack.fail_next("chat.update", slack_error)
    assert (await harness.finished("C1", ts))["status"] == "done"
    assert "Still readable." in told(harness, "C1", ts)
    await still_serving(harness)


@pytest.mark.parametrize("slack_error", ["not_in_channel", "channel_not_found"])
async def test_nowhere_to_post(harness, slack_error, caplog):
    # Where the bot may not post, Slack refuses the thread status the same way.
    harness.slack.fail_next("assistant.threads.setStatus", slack_error)
    harness.slack.fail_next("chat.postMessage", slack_error)
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    row = await harness.finished("C1", ts)
    assert (row["error_kind"], row["error_message"]) == ("slack", slack_error)
    assert slack_error in caplog.text  # the operator is told
    await still_serving(harness)


async def test_database_locked_for_a_while(harness):
    before = intact(harness)
    other = sqlite3.connect(harness.env["QWQBOT_DB"], check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")  # a backup or an operator's shell holds the database
    threading.Timer(1.5, other.commit).start()
    harness.model.enqueue(think_stream("r", "Answered after the lock."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> during the lock")
    row = await harness.finished("C1", ts, timeout=20)
    assert row["status"] == "done"
    assert "Answered after the lock." in told(harness, "C1", ts)
    assert intact(harness) == before + 2  # the question and the answer
    other.close()
    await still_serving(harness)


async def test_malformed_unsigned_and_stale_requests(harness):
    body = "{not json"
    bad_json = await harness.http.post(harness.url, content=body, headers={
        "Content-Type": "application/json", **sign(body)})
    assert bad_json.status_code in (400, 401, 404)
    event = json.dumps({"type": "event_callback", "event_id": "EvS", "event": {
        "type": "app_mention", "channel": "C1", "user": "U1", "text": "x", "ts": "1.1"}})
    unsigned = await harness.http.post(harness.url, content=event,
                                       headers={"Content-Type": "application/json"})
    stale = await harness.http.post(harness.url, content=event, headers={
        "Content-Type": "application/json", **sign(event, ts=1_600_000_000)})
    assert (unsigned.status_code, stale.status_code) == (401, 401)
    assert harness.answers("C1", "1.1") == []
    await still_serving(harness)


@pytest.mark.parametrize("event", [
    {"type": "app_mention"},
    {"type": "message", "channel": "C1"},
    {"type": "message", "ts": "5.5"},
    {"type": "message", "subtype": "message_changed", "channel": "C1"},
    {"type": "message", "subtype": "message_deleted", "channel": "C1"},
    {"type": "app_mention", "channel": "C1", "ts": "6.6", "text": f"<@{BOT}> no user"},
])
async def test_payloads_missing_fields_are_acked_and_ignored(harness, event):
    response = await harness.deliver(event)
    assert response.status_code == 200
    await asyncio.sleep(0.1)
    assert harness.store.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0
    await still_serving(harness)


async def test_actions_and_commands_with_bad_values(harness):
    resp = await harness.action({"type": "block_actions", "user": {"id": "U1"},
                                 "team": {"id": "T1"}, "actions": [
                                     {"action_id": "qwqbot_retry", "value": "not-a-number",
                                      "type": "button", "block_id": "b"}]})
    assert resp.status_code == 200
    resp = await harness.action({"type": "block_actions", "user": {"id": "U1"},
                                 "team": {"id": "T1"}, "actions": [
                                     {"action_id": "qwqbot_retry", "value": "99999",
                                      "type": "button", "block_id": "b"}],
                                 "response_url": harness.slack.response_url("bad")})
    assert resp.status_code == 200
    await still_serving(harness)


async def test_a_finished_answer_survives_a_shutdown_while_slack_hangs(slack, model_server, tmp_path):
    """The answer is written to SQLite before its model slot is released: a shutdown that
    cancels the pipeline while a progress edit (and so the final one) hangs in Slack loses
    nothing the model wrote."""
    from tests.slack.harness import Harness

    db = str(tmp_path / "bot.db")
    h = Harness(slack, model_server, db)
    await h.start()
    # 1.5 s of growing reasoning: the progress updater edits the placeholder meanwhile.
    model_server.enqueue(think_stream("weighing it " * 30, "Forty-two.", chunk_size=12,
                                      chunk_delay=0.05))
    ts = await h.post("C1", "U1", f"<@{BOT}> what is the answer?")
    await slack.wait_for(lambda: bool(model_server.requests))  # the prompt is built
    slack.set_latency(30.0)  # every Slack call from now on hangs
    try:
        await asyncio.sleep(2.0)  # the model finishes; a progress edit is in flight
        await h.stop()  # grace 2 s, then the pipeline is cancelled
    finally:
        slack.set_latency(0.0)
    with sqlite3.connect(db) as conn:
        status, answer, reasoning = conn.execute(
            "SELECT status, answer, reasoning FROM answers WHERE request_ts = ?", [ts]).fetchone()
    assert (status, answer) == ("done", "Forty-two.")
    assert reasoning.startswith("weighing it")
    assert not any("Forty-two." in m.get("text", "") for m in h.bot_replies("C1", ts))


async def test_a_slack_outage_of_seconds_delays_the_answer_without_losing_it(harness):
    harness.model.enqueue(think_stream("r", "Survived the outage."))
    harness.slack.server_error_next("chat.postMessage", count=4, status=500)
    ts = await harness.post("C1", "U1", f"<@{BOT}> during an outage")
    row = await harness.finished("C1", ts, timeout=30)
    assert row["status"] == "done"
    assert "Survived the outage." in told(harness, "C1", ts)
    assert len(harness.slack.calls_to("chat.postMessage")) == 5  # 4 refused, then posted


@pytest.mark.parametrize("harness", [{"QWQBOT_SLACK_PATIENCE": "2"}], indirect=True)
async def test_an_answer_slack_never_takes_is_kept_and_given_to_the_asker(harness):
    harness.model.enqueue(think_stream("r", "The answer nobody could post."))
    harness.slack.server_error_next("chat.postMessage", count=1000, status=503)
    ts = await harness.post("C1", "U1", f"<@{BOT}> hello?")
    row = await harness.finished("C1", ts, timeout=30)
    assert (row["status"], row["error_kind"]) == ("failed", "slack")
    assert row["answer"] == "The answer nobody could post."  # kept
    [told_privately] = harness.slack.calls_to("chat.postEphemeral")
    assert told_privately.params["user"] == "U1"
    assert told_privately.params["thread_ts"] == ts
    assert "The answer nobody could post." in told_privately.params["text"]
    assert "couldn't post my answer" in told_privately.params["text"]
    harness.slack.clear_faults()
