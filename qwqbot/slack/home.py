"""The App Home tab: what qwqbot is, how to use it, your usage, your channels' digests, and (admins) the
workspace. Pure: data in, a ``views.publish`` view out; the listener gathers the data.

Slack limits respected here (https://docs.slack.dev/surfaces/app-home,
https://docs.slack.dev/reference/block-kit/blocks): a Home view holds
at most 100 blocks, a section's text at most 3,000 characters, a header's at most 150. Long lists (digests,
access rules, top users) are capped and end with "…and N more".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from qwqbot.formatting import WEEKDAYS, format_clock, format_date
from qwqbot.slack.usage_text import (
    drift_line,
    feedback_line,
    latency_line,
    quota_line,
    scope_lines,
    top_lines,
)
from qwqbot.slacktext import escape
from qwqbot.store.usage import WINDOWS, PromptDrift, Totals

__all__ = ["MAX_ACCESS_LINES", "MAX_BLOCKS", "MAX_DIGESTS", "home_view"]

Block = dict[str, Any]

#: Slack allows 100 blocks in a Home tab view.
MAX_BLOCKS = 100
#: Section text limit (Block Kit: 3,000 characters).
SECTION_LIMIT = 3000
#: Header block text limit (150 characters).
HEADER_LIMIT = 150
#: Digests listed (one section each) before "…and N more"; fewer if the view would pass MAX_BLOCKS.
MAX_DIGESTS = 30
#: Channel access rules listed (one line each, in one section) before "…and N more".
MAX_ACCESS_LINES = 40

_LONGEST = WINDOWS[-1][0]

_STATUS = {
    "posted": ":white_check_mark: posted",
    "empty": ":zzz: nothing to summarise",
    "failed": ":warning: failed",
    "running": ":hourglass_flowing_sand: running now",
}

_ABOUT = (
    "*Ask QwQ-32B from Slack.* QwQ is a reasoning model: it thinks a question through before it "
    "answers, so an answer can take a minute — and is often better for it on maths, code and tricky logic."
)
_HOW_TO = "\n".join([
    "*How to ask*",
    "• *In a channel:* mention me (`@qwqbot your question`) and I answer in a thread. "
    "Reply in that thread to follow up — no need to mention me again.",
    "• *In a DM:* write to me in the Messages tab.",
    "• `/qwq QUESTION` — ask from any channel; the answer comes in a thread.",
    "• `/qwq private QUESTION` — only you see the question and the answer.",
    "",
    "*More*",
    "• `/qwq digest daily 09:00` — a summary of a channel every day (`/qwq digest weekly mon 09:30`, "
    "`list`, `now`, `off`).",
    "• `/qwq usage` — your tokens, and the channel's.",
    "• `/qwq settings` — this channel's settings.",
    "• `/qwq help` — every command.",
])
_ANSWERS_NOTE = (
    ":thought_balloon: The reasoning comes with each answer in a grey attachment, folded: click "
    "*Show more* to read it. Rate an answer with 👍 / 👎, or press *Regenerate* for a new one."
)
_RULES = {"allow": ":large_green_circle: allowed", "deny": ":red_circle: denied"}
_NO_DIGESTS = "None yet — set one with `/qwq digest daily 09:00` in a channel."


# ---------------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------------


def _fit(text: str, limit: int = SECTION_LIMIT) -> str:
    """Cut ``text`` to ``limit`` characters at a line break, never leaving a code block open, and mark the
    cut with ``…``. Every part is built well under the limit; this only guards against surprises."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit - 2)
    head = text[:cut] if cut > 0 else text[: limit - 2]
    if head.count("```") % 2:  # a code block would be left open: drop its unfinished part
        head = head[: head.rfind("```")].rstrip()
    return head + "\n…"


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:HEADER_LIMIT], "emoji": True}}


def _section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit(mrkdwn)}}


def _context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _fit(mrkdwn)}]}


def _divider() -> Block:
    return {"type": "divider"}


def _date(ts: float, fallback: str) -> str:
    """A date Slack shows in the reader's own time zone (``<!date^…>``), with a plain fallback."""
    return f"<!date^{int(ts)}^{{date_short_pretty}} at {{time}}|{escape(fallback)}>"


# ---------------------------------------------------------------------------------------------------------
# Parts
# ---------------------------------------------------------------------------------------------------------


def _intro() -> list[Block]:
    return [_header("qwqbot"), _section(_ABOUT), _section(_HOW_TO), _context(_ANSWERS_NOTE)]


def _usage(own: dict[str, Totals], quota: tuple[int, int] | None) -> list[Block]:
    lines = [quota_line(quota)] if quota is not None else []
    lines += scope_lines(own, empty=f"No questions in the last {_LONGEST}.")
    note = ("Today starts at 00:00 UTC; 7 and 30 days run up to now. "
            "Tokens = prompt + reasoning + answer. `/qwq usage` in a channel shows its usage too.")
    return [_divider(), _header("Your usage"), _section("\n".join(lines)), _context(note)]


def _schedule(row: dict[str, Any]) -> str:
    hour, minute = int(row.get("hour") or 0), int(row.get("minute") or 0)
    kind = str(row.get("kind") or "")
    if kind == "daily":
        when = "every day"
    elif kind == "weekly" and isinstance(row.get("day"), int) and 0 <= row["day"] < 7:
        when = f"every {WEEKDAYS[row['day']]}"
    else:
        when = escape(kind) or "scheduled"
    tz = f" ({escape(str(row['tz']))})" if row.get("tz") else ""
    return f"{when} at {hour:02d}:{minute:02d}{tz}"


def _next_run(value: Any) -> str:
    if not isinstance(value, datetime):
        return "not scheduled"
    day = format_date(value, short=True, year=True, zero_pad=True)
    fallback = f"{day} {format_clock(value)} {value.tzname() or ''}".strip()
    return _date(value.timestamp(), fallback)


def _last_run(row: dict[str, Any]) -> str:
    status = row.get("last_status")
    if not status:
        return "none yet"
    text = _STATUS.get(str(status), escape(str(status)))
    end = row.get("last_period_end")
    if isinstance(end, int | float):
        fallback = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M UTC")
        text += f" (messages up to {_date(end, fallback)})"
    return text


def _digest(row: dict[str, Any]) -> Block:
    channel = f"<#{escape(str(row.get('channel_id') or ''))}>"
    return _section(f"{channel} · {_schedule(row)}\n"
                    f"Next run: {_next_run(row.get('next_run'))} · Last run: {_last_run(row)}")


def _digests(digests: list[dict[str, Any]], room: int) -> list[Block]:
    """The digests part in at most ``room`` blocks (at least 3: divider, header, one line)."""
    blocks = [_divider(), _header("Digests in your channels")]
    if not digests:
        return [*blocks, _section(_NO_DIGESTS)]
    fits = min(MAX_DIGESTS, room - len(blocks))
    if len(digests) <= fits:
        return blocks + [_digest(row) for row in digests]
    shown = max(fits - 1, 0)
    more = len(digests) - shown
    return [*blocks, *(_digest(row) for row in digests[:shown]),
            _context(f"…and {more:,} more. `/qwq digest list` in a channel shows its digests.")]


def _access(rows: list[dict[str, Any]]) -> str:
    """One line per channel rule, at most MAX_ACCESS_LINES and what fits one section, then "…and N more"."""
    lines = ["*Channel access* (`/qwq admin allow|deny|clear #channel`)"]
    if not rows:
        return "\n".join([*lines, "_No rules set: the configured allow and deny lists apply._"])
    size, budget = len(lines[0]), SECTION_LIMIT - 100  # room kept for the "more" line
    for row in rows[:MAX_ACCESS_LINES]:
        rule = str(row.get("rule") or "")
        line = f"<#{escape(str(row.get('channel_id') or ''))}> — {_RULES.get(rule, escape(rule))}"
        if row.get("set_by"):
            line += f" (by <@{escape(str(row['set_by']))}>)"
        if size + 1 + len(line) > budget:
            break
        lines.append(line)
        size += 1 + len(line)
    if len(lines) - 1 < len(rows):
        lines.append(f"…and {len(rows) - (len(lines) - 1):,} more (`/qwq admin list`).")
    return "\n".join(lines)


def _workspace(workspace: dict[str, Totals] | None, top: list[tuple[str, int]] | None,
               feedback: dict[str, int] | None, access: list[dict[str, Any]] | None,
               period: str, drift: PromptDrift | None = None,
               drift_period: str = "7 days") -> list[Block]:
    blocks = [_divider(), _header("Workspace")]
    if workspace is not None:
        lines = ["*Everyone's usage* (digests included)",
                 *scope_lines(workspace, empty=f"No model calls in the last {_LONGEST}.")]
        latency = latency_line(workspace)
        if latency:
            lines.append(latency)
        if drift is not None:
            lines.append(drift_line(drift, drift_period))
        blocks.append(_section("\n".join(lines)))
    if top is not None:
        blocks.append(_section("\n".join([f"*Top users ({escape(period)})*",
                                          *(top_lines(top) or ["_Nobody yet._"])])))
    if feedback is not None:
        blocks.append(_section(f"*Feedback ({escape(period)})*: {feedback_line(feedback)}"))
    if access is not None:
        blocks.append(_section(_access(access)))
    return blocks


# ---------------------------------------------------------------------------------------------------------
# The view
# ---------------------------------------------------------------------------------------------------------


def home_view(*, user_id: str, is_admin: bool, own: dict[str, Totals], quota: tuple[int, int] | None,
              digests: list[dict[str, Any]], workspace: dict[str, Totals] | None = None,
              top: list[tuple[str, int]] | None = None, feedback: dict[str, int] | None = None,
              access: list[dict[str, Any]] | None = None, period: str = _LONGEST,
              drift: PromptDrift | None = None, drift_period: str = "7 days") -> dict[str, Any]:
    """The Home tab of ``user_id`` as a ``views.publish`` view (``{"type": "home", "blocks": [...]}``).

    ``own`` is :func:`qwqbot.usage.windows` for the user; ``quota`` is (used today, daily limit) or None
    when unlimited. ``digests`` rows carry a schedule (``channel_id``, ``kind``, ``day``, ``hour``,
    ``minute``, ``tz``) plus ``last_status``, ``last_period_end`` (Unix seconds or None) and ``next_run``
    (an aware datetime or None); they are listed in the order given. The workspace part (``workspace``,
    ``top``, ``feedback`` counted over ``period``, channel ``access`` rules, and ``drift``, the bot's
    prompt counts against the server's over ``drift_period``) is shown to admins only: it is ignored
    when ``is_admin`` is false.
    """
    blocks = _intro() + _usage(own, quota)
    admin = (_workspace(workspace, top, feedback, access, period, drift, drift_period)
             if is_admin else [])
    blocks += _digests(digests, room=MAX_BLOCKS - len(blocks) - len(admin))
    blocks += admin
    return {"type": "home", "blocks": blocks}
