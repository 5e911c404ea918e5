"""Slack's AI app split view, end to end: signed ``assistant_thread_started``,
``assistant_thread_context_changed`` and ``message.im`` deliveries shaped like Slack's
(https://docs.slack.dev/reference/events/assistant_thread_started), through Bolt's
``AsyncAssistant`` middleware, against the fake Slack and the fake model server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from qwqbot.slack.listeners.assistant import (
    MAX_PROMPTS,
    PROMPTS,
    PROMPTS_TITLE,
    TITLE_CHARS,
    suggested_prompts,
    thread_title,
)
from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT, turns

ROOT = Path(__file__).resolve().parents[2]


# -- what Slack sends ----------------------------------------------------------------------

def new_chat(harness: Any) -> str:
    """The thread's root, which Slack posts when the user opens a chat in the panel."""
    return str(harness.slack.add_message("D1", user=BOT, text="New chat",
                                         subtype="assistant_app_thread"))


def thread_event(kind: str, root: str, viewing: str | None) -> dict[str, Any]:
    context = {"channel_id": viewing, "team_id": "T1", "enterprise_id": None} if viewing else {}
    return {"type": kind,
            "assistant_thread": {"user_id": "U1", "context": context, "channel_id": "D1",
                                 "thread_ts": root},
            "event_ts": root}


def question(harness: Any, root: str, text: str) -> dict[str, Any]:
    """The user's message in the thread: a ``message.im`` event with the thread's ts."""
    ts = harness.slack.add_message("D1", user="U1", text=text, thread_ts=root)
    return {"type": "message", "user": "U1", "text": text, "ts": ts, "team": "T1",
            "client_msg_id": str(uuid.uuid4()), "thread_ts": root, "parent_user_id": BOT,
            "channel": "D1", "event_ts": ts, "channel_type": "im",
            "assistant_thread": {"action_token": "10116779555154.10138525474272.9b39d433f1"}}


async def open_thread(harness: Any, viewing: str | None = "C1") -> str:
    root = new_chat(harness)
    await harness.deliver(thread_event("assistant_thread_started", root, viewing))
    await harness.slack.wait_for(lambda: len(harness.slack.assistant_prompts) == 1)
    return root


def replies(harness: Any, root: str) -> list[dict[str, Any]]:
    """The bot's messages in the thread, its root (Slack's, in the bot's name) aside."""
    return [m for m in harness.bot_replies("D1", root) if m["ts"] != root]


def general() -> list[dict[str, str]]:
    return [p.as_slack() for p in PROMPTS]


# -- the manifest --------------------------------------------------------------------------

def test_manifest_turns_on_the_split_view_with_the_bots_own_prompts():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    view = manifest["features"]["assistant_view"]
    assert view["assistant_description"]
    # the panel's default prompts are the ones the bot sets per thread: one set of words
    assert view["suggested_prompts"] == general()
    assert {"assistant_thread_started", "assistant_thread_context_changed"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])
    assert "assistant:write" in manifest["oauth_config"]["scopes"]["bot"]


# -- pure parts ----------------------------------------------------------------------------

def test_title_is_the_question_on_one_line_with_names_for_mentions():
    assert thread_title(f"<@{BOT}> what does  <@U2> mean\nby &lt;idempotent&gt;?",
                        {"U2": "Bob"}, bot_user_id=BOT, bot_name="qwqbot") == \
        "what does @Bob mean by <idempotent>?"


def test_long_title_is_cut_between_words():
    text = ("Why does my sourdough starter smell like nail polish remover after three days "
            "on the counter?")
    title = thread_title(text, {}, bot_user_id=BOT, bot_name="qwqbot")
    assert title == "Why does my sourdough starter smell like nail polish…"
    assert len(title) <= TITLE_CHARS


def test_at_most_four_prompts_led_by_the_summary():
    prompts = suggested_prompts("general")
    assert len(prompts) <= MAX_PROMPTS == 4
    assert prompts[0].title == "Summarise #general"
    assert suggested_prompts(None) == list(PROMPTS)[:MAX_PROMPTS]


# -- a thread opens ------------------------------------------------------------------------

@pytest.mark.parametrize(("viewing", "summary"), [
    ("C1", "general"),   # a channel the bot is in
    ("C2", None),        # a public channel the bot is not in, without a digest
    ("G9", None),        # a private channel the bot is not in (Slack hides it)
    ("D1", None),        # a DM: not a channel to summarise
    (None, None),        # the panel opened with no channel in view
])
async def test_thread_started_sets_prompts_with_a_summary_of_the_viewed_channel(
        harness, viewing, summary):
    harness.slack.add_channel("C2", name="random", bot_is_member=False, members={"U1"})
    harness.slack.add_channel("G9", name="secret", is_private=True, bot_is_member=False,
                              members={"U1"})
    root = await open_thread(harness, viewing)
    [call] = harness.slack.assistant_prompts
    assert (call["channel_id"], call["thread_ts"], call["title"]) == ("D1", root, PROMPTS_TITLE)
    if summary is None:
        assert call["prompts"] == general()
    else:
        lead, *rest = call["prompts"]
        assert lead["title"] == f"Summarise #{summary}" and f"#{summary}" in lead["message"]
        assert rest == general()
    assert harness.store.assistant_thread("D1", root)["context_channel_id"] == viewing


async def test_a_channel_with_a_digest_is_offered_for_summary(harness):
    harness.slack.add_channel("C2", name="random", bot_is_member=False, members={"U1"})
    harness.bot.services.digests.set_schedule(channel_id="C2", kind="daily", day=None, hour=9,
                                              minute=0, tz="UTC", created_by="U1")
    await open_thread(harness, "C2")
    assert harness.slack.assistant_prompts[0]["prompts"][0]["title"] == "Summarise #random"


async def test_context_change_is_kept_and_the_summary_follows_the_user(harness):
    harness.slack.add_channel("C3", name="design", members={"U1"})
    harness.slack.add_channel("C2", name="random", bot_is_member=False, members={"U1"})
    root = await open_thread(harness, "C1")
    await harness.deliver(thread_event("assistant_thread_context_changed", root, "C3"))
    await harness.slack.wait_for(lambda: len(harness.slack.assistant_prompts) == 2)
    assert harness.slack.assistant_prompts[1]["prompts"][0]["title"] == "Summarise #design"
    await harness.deliver(thread_event("assistant_thread_context_changed", root, "C2"))
    await harness.slack.wait_for(lambda: len(harness.slack.assistant_prompts) == 3)
    assert harness.slack.assistant_prompts[2]["prompts"] == general()  # no stale summary
    assert harness.store.assistant_thread("D1", root)["context_channel_id"] == "C2"
    # kept in the store, not in message metadata (Bolt's default reads the thread back
    # with conversations.replies and rewrites the bot's first reply with chat.update)
    assert harness.slack.calls_to("conversations.replies") == []
    assert harness.slack.calls_to("chat.update") == []


async def test_context_change_after_the_first_question_keeps_the_prompts(harness):
    harness.slack.add_channel("C3", name="design", members={"U1"})
    harness.model.enqueue(think_stream("r", "Hello."))
    root = await open_thread(harness, "C1")
    ask = question(harness, root, "hi")
    await harness.deliver(ask)
    await harness.finished("D1", ask["ts"])
    await harness.deliver(thread_event("assistant_thread_context_changed", root, "C3"))
    await harness.slack.wait_for(
        lambda: harness.store.assistant_thread("D1", root)["context_channel_id"] == "C3")
    assert len(harness.slack.assistant_prompts) == 1


# -- questions -----------------------------------------------------------------------------

async def test_question_is_answered_in_the_thread_as_a_dm_and_titles_it_once(harness):
    harness.model.enqueue(think_stream("10 + 110 = 120, so no.", "No: the ball costs **5 cents**."),
                          think_stream("r", "Because 0.05 + 1.05 = 1.10."))
    root = await open_thread(harness)
    first = question(harness, root, "<@U2> says the ball costs 10 cents.\nIs <@U2> right?")
    await harness.deliver(first)
    row = await harness.finished("D1", first["ts"])
    assert row["status"] == "done" and row["trigger"] == "dm" and row["thread_ts"] == root
    [reply] = replies(harness, root)
    assert reply["thread_ts"] == root and "5 cents" in json.dumps(reply)
    prompt = harness.model.requests[0].json["messages"]
    assert "direct message with Alice" in prompt[0]["content"]
    assert turns(prompt[-1]["content"]) == [("Alice", "@Bob says the ball costs 10 cents.\nIs @Bob right?")]
    assert harness.slack.assistant_titles == [
        {"channel_id": "D1", "thread_ts": root,
         "title": "@Bob says the ball costs 10 cents. Is @Bob right?"}]
    # the panel's thread was joined when it opened: nothing to read back from Slack
    assert harness.slack.calls_to("conversations.replies") == []

    second = question(harness, root, "Why?")
    await harness.deliver(second)
    await harness.finished("D1", second["ts"])
    assert len(replies(harness, root)) == 2
    follow_up = harness.model.requests[1].json["messages"]
    assert [m["role"] for m in follow_up[1:]] == ["user", "assistant", "user"]  # the memory
    assert len(harness.slack.assistant_titles) == 1  # named by its first question only


async def test_redelivered_events_are_handled_once(harness):
    harness.model.default = think_stream("r", "once")
    root = new_chat(harness)
    started = thread_event("assistant_thread_started", root, "C1")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    await harness.deliver(started, event_id="EvSTART")
    await harness.deliver(started, event_id="EvSTART", headers=retry)
    ask = question(harness, root, "What is 2+2?")
    first = await harness.deliver(ask, event_id="EvASK")
    again = await harness.deliver(ask, event_id="EvASK", headers=retry)
    assert first.status_code == again.status_code == 200
    await harness.finished("D1", ask["ts"])
    assert len(harness.model.requests) == 1
    assert len(replies(harness, root)) == 1
    assert len(harness.slack.assistant_prompts) == 1
    assert len(harness.slack.assistant_titles) == 1


async def test_each_message_reaches_the_intake_once(harness, monkeypatch):
    """Bolt's middleware takes DM thread messages to ``user_message``; the message listener
    must not handle them as well."""
    intake = harness.bot.services.intake
    seen: list[str] = []
    real = intake.on_event

    def counting(event: dict[str, Any]) -> None:
        seen.append(str(event.get("ts")))
        real(event)

    monkeypatch.setattr(intake, "on_event", counting)
    harness.model.default = think_stream("r", "ok")
    root = await open_thread(harness)
    ask = question(harness, root, "Hello?")
    await harness.deliver(ask)
    await harness.finished("D1", ask["ts"])
    assert seen.count(ask["ts"]) == 1


async def test_an_edited_question_is_edited_in_the_threads_memory(harness):
    """Bolt drops edits in DM threads; they must still reach the store."""
    harness.model.default = think_stream("r", "ok")
    root = await open_thread(harness)
    ask = question(harness, root, "What is 2+3?")
    await harness.deliver(ask)
    await harness.finished("D1", ask["ts"])
    edited = {**ask, "text": "What is 2+4?", "edited": {"user": "U1", "ts": "1.0"}}
    await harness.deliver({"type": "message", "subtype": "message_changed", "hidden": True,
                           "channel": "D1", "channel_type": "im", "ts": "1.0",
                           "event_ts": "1.0", "message": edited, "previous_message": ask})
    await harness.slack.wait_for(lambda: [m["text"] for m in harness.store.thread_messages(
        "D1", root) if m["ts"] == ask["ts"]] == ["What is 2+4?"])


async def test_a_plain_dm_thread_is_answered_and_never_titled(harness):
    """Without the split view (free plans) a reply in a DM thread reaches the same
    listener: answered like any DM, and no title for a thread Slack did not open as one."""
    harness.model.enqueue(think_stream("r", "First."), think_stream("r", "Second."))
    top = await harness.post("D1", "U1", "hello", channel_type="im")
    await harness.finished("D1", top)
    reply = await harness.post("D1", "U1", "and again", thread_ts=top, channel_type="im")
    row = await harness.finished("D1", reply)
    assert row["status"] == "done" and row["thread_ts"] == top
    assert len(harness.bot_replies("D1", top)) == 2
    assert harness.slack.assistant_titles == []


# -- "Summarise #channel" ------------------------------------------------------------------

async def test_the_summary_prompt_is_answered_with_a_digest_of_the_viewed_channel(harness):
    harness.slack.add_message("C1", user="U2", text="We ship the release on Friday.")
    harness.slack.add_message("C1", user="U1", text="Agreed, Friday it is.")
    harness.model.enqueue(think_stream("two messages, one decision",
                                       "**Decided:** the release ships on Friday."))
    root = await open_thread(harness, "C1")
    [prompts] = harness.slack.assistant_prompts
    summary = prompts["prompts"][0]
    ask = question(harness, root, summary["message"])  # the user presses it
    await harness.deliver(ask)
    await harness.slack.wait_for(lambda: replies(harness, root), timeout=10)
    [reply] = replies(harness, root)
    text = json.dumps(reply)
    assert "release ships on Friday" in text and "Summary of #general" in text
    assert reply["attachments"][0]["title"].startswith("Reasoning")
    # the model read the channel's messages (read from Slack history: not tracked before)
    prompt = json.dumps(harness.model.requests[0].json["messages"])
    assert "We ship the release on Friday." in prompt
    # counted against the asker, like any question of theirs
    [call] = harness.store.db.query("SELECT * FROM model_calls")
    assert (call["user_id"], call["purpose"]) == ("U1", "digest")
    # the thread remembers the summary for follow-ups
    await harness.slack.wait_for(lambda: any(
        "release ships on Friday" in m["text"] for m in harness.store.thread_messages("D1", root)))


async def test_no_summary_of_a_channel_the_asker_is_not_in(harness):
    harness.slack.add_channel("C5", name="leads", members={"U2"})  # the bot is in it; U1 not
    harness.slack.add_message("C5", user="U2", text="Confidential plans.")
    harness.model.enqueue(think_stream("r", "I can only answer in general."))
    root = await open_thread(harness, "C5")
    summary = harness.slack.assistant_prompts[0]["prompts"][0]
    assert summary["title"] == "Summarise #leads"
    ask = question(harness, root, summary["message"])
    await harness.deliver(ask)
    await harness.finished("D1", ask["ts"])  # answered as a plain question instead
    assert "Confidential plans." not in json.dumps(harness.model.requests[0].json["messages"])
    assert not harness.slack.calls_to("conversations.history")
