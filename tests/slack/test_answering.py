"""End to end: the real bot in HTTP mode, signed Slack requests, the fake Slack Web API and
the fake model server. Each test is one rule from the Slack issue."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.fakes.model_server import error, stream, think_stream
from tests.slack.harness import BOT, turns


async def test_mention_is_answered_in_its_thread_with_reasoning_attachment(harness):
    harness.model.enqueue(think_stream("The user wants a sum. 2+2=4.", "It's **4**."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> what is 2+2?")
    row = await harness.finished("C1", ts)
    assert row["status"] == "done"
    replies = harness.bot_replies("C1", ts)
    assert len(replies) == 1  # the placeholder became the answer: nothing stray left
    reply = replies[0]
    assert reply["thread_ts"] == ts
    assert "*4*" in json.dumps(reply["blocks"])
    [attachment] = reply["attachments"]
    assert attachment["title"].startswith("Reasoning · ")
    assert "2+2=4" in attachment["text"]
    assert "<think>" not in json.dumps(reply) and "</think>" not in json.dumps(reply)
    # stored: the answer without reasoning as the bot's message, the reasoning on the answer
    assert row["answer"] == "It's **4**." and row["reasoning"] == "The user wants a sum. 2+2=4."
    stored = harness.store.thread_messages("C1", ts)
    assert [(m["user_id"], m["text"]) for m in stored] == [
        ("U1", f"<@{BOT}> what is 2+2?"), (BOT, "It's **4**.")]


async def test_app_mention_and_message_for_one_post_answer_once(harness):
    harness.model.default = think_stream("r", "once")
    ts = await harness.post("C1", "U1", f"<@{BOT}> hello")  # sends both events
    await harness.finished("C1", ts)
    assert len(harness.model.requests) == 1
    assert len(harness.bot_replies("C1", ts)) == 1


async def test_slack_retry_of_a_delivery_is_dropped(harness):
    harness.model.default = think_stream("r", "once")
    ts = harness.slack.add_message("C1", user="U1", text=f"<@{BOT}> hi")
    event = {"type": "app_mention", "channel": "C1", "user": "U1", "text": f"<@{BOT}> hi",
             "ts": ts}
    first = await harness.deliver(event, event_id="EvSAME")
    retry = await harness.deliver(event, event_id="EvSAME", headers={
        "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status_code == retry.status_code == 200
    await harness.finished("C1", ts)
    assert len(harness.model.requests) == 1


async def test_follow_up_in_thread_answered_without_mention_with_history(harness):
    harness.model.enqueue(think_stream("first thoughts", "Paris."),
                          think_stream("second thoughts", "About 2.1 million."))
    root = await harness.post("C1", "U1", f"<@{BOT}> capital of France?")
    await harness.finished("C1", root)
    follow = await harness.post("C1", "U2", "and its population?", thread_ts=root)
    await harness.finished("C1", follow)
    messages = harness.model.requests[1].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert turns(messages[1]["content"]) == [("Alice", "capital of France?")]
    assert messages[2]["content"] == "Paris."  # the answer, never the thinking
    assert "first thoughts" not in json.dumps(messages)
    assert turns(messages[3]["content"]) == [("Bob", "and its population?")]
    assert len(harness.bot_replies("C1", root)) == 2


async def test_message_in_channel_without_mention_is_ignored(harness):
    ts = await harness.post("C1", "U1", "just chatting")
    await asyncio.sleep(0.3)
    assert harness.answers("C1", ts) == []
    assert harness.model.requests == []
    assert not harness.store.has_message("C1", ts)  # not a thread the bot is in: not kept


async def test_direct_message_is_answered(harness):
    harness.model.enqueue(think_stream("dm thoughts", "Hi Alice!"))
    ts = await harness.post("D1", "U1", "hello there", channel_type="im")
    row = await harness.finished("D1", ts)
    assert row["status"] == "done" and row["trigger"] == "dm"
    assert "direct message with Alice" in harness.model.requests[0].json["messages"][0]["content"]


async def test_bots_are_never_answered(harness):
    ts = harness.slack.add_message("C1", user="U9", text=f"<@{BOT}> ping", bot_id="BOTHER")
    await harness.deliver({"type": "message", "subtype": "bot_message", "channel": "C1",
                           "bot_id": "BOTHER", "text": f"<@{BOT}> ping", "ts": ts,
                           "channel_type": "channel"})
    await harness.deliver({"type": "message", "channel": "C1", "user": BOT, "bot_id": "BBOT",
                           "text": "my own words", "ts": ts + "1", "channel_type": "channel"})
    await asyncio.sleep(0.3)
    assert harness.model.requests == []
    assert harness.store.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0


async def test_mention_mid_thread_backfills_what_was_said_before(harness):
    harness.model.enqueue(think_stream("r", "Go with Postgres."))
    root = harness.slack.add_message("C1", user="U1", text="Which database should we use?")
    for i in range(250):  # more than one page of conversations.replies
        harness.slack.add_message("C1", user="U2" if i % 2 else "U1", text=f"opinion {i}",
                                  thread_ts=root)
    ts = await harness.post("C1", "U2", f"<@{BOT}> what do you think?", thread_ts=root)
    await harness.finished("C1", ts)
    assert len(harness.slack.calls_to("conversations.replies")) >= 2  # paginated
    sent = json.dumps(harness.model.requests[0].json["messages"])
    assert "Which database should we use?" in sent and "opinion 249" in sent
    # stored now: a later follow-up needs no Slack history read
    before = len(harness.slack.calls_to("conversations.replies"))
    harness.model.enqueue(think_stream("r", "Yes."))
    follow = await harness.post("C1", "U1", "sure?", thread_ts=root)
    await harness.finished("C1", follow)
    assert len(harness.slack.calls_to("conversations.replies")) == before


async def test_edits_and_deletions_reach_the_memory(harness):
    harness.model.enqueue(think_stream("r", "A."), think_stream("r", "B."))
    root = await harness.post("C1", "U1", f"<@{BOT}> original question")
    await harness.finished("C1", root)
    await harness.deliver({"type": "message", "subtype": "message_changed", "channel": "C1",
                           "message": {"type": "message", "user": "U1", "ts": root,
                                       "text": f"<@{BOT}> edited question",
                                       "edited": {"user": "U1", "ts": "9.9"}},
                           "previous_message": {"ts": root}, "ts": "9.9"})
    extra = await harness.post("C1", "U2", "secret oops", thread_ts=root)
    await harness.finished("C1", extra)
    await harness.deliver({"type": "message", "subtype": "message_deleted", "channel": "C1",
                           "deleted_ts": extra, "previous_message": {"ts": extra}})
    follow = await harness.post("C1", "U1", "again?", thread_ts=root)
    harness.model.enqueue(think_stream("r", "C."))
    await harness.finished("C1", follow)
    sent = json.dumps(harness.model.requests[-1].json["messages"])
    assert "edited question" in sent and "original question" not in sent
    assert "secret oops" not in sent


async def test_the_native_status_shows_life_then_the_answer_is_one_post(harness):
    # 2.6 s of thinking: one thread may change its status every ~1.6 s (its channel's
    # setStatus budget), so at least one change follows the first status.
    harness.model.enqueue(stream(["<think>"] + ["thinking about it\n"] * 13 + ["</think>Done."],
                                 chunk_delay=0.2))
    ts = await harness.post("C1", "U1", f"<@{BOT}> slow one")
    await harness.finished("C1", ts)
    statuses = [s for s in harness.slack.assistant_statuses if s["thread_ts"] == ts]
    assert statuses and statuses[0]["status"] == "is thinking…"
    lines = [line for s in statuses for line in s["loading_messages"] or []]
    assert any("characters of reasoning" in line for line in lines)
    assert any(line.startswith("Weighing: thinking about it") for line in lines)
    # the sign of life cost no post and no edit; the answer is the thread's one post
    assert not harness.slack.calls_to("chat.update")
    [reply] = harness.bot_replies("C1", ts)
    assert reply["blocks"][0] == {"type": "markdown", "text": "Done."}
    kinds = [b["type"] for b in reply["blocks"]]
    assert kinds[-2:] == ["context_actions", "actions"]
    assert reply["attachments"][0]["title"].startswith("Reasoning")


async def test_an_answer_streams_while_the_model_writes_it(harness):
    words = [f"word{i} " for i in range(40)]
    harness.model.enqueue(stream(["<think>short</think>", *words, "END."], chunk_delay=0.05))
    ts = await harness.post("C1", "U1", f"<@{BOT}> write a lot")
    await harness.finished("C1", ts)
    [start] = harness.slack.calls_to("chat.startStream")
    assert start.params["recipient_user_id"] == "U1"
    assert start.params["recipient_team_id"] == "T1"
    first_words = start.params["markdown_text"]
    assert first_words.startswith("word0") and "END." not in first_words
    assert harness.slack.calls_to("chat.stopStream")
    # the streamed message became the final answer: Markdown, reasoning, feedback
    [final] = [u for u in harness.slack.calls_to("chat.update")
               if u.params.get("ts") == start_ts(harness, ts)]
    assert "END." in json.dumps(final.params["blocks"])
    [reply] = harness.bot_replies("C1", ts)
    assert reply["blocks"][0]["type"] == "markdown" and reply["blocks"][0]["text"].endswith("END.")
    assert reply["attachments"][0]["title"].startswith("Reasoning")


def start_ts(harness, thread_ts):
    return harness.bot_replies("C1", thread_ts)[0]["ts"]


async def test_model_error_turns_placeholder_into_message_with_retry(harness):
    harness.model.enqueue(error(403, {"message": "Insufficient credits", "statusCode": 403}))
    ts = await harness.post("C1", "U1", f"<@{BOT}> hi")
    row = await harness.finished("C1", ts)
    assert row["status"] == "failed" and row["error_kind"] == "credits"
    [reply] = harness.bot_replies("C1", ts)
    text = json.dumps(reply["blocks"])
    assert "out of credits" in text and "Retry" in text
    # the Retry button re-asks, in the same message
    harness.model.enqueue(think_stream("r", "Now it works."))
    button = next(b for b in reply["blocks"] if b["type"] == "actions")["elements"][0]
    resp = await harness.action({
        "type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"},
        "channel": {"id": "C1"}, "message": {"ts": reply["ts"]}, "container": {},
        "response_url": harness.slack.response_url("retry"), "trigger_id": "1",
        "actions": [{**button, "block_id": "b", "type": "button"}]})
    assert resp.status_code == 200
    retried = await harness.finished("C1", ts, attempt=1)
    assert retried["status"] == "done"
    [reply] = harness.bot_replies("C1", ts)
    assert "Now it works." in json.dumps(reply["blocks"])


@pytest.mark.parametrize("harness", [{"QWQBOT_REQUIRE_MENTION": "true"}], indirect=True)
async def test_require_mention_keeps_follow_ups_in_memory_but_waits_for_a_mention(harness):
    harness.model.enqueue(think_stream("r", "First."), think_stream("r", "Second."))
    root = await harness.post("C1", "U1", f"<@{BOT}> start")
    await harness.finished("C1", root)
    quiet = await harness.post("C1", "U2", "a remark for the humans", thread_ts=root)
    await asyncio.sleep(0.3)
    assert harness.answers("C1", quiet) == []
    asked = await harness.post("C1", "U1", f"<@{BOT}> now you", thread_ts=root)
    await harness.finished("C1", asked)
    assert "a remark for the humans" in json.dumps(harness.model.requests[1].json["messages"])


async def test_bare_mention_in_a_thread_asks_the_bot_to_weigh_in(harness):
    harness.model.enqueue(think_stream("r", "Here is my take."))
    root = harness.slack.add_message("C1", user="U1", text="Tabs or spaces?")
    ts = await harness.post("C1", "U2", f"<@{BOT}>", thread_ts=root)
    row = await harness.finished("C1", ts)
    assert row["status"] == "done"
    last = harness.model.requests[0].json["messages"][-1]["content"]
    assert "Tabs or spaces?" in last and "respond to the conversation above" in last


@pytest.mark.parametrize("harness", [{"QWQBOT_CONTEXT_TOKENS": "2048",
                                      "QWQBOT_MAX_TOKENS": "1024"}], indirect=True)
async def test_long_thread_keeps_root_and_newest_within_budget_with_a_note(harness):
    root = harness.slack.add_message("C1", user="U1", text="ROOT: plan the launch")
    for i in range(60):
        harness.slack.add_message("C1", user="U2", text=f"message {i:02d} " + "detail " * 20,
                                  thread_ts=root)
    harness.model.enqueue(think_stream("r", "Plan."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> summarise", thread_ts=root)
    await harness.finished("C1", ts)
    messages = harness.model.requests[0].json["messages"]
    sent = json.dumps(messages)
    assert "ROOT: plan the launch" in sent and "message 59" in sent and "summarise" in sent
    assert "message 00" not in sent
    assert "not shown" in messages[0]["content"]


@pytest.mark.parametrize("harness", [{"QWQBOT_STREAMING": "false"}], indirect=True)
async def test_with_streaming_off_the_answer_is_posted_whole(harness):
    harness.model.enqueue(stream(["<think>r</think>", *[f"w{i} " for i in range(30)], "END."],
                                 chunk_delay=0.03))
    ts = await harness.post("C1", "U1", f"<@{BOT}> long")
    await harness.finished("C1", ts)
    assert not harness.slack.calls_to("chat.startStream")
    [reply] = harness.bot_replies("C1", ts)
    assert reply["blocks"][0]["text"].endswith("END.")


async def test_a_handful_of_answers_at_once_all_stream(harness):
    harness.slack.add_channel("C2", name="second", members={"U1", "U2"})
    harness.model.default = stream(["<think>r</think>", *[f"w{i} " for i in range(30)], "END."],
                                   chunk_delay=0.04)
    posts = await asyncio.gather(*(harness.post(channel, "U1", f"<@{BOT}> q{i}")
                                   for i, channel in enumerate(["C1", "C1", "C2", "C2"])))
    for (channel, ts) in zip(["C1", "C1", "C2", "C2"], posts, strict=True):
        await harness.finished(channel, ts)
    starts = harness.slack.calls_to("chat.startStream")
    assert sorted(str(c.params["thread_ts"]) for c in starts) == sorted(posts)
    assert harness.slack.rate_limit_stats()["limited"] == 0
