"""Operators' controls end to end: usage, quotas, access, channel settings, App Home,
feedback and Regenerate, retention and erasure."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT

USAGE = {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70,
         "completion_tokens_details": {"reasoning_tokens": 20}}


async def answered(harness, channel="C1", user="U1", text="question", **kw):
    harness.model.enqueue(think_stream("thinking", f"Answer to {text}.", usage=USAGE))
    ts = await harness.post(channel, user, f"<@{BOT}> {text}", **kw)
    return ts, await harness.finished(channel, ts)


async def reply(harness, key, n=1):
    await harness.slack.wait_for(lambda: len(harness.responses(key)) >= n)
    return harness.responses(key)[n - 1]["text"]


def ephemerals_to(harness, user):
    return [c.params["text"] for c in harness.slack.calls_to("chat.postEphemeral")
            if c.params.get("user") == user]


async def test_every_model_call_is_recorded(harness):
    _, row = await answered(harness)
    [call] = harness.store.db.query("SELECT * FROM model_calls")
    assert (call["user_id"], call["channel_id"], call["model"], call["purpose"]) == (
        "U1", "C1", "Qwen/QwQ-32B", "answer")
    assert (call["prompt_tokens"], call["reasoning_tokens"], call["completion_tokens"]) == (40, 20, 30)
    assert call["finish_reason"] == "stop" and call["latency_ms"] >= 0
    assert call["answer_id"] == row["id"]


@pytest.mark.parametrize("harness", [{"QWQBOT_ADMINS": "U2"}], indirect=True)
async def test_usage_for_people_and_for_admins(harness):
    await answered(harness, user="U1")
    await answered(harness, user="U2", text="another")
    _, key = await harness.command("usage", user="U1")
    text = await reply(harness, key)
    assert "70" in text and "Workspace" not in text and "<@U2>" not in text
    assert "Prompt size" not in text  # the count drift is for operators
    _, key = await harness.command("usage", user="U2")
    text = await reply(harness, key)
    assert "140" in text  # the workspace: both answers
    assert "<@U1>" in text and "<@U2>" in text  # top users
    # the bot's prompt counts next to the server's usage.prompt_tokens (40 a call here)
    assert "Prompt size (7 days)" in text and "the server 80 " in text and "over 2 calls" in text


@pytest.mark.parametrize("harness", [{"QWQBOT_USER_DAILY_TOKENS": "50"}], indirect=True)
async def test_over_quota_is_told_when_it_resets_and_nothing_reaches_the_model(harness):
    await answered(harness)
    asked = len(harness.model.requests)
    ts = await harness.post("C1", "U1", f"<@{BOT}> one more?")
    await harness.slack.wait_for(lambda: ephemerals_to(harness, "U1"))
    [notice] = ephemerals_to(harness, "U1")  # once, although two events came
    assert "70 of your 50 tokens for today" in notice and "resets at 00:00 UTC" in notice
    assert len(harness.model.requests) == asked
    assert harness.answers("C1", ts)[0]["status"] == "refused"
    _, key = await harness.command("private still me?")
    assert "resets at 00:00 UTC" in await reply(harness, key)
    assert len(harness.model.requests) == asked
    # someone else is not affected
    _, row = await answered(harness, user="U2", text="me")
    assert row["status"] == "done"


@pytest.mark.parametrize("harness", [{"QWQBOT_ADMINS": "U1"}], indirect=True)
async def test_admins_set_quotas_and_channel_access(harness):
    _, key = await harness.command("admin quota <@U2|bob> 10", user="U2")
    assert "Only the bot's admins" in await reply(harness, key)
    _, key = await harness.command("admin quota <@U2|bob> 10", user="U1")
    assert "<@U2>: 10 tokens a day" in await reply(harness, key)
    _, key = await harness.command("admin deny here", user="U1")
    assert "turned off" in await reply(harness, key)
    ts = await harness.post("C1", "U1", f"<@{BOT}> hello?")
    await harness.slack.wait_for(lambda: ephemerals_to(harness, "U1"))
    assert "turned off in this channel" in ephemerals_to(harness, "U1")[0]
    assert harness.answers("C1", ts)[0]["status"] == "refused"
    # DMs still work
    harness.model.enqueue(think_stream("r", "In the DM."))
    dm = await harness.post("D1", "U1", "hi", channel_type="im")
    assert (await harness.finished("D1", dm))["status"] == "done"
    _, key = await harness.command("admin clear here", user="U1")
    await reply(harness, key)
    _, row = await answered(harness, text="back")
    assert row["status"] == "done"
    _, key = await harness.command("admin list", user="U1")
    assert "<@U2>: 10" in await reply(harness, key)


@pytest.mark.parametrize("harness", [{"QWQBOT_ALLOWED_CHANNELS": "C2"}], indirect=True)
async def test_allow_list_from_config(harness):
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    await harness.slack.wait_for(lambda: ephemerals_to(harness, "U1"))
    assert "not enabled in this channel" in ephemerals_to(harness, "U1")[0]
    assert harness.model.requests == [] and harness.answers("C1", ts)[0]["status"] == "refused"


@pytest.mark.parametrize("harness", [{"QWQBOT_ADMINS": "U1"}], indirect=True)
async def test_channel_settings_change_how_answers_are_made(harness):
    _, key = await harness.command("settings prompt Answer in German.")  # an admin's
    assert "Saved" in await reply(harness, key)
    _, key = await harness.command("settings reasoning hide")
    await reply(harness, key)
    root, _ = await answered(harness, text="hello")
    assert "Answer in German." in harness.model.requests[0].json["messages"][0]["content"]
    [answer] = harness.bot_replies("C1", root)
    assert "attachments" not in answer or not answer["attachments"]
    _, key = await harness.command("settings mention on")
    await reply(harness, key)
    quiet = await harness.post("C1", "U2", "no mention here", thread_ts=root)
    await asyncio.sleep(0.3)
    assert harness.answers("C1", quiet) == []
    _, key = await harness.command("settings")
    text = await reply(harness, key)
    assert "mention: required" in text and "reasoning: hidden" in text and "German" in text
    ack, _ = await harness.command("settings colour blue")
    assert ack.json()["text"].startswith(":warning: `colour` is not a setting")


async def test_channel_digest_time_zone_setting_is_the_default(harness):
    _, key = await harness.command("settings digest-tz Asia/Tokyo")
    await reply(harness, key)
    _, key = await harness.command("digest daily 08:00")
    assert "every day at 08:00 (Asia/Tokyo)" in await reply(harness, key)


@pytest.mark.parametrize("harness", [{"QWQBOT_ADMINS": "U1"}], indirect=True)
async def test_app_home_shows_usage_digests_and_admin_view(harness):
    await answered(harness)
    _, key = await harness.command("digest daily 09:00 UTC")
    await reply(harness, key)
    await harness.deliver({"type": "app_home_opened", "user": "U1", "channel": "D1",
                           "tab": "home"})
    await harness.slack.wait_for(lambda: "U1" in harness.slack.views)
    view = json.dumps(harness.slack.views["U1"])
    assert "qwqbot" in view and "Your usage" in view and "Workspace" in view
    assert "<#C1>" in view  # the digest of a channel U1 is in
    await harness.deliver({"type": "app_home_opened", "user": "U2", "channel": "D2",
                           "tab": "home"})
    await harness.slack.wait_for(lambda: "U2" in harness.slack.views)
    assert "Workspace" not in json.dumps(harness.slack.views["U2"])


async def test_feedback_and_regenerate(harness):
    root, row = await answered(harness, text="first try")
    [answer] = harness.bot_replies("C1", root)
    [feedback] = next(b for b in answer["blocks"] if b["type"] == "context_actions")["elements"]
    assert feedback["type"] == "feedback_buttons"
    [regenerate] = next(b for b in answer["blocks"] if b["type"] == "actions")["elements"]
    payload = {"type": "block_actions", "user": {"id": "U2"}, "team": {"id": "T1"},
               "channel": {"id": "C1"}, "container": {"type": "message"},
               "response_url": harness.slack.response_url("fb"), "trigger_id": "1"}
    # What Slack sends for a press of the positive button: the element's action id and
    # that button's value.
    up = {"type": "feedback_buttons", "action_id": feedback["action_id"],
          "value": feedback["positive_button"]["value"]}
    await harness.action({**payload, "actions": [{**up, "block_id": "b"}]})
    await harness.slack.wait_for(lambda: list(harness.store.db.query("SELECT * FROM feedback")))
    [vote] = harness.store.db.query("SELECT * FROM feedback")
    assert (vote["answer_id"], vote["user_id"], vote["value"]) == (row["id"], "U2", "up")
    harness.model.enqueue(think_stream("again", "A better answer."))
    # anyone may vote; only the asker (U1) may regenerate
    await harness.action({**payload, "user": {"id": "U1"},
                          "actions": [{**regenerate, "block_id": "b"}]})
    again = await harness.finished("C1", root, attempt=1)
    assert again["status"] == "done" and again["trigger"] == "regenerate"
    [answer] = harness.bot_replies("C1", root)  # replaced in place, no extra message
    assert "A better answer." in json.dumps(answer["blocks"])
    stored = [m["text"] for m in harness.store.thread_messages("C1", root) if m["user_id"] == BOT]
    assert stored == ["A better answer."]  # the thread's memory has the new answer


async def test_regenerate_replaces_every_part_of_a_long_answer(harness):
    long_answer = "\n\n".join(f"Paragraph {i}: " + "text " * 100 for i in range(60))
    harness.model.enqueue(think_stream("r", long_answer))
    root = await harness.post("C1", "U1", f"<@{BOT}> essay")
    await harness.finished("C1", root)
    parts = harness.bot_replies("C1", root)
    assert len(parts) > 1
    [regenerate] = next(b for b in parts[-1]["blocks"] if b["type"] == "actions")["elements"]
    harness.model.enqueue(think_stream("r", "Short now."))
    await harness.action({"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"},
                          "channel": {"id": "C1"}, "response_url": harness.slack.response_url(),
                          "actions": [{**regenerate, "block_id": "b"}]})
    await harness.finished("C1", root, attempt=1)
    [answer] = harness.bot_replies("C1", root)
    assert "Short now." in json.dumps(answer["blocks"])


async def test_retention_prunes_old_messages(harness):
    old = f"{time.time() - 100 * 86400:.6f}"
    recent = f"{time.time() - 10 * 86400:.6f}"
    harness.store.save_messages([
        {"channel_id": "C1", "ts": old, "thread_ts": None, "user_id": "U1", "text": "ancient"},
        {"channel_id": "C1", "ts": recent, "thread_ts": None, "user_id": "U1", "text": "recent"}])
    counts = harness.bot.prune()
    assert counts["messages"] == 1
    assert not harness.store.has_message("C1", old) and harness.store.has_message("C1", recent)


async def test_forget_a_user_and_a_channel_from_the_command_line(harness, tmp_path):
    await answered(harness, user="U1", text="mine")
    await answered(harness, user="U2", text="theirs")
    env = {**os.environ, "QWQBOT_DB": harness.env["QWQBOT_DB"]}

    def forget(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qwqbot", "forget", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=30)

    # a thread, so the bot's loop (sharing the database) keeps running meanwhile
    done = await asyncio.to_thread(forget, "--user", "U1")
    assert done.returncode == 0 and "Erased 1 stored messages" in done.stdout
    texts = [r["text"] for r in harness.store.db.query("SELECT text FROM messages")]
    assert not any("mine" in t for t in texts) and any("theirs" in t for t in texts)
    done = await asyncio.to_thread(forget, "--channel", "C1")
    assert done.returncode == 0
    assert harness.store.db.execute("SELECT COUNT(*) FROM messages WHERE channel_id = 'C1'"
                                    ).fetchone()[0] == 0


async def test_scheduled_jobs_run_on_the_loop_that_owns_the_database(harness, caplog):
    """APScheduler runs plain functions in a thread pool, where the SQLite connection may
    not be used: the heartbeat and retention jobs must be driven by the scheduler itself."""
    from datetime import UTC, datetime

    old = f"{time.time() - 200 * 86400:.6f}"
    harness.store.save_messages([{"channel_id": "C1", "ts": old, "thread_ts": None,
                                  "user_id": "U1", "text": "very old"}])
    meta = "SELECT value FROM meta WHERE key = 'last_alive'"
    before = harness.store.db.execute(meta).fetchone()[0]
    await asyncio.sleep(0.05)
    for job_id in ("heartbeat", "retention"):
        harness.bot.services.jobs.get_job(job_id).modify(next_run_time=datetime.now(UTC))
    await harness.slack.wait_for(
        lambda: not harness.store.has_message("C1", old)
        and harness.store.db.execute(meta).fetchone()[0] != before, timeout=5)
    assert "raised an exception" not in caplog.text
