"""Slack message text as data: escaping, mentions, ts order, authors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwqbot.slacktext import author_name, escape, mentioned_ids, mentions, ts_key, unescape


def test_escape_replaces_exactly_slacks_three_characters() -> None:
    assert escape("a & b <c> &amp; \"'") == "a &amp; b &lt;c&gt; &amp;amp; \"'"


def test_unescape_decodes_amp_last() -> None:
    # "&amp;lt;" is what Slack stores for a typed "&lt;": decoding &amp; first would give "<".
    assert unescape("&amp;lt; &lt;b&gt; &amp;amp; &quot;") == "&lt; <b> &amp; &quot;"


@given(st.text())
def test_unescape_undoes_escape(text: str) -> None:
    assert unescape(escape(text)) == text


def test_mentioned_ids_finds_user_mentions_only() -> None:
    texts = ["hi <@U1> and <@W2|bob>", "<@U1> again", "<#C1|general> <!here> <@lower> <mailto:a@b.c>"]
    assert mentioned_ids(texts) == {"U1", "W2"}
    assert mentioned_ids([]) == set()


@pytest.mark.parametrize(("text", "expected"), [
    ("<@UBOT> hi", True),
    ("hi <@UBOT|qwqbot>", True),
    ("<@UBOTX> hi", False),
    ("UBOT, hi", False),
    ("<@U1> and <@UBOT>", True),
])
def test_mentions(text: str, expected: bool) -> None:
    assert mentions(text, "UBOT") is expected


def test_ts_key_orders_numerically_and_refuses_non_numbers() -> None:
    stamps = ["1700000000.000010", "999999999.999999", "1700000000.000002", "1700000000.000100"]
    assert sorted(stamps, key=ts_key) == [
        "999999999.999999", "1700000000.000002", "1700000000.000010", "1700000000.000100"]
    with pytest.raises(ValueError, match="not a Slack ts"):
        ts_key("yesterday")


@pytest.mark.parametrize(("row", "from_self", "expected"), [
    ({"user_id": "UBOT", "is_bot": 1}, True, "qwqbot"),
    ({"user_id": "U1", "is_bot": 0}, False, "Alice"),
    ({"user_id": "U9", "is_bot": 0}, False, "U9"),
    ({"user_id": None, "is_bot": 1}, False, "a bot"),
    ({"user_id": None, "is_bot": 0}, False, "someone"),
    ({"user_id": "", "is_bot": 0}, False, "someone"),
])
def test_author_name(row: dict[str, object], from_self: bool, expected: str) -> None:
    assert author_name(row, {"U1": "Alice"}, from_self=from_self, bot_name="qwqbot") == expected
