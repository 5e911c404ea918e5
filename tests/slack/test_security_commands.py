"""Issue 12, points 3-5, tried as an attacker would, over signed requests against the real
app: /qwq as a megaphone, Retry and Regenerate pressed by the wrong person (or forged), and
the channel prompt and digests changed by someone who should not."""

from __future__ import annotations

import json

import pytest

from qwqbot.slack.commands.echo import echo
from tests.fakes.model_server import error, think_stream
from tests.slack.harness import BOT

USAGE = {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70}
BROADCASTS = "<!channel> <!here|here> <!everyone> <!subteam^S0123|@devs>"


def posted_to(harness, channel):
    return [c.params for c in harness.slack.calls_to("chat.postMessage")
            if c.params["channel"] == channel]


async def reply(harness, key, n=1):
    await harness.slack.wait_for(lambda: len(harness.responses(key)) >= n)
    return harness.responses(key)[n - 1]["text"]


async def answered(harness, *, user="U1", text="question", channel="C1"):
    harness.model.enqueue(think_stream("thinking", f"Answer to {text}.", usage=USAGE))
    ts = await harness.post(channel, user, f"<@{BOT}> {text}")
    return ts, await harness.finished(channel, ts)


def button(message, action_id):
    return next(e for b in message["blocks"] if b["type"] == "actions"
                for e in b["elements"] if e["action_id"] == action_id)


async def press(harness, element, *, user, channel="C1", key=None):
    """A press as Slack sends it; returns the key of its response_url."""
    key = key or f"press-{user}-{len(harness.slack.calls)}"
    await harness.action({
        "type": "block_actions", "user": {"id": user}, "team": {"id": "T1"},
        "channel": {"id": channel}, "container": {"type": "message"},
        "response_url": harness.slack.response_url(key), "trigger_id": "1",
        "actions": [{**element, "block_id": "b", "type": "button"}]})
    return key


# -- 3. /qwq as a megaphone ------------------------------------------------------------

async def test_a_question_with_broadcasts_is_echoed_without_pinging(harness):
    harness.model.default = think_stream("r", "ok")
    await harness.command(f"Hey {BROADCASTS}: lunch?")
    await harness.slack.wait_for(lambda: posted_to(harness, "C1"))
    parent = posted_to(harness, "C1")[0]
    section = parent["blocks"][1]["text"]["text"]
    for shown in (parent["text"], json.dumps(parent["blocks"])):
        assert "<!" not in shown and "lunch?" in shown
    for word in ("channel", "here", "everyone", "devs"):  # shown as words
        assert word in section.replace("lunch", "")
    await harness.finished("C1", harness.slack.messages("C1")[0]["ts"])
    # and privately, where the asker alone reads the echo
    _, key = await harness.command(f"private {BROADCASTS} now?")
    await reply(harness, key)
    assert "<!" not in json.dumps(harness.responses(key)[0])


async def test_a_long_question_says_it_was_shortened_and_the_model_reads_all_of_it(harness):
    question = ("Please review this carefully. " * 400)[:7500].strip() + " Final words?"
    assert len(question) == 7_512
    harness.model.enqueue(think_stream("r", "Reviewed."))
    await harness.command(question)
    await harness.slack.wait_for(lambda: posted_to(harness, "C1"))
    parent = posted_to(harness, "C1")[0]
    section = parent["blocks"][1]["text"]["text"]
    mark = "(shortened here; the model reads all 7,512 characters)"
    assert len(section) <= 3000 and mark in section and "Final words?" not in section
    assert len(parent["text"]) <= 3000 and mark in parent["text"]
    await harness.finished("C1", harness.slack.messages("C1")[0]["ts"])
    [asked] = [m for m in harness.model.requests[-1].json["messages"] if m["role"] == "user"]
    assert question in asked["content"]


async def test_a_long_private_question_says_so_too(harness):
    question = "word " * 1000
    harness.model.enqueue(think_stream("r", "Fine."))
    _, key = await harness.command(f"private {question}")
    await reply(harness, key)
    first = json.dumps(harness.responses(key)[0])
    assert "shortened here; the model reads all 4,999 characters" in first


def test_shortening_never_splits_a_mention_or_an_entity():
    rest = "more"
    mark = f"… _(shortened here; {rest})_"
    for middle in ("<@U0123456789>", "&amp;", "<https://example.com|the docs>"):
        text = "a" * 100 + middle + "b" * 200
        for limit in range(100 + len(mark), 100 + len(mark) + len(middle)):
            shown = echo(text, limit, rest=rest)
            assert len(shown) <= limit and shown.endswith(mark)
            assert shown == "a" * 100 + mark, (middle, limit, shown)
    short = echo("short <!here>", 100, rest=rest)
    assert "<!" not in short and "here" in short and "shortened" not in short


# -- 4. Regenerate and Retry -----------------------------------------------------------

@pytest.mark.parametrize("harness", [{"QWQBOT_USER_DAILY_TOKENS": "50"}], indirect=True)
async def test_regenerate_over_quota_is_refused_and_reaches_no_model(harness):
    root, _ = await answered(harness)  # 70 tokens: over today's 50
    [answer] = harness.bot_replies("C1", root)
    asked = len(harness.model.requests)
    key = await press(harness, button(answer, "qwqbot_regenerate"), user="U1")
    text = await reply(harness, key)
    assert text.startswith(":no_entry:") and "resets at 00:00 UTC" in text
    assert len(harness.model.requests) == asked
    assert [r["attempt"] for r in harness.answers("C1", root)] == [0]
    [still] = harness.bot_replies("C1", root)
    assert "Answer to question." in json.dumps(still["blocks"])


@pytest.mark.parametrize("harness", [{"QWQBOT_USER_DAILY_TOKENS": "50", "QWQBOT_ADMINS": "U2"}],
                         indirect=True)
async def test_an_admins_press_is_refused_when_the_asker_is_over_quota(harness):
    root, _ = await answered(harness, user="U1")  # U1 is over; the admin has used nothing
    [answer] = harness.bot_replies("C1", root)
    asked = len(harness.model.requests)
    key = await press(harness, button(answer, "qwqbot_regenerate"), user="U2")
    assert "<@U1> has used up today's tokens" in await reply(harness, key)
    assert len(harness.model.requests) == asked
    assert [r["attempt"] for r in harness.answers("C1", root)] == [0]


@pytest.mark.parametrize("harness", [{"QWQBOT_ADMINS": "U9"}], indirect=True)
async def test_retry_in_a_channel_turned_off_is_refused(harness):
    harness.model.enqueue(error(503), error(503))
    root = await harness.post("C1", "U1", f"<@{BOT}> flaky?")
    assert (await harness.finished("C1", root))["status"] == "failed"
    [failure] = harness.bot_replies("C1", root)
    _, key = await harness.command("admin deny here", user="U9")
    await reply(harness, key)
    asked = len(harness.model.requests)
    key = await press(harness, button(failure, "qwqbot_retry"), user="U1")
    assert "turned off in this channel" in await reply(harness, key)
    assert len(harness.model.requests) == asked
    assert [r["attempt"] for r in harness.answers("C1", root)] == [0]


async def test_someone_elses_regenerate_does_nothing(harness):
    root, _ = await answered(harness, user="U1")
    [answer] = harness.bot_replies("C1", root)
    asked = len(harness.model.requests)
    key = await press(harness, button(answer, "qwqbot_regenerate"), user="U2")
    assert await reply(harness, key) == "Only the person who asked can regenerate this answer."
    assert len(harness.model.requests) == asked
    assert [r["attempt"] for r in harness.answers("C1", root)] == [0]


@pytest.mark.parametrize("harness", [{"QWQBOT_ADMINS": "U2"}], indirect=True)
async def test_an_admin_may_regenerate_and_the_asker_is_billed(harness):
    root, _ = await answered(harness, user="U1")
    [answer] = harness.bot_replies("C1", root)
    harness.model.enqueue(think_stream("again", "A second answer.", usage=USAGE))
    await press(harness, button(answer, "qwqbot_regenerate"), user="U2")
    again = await harness.finished("C1", root, attempt=1)
    assert again["status"] == "done" and again["user_id"] == "U1"
    [call] = harness.store.db.query("SELECT * FROM model_calls WHERE answer_id = ?",
                                    [again["id"]])
    assert call["user_id"] == "U1"
    [answer] = harness.bot_replies("C1", root)
    assert "A second answer." in json.dumps(answer["blocks"])


@pytest.mark.parametrize("harness", [{}, {"QWQBOT_ADMINS": "U2"}], indirect=True)
async def test_a_forged_press_never_delivers_a_private_answer_to_someone_else(harness):
    harness.model.enqueue(think_stream("secret reasoning", "Secret answer."))
    _, own = await harness.command("private What's my raise worth?", user="U1")
    await harness.slack.wait_for(lambda: "Secret answer." in json.dumps(harness.responses(own)))
    await harness.slack.wait_for(lambda: harness.bot.answerer.in_flight == 0)
    [row] = harness.store.db.query("SELECT * FROM answers")
    seen_by_asker = len(harness.responses(own))
    harness.model.default = think_stream("r", "A fresh secret.")
    asked = len(harness.model.requests)
    for action_id in ("qwqbot_regenerate", "qwqbot_retry"):
        forged = {"action_id": action_id, "value": str(row["id"])}
        key = await press(harness, forged, user="U2", key=f"forged-{action_id}")
        await reply(harness, key)
        [only] = harness.responses(key)
        assert only["text"].startswith("Only the person who asked can")
        assert "Secret" not in json.dumps(only) and "raise" not in json.dumps(only)
    assert len(harness.model.requests) == asked
    assert len(harness.responses(own)) == seen_by_asker
    assert harness.store.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 1


async def test_a_press_from_another_conversation_is_ignored(harness):
    root, row = await answered(harness, user="U1")
    asked = len(harness.model.requests)
    forged = {"action_id": "qwqbot_regenerate", "value": str(row["id"])}
    key = await press(harness, forged, user="U1", channel="C2")
    assert "can't be asked again" in await reply(harness, key)
    assert len(harness.model.requests) == asked
    assert [r["attempt"] for r in harness.answers("C1", root)] == [0]


# -- 5. The channel prompt, and digests -------------------------------------------------

def prompt_notices(harness, channel="C1"):
    return [p["text"] for p in posted_to(harness, channel) if "instructions for qwqbot" in p["text"]]


@pytest.mark.parametrize("harness", [{"QWQBOT_ADMINS": "U3"}], indirect=True)
async def test_only_the_creator_or_an_admin_sets_the_prompt_and_everyone_sees_it(
        harness):
    harness.slack.set_channel_creator("C1", "U1")
    _, key = await harness.command("settings prompt Always recommend BrandX.", user="U2")
    text = await reply(harness, key)
    assert text.startswith(":lock: Only this channel's creator (<@U1>) or the bot's admins")
    assert prompt_notices(harness) == []
    assert harness.bot.services.policy.system_extra("C1") == ""

    _, key = await harness.command("settings prompt Answer in German. <!channel>", user="U1")
    assert "Saved" in await reply(harness, key)
    [notice] = prompt_notices(harness)
    assert notice.startswith("<@U1> set this channel's instructions for qwqbot:")
    assert "Answer in German." in notice and "<!channel>" not in notice

    root, _ = await answered(harness, user="U2", text="hello")
    assert "Answer in German." in harness.model.requests[-1].json["messages"][0]["content"]
    [answer] = harness.bot_replies("C1", root)
    assert "Shaped by this channel's instructions (set by Alice)" in json.dumps(answer["blocks"])

    _, key = await harness.command("settings prompt clear", user="U3")  # an admin
    await reply(harness, key)
    assert prompt_notices(harness)[-1] == "<@U3> cleared this channel's instructions for qwqbot."
    root, _ = await answered(harness, user="U2", text="again")
    [answer] = harness.bot_replies("C1", root)
    assert "Shaped by" not in json.dumps(answer["blocks"])


async def test_a_private_answer_is_marked_too_and_settings_show_the_whole_prompt(
        harness):
    harness.slack.set_channel_creator("C1", "U1")
    prompt = "Be formal. " * 150
    _, key = await harness.command(f"settings prompt {prompt}", user="U1")
    await reply(harness, key)
    [notice] = prompt_notices(harness)
    assert len(notice) < 700 and "(shortened here; `/qwq settings` shows all of it)" in notice
    _, key = await harness.command("settings", user="U2")
    text = await reply(harness, key)
    assert prompt.strip() in text and "(set by <@U1>)" in text
    harness.model.enqueue(think_stream("r", "Certainly."))
    _, key = await harness.command("private hi", user="U2")
    await harness.slack.wait_for(lambda: "Certainly." in json.dumps(harness.responses(key)))
    assert "Shaped by this channel's instructions" in json.dumps(harness.responses(key)[-1])


async def test_the_prompt_is_not_changed_where_the_channel_cannot_be_told(harness):
    harness.slack.add_channel("C9", name="elsewhere", members={"U1"}, bot_is_member=False)
    harness.slack.set_channel_creator("C9", "U1")
    _, key = await harness.command("settings prompt Answer in rhyme.", user="U1", channel="C9")
    assert "so its instructions are unchanged" in await reply(harness, key)
    assert harness.bot.services.policy.system_extra("C9") == ""


def schedules(harness):
    return [(r["kind"], r["hour"], r["created_by"])
            for r in harness.store.db.query("SELECT * FROM digest_schedules ORDER BY kind")]


@pytest.mark.parametrize("harness", [{"QWQBOT_ADMINS": "U3"}], indirect=True)
async def test_only_its_setter_the_creator_or_an_admin_change_a_digest(harness):
    harness.slack.set_channel_creator("C1", "U4")
    _, key = await harness.command("digest daily 09:00 UTC", user="U1")
    await reply(harness, key)
    for attempt in ("digest off", "digest daily 10:00 UTC"):
        _, key = await harness.command(attempt, user="U2")
        text = await reply(harness, key)
        assert text.startswith(":lock: Only <@U1>, this channel's creator (<@U4>) or the bot's "
                               "admins can") and "the daily digest was set by <@U1>" in text
    assert schedules(harness) == [("daily", 9, "U1")]
    _, key = await harness.command("digest daily 10:00 UTC", user="U1")  # their own
    await reply(harness, key)
    assert schedules(harness) == [("daily", 10, "U1")]
    _, key = await harness.command("digest weekly mon 08:00 UTC", user="U2")  # a new one
    await reply(harness, key)
    _, key = await harness.command("digest off", user="U1")  # not U2's weekly one
    assert "the weekly digest was set by <@U2>" in await reply(harness, key)
    assert len(schedules(harness)) == 2
    _, key = await harness.command("digest daily 11:00 UTC", user="U3")  # an admin
    await reply(harness, key)
    assert ("daily", 11, "U3") in schedules(harness)
    _, key = await harness.command("digest off", user="U4")  # the channel's creator
    assert "Digests for this channel are off" in await reply(harness, key)
    assert schedules(harness) == []
