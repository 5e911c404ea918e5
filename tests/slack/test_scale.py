"""Oversized output and many answers at once, end to end."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.model_server import stream, think_stream
from tests.slack.harness import BOT


def block_text(message):
    return "".join(b["text"] if b["type"] == "markdown" else b["text"]["text"]
                   for b in message.get("blocks", []) if b["type"] in ("section", "markdown"))


async def test_50000_character_answer_is_split_and_nothing_is_lost(harness):
    paragraphs = [f"Paragraph {i:04d}: " + "words and more words " * 10 for i in range(200)]
    code = "```python\n" + "\n".join(f"line_{i} = {i}  # code" for i in range(400)) + "\n```"
    answer = "\n\n".join([*paragraphs[:100], code, *paragraphs[100:]])
    assert len(answer) > 50_000
    harness.model.enqueue(think_stream("plan", answer, chunk_size=2000))
    ts = await harness.post("C1", "U1", f"<@{BOT}> write a lot")
    row = await harness.finished("C1", ts, timeout=30)
    assert row["status"] == "done" and row["answer"] == answer.strip()
    replies = harness.bot_replies("C1", ts)
    assert len(replies) > 1
    # the first part is recorded as the answer's message; the rest follow it in order
    assert replies[0]["ts"] == harness.answers("C1", ts)[0]["placeholder_ts"]
    text = "".join(block_text(m) for m in replies)
    positions = [text.index(f"Paragraph {i:04d}:") for i in range(200)]
    assert positions == sorted(positions)
    for i in range(400):
        assert f"line_{i} = {i}" in text
    for message in replies:
        assert len(message["blocks"]) <= 50
        assert len(block_text(message)) <= 12_000  # Slack's markdown limit per message
        assert block_text(message).count("```") % 2 == 0  # no fence broken across messages
    assert "attachments" in replies[0]  # the reasoning sits with the start of the answer


async def test_60000_characters_of_reasoning_are_shortened_and_attached_whole(harness):
    reasoning = "".join(f"Thought {i:05d}: considering the options carefully. " for i in range(1200))
    assert len(reasoning) >= 60_000
    harness.model.enqueue(think_stream(reasoning, "Short answer.", chunk_size=4000))
    ts = await harness.post("C1", "U1", f"<@{BOT}> think hard")
    await harness.finished("C1", ts, timeout=30)
    answer_msg = next(m for m in harness.bot_replies("C1", ts) if m.get("attachments"))
    attachment = answer_msg["attachments"][0]
    assert len(attachment["text"]) <= 7000
    assert "characters omitted" in attachment["text"]
    assert "Thought 00000" in attachment["text"] and "Thought 01199" in attachment["text"]
    assert attachment["title"].startswith("Reasoning · ")
    [upload] = harness.slack.calls_to("files.completeUploadExternal")
    assert upload.params["thread_ts"] == ts
    [file] = list(harness.slack.files.values())
    assert harness.slack.file_content(file.id).decode() == reasoning.strip()


@pytest.mark.parametrize("harness", [{"QWQBOT_MAX_CONCURRENT": "3"}], indirect=True)
async def test_many_mentions_at_once_queue_and_all_get_answers(harness):
    """12 questions in one channel, 3 model slots, Slack's limits on: every answer arrives,
    each waiting one says so truthfully, and the bot's own pacing meets no 429."""
    harness.model.default = stream(["<think>", "hmm ", "hmm ", "</think>", "Answer."],
                                   chunk_delay=0.15)
    posts = await asyncio.gather(*(harness.post("C1", "U1" if i % 2 else "U2",
                                                f"<@{BOT}> question {i}") for i in range(12)))
    for ts in posts:
        row = await harness.finished("C1", ts, timeout=30)
        assert row["status"] == "done"
    assert len(harness.model.requests) == 12
    waiting = [s for s in harness.slack.assistant_statuses
               if s["status"] == "is waiting for a free slot…"]
    assert waiting  # beyond the cap: queued, and the status says so
    assert any("ahead of yours" in line for s in waiting for line in s["loading_messages"])
    for ts in posts:
        replies = harness.bot_replies("C1", ts)
        assert len(replies) == 1 and "Answer." in block_text(replies[0])
        # the status is set within the first second, for every question
        assert any(s["thread_ts"] == ts for s in harness.slack.assistant_statuses)
    assert harness.slack.rate_limit_stats()["limited"] == 0, harness.slack.rate_limit_stats()


async def test_ack_does_not_wait_for_the_model(harness):
    harness.model.default = stream(["<think>", "slow"] + ["."] * 20 + ["</think>ok"],
                                   chunk_delay=0.1)
    ts = harness.slack.add_message("C1", user="U1", text=f"<@{BOT}> slow")
    response = await harness.deliver({"type": "app_mention", "channel": "C1", "user": "U1",
                                      "text": f"<@{BOT}> slow", "ts": ts})
    assert response.status_code == 200
    # acknowledged before the work: the answer is claimed after the ack and is still going
    await harness.slack.wait_for(lambda: harness.answers("C1", ts))
    assert harness.answers("C1", ts)[0]["status"] in ("queued", "running")
    await harness.finished("C1", ts)
