"""/qwq end to end: signed form-encoded slash commands against the real app and fakes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

from qwqbot.slack.commands import COMMAND
from tests.fakes.model_server import error, think_stream
from tests.slack.harness import turns


def posted_to(harness, channel):
    return [c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == channel]


async def wait_responses(harness, key, n, timeout=10.0):
    await harness.slack.wait_for(lambda: len(harness.responses(key)) >= n, timeout=timeout)
    await harness.slack.wait_for(lambda: harness.bot.answerer.in_flight == 0, timeout=timeout)
    return harness.responses(key)


async def test_question_posts_a_visible_parent_and_answers_in_its_thread(harness):
    harness.model.enqueue(think_stream("sky thoughts", "Rayleigh scattering."),
                          think_stream("more", "Shorter wavelengths scatter more."))
    ack, _ = await harness.command("Why is the sky blue?")
    assert ack.status_code == 200 and ack.text == ""  # nothing to show: the parent speaks
    await harness.slack.wait_for(lambda: posted_to(harness, "C1"))
    parent = posted_to(harness, "C1")[0].params
    assert "thread_ts" not in parent
    assert "<@U1> asked with /qwq" in json.dumps(parent["blocks"])
    assert "Why is the sky blue?" in json.dumps(parent["blocks"])
    parent_ts = harness.slack.messages("C1")[0]["ts"]
    row = await harness.finished("C1", parent_ts)
    assert row["status"] == "done" and row["trigger"] == "command"
    [reply] = harness.bot_replies("C1", parent_ts)[1:]  # [0] is the parent itself
    assert "Rayleigh scattering." in json.dumps(reply["blocks"])
    assert "sky thoughts" in reply["attachments"][0]["text"]
    assert turns(harness.model.requests[0].json["messages"][-1]["content"]) == [
        ("Alice", "Why is the sky blue?")]
    # a follow-up in that thread continues the conversation like a mention thread
    follow = await harness.post("C1", "U2", "why not violet?", thread_ts=parent_ts)
    await harness.finished("C1", follow)
    sent = harness.model.requests[1].json["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[2]["content"] == "Rayleigh scattering."


async def test_works_in_private_channels_and_the_bots_dm(harness):
    harness.slack.add_channel("G1", name="secret-plans", is_private=True, members={"U1"})
    harness.model.default = think_stream("r", "ok")
    for channel, name in (("G1", "privategroup"), ("D1", "directmessage")):
        await harness.command("Status?", channel=channel, channel_name=name)
        await harness.slack.wait_for(lambda ch=channel: posted_to(harness, ch))
        parent_ts = harness.slack.messages(channel)[0]["ts"]
        assert (await harness.finished(channel, parent_ts))["status"] == "done"


async def test_not_in_channel_answers_privately_and_says_how_to_invite(harness):
    harness.slack.add_channel("C9", name="elsewhere", members={"U1"}, bot_is_member=False)
    harness.model.enqueue(think_stream("private reasoning", "Private answer."))
    _, key = await harness.command("Anyone?", channel="C9", channel_name="elsewhere")
    responses = await wait_responses(harness, key, 2)
    assert all(r["response_type"] == "ephemeral" for r in responses)
    first = json.dumps(responses[0])
    assert "/invite @qwqbot" in first and "Anyone?" in first
    final = responses[-1]
    assert final["replace_original"] is True
    assert "Private answer." in json.dumps(final["blocks"])
    assert "private reasoning" in final["attachments"][0]["text"]
    assert [m for m in harness.slack.messages("C9") if m.get("user") == "UBOT"] == []


async def test_dm_between_other_people_answers_privately(harness):
    harness.model.enqueue(think_stream("r", "Just for you."))
    _, key = await harness.command("Settle this", channel="D777", channel_name="directmessage")
    responses = await wait_responses(harness, key, 2)
    assert "direct message between other people" in json.dumps(responses[0])
    assert "Just for you." in json.dumps(responses[-1])


async def test_private_question_is_seen_only_by_the_asker(harness):
    harness.model.enqueue(think_stream("secret reasoning", "Secret answer."))
    ack, key = await harness.command("private What's my raise worth?")
    assert ack.status_code == 200
    responses = await wait_responses(harness, key, 2)
    assert posted_to(harness, "C1") == []  # nothing in the channel
    assert "Only you can see this" in json.dumps(responses[0])
    assert "What's my raise worth?" in json.dumps(responses[0])
    assert "Secret answer." in json.dumps(responses[-1]["blocks"])
    assert responses[-1]["attachments"][0]["title"].startswith("Reasoning")
    assert turns(harness.model.requests[0].json["messages"][-1]["content"]) == [
        ("Alice", "What's my raise worth?")]
    assert len(responses) <= 5  # Slack's limit per response_url


async def test_private_failure_offers_retry_that_works_privately(harness):
    harness.model.enqueue(error(503), error(503))
    _, key = await harness.command("private flaky?")
    responses = await wait_responses(harness, key, 2)
    failure = responses[-1]
    assert "overloaded" in json.dumps(failure) and "qwqbot_retry" in json.dumps(failure)
    button = next(b for b in failure["blocks"] if b["type"] == "actions")["elements"][0]
    harness.model.enqueue(think_stream("r", "Second time lucky."))
    retry_url = harness.slack.response_url("retry-" + key)
    await harness.action({
        "type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"},
        "channel": {"id": "C1"}, "container": {"type": "message", "is_ephemeral": True},
        "response_url": retry_url, "trigger_id": "2",
        "actions": [{**button, "block_id": "b", "type": "button"}]})
    responses = await wait_responses(harness, "retry-" + key, 2)
    assert "Second time lucky." in json.dumps(responses[-1])


async def test_help_and_empty_command_show_usage_privately_without_the_model(harness):
    for text in ("help", ""):
        ack, _ = await harness.command(text)
        body = ack.json()
        assert "/qwq private QUESTION" in body["text"] and "/qwq help" in body["text"]
        assert body.get("response_type", "ephemeral") == "ephemeral"
    await asyncio.sleep(0.2)
    assert harness.model.requests == [] and posted_to(harness, "C1") == []


async def test_unknown_subcommand_names_the_problem_first(harness):
    ack, _ = await harness.command("privte is this rude?")
    text = ack.json()["text"]
    assert text.startswith(":warning: Unknown subcommand `privte` — did you mean `private`?")
    assert "/qwq private QUESTION" in text
    await asyncio.sleep(0.2)
    assert harness.model.requests == [] and posted_to(harness, "C1") == []


async def test_bad_arguments_show_usage_for_that_subcommand(harness):
    ack, _ = await harness.command("private")
    assert ack.json()["text"].startswith(":warning: Tell me what to ask")


def test_manifest_command_matches_the_handler():
    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [COMMAND]
