"""Every failure ends in a clear message in the thread, and the data is kept."""

from __future__ import annotations

import asyncio
import json

import pytest

from qwqbot.config import load_settings
from qwqbot.errors import QwqbotError
from qwqbot.slack.server import Bot
from tests.fakes.model_server import drop, error, hang, stream, think_stream
from tests.slack.harness import BOT, SECRET, sign


def reply_text(harness, ts):
    [reply] = harness.bot_replies("C1", ts)
    return json.dumps(reply.get("blocks", [])) + json.dumps(reply.get("attachments", []))


@pytest.mark.parametrize(("script", "kind", "words"), [
    (error(401), "auth", "rejected the API key"),
    (error(403, {"message": "Insufficient credits", "statusCode": 403}), "credits", "out of credits"),
    (error(404, {"error": {"message": "no such model"}}), "model_not_found", "is not available at"),
    (error(429, headers={"Retry-After": "0"}), "rate_limited", "rate limiting"),
    (error(500), "overloaded", "overloaded or down (500)"),
    (error(503), "overloaded", "overloaded or down (503)"),
    (error(504), "timeout", "timed out while generating"),
    (drop(["<think>a</think>Half"]), "connection", "broke off"),
])
async def test_model_errors_become_clear_messages_with_retry(harness, script, kind, words):
    harness.model.default = script
    ts = await harness.post("C1", "U1", f"<@{BOT}> question")
    row = await harness.finished("C1", ts)
    assert (row["status"], row["error_kind"]) == ("failed", kind)
    text = reply_text(harness, ts)
    assert words in text and "qwqbot_retry" in text
    if kind in ("auth", "credits", "model_not_found"):
        assert "tell the person who runs this bot" in text
    # the question is still in memory for the retry
    assert harness.store.has_message("C1", ts)


@pytest.mark.parametrize("harness", [{"QWQBOT_IDLE_TIMEOUT": "0.5"}], indirect=True)
async def test_idle_stream_times_out_clearly(harness):
    harness.model.default = hang(["<think>thinking"], seconds=5)
    ts = await harness.post("C1", "U1", f"<@{BOT}> question")
    row = await harness.finished("C1", ts)
    assert row["error_kind"] == "timeout"
    assert "went quiet" in reply_text(harness, ts)


async def test_cut_off_answer_says_so_and_keeps_reasoning(harness):
    harness.model.enqueue(stream(["Let me work through this carefully. Step one"],
                                 finish_reason="length"))
    ts = await harness.post("C1", "U1", f"<@{BOT}> hard question")
    row = await harness.finished("C1", ts)
    assert row["status"] == "cut_off" and row["reasoning"].startswith("Let me work")
    text = reply_text(harness, ts)
    assert "cut off by the token limit" in text
    assert "ran out of tokens before it could answer" in text
    assert "Let me work through this carefully" in text  # the reasoning so far, attached
    assert "qwqbot_retry" in text


async def test_cut_off_mid_answer_shows_the_partial_answer(harness):
    harness.model.enqueue(stream(["thought</think>The first half of"], finish_reason="length"))
    ts = await harness.post("C1", "U1", f"<@{BOT}> long question")
    await harness.finished("C1", ts)
    text = reply_text(harness, ts)
    assert "The first half of" in text and "cut off by the token limit" in text


async def test_missing_opening_tag_end_to_end(harness):
    harness.model.enqueue(think_stream("Hidden musing.", "Visible answer.", opening_tag=False))
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    await harness.finished("C1", ts)
    [reply] = harness.bot_replies("C1", ts)
    assert "Visible answer." in json.dumps(reply["blocks"])
    assert "Hidden musing." not in json.dumps(reply["blocks"])
    assert "Hidden musing." in reply["attachments"][0]["text"]
    assert "think>" not in json.dumps(reply)


@pytest.mark.parametrize("harness", [{"QWQBOT_CONTEXT_TOKENS": "2048",
                                      "QWQBOT_MAX_TOKENS": "1024"}], indirect=True)
async def test_message_too_long_for_the_window_gets_a_clear_reply(harness):
    ts = await harness.post("C1", "U1", f"<@{BOT}> " + "lorem ipsum dolor " * 800)
    row = await harness.finished("C1", ts)
    assert (row["status"], row["error_kind"]) == ("failed", "too_long")
    assert harness.model.requests == []  # nothing sent to the model
    text = reply_text(harness, ts)
    assert "too long for the model" in text and "qwqbot_retry" not in text


async def test_slack_429_on_the_final_edit_is_retried_and_nothing_lost(harness):
    harness.model.enqueue(think_stream("r", "Survived the rate limit."))
    harness.slack.rate_limit_next("chat.update", count=1, retry_after=0)
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    await harness.finished("C1", ts)
    assert "Survived the rate limit." in reply_text(harness, ts)


async def test_slack_5xx_is_retried(harness):
    harness.model.enqueue(think_stream("r", "Survived the 503."))
    harness.slack.server_error_next("chat.postMessage", count=1, status=503)
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    await harness.finished("C1", ts)
    assert "Survived the 503." in reply_text(harness, ts)


# The sign of life is a status, so the answer's one post is the bot's first post.
@pytest.mark.parametrize("slack_error", ["msg_too_long", "invalid_blocks", "msg_blocks_too_long"])
async def test_refused_payload_falls_back_to_plain_text(harness, slack_error):
    harness.model.enqueue(think_stream("why", "Plain but *complete* answer."))
    harness.slack.fail_next("chat.postMessage", slack_error, count=1)
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    row = await harness.finished("C1", ts)
    assert row["status"] == "done"
    [reply] = harness.bot_replies("C1", ts)
    assert "Plain but _complete_ answer." in reply["text"]
    assert not reply.get("blocks")
    assert reply["attachments"][0]["text"] == "why"
    [refused, _plain] = harness.slack.calls_to("chat.postMessage")
    assert refused.params["blocks"][0]["type"] == "markdown"


async def test_not_in_channel_is_logged_and_recorded(harness, caplog):
    harness.slack.add_channel("C9", name="elsewhere", members={"U1"}, bot_is_member=False)
    ts = await harness.post("C9", "U1", f"<@{BOT}> are you here?")
    rows = []
    for _ in range(100):
        rows = harness.answers("C9", ts)
        if rows and rows[0]["status"] == "failed":
            break
        await asyncio.sleep(0.05)
    assert rows[0]["error_kind"] == "slack" and rows[0]["error_message"] == "not_in_channel"
    assert harness.model.requests == []
    assert "not_in_channel" in caplog.text


async def test_unsigned_and_stale_requests_are_rejected(harness):
    body = json.dumps({"type": "event_callback", "event_id": "EvX", "event": {
        "type": "app_mention", "channel": "C1", "user": "U1", "text": "hi", "ts": "1.0"}})
    unsigned = await harness.http.post(harness.url, content=body,
                                       headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    stale = await harness.http.post(harness.url, content=body, headers={
        "Content-Type": "application/json", **sign(body, ts=1_000_000_000)})
    assert stale.status_code == 401
    wrong = await harness.http.post(harness.url, content=body, headers={
        "Content-Type": "application/json", **sign(body, secret="not-" + SECRET)})
    assert wrong.status_code == 401
    assert harness.answers("C1", "1.0") == []


async def test_bad_token_fails_fast_at_start(slack, model_server, tmp_path):
    settings = load_settings({
        "SLACK_BOT_TOKEN": "xoxb-wrong", "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": slack.api_url, "AIML_API_KEY": "k",
        "AIML_API_BASE_URL": model_server.base_url, "QWQBOT_DB": str(tmp_path / "x.db")},
        env_file=None)
    bot = Bot(settings, mode="http", port=0)
    with pytest.raises(QwqbotError, match=r"Slack rejected SLACK_BOT_TOKEN \(invalid_auth\)"):
        await bot.start()
