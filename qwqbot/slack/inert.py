"""Text the model wrote, made harmless as Slack markup. Pure.

Slack notifies a whole channel for ``<!channel>``, ``<!here>`` and ``<!everyone>``, and a
user group for ``<!subteam^ID>``, wherever they appear in a message's text, blocks or
attachments (https://docs.slack.dev/messaging/formatting-message-text#special-mentions).
The bot posts with its own privileges, so anything the model writes (steered, perhaps, by
someone in the thread) must not carry them: they are shown as plain words. A word joiner
after the "@" keeps even a client that re-links bare "@channel" from pinging.
"""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"
_BROADCAST = re.compile(r"<!(channel|here|everyone)(?:\|[^>]*)?>", re.IGNORECASE)
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|@?([^>]*))?>", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w@])@(channel|here|everyone)\b", re.IGNORECASE)


def inert(text: str) -> str:
    """``text`` with every broadcast and group mention turned into inert words."""
    text = _BROADCAST.sub(lambda m: f"@{WORD_JOINER}{m.group(1).lower()}", text)
    text = _SUBTEAM.sub(lambda m: f"@{WORD_JOINER}{m.group(1) or 'group'}", text)
    return _BARE.sub(lambda m: f"@{WORD_JOINER}{m.group(1)}", text)
