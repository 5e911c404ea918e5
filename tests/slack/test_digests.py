"""Scheduled digests end to end: /qwq digest commands, the store, the scheduler firing,
restarts, failures and a large channel, through the real app and the fakes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from qwqbot.digest.schedule import Schedule, latest_fire, period_key
from tests.fakes.model_server import error, think_stream
from tests.slack.harness import BOT, Harness

BERLIN = ZoneInfo("Europe/Berlin")
DIGEST = "*What was discussed*\n- Launch plan [T1]\n\n*Decisions*\n- Ship Friday\n\n" \
         "*Action items*\n- Alice: write notes\n\n*Open questions*\n- none"


async def reply(harness, key, n=1):
    await harness.slack.wait_for(lambda: len(harness.responses(key)) >= n)
    return harness.responses(key)[n - 1]["text"]


def digest_posts(harness, channel="C1"):
    return [c for c in harness.slack.calls_to("chat.postMessage")
            if c.params["channel"] == channel and "thread_ts" not in c.params
            and "digest" in json.dumps(c.params).lower()]


async def test_daily_digest_is_set_listed_and_turned_off(harness):
    _, key = await harness.command("digest daily 09:00 Europe/Berlin")
    text = await reply(harness, key)
    assert "Done: a digest of this channel every day at 09:00 (Europe/Berlin)" in text
    assert "The next one comes" in text
    [row] = harness.store.db.query("SELECT * FROM digest_schedules")
    assert (row["channel_id"], row["kind"], row["hour"], row["minute"], row["tz"]) == (
        "C1", "daily", 9, 0, "Europe/Berlin")
    assert harness.bot.scheduler.next_run(row["id"]) is not None
    _, key = await harness.command("digest list")
    text = await reply(harness, key)
    assert "every day at 09:00 (Europe/Berlin), set by <@U1>" in text and "next:" in text
    _, key = await harness.command("digest off")
    assert "Digests for this channel are off" in await reply(harness, key)
    assert list(harness.store.db.query("SELECT * FROM digest_schedules")) == []
    assert harness.bot.scheduler.next_run(row["id"]) is None


async def test_time_zone_defaults_to_the_users_slack_zone(harness):
    _, key = await harness.command("digest weekly mon 9:30", user="U2")  # Bob: New York
    text = await reply(harness, key)
    assert "every Monday at 09:30 (America/New_York)" in text


@pytest.mark.parametrize(("words", "problem"), [
    ("digest daily 25:00", "`25:00` is not a time"),
    ("digest weekly funday 09:00", "funday"),
    ("digest daily 09:00 Mars/Olympus", "`Mars/Olympus` is not a time zone"),
    ("digest hourly", "`hourly` is not a digest action"),
    ("digest", "Say what to do with digests"),
])
async def test_bad_times_days_and_zones_get_a_usage_line(harness, words, problem):
    ack, _ = await harness.command(words)
    text = ack.json()["text"]
    assert text.startswith(":warning:") and problem in text.splitlines()[0]
    assert "/qwq digest daily HH:MM [TZ]" in text
    assert list(harness.store.db.query("SELECT * FROM digest_schedules")) == []


async def test_setting_a_digest_keeps_every_message_of_the_channel(harness):
    _, key = await harness.command("digest daily 09:00")
    await reply(harness, key)
    top = await harness.post("C1", "U2", "We should ship on Friday")
    reply_ts = await harness.post("C1", "U1", "Agreed, I'll write the notes", thread_ts=top)
    await asyncio.sleep(0.2)
    assert harness.store.has_message("C1", top) and harness.store.has_message("C1", reply_ts)
    assert harness.model.requests == []  # kept, not answered


async def test_digest_now_posts_into_the_channel_with_names_links_and_reasoning(harness):
    _, key = await harness.command("digest daily 09:00")
    await reply(harness, key)
    top = await harness.post("C1", "U2", "Launch plan: <@U1> owns the notes")
    await harness.post("C1", "U1", "ok, notes by Thursday", thread_ts=top)
    await harness.post("C1", "U2", "unrelated chatter")
    harness.model.enqueue(think_stream("weighing what matters", DIGEST))
    _, key = await harness.command("digest now")
    assert "Writing a digest" in await reply(harness, key)
    await harness.slack.wait_for(lambda: digest_posts(harness), timeout=10)
    [post] = digest_posts(harness)
    body = json.dumps(post.params)
    assert "Digest of #general" in body and "Ship Friday" in body
    assert f"/archives/C1/p{top.replace('.', '')}" in body  # [T1] became a permalink
    assert post.params["attachments"][0]["title"].startswith("Reasoning")
    sent = json.dumps(harness.model.requests[0].json["messages"])
    assert "Launch plan: @Alice owns the notes" in sent and "<@U1>" not in sent
    assert "notes by Thursday" in sent and "unrelated chatter" in sent


async def test_first_digest_reads_history_from_slack(harness):
    old = harness.slack.add_message("C1", user="U1", text="said before the digest was set")
    harness.slack.add_message("C1", user="U2", text="a reply in that thread", thread_ts=old)
    _, key = await harness.command("digest daily 09:00")
    await reply(harness, key)
    harness.model.enqueue(think_stream("r", DIGEST))
    await harness.command("digest now")
    await harness.slack.wait_for(lambda: digest_posts(harness), timeout=10)
    assert harness.slack.calls_to("conversations.history")
    sent = json.dumps(harness.model.requests[0].json["messages"])
    assert "said before the digest was set" in sent and "a reply in that thread" in sent


async def test_a_period_without_messages_posts_nothing(harness):
    _, key = await harness.command("digest daily 09:00")
    await reply(harness, key)
    _, key = await harness.command("digest now")
    assert "No messages in this channel" in await reply(harness, key, 2)
    assert digest_posts(harness) == [] and harness.model.requests == []


async def run_settled(harness, status="posted"):
    """Wait until the (single) digest run has its final status: the post lands first."""
    def settled():
        runs = list(harness.store.db.query("SELECT status FROM digest_runs"))
        return bool(runs) and all(r["status"] == status for r in runs)

    await harness.slack.wait_for(settled, timeout=15)
    return list(harness.store.db.query("SELECT * FROM digest_runs"))


def seed_before(slack, fire, text, *, hours=1.0):
    """A message in Slack's history inside the period that ends at ``fire``."""
    return slack.add_message("C1", user="U1", text=text,
                             ts=f"{fire.timestamp() - hours * 3600:.6f}")


async def add_schedule(harness, hour=9, minute=0, tz="Europe/Berlin"):
    _, key = await harness.command(f"digest daily {hour:02d}:{minute:02d} {tz}")
    await reply(harness, key)
    return dict(next(iter(harness.store.db.query("SELECT * FROM digest_schedules"))))


async def test_a_period_is_posted_at_most_once_even_with_overlapping_runs(harness):
    row = await add_schedule(harness)
    fire = latest_fire(Schedule("daily", 9, 0, "Europe/Berlin"), datetime.now(UTC))
    seed_before(harness.slack, fire, "something happened")
    harness.model.default = think_stream("r", DIGEST)
    outcomes = await asyncio.gather(*(harness.bot.scheduler.fire(row["id"], at=fire)
                                      for _ in range(3)))
    assert sorted(o.status for o in outcomes) == ["posted", "taken", "taken"]
    assert len(digest_posts(harness)) == 1
    again = await harness.bot.scheduler.fire(row["id"], at=fire)
    assert again is not None and again.status == "taken"


async def test_model_failure_is_retried_later_and_shown_in_list(harness):
    row = await add_schedule(harness)
    fire = latest_fire(Schedule("daily", 9, 0, "Europe/Berlin"), datetime.now(UTC))
    seed_before(harness.slack, fire, "something happened")
    harness.model.default = error(503)
    scheduler = harness.bot.scheduler
    outcome = await scheduler.fire(row["id"], at=fire)
    assert outcome is not None and outcome.status == "failed"
    _, key = await harness.command("digest list")
    text = await reply(harness, key)
    assert "failed: The model provider is overloaded" in text and "retrying" in text
    harness.model.default = think_stream("r", DIGEST)
    real_now = scheduler.now
    scheduler.now = lambda: real_now() + timedelta(minutes=6)  # past the first retry time
    await scheduler.retry_due()
    [run] = await run_settled(harness)
    assert (run["status"], run["attempts"]) == ("posted", 2)
    assert len(digest_posts(harness)) == 1


async def test_missed_run_at_start_up_runs_once_within_grace(slack, model_server, tmp_path):
    db = str(tmp_path / "bot.db")
    first = Harness(slack, model_server, db)
    await first.start()
    row = await add_schedule(first)
    await first.stop()
    # Down across 09:00 Berlin: start again at 09:20, within the 12 h grace window.
    fire = latest_fire(Schedule("daily", 9, 0, "Europe/Berlin"), datetime.now(UTC))
    seed_before(slack, fire, "said before the bot went down")
    model_server.default = think_stream("r", DIGEST)
    second = Harness(slack, model_server, db)
    await second.start(now=lambda: fire + timedelta(minutes=20))
    try:
        await run_settled(second)
        await second.bot.scheduler.catch_up()  # a second catch-up (another restart) adds nothing
        await asyncio.sleep(0.3)
        assert len(digest_posts(second)) == 1
        [run] = second.store.db.query("SELECT * FROM digest_runs")
        assert run["period_key"] == period_key(row["id"], fire)
    finally:
        await second.stop()


async def test_missed_run_beyond_grace_is_skipped(slack, model_server, tmp_path):
    db = str(tmp_path / "bot.db")
    first = Harness(slack, model_server, db, QWQBOT_DIGEST_GRACE_HOURS="1")
    await first.start()
    await add_schedule(first)
    await first.stop()
    fire = latest_fire(Schedule("daily", 9, 0, "Europe/Berlin"), datetime.now(UTC))
    second = Harness(slack, model_server, db, QWQBOT_DIGEST_GRACE_HOURS="1")
    await second.start(now=lambda: fire + timedelta(hours=3))
    try:
        await asyncio.sleep(0.3)
        assert list(second.store.db.query("SELECT * FROM digest_runs")) == []
    finally:
        await second.stop()


@pytest.mark.parametrize("harness", [{"QWQBOT_CONTEXT_TOKENS": "8192",
                                      "QWQBOT_MAX_TOKENS": "2048"}], indirect=True)
async def test_large_channel_is_summarised_in_chunks_within_budget(harness):
    await add_schedule(harness)
    rows = [{"channel_id": "C1", "ts": f"{datetime.now(UTC).timestamp() - 3600 + i * 0.5:.6f}",
             "thread_ts": None, "user_id": "U1" if i % 3 else "U2",
             "text": f"message {i:04d} about the migration plan and its risks"}
            for i in range(3000)]
    harness.store.save_messages(rows)
    harness.model.default = think_stream("r", "- notes")
    harness.model.context_window = 8192  # counts each prompt as QwQ's server does, refuses overflows
    await harness.command("digest now")
    await harness.slack.wait_for(lambda: digest_posts(harness), timeout=60)
    calls = harness.model.requests
    assert len(calls) > 3  # partial summaries, then a merge
    budget = 8192 - 2048
    assert len(harness.model.prompt_counts) == len(calls)
    assert all(count <= budget for count in harness.model.prompt_counts)
    sent = "".join(json.dumps(c.json["messages"]) for c in calls)
    for i in range(0, 3000, 97):
        assert sent.count(f"message {i:04d} ") == 1  # every message sent exactly once


async def test_digest_fires_from_the_scheduler_at_its_time(harness):
    fire_local = datetime.now(BERLIN).replace(second=0, microsecond=0) + timedelta(minutes=2)
    await harness.post("C1", "U1", "earlier words")
    # Put the clock 2 s before the schedule's time; APScheduler then fires on its own.
    with time_machine.travel(fire_local - timedelta(seconds=2), tick=True):
        harness.model.default = think_stream("r", DIGEST)
        _, key = await harness.command(f"digest daily {fire_local:%H:%M} Europe/Berlin")
        await reply(harness, key)
        [run] = await run_settled(harness)
    assert len(digest_posts(harness)) == 1
    assert datetime.fromtimestamp(run["period_end"], BERLIN) == fire_local


async def test_digest_is_posted_only_into_its_own_channel(harness):
    harness.slack.add_channel("C2", name="random", members={"U1"})
    await add_schedule(harness)
    await harness.post("C1", "U1", "channel one talk")
    harness.model.default = think_stream("r", DIGEST)
    await harness.command("digest now")
    await harness.slack.wait_for(lambda: digest_posts(harness), timeout=10)
    channels = {c.params["channel"] for c in harness.slack.calls_to("chat.postMessage")}
    assert channels == {"C1"}
    assert BOT  # the bot id used by the harness
