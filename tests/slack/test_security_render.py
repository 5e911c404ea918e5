"""Hostile model output, through the real app: nothing it writes pings a channel or a group,
notifies someone outside the conversation, or shows one address while linking another.

The fake model server writes every ping form and disguised link into the answer and the
reasoning; the assertions read every Web API call the bot made (``text``, ``blocks``,
``attachments``, streams' ``markdown_text``, the status's ``loading_messages``) and every
private response.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import pytest

from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT, Harness

HOSTILE = (
    "Attention <!channel>, <!here|here>, <!EVERYONE>, <!subteam^S0TEAM|@devs>, <!subteam^S0OPS>, "
    "&lt;!channel&gt;, <!chan\u200bnel> and plain @channel and @here.\n\n"
    "Thanks <@U1> and <@U2|bob>; FYI <@U3> and <@U4|the-boss>.\n\n"
    "Links: <http://evil.example/a|http://good.example/a>, "
    "[https://good.example/b](https://evil.example/b), [good.example](https://evil.example/c), "
    "![good.example](https://evil.example/d.png), [the team](!channel), "
    "<https://good.example@evil.example/e> and the [Python docs](https://docs.python.org/3/).\n"
)
REASONING = "\n".join([
    "Maybe I should ping <!channel> about this.",
    "Or <!subteam^S0TEAM|@devs>, and tell <@U3> at [https://good.example](https://evil.example/r).",
    HOSTILE,
    "Also &lt;!here&gt; and <!here>.",
    "Done weighing.",
])
#: What no Web API call may carry: broadcasts (raw or as entities), strangers' mentions,
#: and the disguising label (every good.example here labels a link to elsewhere).
FORBIDDEN = re.compile(
    r"<!(?:channel|here|everyone|subteam)"
    r"|&lt;!(?:channel|here|everyone|subteam)[^\n]*?&gt;"
    r"|<@U3|<@U4|good\.example", re.IGNORECASE)


def visible(value: Any) -> str:
    """A payload as one string, without invisible characters (which Slack might drop)."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def leaks(harness: Harness) -> list[tuple[str, list[str]]]:
    return [(call.method, FORBIDDEN.findall(visible(call.params)))
            for call in harness.slack.calls if FORBIDDEN.search(visible(call.params))]


@pytest.fixture
def people(slack):
    slack.add_user("U3", name="carol", real_name="Carol Cole", display_name="Carol")
    slack.add_channel("C1", name="general", members={"U1", "U2", "U3"})


async def test_a_streamed_answer_and_its_reasoning_ping_no_one_and_link_honestly(harness, people):
    harness.model.enqueue(think_stream(REASONING, HOSTILE * 2, chunk_size=5, chunk_delay=0.02))
    ts = await harness.post("C1", "U1", f"<@{BOT}> how do I announce the launch? cc <@U2>")
    await harness.finished("C1", ts)

    assert leaks(harness) == []
    # every path was taken: the status from the reasoning, a stream, the final message
    lines = [line for s in harness.slack.assistant_statuses for line in s["loading_messages"] or []]
    assert any(line.startswith("Weighing:") for line in lines)
    [start] = harness.slack.calls_to("chat.startStream")
    streamed = start.params["markdown_text"] + "".join(
        c.params["markdown_text"] for c in harness.slack.calls_to("chat.appendStream"))
    assert streamed.startswith("Attention @\u2060channel")
    [final] = harness.bot_replies("C1", ts)
    blocks, attachment = visible(final["blocks"]), visible(final["attachments"][0])
    for shown in (blocks, attachment):
        # the thread's people are still mentioned; a stranger is named, an unknown "someone"
        assert "<@U1>" in shown and "<@U2>" in shown
        assert "Carol" in shown and "@someone" in shown
        # broadcasts read as words; disguised links show where they go; others stay links
        assert "@channel" in shown and "@here" in shown and "@devs" in shown
        assert "evil.example/b" in shown and "evil.example/e" in shown
    assert "[Python docs](https://docs.python.org/3/)" in blocks
    assert "<https://docs.python.org/3/|Python docs>" in attachment
    assert "<@U1>" in visible(final["text"])  # what notifications show


async def test_the_plain_text_fallback_is_as_inert(harness, people):
    harness.model.enqueue(think_stream(REASONING, HOSTILE))
    harness.slack.fail_next("chat.postMessage", "invalid_blocks")
    ts = await harness.post("C1", "U1", f"<@{BOT}> announce it, cc <@U2>")
    await harness.finished("C1", ts)
    [final] = harness.bot_replies("C1", ts)
    assert not final.get("blocks") and "<@U2>" in final["text"] and "Carol" in final["text"]
    assert leaks(harness) == []


async def test_a_digest_pings_no_one_and_names_who_did_not_write(harness, people):
    _, key = await harness.command("digest daily 09:00")
    await harness.slack.wait_for(lambda: harness.responses(key))
    top = await harness.post("C1", "U2", "Launch plan: ship on Friday")
    await harness.post("C1", "U1", "ok, I'll write the notes", thread_ts=top)
    harness.model.enqueue(think_stream(REASONING, HOSTILE))
    await harness.command("digest now")
    await harness.slack.wait_for(lambda: _digest_posts(harness), timeout=10)
    [post] = _digest_posts(harness)
    assert leaks(harness) == []
    text = visible(post.params)
    assert "<@U1>" in text and "<@U2>" in text  # they wrote in the period
    assert "Carol" in text and "@someone" in text  # mentioned, but wrote nothing
    assert "@channel" in text and "evil.example/c" in text
    assert post.params["attachments"][0]["title"].startswith("Reasoning")


async def test_a_private_answer_mentions_only_the_asker(harness, people):
    harness.model.enqueue(think_stream(REASONING, HOSTILE))
    _, key = await harness.command("private how do I announce the launch?")
    await harness.slack.wait_for(lambda: len(harness.responses(key)) >= 2, timeout=10)
    await harness.slack.wait_for(lambda: harness.bot.answerer.in_flight == 0, timeout=10)
    answer = visible(harness.responses(key)[-1])
    assert not FORBIDDEN.search(answer) and "<@U2" not in answer
    assert "<@U1>" in answer and "Bob" in answer and "Carol" in answer
    assert "@channel" in answer and "evil.example/b" in answer
    assert leaks(harness) == []


def _digest_posts(harness: Harness) -> list[Any]:
    return [c for c in harness.slack.calls_to("chat.postMessage")
            if c.params["channel"] == "C1" and "thread_ts" not in c.params
            and "digest" in json.dumps(c.params).lower()]
