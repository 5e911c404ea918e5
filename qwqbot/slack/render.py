"""Slack payloads for answers, reasoning, progress and errors: plain dicts, no Slack client.

Every function returns keyword arguments ready for ``chat.postMessage`` / ``chat.update`` (``text``,
``blocks``, ``attachments``). Limits come from Slack's docs (https://docs.slack.dev/reference/block-kit/blocks,
https://docs.slack.dev/messaging/formatting-message-text#when-to-use-attachments); each constant below
names the one it respects. Answers themselves are markdown blocks (``answer_blocks.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qwqbot.formatting import format_duration
from qwqbot.slack.inert import NOBODY
from qwqbot.slack.mrkdwn import MIN_LIMIT, ZWSP, escape_text, head_cut, split_message, tail_cut, to_mrkdwn
from qwqbot.slacktext import escape

__all__ = [
    "RETRY_ACTION_ID",
    "Payload",
    "ReasoningAttachment",
    "error_message",
    "feedback_blocks",
    "plain_preview",
    "progress_message",
    "reasoning_attachment",
    "reasoning_title",
    "retry_actions",
    "split_message",
    "to_mrkdwn",
]

Payload = dict[str, Any]

#: Section block text limit (Block Kit: 3,000 characters).
SECTION_LIMIT = 3000
#: Notification fallback (``text``) length: enough to read in a notification, far below the 4,000 limit.
FALLBACK_CHARS = 300
#: Error titles are one line; 150 is also Slack's header block limit.
TITLE_LIMIT = 150
#: Attachment footer limit (300 characters).
FOOTER_LIMIT = 300
#: Slack caps a button's value at 2,000 characters.
BUTTON_VALUE_LIMIT = 2000
#: ``action_id`` of the Retry button on error messages; the actions listener matches on it.
RETRY_ACTION_ID = "qwqbot_retry"
REASONING_COLOR = "#8a8f98"
DEFAULT_OMITTED_HINT = "full reasoning attached in the thread"
DEFAULT_FOOTER = "QwQ-32B reasoning"


# ---------------------------------------------------------------------------------------------------------
# Small formatting helpers
# ---------------------------------------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


_LINK_WITH_LABEL_RE = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9+.\-]{1,31}:[^<>|\s]+)\|([^<>\n]+)>")
_FORMAT_MARK_RE = re.compile(r"(?<![\w*_~])[*_~](?=[^\s*_~])|(?<=[^\s*_~])[*_~](?![\w*_~])")


def plain_preview(mrkdwn: str, limit: int = FALLBACK_CHARS) -> str:
    """A one-line, mostly unformatted start of ``mrkdwn`` for notifications (the ``text`` fallback).

    Entities and mentions stay as they are: Slack decodes ``&amp;`` and resolves ``<@U…>`` in ``text``.
    """
    text = mrkdwn.replace("```", " ").replace("`", "")
    text = _LINK_WITH_LABEL_RE.sub(r"\1", text)
    text = re.sub(r"(?m)^>\s?", "", text)
    # Markers first, then the zero-width spaces that were gluing them to words.
    text = _FORMAT_MARK_RE.sub("", text).replace(ZWSP, "")
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    head = text[: cut if cut > limit // 2 else limit - 1]
    # Never end on half an entity or token: Slack would show it raw.
    head = re.sub(r"&[#a-zA-Z0-9]*$|<[^>]*$", "", head).rstrip()
    return head + "…"


def _section(mrkdwn: str) -> Payload:
    # expand: long answers would otherwise hide behind "see more" (Slack collapses long section text).
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}, "expand": True}


def _context(mrkdwn: str) -> Payload:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


# ---------------------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------------
# Reasoning
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReasoningAttachment:
    """A legacy attachment holding the reasoning, and whether it had to be shortened to fit.

    When ``truncated`` is true the text keeps the beginning and the end of the reasoning around a marker
    line; the caller should then post the full reasoning elsewhere (the marker says "in the thread").
    """

    payload: Payload
    truncated: bool
    omitted_chars: int


def reasoning_title(tokens: int | None, seconds: float | None) -> str:
    """``Reasoning · 1,240 tokens · 38 s``; unknown parts are left out."""
    parts = ["Reasoning"]
    if tokens is not None:
        parts.append(_plural(tokens, "token"))
    if seconds is not None:
        parts.append(format_duration(seconds))
    return " · ".join(parts)


def _omitted_marker(count: int, hint: str) -> str:
    tail = f" — {escape(hint)}" if hint else ""
    return f"_… {count:,} characters omitted{tail} …_"


def _shorten(
    text: str, limit: int, hint: str, *, already_omitted: int = 0, scale: float = 1.0
) -> tuple[str, int]:
    """Keep the start and the end of ``text`` (balanced fences each) around an omission marker."""
    # Reserve the marker at its longest (the count can't exceed the text length) plus two blank lines.
    budget = limit - len(_omitted_marker(len(text) + already_omitted, hint)) - 4
    if budget < 2 * MIN_LIMIT:
        raise ValueError(f"limit {limit} is too small for the omission marker and any reasoning")
    head, head_end = head_cut(text, budget // 2)
    tail, tail_start = tail_cut(text, budget - len(head), not_before=head_end)
    omitted = round(max(tail_start - head_end, 0) * scale) + already_omitted
    parts = [part for part in (head, _omitted_marker(omitted, hint), tail) if part]
    return "\n\n".join(parts), omitted


def _precut(reasoning: str, limit: int) -> tuple[str, int]:
    """Drop the middle of very long raw reasoning before converting it.

    Only ``limit`` characters survive anyway, and converting 60,000 characters of Markdown
    costs ~0.1 s of the event loop that every other answer shares. Cuts fall on line breaks.
    """
    keep = 2 * limit
    if len(reasoning) <= 3 * limit:
        return reasoning, 0
    head_end = reasoning.rfind("\n", 0, keep)
    head_end = head_end if head_end > keep // 2 else keep
    tail_start = reasoning.find("\n", len(reasoning) - keep)
    tail_start = tail_start + 1 if 0 <= tail_start < len(reasoning) - keep // 2 else len(reasoning) - keep
    return reasoning[:head_end] + "\n\n" + reasoning[tail_start:], tail_start - head_end


def reasoning_attachment(
    reasoning: str,
    *,
    tokens: int | None,
    seconds: float | None,
    limit: int = 7000,
    omitted_hint: str = DEFAULT_OMITTED_HINT,
    footer: str = DEFAULT_FOOTER,
    inert: Callable[[str], str] = NOBODY,
) -> ReasoningAttachment:
    """The reasoning as a grey legacy attachment that Slack collapses behind "Show more".

    Slack folds attachment text of 700+ characters or 5+ line breaks, which is exactly the expandable view
    wanted. The text goes through :func:`to_mrkdwn` (escaping, code fences); if it is longer than
    ``limit`` characters its middle is replaced by ``… N characters omitted — {omitted_hint} …`` and the
    result says ``truncated=True`` (a limit too small for the marker raises ValueError).

    ``inert`` is the conversation's ``Audience`` (``qwqbot.slack.inert``); by default nobody may
    be mentioned. Title, text and fallback all pass through it.
    """
    reasoning, precut = _precut(reasoning, limit)
    text = inert(to_mrkdwn(reasoning))
    truncated = precut > 0 or len(text) > limit
    omitted = 0
    if truncated:
        # After a precut the count is of raw characters: scale the converted text's back.
        scale = len(reasoning) / len(text) if precut and text else 1.0
        text, omitted = _shorten(text, limit, omitted_hint, already_omitted=precut, scale=scale)
        text = inert(text)  # cuts only drop text, but what is posted is checked as posted
    fallback = "Reasoning" if tokens is None else f"Reasoning ({_plural(tokens, 'token')})"
    payload: Payload = {
        "color": REASONING_COLOR,
        "title": inert(reasoning_title(tokens, seconds)),
        "text": text,
        "fallback": inert(fallback),
        "mrkdwn_in": ["text"],
        "footer": footer[:FOOTER_LIMIT],
    }
    return ReasoningAttachment(payload=payload, truncated=truncated, omitted_chars=omitted)


# ---------------------------------------------------------------------------------------------------------
# Progress and errors
# ---------------------------------------------------------------------------------------------------------


def progress_message(
    *, state: str, elapsed: float, reasoning_chars: int, queued_position: int | None = None
) -> Payload:
    """The placeholder shown while an answer is on its way.

    ``state`` is ``"queued"`` (``queued_position`` = answers ahead of this one; 0 or None = next),
    ``"thinking"`` or ``"writing"``. Raises ValueError for any other state.
    """
    if state == "queued":
        if queued_position:
            line = f":hourglass_flowing_sand: Queued — {_plural(queued_position, 'answer')} ahead"
        else:
            line = ":hourglass_flowing_sand: Queued — you're next"
    elif state == "thinking":
        line = f":thought_balloon: Thinking… {format_duration(elapsed)}"
        if reasoning_chars > 0:
            line += f" · {_plural(reasoning_chars, 'character')} of reasoning"
    elif state == "writing":
        line = f":writing_hand: Writing the answer… {format_duration(elapsed)}"
    else:
        raise ValueError(f"unknown progress state {state!r}: expected 'queued', 'thinking' or 'writing'")
    return {"text": line, "blocks": [_context(line)]}


def error_message(title: str, detail: str, *, retry_value: str | None) -> Payload:
    """A failure the user can read (``:warning: *title*`` + detail) and, given ``retry_value``, retry.

    The Retry button carries ``action_id`` :data:`RETRY_ACTION_ID` and ``value`` ``retry_value`` (at most
    2,000 characters, Slack's limit; longer raises ValueError).
    """
    # Asterisks or line breaks in the title would end the bold early.
    clean_title = escape_text(" ".join(title.replace("*", "").split())) or "Something went wrong"
    clean_title = plain_preview(clean_title, TITLE_LIMIT)
    heading = f":warning: *{clean_title}*"
    body = escape_text(detail.strip())
    room = SECTION_LIMIT - len(heading) - 1
    if len(body) > room:
        body = plain_preview(body, room)
    section_text = f"{heading}\n{body}" if body else heading
    blocks: list[Payload] = [{"type": "section", "text": {"type": "mrkdwn", "text": section_text}}]
    if retry_value is not None:
        blocks.append(retry_actions(retry_value))
    return {"text": plain_preview(f":warning: {clean_title}: {body}"), "blocks": blocks}


#: action_ids of the buttons under every answer
FEEDBACK_ACTION_ID = "qwqbot_feedback"
REGENERATE_ACTION_ID = "qwqbot_regenerate"


def feedback_blocks(answer_value: str) -> list[Payload]:
    """Slack's native 👍 / 👎 (``feedback_buttons`` in a ``context_actions`` block,
    https://docs.slack.dev/reference/block-kit/block-elements/feedback-buttons-element) and
    a Regenerate button under an answer; values carry the answer id (and the vote)."""
    def vote(text: str, value: str, label: str) -> Payload:
        return {"text": {"type": "plain_text", "text": text}, "value": f"{answer_value}:{value}",
                "accessibility_label": label}

    return [
        {"type": "context_actions", "elements": [{
            "type": "feedback_buttons", "action_id": FEEDBACK_ACTION_ID,
            "positive_button": vote("Good answer", "up", "Mark this answer as good"),
            "negative_button": vote("Bad answer", "down", "Mark this answer as bad")}]},
        {"type": "actions", "elements": [{
            "type": "button", "action_id": REGENERATE_ACTION_ID, "value": answer_value,
            "text": {"type": "plain_text", "text": "Regenerate", "emoji": True}}]},
    ]


def retry_actions(retry_value: str) -> Payload:
    """An actions block with the Retry button (``action_id`` :data:`RETRY_ACTION_ID`, ``value`` as given).

    Also appended by callers to the last answer message when an answer was cut short; answer messages
    keep five of Slack's 50 blocks free for this.
    """
    if len(retry_value) > BUTTON_VALUE_LIMIT:
        raise ValueError(f"retry_value has {len(retry_value)} characters; Slack allows {BUTTON_VALUE_LIMIT}")
    button = {
        "type": "button",
        "action_id": RETRY_ACTION_ID,
        "text": {"type": "plain_text", "text": "Retry", "emoji": True},
        "value": retry_value,
        "style": "primary",
    }
    return {"type": "actions", "elements": [button]}
