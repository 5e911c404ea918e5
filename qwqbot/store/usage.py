"""Usage and cost: token totals per person, channel and workspace, read from ``model_calls``.

The numbers only; ``qwqbot.slack.usage_text`` turns them into Slack text.

Every function takes its times as arguments (``now``, ``since``): nothing here reads the clock, so
callers decide what "today" is and tests pin it. Times are Unix seconds, like ``created_at``.

Token arithmetic, row by row (servers do not always report every field):

- ``total`` is ``total_tokens``, or ``prompt + completion`` when the server left it NULL;
- ``reasoning`` is ``reasoning_tokens`` (NULL counts as 0);
- ``answer`` is ``completion - reasoning`` when both are known, else ``completion``.

A call *failed* when it has an ``error_kind`` other than ``cut_off``; it was *cut off* when its
``error_kind`` is ``cut_off`` or, with no error recorded, it finished with ``finish_reason = 'length'``
(a digest keeps a cut-off summary without recording an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from qwqbot.store.store import Store

__all__ = [
    "DAY",
    "WINDOWS",
    "PromptDrift",
    "Totals",
    "day_start",
    "feedback_counts",
    "prompt_drift",
    "tokens_today",
    "top_users",
    "totals",
    "window_start",
    "windows",
]

DAY = 86_400.0

#: The windows shown by ``/qwq usage`` and the Home tab, as (label, days): 0 days means "since the start of
#: today" (see :func:`day_start`); n days means the last n × 24 hours up to ``now``. Each contains the one
#: before it.
WINDOWS: tuple[tuple[str, int], ...] = (("today", 0), ("7 days", 7), ("30 days", 30))


@dataclass(frozen=True, slots=True)
class Totals:
    """What the model calls in one window add up to."""

    calls: int
    answers: int  # calls with purpose 'answer'
    prompt_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    total_tokens: int
    failures: int  # error_kind set, cut-offs excluded
    cut_off: int
    avg_latency_s: float | None  # None when no call recorded a latency

    @classmethod
    def empty(cls) -> Totals:
        return cls(calls=0, answers=0, prompt_tokens=0, reasoning_tokens=0, answer_tokens=0,
                   total_tokens=0, failures=0, cut_off=0, avg_latency_s=None)


# ---------------------------------------------------------------------------------------------------------
# Time windows
# ---------------------------------------------------------------------------------------------------------


def day_start(now: float, tz: str = "UTC") -> float:
    """The first instant of ``now``'s calendar day in ``tz`` (quotas reset at 00:00 UTC by default).

    Where a DST change skips midnight, the day starts at the change; where midnight repeats, at the first
    one. Raises ``zoneinfo.ZoneInfoNotFoundError`` for an unknown zone.
    """
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(now, zone)
    # fold=0 resolves a skipped midnight with the offset before the change, i.e. to the change itself,
    # and a repeated midnight to its first occurrence.
    midnight = datetime.combine(local.date(), time(0), tzinfo=zone)
    return min(midnight.timestamp(), now)


def window_start(days: int, now: float, tz: str = "UTC") -> float:
    """Start of a window of :data:`WINDOWS`: today's start for 0 days, else ``now - days × 24 h``."""
    return day_start(now, tz) if days == 0 else now - days * DAY


# ---------------------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------------------

_TOTAL_SQL = "COALESCE(total_tokens, COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0))"

_TOTALS_SQL = f"""
SELECT
  COUNT(*),
  SUM(CASE WHEN purpose = 'answer' THEN 1 ELSE 0 END),
  SUM(COALESCE(prompt_tokens, 0)),
  SUM(COALESCE(reasoning_tokens, 0)),
  SUM(CASE
        WHEN completion_tokens IS NULL THEN 0
        WHEN reasoning_tokens IS NULL THEN completion_tokens
        ELSE MAX(completion_tokens - reasoning_tokens, 0)
      END),
  SUM({_TOTAL_SQL}),
  SUM(CASE WHEN error_kind IS NOT NULL AND error_kind != 'cut_off' THEN 1 ELSE 0 END),
  SUM(CASE WHEN error_kind = 'cut_off' OR (error_kind IS NULL AND finish_reason = 'length')
           THEN 1 ELSE 0 END),
  AVG(latency_ms)
FROM model_calls
WHERE created_at >= ?"""


def totals(store: Store, *, since: float, user_id: str | None = None,
           channel_id: str | None = None) -> Totals:
    """Totals of the calls made at or after ``since``, optionally of one user and/or one channel."""
    sql = _TOTALS_SQL
    params: list[Any] = [since]
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    if channel_id is not None:
        sql += " AND channel_id = ?"
        params.append(channel_id)
    row = store.db.execute(sql, params).fetchone()
    calls, answers, prompt, reasoning, answer, total, failures, cut_off, latency_ms = row
    if not calls:
        return Totals.empty()
    return Totals(
        calls=int(calls), answers=int(answers), prompt_tokens=int(prompt), reasoning_tokens=int(reasoning),
        answer_tokens=int(answer), total_tokens=int(total), failures=int(failures), cut_off=int(cut_off),
        avg_latency_s=None if latency_ms is None else float(latency_ms) / 1000,
    )


def windows(store: Store, *, now: float, user_id: str | None = None, channel_id: str | None = None,
            tz: str = "UTC") -> dict[str, Totals]:
    """:func:`totals` for each of :data:`WINDOWS`, keyed by label (``today``, ``7 days``, ``30 days``)."""
    return {label: totals(store, since=window_start(days, now, tz), user_id=user_id, channel_id=channel_id)
            for label, days in WINDOWS}


def top_users(store: Store, *, since: float, limit: int = 5) -> list[tuple[str, int]]:
    """The ``limit`` users with the most tokens since ``since``, as (user_id, tokens), most first.

    Calls without a user (digests) are left out; ties go in user id order.
    """
    rows = store.db.execute(
        f"SELECT user_id, SUM({_TOTAL_SQL}) AS tokens FROM model_calls"
        " WHERE created_at >= ? AND user_id IS NOT NULL"
        " GROUP BY user_id ORDER BY tokens DESC, user_id LIMIT ?",
        [since, limit],
    ).fetchall()
    return [(str(user), int(tokens or 0)) for user, tokens in rows]


def feedback_counts(store: Store, *, since: float) -> dict[str, int]:
    """Votes cast (or last changed) since ``since``: ``{"up": n, "down": m}``, both keys always present."""
    counts = {"up": 0, "down": 0}
    rows = store.db.execute(
        "SELECT value, COUNT(*) FROM feedback WHERE at >= ? AND value IN ('up', 'down') GROUP BY value",
        [since],
    ).fetchall()
    for value, count in rows:
        counts[str(value)] = int(count)
    return counts


@dataclass(frozen=True, slots=True)
class PromptDrift:
    """The bot's own count of its prompts against the server's ``usage.prompt_tokens``, summed over
    the calls that have both."""

    calls: int
    estimated: int  # the bot's count (``estimated_prompt_tokens``)
    reported: int  # the server's (``prompt_tokens`` as reported)

    @property
    def ratio(self) -> float:
        """The bot's count per token the server counted: 1.0 is exact, above errs high (safe),
        below means prompts the bot thinks fit may not."""
        return self.estimated / self.reported


# A call whose server reported usage has completion or total tokens; without usage, prompt_tokens is
# the bot's own estimate (accounting.model_call_row), which says nothing about the server's count.
_DRIFT_SQL = """
SELECT COUNT(*), SUM(estimated_prompt_tokens), SUM(prompt_tokens)
FROM model_calls
WHERE created_at >= ? AND estimated_prompt_tokens IS NOT NULL AND prompt_tokens > 0
  AND (completion_tokens IS NOT NULL OR total_tokens IS NOT NULL)"""


def prompt_drift(store: Store, *, since: float) -> PromptDrift | None:
    """How the bot's prompt counts compare with the server's since ``since``; None without a call
    that has both (before the first answer, or a server that reports no usage)."""
    calls, estimated, reported = store.db.execute(_DRIFT_SQL, [since]).fetchone()
    if not calls or not reported:
        return None
    return PromptDrift(calls=int(calls), estimated=int(estimated), reported=int(reported))


def tokens_today(store: Store, user_id: str, *, now: float, tz: str = "UTC") -> int:
    """Tokens ``user_id`` used since the start of today (UTC by default): what quotas compare against.

    One range scan of the ``(user_id, created_at)`` index: cheap enough to run before every answer.
    """
    row = store.db.execute(
        f"SELECT SUM({_TOTAL_SQL}) FROM model_calls WHERE user_id = ? AND created_at >= ?",
        [user_id, day_start(now, tz)],
    ).fetchone()
    return int(row[0] or 0)
