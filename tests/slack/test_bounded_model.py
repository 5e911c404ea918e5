"""End to end: a model server that ignores max_tokens cannot fill the bot or its database."""

from __future__ import annotations

import json

import pytest

from qwqbot.model.limits import ResponseLimits
from tests.fakes.model_server import endless, think_stream
from tests.slack.harness import BOT

MAX_TOKENS = 200


@pytest.mark.parametrize("harness", [{"QWQBOT_MAX_TOKENS": str(MAX_TOKENS)}], indirect=True)
async def test_endless_reasoning_is_cut_off_told_and_stored_bounded(harness):
    harness.model.enqueue(endless("Still thinking about it. " * 4))
    ts = await harness.post("C1", "U1", f"<@{BOT}> a question the server never stops on")
    row = await harness.finished("C1", ts)
    ceiling = ResponseLimits.for_max_tokens(MAX_TOKENS).chars
    assert row["status"] == "cut_off"
    assert 0 < len(row["reasoning"]) <= ceiling
    assert harness.model.bytes_sent > ceiling  # the server sent more than was kept
    [reply] = harness.bot_replies("C1", ts)
    text = json.dumps(reply.get("blocks", [])) + json.dumps(reply.get("attachments", []))
    assert "cut off by the token limit" in text and "qwqbot_retry" in text

    db = harness.store.db
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    longest = db.execute("SELECT MAX(LENGTH(reasoning) + LENGTH(COALESCE(answer, ''))) "
                         "FROM answers").fetchone()[0]
    assert longest <= ceiling

    harness.model.enqueue(think_stream("fine", "Back to normal."))
    ts2 = await harness.post("C1", "U2", f"<@{BOT}> are you still there?")
    row2 = await harness.finished("C1", ts2)
    assert row2["status"] == "done" and row2["answer"] == "Back to normal."
