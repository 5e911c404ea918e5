"""An answer as Slack messages whose body Slack itself renders from Markdown. Pure.

The ``markdown`` block (https://docs.slack.dev/reference/block-kit/blocks/markdown-block)
renders standard Markdown the way models write it: bold, italics, headings, lists, quotes,
links, code. Its documented limits: 12,000 characters per block and for all markdown
blocks of a payload together. Slack's docs say tables are not supported there, so a GFM
table is turned into an aligned code block, which renders everywhere. Slack's streaming
methods (chat.startStream / appendStream) take the same Markdown, so a streamed answer
and its final message look the same.

What this module does not do is trust the text: the body, and the notification text made
from it, pass through ``inert`` (``qwqbot.slack.inert``: no pings, no mentions of people
outside the conversation, no disguised links) after their last change.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from markdown_it import MarkdownIt

from qwqbot.slack.inert import NOBODY
from qwqbot.slack.mrkdwn import split_message

Payload = dict[str, Any]
#: Markdown per message: under Slack's 12,000, leaving room for a note.
MESSAGE_MARKDOWN = 11_000
#: The plain ``text`` of a message is what notifications show; Slack advises <= 4,000.
PREVIEW_CHARS = 300
EMPTY_ANSWER = "_The model returned no answer text._"

_md = MarkdownIt("commonmark").enable("table")


def answer_payloads(markdown: str, *, note: str | None = None,
                    inert: Callable[[str], str] = NOBODY) -> list[Payload]:
    """One or more messages (``{"text", "blocks"}``), in order; ``note`` (mrkdwn, the bot's
    own words) goes in a context block at the end of the last one.

    ``inert`` is the conversation's ``Audience`` (who may be mentioned); by default nobody."""
    body = inert(tables_as_code(markdown)).strip() or EMPTY_ANSWER
    messages: list[Payload] = [
        # The preview drops marks, which could join what they kept apart: made inert again.
        {"text": inert(preview(piece)), "blocks": [{"type": "markdown", "text": piece}]}
        for piece in split_message(body, MESSAGE_MARKDOWN)]
    if note:
        messages[-1]["blocks"].append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": note[:2000]}]})
    return messages


def preview(markdown: str, limit: int = PREVIEW_CHARS) -> str:
    """A notification's one-line text: the Markdown without its marks, shortened."""
    text = " ".join(markdown.replace("`", "").replace("**", "").replace("#", "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def tables_as_code(markdown: str) -> str:
    """Every GFM table of ``markdown`` as an aligned code block; the rest unchanged."""
    tokens = _md.parse(markdown)
    lines = markdown.split("\n")
    replacements: list[tuple[int, int, list[str]]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "table_open" and token.map and token.level == 0:
            rows: list[list[str]] = []
            j = i + 1
            while tokens[j].type != "table_close":
                if tokens[j].type == "tr_open":
                    rows.append([])
                elif tokens[j].type == "inline" and rows:
                    rows[-1].append(tokens[j].content.strip())
                j += 1
            replacements.append((token.map[0], token.map[1], _aligned(rows)))
            i = j
        i += 1
    for start, end, block in reversed(replacements):
        lines[start:end] = ["```", *block, "```"]
    return "\n".join(lines)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _aligned(rows: list[list[str]]) -> list[str]:
    columns = max((len(r) for r in rows), default=0)
    cells = [[*r, *[""] * (columns - len(r))] for r in rows]
    widths = [max(_width(r[c]) for r in cells) for c in range(columns)]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(cell + " " * (w - _width(cell))
                             for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
