"""Usage and cost: token totals per person, channel and workspace, read from ``model_calls``.

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

from qwqbot.formatting import format_duration
from qwqbot.slacktext import escape
from qwqbot.store import Store

__all__ = [
    "DAY",
    "WINDOWS",
    "Totals",
    "day_start",
    "feedback_counts",
    "feedback_line",
    "format_tokens",
    "latency_line",
    "quota_line",
    "scope_lines",
    "tokens_today",
    "top_lines",
    "top_users",
    "totals",
    "usage_table",
    "usage_text",
    "window_start",
    "windows",
]

DAY = 86_400.0

#: The windows shown by ``/qwq usage`` and the Home tab, as (label, days): 0 days means "since the start of
#: today" (see :func:`day_start`); n days means the last n × 24 hours up to ``now``. Each contains the one
#: before it.
WINDOWS: tuple[tuple[str, int], ...] = (("today", 0), ("7 days", 7), ("30 days", 30))

#: At most this many top users are listed in a usage message.
TOP_LIMIT = 10


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


def tokens_today(store: Store, user_id: str, *, now: float, tz: str = "UTC") -> int:
    """Tokens ``user_id`` used since the start of today (UTC by default): what quotas compare against.

    One range scan of the ``(user_id, created_at)`` index: cheap enough to run before every answer.
    """
    row = store.db.execute(
        f"SELECT SUM({_TOTAL_SQL}) FROM model_calls WHERE user_id = ? AND created_at >= ?",
        [user_id, day_start(now, tz)],
    ).fetchone()
    return int(row[0] or 0)


# ---------------------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------------------


def format_tokens(n: int) -> str:
    """``1234`` → ``1,234``; from a million on, one decimal and a suffix: ``1_234_567`` → ``1.2M``."""
    if abs(n) < 1_000_000:
        return f"{n:,}"
    value, suffix = n / 1_000_000, "M"
    if abs(round(value, 1)) >= 1000:
        value, suffix = n / 1_000_000_000, "B"
    return f"{value:,.1f}{suffix}"


def quota_line(quota: tuple[int, int], tz: str = "UTC") -> str:
    """``Today: 12,345 of 50,000 tokens`` (mrkdwn), flagged once the limit is reached.

    ``quota`` is (tokens used today, daily limit); ``tz`` is the zone whose midnight resets it.
    """
    used, limit = quota
    line = f"Today: {format_tokens(used)} of {format_tokens(limit)} tokens"
    if used >= limit:
        line = f":no_entry: {line} — the daily limit is reached; it resets at 00:00 {escape(tz)}"
    return line


def usage_table(scope: dict[str, Totals]) -> str:
    """One scope's windows as a monospace table in a code block (mrkdwn).

    Columns: answers, tokens (all), prompt / reasoning / answer tokens, failed; ``calls`` appears when some
    calls were not answers (digests), ``cut off`` when some answers hit the length limit.
    """
    items = list(scope.items())
    columns: list[tuple[str, list[str]]] = [("answers", [f"{t.answers:,}" for _, t in items])]
    if any(t.calls != t.answers for _, t in items):
        columns.append(("calls", [f"{t.calls:,}" for _, t in items]))
    columns += [
        ("tokens", [format_tokens(t.total_tokens) for _, t in items]),
        ("prompt", [format_tokens(t.prompt_tokens) for _, t in items]),
        ("reasoning", [format_tokens(t.reasoning_tokens) for _, t in items]),
        ("answer", [format_tokens(t.answer_tokens) for _, t in items]),
        ("failed", [f"{t.failures:,}" for _, t in items]),
    ]
    if any(t.cut_off for _, t in items):
        columns.append(("cut off", [f"{t.cut_off:,}" for _, t in items]))
    label_width = max((len(label) for label, _ in items), default=0)
    widths = [max([len(name), *(len(v) for v in values)]) for name, values in columns]
    header = "".join(f"  {name:>{w}}" for (name, _), w in zip(columns, widths, strict=True))
    lines = [" " * label_width + header]
    for row, (label, _) in enumerate(items):
        cells = "".join(f"  {values[row]:>{w}}" for (_, values), w in zip(columns, widths, strict=True))
        lines.append(f"{escape(label):<{label_width}}{cells}")
    return "```\n" + "\n".join(lines) + "\n```"


def latency_line(scope: dict[str, Totals]) -> str | None:
    """``Average model time per call (30 days): 38 s`` over the scope's longest window."""
    if not scope:
        return None
    label, longest = list(scope.items())[-1]
    if longest.avg_latency_s is None:
        return None
    return f"Average model time per call ({escape(label)}): {format_duration(longest.avg_latency_s)}"


def scope_lines(scope: dict[str, Totals], *, empty: str) -> list[str]:
    """The scope's table, or ``empty`` in italics when it has no calls at all."""
    return [usage_table(scope)] if any(t.calls for t in scope.values()) else [f"_{empty}_"]


def top_lines(top: list[tuple[str, int]], limit: int = TOP_LIMIT) -> list[str]:
    """``1. <@U1> — 12,345 tokens`` per user (at most ``limit``)."""
    return [f"{rank}. <@{escape(user)}> — {format_tokens(tokens)} tokens"
            for rank, (user, tokens) in enumerate(top[:limit], start=1)]


def feedback_line(feedback: dict[str, int]) -> str:
    """``👍 12 / 👎 3``."""
    return f"👍 {feedback.get('up', 0):,} / 👎 {feedback.get('down', 0):,}"


_LONGEST = WINDOWS[-1][0]


def usage_text(*, own: dict[str, Totals], channel: dict[str, Totals] | None, channel_name: str | None,
               workspace: dict[str, Totals] | None = None, top: list[tuple[str, int]] | None = None,
               feedback: dict[str, int] | None = None, quota: tuple[int, int] | None = None,
               period: str = _LONGEST) -> str:
    """The ``/qwq usage`` reply (Slack mrkdwn).

    Your usage (quota line first, when there is one) and, given ``channel``, this channel's (everyone's
    calls, digests included); an admin's reply adds the workspace's totals (``workspace``), its top users
    (``top``) and feedback counts (``feedback``), ``period`` naming the window those two were counted over.
    """
    mine = ["*Your usage*"]
    if quota is not None:
        mine.append(quota_line(quota))
    mine += scope_lines(own, empty=f"No questions in the last {_LONGEST}.")
    parts = ["\n".join(mine)]
    if channel is not None:
        where = f"#{escape(channel_name)}" if channel_name else "this channel"
        parts.append("\n".join([f"*In {where}* (everyone, digests included)",
                                 *scope_lines(channel, empty=f"Nothing asked here in the last {_LONGEST}.")]))
    if workspace is not None:
        lines = ["*Workspace*", *scope_lines(workspace, empty=f"No model calls in the last {_LONGEST}.")]
        latency = latency_line(workspace)
        if latency:
            lines.append(latency)
        parts.append("\n".join(lines))
    if top is not None:
        parts.append("\n".join([f"*Top users ({escape(period)})*", *(top_lines(top) or ["_Nobody yet._"])]))
    if feedback is not None:
        parts.append(f"*Feedback ({escape(period)})*: {feedback_line(feedback)}")
    return "\n\n".join(parts)
