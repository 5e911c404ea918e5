"""Oversized output and many answers at once, end to end."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fakes.model_server import stream, think_stream
from tests.slack.harness import BOT


def block_text(message):
    return "".join(b["text"]["text"] for b in message.get("blocks", []) if b["type"] == "section")


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
    # the placeholder became the first part; the rest follow it in order
    assert replies[0]["ts"] == harness.answers("C1", ts)[0]["placeholder_ts"]
    text = "".join(block_text(m) for m in replies)
    positions = [text.index(f"Paragraph {i:04d}:") for i in range(200)]
    assert positions == sorted(positions)
    for i in range(400):
        assert f"line_{i} = {i}" in text
    for message in replies:
        assert len(message["blocks"]) <= 50
        assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if "text" in b)
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


@pytest.mark.parametrize("harness", [{"QWQBOT_MAX_CONCURRENT": "3",
                                      "QWQBOT_UPDATE_BUDGET": "30"}], indirect=True)
async def test_many_mentions_at_once_queue_and_all_get_answers(harness):
    harness.model.default = stream(["<think>", "hmm ", "hmm ", "</think>", "Answer."],
                                   chunk_delay=0.15)
    started = time.monotonic()
    posts = await asyncio.gather(*(harness.post("C1", "U1" if i % 2 else "U2",
                                                f"<@{BOT}> question {i}") for i in range(12)))
    for ts in posts:
        row = await harness.finished("C1", ts, timeout=30)
        assert row["status"] == "done"
    elapsed = time.monotonic() - started
    assert len(harness.model.requests) == 12
    first_posts = [c for c in harness.slack.calls_to("chat.postMessage")]
    assert any("Queued" in c.params["text"] for c in first_posts)  # beyond the cap: queued
    for ts in posts:
        replies = harness.bot_replies("C1", ts)
        assert len(replies) == 1 and "Answer." in block_text(replies[0])
    progress = [c for c in harness.slack.calls_to("chat.update")
                if "blocks" in c.params and c.params["blocks"]
                and c.params["blocks"][0]["type"] == "context"]
    # the shared budget: at most 30 chat.update calls in any minute (the test is shorter
    # than one), progress using at most 60% of them, every final edit still made
    assert elapsed < 60
    assert len(harness.slack.calls_to("chat.update")) <= 30
    assert 0 < len(progress) <= 18


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
