"""Slack message text as data: escaping, mentions, timestamps and authors. Pure: no Slack client.

The cores (conversation assembly, digest composition, usage wording) read and write Slack's text
format without being Slack adapters, so the rules of that format live here, once, importing
nothing from ``qwqbot.slack``:

- Slack escapes exactly ``&``, ``<`` and ``>`` in message text, and expects them escaped in what
  it is sent ("Escaping text" in https://docs.slack.dev/messaging/formatting-message-text).
- A user mention is ``<@U123ABC>`` (``W`` for Enterprise Grid users), sometimes with a legacy
  ``|name`` label ("Mentioning users", same page).
- A message's ``ts`` is a "seconds.microseconds" string that orders the messages of a channel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

__all__ = ["MENTION", "author_name", "escape", "mentioned_ids", "mentions", "ts_key", "unescape"]


def escape(text: str) -> str:
    """Escape the three characters Slack reserves (&, <, >). Slack wants this in code too."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slack's three entities back to characters; "&amp;" last, so "&amp;lt;" stays the "&lt;" typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


#: A user mention; group 1 is the user id.
MENTION: Final = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def mentioned_ids(texts: Iterable[str]) -> set[str]:
    """The ids of the users mentioned in ``texts``."""
    return {m.group(1) for text in texts for m in MENTION.finditer(text)}


def mentions(text: str, user_id: str) -> bool:
    """Whether ``text`` mentions ``user_id``."""
    return any(m.group(1) == user_id for m in MENTION.finditer(text))


def ts_key(ts: str) -> Decimal:
    """A sort key for Slack ts strings: exact, where a float cannot hold their 16 significant digits.

    Raises ``ValueError`` for a string that is not a number.
    """
    try:
        return Decimal(ts)
    except InvalidOperation:
        raise ValueError(f"not a Slack ts: {ts!r}") from None


def author_name(row: Mapping[str, Any], names: Mapping[str, str], *, from_self: bool,
                bot_name: str) -> str:
    """Who wrote a stored message (a row with ``user_id`` and ``is_bot``), as a person reads it.

    ``bot_name`` when ``from_self`` (the message is the bot's own); else the author's display name
    from ``names`` (their id when it is not there); "a bot" or "someone" for a message without a user.
    """
    if from_self:
        return bot_name
    if row["user_id"]:
        return names.get(str(row["user_id"]), str(row["user_id"]))
    return "a bot" if row["is_bot"] else "someone"
