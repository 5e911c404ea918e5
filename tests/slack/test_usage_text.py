from pathlib import Path
from typing import Any

import pytest

from qwqbot.slack.usage_text import TOP_LIMIT, usage_table, usage_text
from qwqbot.store import open_store
from qwqbot.store.usage import DAY, WINDOWS, Totals, tokens_today, windows
from tests.store.test_usage import NOW, call


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(tmp_path / "u.db", clock=lambda: NOW)
    yield s
    s.close()


def _scope(**overrides: Any) -> dict[str, Totals]:
    base = {"calls": 2, "answers": 2, "prompt_tokens": 1_000, "reasoning_tokens": 3_000, "answer_tokens": 500,
            "total_tokens": 4_500, "failures": 0, "cut_off": 0, "avg_latency_s": 12.0}
    base.update(overrides)
    return {label: Totals(**base) for label, _ in WINDOWS}  # type: ignore[arg-type]


def test_usage_table_is_monospace_and_aligned():
    table = usage_table(_scope())
    lines = table.split("\n")
    assert lines[0] == lines[-1] == "```"
    body = lines[1:-1]
    assert body[0].split() == ["answers", "tokens", "prompt", "reasoning", "answer", "failed"]
    assert [line.split()[0] for line in body[1:]] == ["today", "7", "30"]
    assert body[1].split()[1:] == ["2", "4,500", "1,000", "3,000", "500", "0"]
    assert len({len(line) for line in body}) == 1  # every row as wide as the header


def test_usage_table_shows_calls_and_cut_offs_only_when_they_differ():
    plain = usage_table(_scope())
    assert "calls" not in plain and "cut off" not in plain
    mixed = usage_table(_scope(calls=5, cut_off=1))
    assert "calls" in mixed and "cut off" in mixed


def test_usage_text_for_a_normal_user():
    text = usage_text(own=_scope(), channel=_scope(calls=3), channel_name="dev&ops",
                            quota=(12_345, 50_000))
    assert text.startswith("*Your usage*\nToday: 12,345 of 50,000 tokens\n```")
    assert "*In #dev&amp;ops*" in text
    assert text.count("```") == 4  # two tables
    for admin_only in ("Workspace", "Top users", "Feedback", "<@"):
        assert admin_only not in text


def test_usage_text_without_channel_quota_or_usage():
    text = usage_text(own=_scope(calls=0, answers=0), channel=None, channel_name=None)
    assert text == "*Your usage*\n_No questions in the last 30 days._"
    unnamed = usage_text(own=_scope(), channel=_scope(), channel_name=None)
    assert "*In this channel*" in unnamed


def test_usage_text_flags_a_used_up_quota():
    text = usage_text(own=_scope(), channel=None, channel_name=None, quota=(50_100, 50_000))
    assert "Today: 50,100 of 50,000 tokens — the daily limit is reached" in text


def test_usage_text_for_an_admin():
    text = usage_text(own=_scope(), channel=_scope(), channel_name="general",
                            workspace=_scope(calls=9, failures=1), top=[("U2", 2_000_000), ("U1", 1_234)],
                            feedback={"up": 7, "down": 2}, quota=None)
    assert "Today:" not in text
    assert "*Workspace*" in text
    assert "Average model time per call (30 days): 12 s" in text
    assert "*Top users (30 days)*\n1. <@U2> — 2.0M tokens\n2. <@U1> — 1,234 tokens" in text
    assert "*Feedback (30 days)*: 👍 7 / 👎 2" in text
    assert len(text) < 4000  # one ephemeral message


def test_usage_text_caps_the_top_list():
    top = [(f"U{i}", 1000 - i) for i in range(50)]
    text = usage_text(own=_scope(), channel=None, channel_name=None, top=top)
    assert f"{TOP_LIMIT}. <@U{TOP_LIMIT - 1}>" in text
    assert f"<@U{TOP_LIMIT}>" not in text
    assert "_Nobody yet._" in usage_text(own=_scope(), channel=None, channel_name=None, top=[])


def test_usage_text_from_the_store(store):
    call(store, at=NOW, prompt_tokens=1_200, completion_tokens=5_000, reasoning_tokens=4_200,
         total_tokens=6_200)
    call(store, at=NOW - 2 * DAY, purpose="digest", user_id=None, prompt_tokens=19_000,
         completion_tokens=1_000, reasoning_tokens=None, total_tokens=20_000)
    text = usage_text(
        own=windows(store, now=NOW, user_id="U1"),
        channel=windows(store, now=NOW, channel_id="C1"), channel_name="general",
        quota=(tokens_today(store, "U1", now=NOW), 50_000))
    assert "Today: 6,200 of 50,000 tokens" in text
    own_rows, channel_rows = [part.split("```")[1].strip().split("\n") for part in text.split("\n\n")]
    assert own_rows[1].split() == ["today", "1", "6,200", "1,200", "4,200", "800", "0"]
    assert own_rows[3].split() == ["30", "days", "1", "6,200", "1,200", "4,200", "800", "0"]
    assert channel_rows[0].split()[:2] == ["answers", "calls"]
    assert channel_rows[3].split() == ["30", "days", "1", "2", "26,200", "20,200", "4,200", "1,800", "0"]


def test_drift_line_says_how_the_bots_count_compares_and_warns_when_it_runs_low():
    from qwqbot.slack.usage_text import drift_line
    from qwqbot.store.usage import PromptDrift

    line = drift_line(PromptDrift(calls=120, estimated=98_000, reported=97_500), "7 days")
    assert line == ("Prompt size (7 days): the bot counted 98,000 tokens, the server 97,500 (1.01×) "
                    "over 120 calls")
    low = drift_line(PromptDrift(calls=1, estimated=40_000, reported=100_000), "7 days")
    assert low.startswith(":warning: Prompt size (7 days): the bot counted 40,000 tokens, the server 100,000 "
                          "(0.40×) over 1 call — the bot counts low")


def test_usage_text_shows_the_drift_with_the_workspace_only():
    from qwqbot.store.usage import PromptDrift

    drift = PromptDrift(calls=3, estimated=303, reported=300)
    admin = usage_text(own=_scope(), channel=None, channel_name=None, workspace=_scope(), drift=drift)
    assert "Prompt size (7 days): the bot counted 303 tokens, the server 300 (1.01×)" in admin
    assert admin.index("*Workspace*") < admin.index("Prompt size")
    assert "Prompt size" not in usage_text(own=_scope(), channel=None, channel_name=None, drift=drift)
