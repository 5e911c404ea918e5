from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from qwqbot.store import Store, open_store, usage
from qwqbot.store.usage import DAY, Totals

# 2024-03-15 12:00:00 UTC; today starts 12 hours earlier.
NOW = datetime(2024, 3, 15, 12, tzinfo=UTC).timestamp()
TODAY = datetime(2024, 3, 15, tzinfo=UTC).timestamp()


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(tmp_path / "u.db", clock=lambda: NOW)
    yield s
    s.close()


def call(store: Store, *, at: float, **row: Any) -> int:
    fields: dict[str, Any] = {"purpose": "answer", "model": "qwq-32b", "user_id": "U1", "channel_id": "C1",
                              "prompt_tokens": 100, "completion_tokens": 50, "reasoning_tokens": 30,
                              "total_tokens": 150, "latency_ms": 1000, "finish_reason": "stop"}
    fields.update(row)
    return store.record_model_call(created_at=at, **fields)


def vote(store: Store, answer_id: int, user_id: str, value: str, at: float) -> None:
    store.table("feedback").insert({"answer_id": answer_id, "user_id": user_id, "value": value, "at": at})


# -- day_start and windows ---------------------------------------------------------------------------------


def test_day_start_utc_and_exactly_at_midnight():
    assert usage.day_start(NOW) == TODAY
    assert usage.day_start(TODAY) == TODAY
    assert usage.day_start(TODAY - 0.001) == TODAY - DAY


def test_day_start_in_a_zone():
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2024, 3, 15, 0, 30, tzinfo=berlin).timestamp()  # still 14 March in UTC
    assert usage.day_start(now, "Europe/Berlin") == datetime(2024, 3, 15, tzinfo=berlin).timestamp()
    assert usage.day_start(now) == datetime(2024, 3, 14, tzinfo=UTC).timestamp()


def test_day_start_when_dst_skips_or_repeats_midnight():
    havana = ZoneInfo("America/Havana")
    # 10 March 2024: Havana's clocks jump from 00:00 to 01:00, so the day starts at 05:00 UTC.
    noon = datetime(2024, 3, 10, 12, tzinfo=havana).timestamp()
    assert usage.day_start(noon, "America/Havana") == datetime(2024, 3, 10, 5, tzinfo=UTC).timestamp()
    # 3 November 2024: 01:00 goes back to 00:00; the day starts at the first midnight (04:00 UTC).
    noon = datetime(2024, 11, 3, 12, tzinfo=havana).timestamp()
    assert usage.day_start(noon, "America/Havana") == datetime(2024, 11, 3, 4, tzinfo=UTC).timestamp()


def test_window_boundaries_are_inclusive(store):
    call(store, at=TODAY, total_tokens=1)  # exactly at today's start: today
    call(store, at=TODAY - 0.001, total_tokens=10)  # just before: 7 days
    call(store, at=NOW - 7 * DAY, total_tokens=100)  # exactly 7 days ago: 7 days
    call(store, at=NOW - 7 * DAY - 0.001, total_tokens=1_000)  # 30 days only
    call(store, at=NOW - 30 * DAY, total_tokens=10_000)  # exactly 30 days ago: 30 days
    call(store, at=NOW - 30 * DAY - 0.001, total_tokens=100_000)  # too old
    result = usage.windows(store, now=NOW)
    assert list(result) == ["today", "7 days", "30 days"]
    assert result["today"].total_tokens == 1
    assert result["7 days"].total_tokens == 111
    assert result["30 days"].total_tokens == 11_111
    assert [t.calls for t in result.values()] == [1, 3, 5]


# -- totals ------------------------------------------------------------------------------------------------


def test_empty_store_gives_zero_totals(store):
    assert usage.totals(store, since=0) == Totals.empty()
    assert usage.totals(store, since=0).avg_latency_s is None
    assert all(t == Totals.empty() for t in usage.windows(store, now=NOW).values())


def test_token_arithmetic_and_null_handling(store):
    call(store, at=NOW, prompt_tokens=100, completion_tokens=50, reasoning_tokens=30, total_tokens=150)
    # No reasoning count: the whole completion counts as answer.
    call(store, at=NOW, prompt_tokens=10, completion_tokens=20, reasoning_tokens=None, total_tokens=None)
    # No completion at all (a failure before the first token): only the prompt.
    call(store, at=NOW, prompt_tokens=7, completion_tokens=None, reasoning_tokens=None, total_tokens=None)
    # Nothing known.
    call(store, at=NOW, prompt_tokens=None, completion_tokens=None, reasoning_tokens=None, total_tokens=None)
    # Reasoning reported larger than completion: the answer part never goes negative.
    call(store, at=NOW, prompt_tokens=1, completion_tokens=5, reasoning_tokens=9, total_tokens=None)
    t = usage.totals(store, since=TODAY)
    assert t.calls == 5
    assert t.prompt_tokens == 100 + 10 + 7 + 1
    assert t.reasoning_tokens == 30 + 9
    assert t.answer_tokens == 20 + 20 + 0
    assert t.total_tokens == 150 + 30 + 7 + 0 + 6


def test_total_tokens_reported_by_the_server_wins(store):
    call(store, at=NOW, prompt_tokens=100, completion_tokens=50, total_tokens=175)
    assert usage.totals(store, since=TODAY).total_tokens == 175


def test_answers_failures_cut_offs_and_latency(store):
    call(store, at=NOW, latency_ms=1000)
    call(store, at=NOW, latency_ms=3000, error_kind="timeout", finish_reason=None)
    call(store, at=NOW, latency_ms=None, error_kind="cut_off", finish_reason="length")
    call(store, at=NOW, latency_ms=5000, purpose="digest", user_id=None, finish_reason="length")
    call(store, at=NOW, latency_ms=None, purpose="digest", user_id=None, error_kind="model_unreachable")
    t = usage.totals(store, since=TODAY)
    assert (t.calls, t.answers, t.failures, t.cut_off) == (5, 3, 2, 2)
    assert t.avg_latency_s == pytest.approx(3.0)


def test_filters_by_user_and_channel(store):
    call(store, at=NOW, user_id="U1", channel_id="C1", total_tokens=1)
    call(store, at=NOW, user_id="U1", channel_id="C2", total_tokens=10)
    call(store, at=NOW, user_id="U2", channel_id="C1", total_tokens=100)
    call(store, at=NOW, user_id=None, channel_id="C1", purpose="digest", total_tokens=1_000)
    assert usage.totals(store, since=TODAY, user_id="U1").total_tokens == 11
    assert usage.totals(store, since=TODAY, channel_id="C1").total_tokens == 1_101
    assert usage.totals(store, since=TODAY, user_id="U1", channel_id="C1").total_tokens == 1
    assert usage.totals(store, since=TODAY, user_id="U3").calls == 0
    assert usage.windows(store, now=NOW, user_id="U2")["30 days"].total_tokens == 100


# -- top users, feedback, today ----------------------------------------------------------------------------


def test_top_users_most_tokens_first(store):
    call(store, at=NOW, user_id="U1", total_tokens=500)
    call(store, at=NOW, user_id="U2", total_tokens=300)
    call(store, at=NOW, user_id="U2", total_tokens=None, prompt_tokens=250, completion_tokens=0)
    call(store, at=NOW, user_id="U3", total_tokens=500)  # ties: user id order
    call(store, at=NOW, user_id=None, purpose="digest", total_tokens=9_999)  # no user: left out
    call(store, at=NOW - 31 * DAY, user_id="U4", total_tokens=99_999)  # before since
    since = NOW - 30 * DAY
    assert usage.top_users(store, since=since) == [("U2", 550), ("U1", 500), ("U3", 500)]
    assert usage.top_users(store, since=since, limit=2) == [("U2", 550), ("U1", 500)]
    assert usage.top_users(store, since=NOW + 1) == []


def test_feedback_counts(store):
    vote(store, 1, "U1", "up", NOW)
    vote(store, 1, "U2", "up", NOW - 29 * DAY)
    vote(store, 2, "U1", "down", NOW - DAY)
    vote(store, 3, "U1", "up", NOW - 31 * DAY)  # too old
    vote(store, 4, "U1", "meh", NOW)  # not a vote we count
    assert usage.feedback_counts(store, since=NOW - 30 * DAY) == {"up": 2, "down": 1}
    assert usage.feedback_counts(store, since=NOW + 1) == {"up": 0, "down": 0}


def test_tokens_today_counts_one_user_since_midnight(store):
    call(store, at=TODAY, user_id="U1", total_tokens=100)
    call(store, at=NOW, user_id="U1", total_tokens=None, prompt_tokens=20, completion_tokens=3)
    call(store, at=TODAY - 1, user_id="U1", total_tokens=1_000)  # yesterday
    call(store, at=NOW, user_id="U2", total_tokens=10_000)
    assert usage.tokens_today(store, "U1", now=NOW) == 123
    assert usage.tokens_today(store, "U3", now=NOW) == 0
    # Just after midnight the count starts again.
    assert usage.tokens_today(store, "U1", now=TODAY + DAY) == 0
    # Tokyo's 15 March began at 15:00 UTC on the 14th, so the call a second before UTC midnight counts.
    assert datetime(2024, 3, 15, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp() < TODAY - 1
    assert usage.tokens_today(store, "U1", now=NOW, tz="Asia/Tokyo") == 1_123


def test_tokens_today_reads_the_user_created_at_index(store):
    plan = store.db.execute(
        "EXPLAIN QUERY PLAN SELECT SUM(COALESCE(total_tokens, COALESCE(prompt_tokens, 0)"
        " + COALESCE(completion_tokens, 0))) FROM model_calls WHERE user_id = ? AND created_at >= ?",
        ["U1", TODAY]).fetchall()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "idx_model_calls_user_id_created_at" in detail
    assert "user_id=? AND created_at>?" in detail


def test_tokens_today_is_fast_with_many_rows(store):
    rows = [{"purpose": "answer", "user_id": f"U{i % 50}", "channel_id": "C1", "total_tokens": 10,
             "created_at": NOW - (i % 60) * DAY / 2} for i in range(20_000)]
    store.db["model_calls"].insert_all(rows, batch_size=5_000)
    import time

    started = time.perf_counter()
    for _ in range(50):
        usage.tokens_today(store, "U7", now=NOW)
    assert (time.perf_counter() - started) / 50 < 0.01


# -- the bot's prompt count against the server's ----------------------------------------------------------


def test_prompt_drift_compares_only_calls_with_both_counts(store):
    assert usage.prompt_drift(store, since=0) is None  # nothing to compare yet
    call(store, at=NOW - DAY, prompt_tokens=1_000, estimated_prompt_tokens=1_010)
    call(store, at=NOW - 2 * DAY, prompt_tokens=3_000, estimated_prompt_tokens=3_030)
    # left out: no estimate recorded (a digest), the server reported no usage (its prompt_tokens is
    # then the bot's own estimate), and a call before the window
    call(store, at=NOW - DAY, purpose="digest", prompt_tokens=9_000)
    call(store, at=NOW - DAY, prompt_tokens=5_000, completion_tokens=None, total_tokens=None,
         estimated_prompt_tokens=5_000)
    call(store, at=NOW - 8 * DAY, prompt_tokens=100, estimated_prompt_tokens=900)
    drift = usage.prompt_drift(store, since=NOW - 7 * DAY)
    assert drift == usage.PromptDrift(calls=2, estimated=4_040, reported=4_000)
    assert drift.ratio == pytest.approx(1.01)
