"""The prompt always fits, end to end: the real bot, the fake Slack, and a fake model server that counts
every prompt exactly as a QwQ server does (tests/fakes/chatml.py) and refuses what does not fit its
window, in vLLM's, OpenAI's or AI/ML API's words."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from qwqbot.store.usage import prompt_drift
from qwqbot.tokens import ESTIMATE, QWEN25
from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT

SMALL = {"QWQBOT_CONTEXT_TOKENS": "8192", "QWQBOT_MAX_TOKENS": "1024"}
# The bot believes in a window twice the server's: the server's refusal is what tells it otherwise.
LARGER_THAN_THE_SERVERS = {"QWQBOT_CONTEXT_TOKENS": "16384", "QWQBOT_MAX_TOKENS": "1024"}


def numbers(rng: random.Random, rows: int = 8) -> str:
    """A pasted table of figures, ids and timestamps: about 25 Qwen tokens a row, a digit each."""
    return "\n".join(f"{rng.randrange(10**6)},{rng.random() * 1000:.3f},{rng.getrandbits(40):010x},"
                     f"17000{rng.randrange(10**5):05d}.{rng.randrange(10**6):06d}" for _ in range(rows))


def numeric_thread(harness, messages: int, *, seed: int = 1) -> str:
    rng = random.Random(seed)
    root: str = harness.slack.add_message("C1", user="U1", text="ROOT: the export figures " + numbers(rng, 2))
    for i in range(messages):
        harness.slack.add_message("C1", user="U2" if i % 2 else "U1", text=f"batch {i:03d}\n" + numbers(rng),
                                  thread_ts=root)
    return root


def reply_text(harness, thread_ts: str) -> str:
    """The bot's one post in the thread, as Slack shows it."""
    [reply] = harness.bot_replies("C1", thread_ts)
    shown: str = json.dumps(reply.get("blocks", [])) + json.dumps(reply.get("attachments", []))
    return shown


def model_calls(harness) -> list[dict[str, Any]]:
    return list(harness.store.db.query("SELECT * FROM model_calls ORDER BY id"))


@pytest.mark.parametrize("harness", [SMALL], indirect=True)
async def test_a_thread_of_numbers_far_larger_than_the_window_is_answered_within_it(harness):
    harness.model.context_window = 8192
    root = numeric_thread(harness, 150)
    harness.model.enqueue(think_stream("r", "Batch 149 changed most."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> which batch changed most?", thread_ts=root)
    row = await harness.finished("C1", ts)
    assert row["status"] == "done"
    [prompt_tokens] = harness.model.prompt_counts  # one request, accepted
    assert prompt_tokens + 1024 <= 8192
    stored = harness.store.thread_messages("C1", root)
    assert sum(m["tokens"] for m in stored) > 4 * 8192  # the thread is far larger than the window
    sent = json.dumps(harness.model.requests[0].json["messages"])
    assert "ROOT: the export figures" in sent and "batch 149" in sent and "batch 000" not in sent
    # what the bot counted, next to what the server counted, in the usage row
    [call] = model_calls(harness)
    assert call["prompt_tokens"] == prompt_tokens  # the fake server reports its exact count
    # exact but for the joins between turns, where a token or two merge (">>\n\n" is one token)
    assert prompt_tokens <= call["estimated_prompt_tokens"] <= prompt_tokens * 1.01
    drift = prompt_drift(harness.store, since=0)
    assert drift is not None and drift.calls == 1 and 1.0 <= drift.ratio < 1.01


@pytest.mark.parametrize("style", ["vllm", "openai", "aimlapi"])
@pytest.mark.parametrize("harness", [LARGER_THAN_THE_SERVERS], indirect=True)
async def test_a_context_length_refusal_is_trimmed_and_asked_again_once(harness, style):
    harness.model.context_window, harness.model.overflow_style = 6000, style
    root = numeric_thread(harness, 80)
    harness.model.enqueue(think_stream("r", "Here is the trend."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> what is the trend?", thread_ts=root)
    row = await harness.finished("C1", ts)
    assert (row["status"], row["error_kind"]) == ("done", None)
    first, second = harness.model.prompt_counts  # refused, then asked again: never a third time
    assert first + 1024 > 6000 >= second + 1024
    assert len(harness.model.requests) == 2
    text = reply_text(harness, root)
    assert "Here is the trend." in text and "too long" not in text  # the user sees no error
    assert "what is the trend?" in json.dumps(harness.model.requests[1].json["messages"])
    [call] = model_calls(harness)  # the refused attempt costs the user nothing
    assert call["prompt_tokens"] == second


@pytest.mark.parametrize("harness", [LARGER_THAN_THE_SERVERS], indirect=True)
async def test_a_second_refusal_is_shown_plainly_for_the_operator(harness):
    # "Prompt is too long." with no numbers: the bot drops a quarter, which is not enough here.
    harness.model.context_window, harness.model.overflow_style = 3000, "bare"
    root = numeric_thread(harness, 80)
    ts = await harness.post("C1", "U1", f"<@{BOT}> what is the trend?", thread_ts=root)
    row = await harness.finished("C1", ts)
    assert (row["status"], row["error_kind"]) == ("failed", "context_length")
    assert len(harness.model.requests) == 2
    text = reply_text(harness, root)
    assert "too long for the model server" in text and "tell the person who runs this bot" in text
    assert "QWQBOT_CONTEXT_TOKENS" in text


@pytest.mark.parametrize("harness", [LARGER_THAN_THE_SERVERS], indirect=True)
async def test_when_the_newest_message_alone_does_not_fit_the_server_the_user_is_told(harness):
    harness.model.context_window = 3000
    rng = random.Random(3)
    ts = await harness.post("C1", "U1", f"<@{BOT}> sum these:\n" + numbers(rng, 100))
    row = await harness.finished("C1", ts)
    assert (row["status"], row["error_kind"]) == ("failed", "too_long")
    assert len(harness.model.requests) == 1  # refused once; nothing smaller could be sent
    text = reply_text(harness, ts)
    assert "too long for the model" in text and "qwqbot_retry" not in text


@pytest.mark.parametrize("harness", [{**SMALL, "QWQBOT_MODEL": "deepseek-ai/DeepSeek-R1"}], indirect=True)
async def test_a_model_that_is_not_qwen_is_priced_with_the_high_estimate(harness):
    harness.model.model = "deepseek-ai/DeepSeek-R1"
    harness.model.context_window = 8192  # counts as Qwen does: a tokenizer that splits every digit
    assert harness.bot.answerer.context.counter is ESTIMATE
    root = numeric_thread(harness, 150)
    harness.model.enqueue(think_stream("r", "Batch 149."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> which batch changed most?", thread_ts=root)
    row = await harness.finished("C1", ts)
    assert row["status"] == "done"
    [prompt_tokens] = harness.model.prompt_counts
    assert prompt_tokens + 1024 <= 8192
    [call] = model_calls(harness)
    assert call["estimated_prompt_tokens"] >= prompt_tokens  # the estimate errs high, as it should


@pytest.mark.parametrize("harness", [{"QWQBOT_CONTEXT_TOKENS": "8192", "QWQBOT_MAX_TOKENS": "2048"}],
                         indirect=True)
async def test_a_digest_of_a_channel_of_numbers_fits_each_call(harness):
    assert harness.bot.answerer.context.counter is QWEN25
    _, key = await harness.command("digest daily 09:00 Europe/Berlin")
    await harness.slack.wait_for(lambda: harness.responses(key))
    rng = random.Random(5)
    now = datetime.now(UTC).timestamp()
    rows = [{"channel_id": "C1", "ts": f"{now - 3600 + i * 0.5:.6f}", "thread_ts": None,
             "user_id": "U1" if i % 3 else "U2", "text": f"row {i:04d}: " + numbers(rng, 2)}
            for i in range(1500)]
    harness.store.save_messages(rows)
    harness.model.context_window = 8192  # refuses any call that does not fit
    harness.model.default = think_stream("r", "- notes")
    await harness.command("digest now")
    await harness.slack.wait_for(lambda: [r["status"] for r in harness.store.db.query(
        "SELECT status FROM digest_runs")] in (["posted"], ["failed"]), timeout=60)
    counts = harness.model.prompt_counts
    assert len(counts) > 3  # partial summaries, then merges
    assert all(count + 2048 <= 8192 for count in counts)  # no call was refused
    sent = "".join(json.dumps(r.json["messages"]) for r in harness.model.requests)
    for i in range(0, 1500, 73):
        assert sent.count(f"row {i:04d}: ") == 1  # every message sent exactly once
    [run] = harness.store.db.query("SELECT * FROM digest_runs")
    assert run["status"] == "posted" and run["parts"] > 1


@pytest.mark.parametrize("harness", [{**SMALL, "QWQBOT_ADMINS": "U1"}], indirect=True)
async def test_operators_see_the_bots_prompt_count_next_to_the_servers_in_the_home_tab(harness):
    harness.model.context_window = 8192
    harness.model.enqueue(think_stream("r", "Fine."))
    ts = await harness.post("C1", "U1", f"<@{BOT}> add 17 and 25")
    await harness.finished("C1", ts)
    [server_count] = harness.model.prompt_counts
    for user in ("U1", "U2"):
        await harness.deliver({"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"})
        await harness.slack.wait_for(lambda user=user: user in harness.slack.views)
    admin = json.dumps(harness.slack.views["U1"], ensure_ascii=False)
    assert f"the server {server_count:,}" in admin and "over 1 call" in admin
    assert "Prompt size" not in json.dumps(harness.slack.views["U2"])  # not for everyone
