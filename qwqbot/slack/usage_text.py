"""Usage as Slack text: the ``/qwq usage`` reply and the lines the App Home tab reuses.

Pure: the numbers come from :mod:`qwqbot.store.usage`; this module only writes them as Slack
mrkdwn, escaping names and labels (https://api.slack.com/reference/surfaces/formatting#escaping).
"""

from __future__ import annotations

from qwqbot.formatting import format_duration, format_tokens
from qwqbot.slacktext import escape
from qwqbot.store.usage import WINDOWS, PromptDrift, Totals

__all__ = [
    "TOP_LIMIT",
    "drift_line",
    "feedback_line",
    "latency_line",
    "quota_line",
    "scope_lines",
    "top_lines",
    "usage_table",
    "usage_text",
]

#: At most this many top users are listed in a usage message.
TOP_LIMIT = 10


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


#: How far the bot's prompt count may sit from the server's before the line says so: the count is
#: exact for Qwen models, and the server's framing can add a few tokens per call.
DRIFT_TOLERANCE = 0.02


def drift_line(drift: PromptDrift, period: str) -> str:
    """``Prompt size (7 days): the bot counted 98,000 tokens, the server 97,500 (1.01×) over 120 calls``,
    with a warning when the bot counts low (prompts it thinks fit may not)."""
    line = (f"Prompt size ({escape(period)}): the bot counted {format_tokens(drift.estimated)} tokens, "
            f"the server {format_tokens(drift.reported)} ({drift.ratio:.2f}×) over {drift.calls:,} "
            f"call{'' if drift.calls == 1 else 's'}")
    if drift.ratio < 1 - DRIFT_TOLERANCE:
        line = (f":warning: {line} — the bot counts low for this model: long threads may be refused "
                "and asked again shorter")
    return line


_LONGEST = WINDOWS[-1][0]


def usage_text(*, own: dict[str, Totals], channel: dict[str, Totals] | None, channel_name: str | None,
               workspace: dict[str, Totals] | None = None, top: list[tuple[str, int]] | None = None,
               feedback: dict[str, int] | None = None, quota: tuple[int, int] | None = None,
               period: str = _LONGEST, drift: PromptDrift | None = None,
               drift_period: str = "7 days") -> str:
    """The ``/qwq usage`` reply (Slack mrkdwn).

    Your usage (quota line first, when there is one) and, given ``channel``, this channel's (everyone's
    calls, digests included); an admin's reply adds the workspace's totals (``workspace``), its top users
    (``top``) and feedback counts (``feedback``), ``period`` naming the window those two were counted over,
    and how the bot's prompt counts compare with the server's (``drift``, over ``drift_period``).
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
        if drift is not None:
            lines.append(drift_line(drift, drift_period))
        parts.append("\n".join(lines))
    if top is not None:
        parts.append("\n".join([f"*Top users ({escape(period)})*", *(top_lines(top) or ["_Nobody yet._"])]))
    if feedback is not None:
        parts.append(f"*Feedback ({escape(period)})*: {feedback_line(feedback)}")
    return "\n\n".join(parts)
