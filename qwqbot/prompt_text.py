"""A stored Slack message -> the words a prompt shows of it. Pure: no Slack, no I/O.

Its own module because two places need the very same text: context assembly (``conversation.py``)
sends it, and the store counts its tokens once, when the message is saved (``tokens.message_tokens``),
so that assembling a long thread's context adds stored numbers instead of tokenizing every message.

Slack markup is turned into what a person would read (``<@U123>`` -> ``@Alice``), QwQ's reasoning tags
are dropped (https://huggingface.co/Qwen/QwQ-32B, "No Thinking Content in History"), and the chat
template's control tokens are made inert, so no text can close its chat message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from qwqbot.model.reasoning import CLOSE, OPEN, THINK_BLOCK, without_tags
from qwqbot.slacktext import escape, unescape

__all__ = [
    "addressee",
    "defuse_template_tokens",
    "keeps_thinking",
    "same_as_stored",
    "stored_text",
    "to_plain",
    "turn_text",
]

# Slack escapes exactly &, < and > in message text, so every literal "<" in stored text opens one of
# its tokens (mentions, channels, links, specials). Tokens are replaced first, *in the escaped
# domain* (labels and URLs stay escaped, substituted names get escaped), and the whole result is
# unescaped once at the end: so "&amp;lt;" becomes the "&lt;" the person typed, a name containing
# "&" survives, and the per-token Python callback stays small. The groups split a token into sigil,
# target and label, so the callback does no parsing of its own.
_TOKEN = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")
# "@qwqbot what is..." arrives as "<@UBOT> what is...": that mention only addresses the message, and
# the model reads better without it (and without the ", " or ": " people type after it; a ":" that
# starts an emoji code such as ":wave:" is not that, hence the lookahead).
_LEADING_MENTION = re.compile(r"\s*<@([^<>|]*)(?:\|[^<>]*)?>(?:[,:](?=\s|$))?\s*")
_BROADCASTS = frozenset({"here", "channel", "everyone"})
#: How every user mention starts in stored text: the one part of it whose prompt text depends on
#: whom the prompt is for (names, the bot's own id).
_MENTION_START = "<@"
_MENTION_ID = re.compile(r"<@([^<>|]*)(?:\|[^<>]*)?>")


def _strip_scheme(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


def to_plain(
    text: str, names: Mapping[str, str], *, bot_user_id: str | None, bot_name: str = "qwqbot"
) -> str:
    """Slack ``text`` as stored -> what the model should read, stripped of surrounding whitespace.

    ``names`` maps user ids to display names. A mention of the bot at the very start of the
    message is removed (it only addresses the message); other mentions of it read ``@qwqbot``.
    """
    if bot_user_id is not None:
        lead = _LEADING_MENTION.match(text)
        if lead is not None and lead[1] == bot_user_id:
            text = text[lead.end():]

    def token(m: re.Match[str]) -> str:
        sigil, target, label = m.group(1, 2, 3)
        if sigil == "@":  # <@U123> or <@U123|legacy-name>
            name = bot_name if target == bot_user_id else names.get(target, target)
            return "@" + (escape(name) if "&" in name or "<" in name or ">" in name else name)
        if sigil == "#":  # <#C123|general>; the label can be empty
            return "#" + (label or target)
        if sigil == "!":  # <!here>, <!subteam^S1|@team>, <!date^...|fallback>
            if target in _BROADCASTS:
                return "@" + target
            return label or "@" + target.removeprefix("subteam^")
        if not target:
            return m[0]  # "<>" or "<|x>" is not Slack markup: keep it as typed
        if target.startswith("mailto:"):
            address = target[len("mailto:"):]
            return address if label in (None, "", address) else f"{label} ({address})"
        # Slack auto-links "example.com" as <http://example.com|example.com>: saying it twice is noise.
        if label and label != target and label != _strip_scheme(target):
            return f"{label} ({target})"
        return target

    if "<" in text:
        text = _TOKEN.sub(token, text)
    if "&" in text:
        text = unescape(text)
    return text.strip()


# Both tags end with "think>": one substring search tells whether either could be present.
_TAG_TAIL = OPEN[1:]
assert CLOSE.endswith(_TAG_TAIL)

# The chat template's control tokens (Qwen's <|im_start|>, <|im_end|>, <|endoftext|>...): a server
# renders the template into one string and tokenizes it, and tokenizers read a special token's text
# as the token itself unless told not to ("split_special_tokens" defaults to False,
# https://huggingface.co/docs/transformers/internal/tokenization_utils), so such text in a message
# could close its chat message and open a system one. A zero-width space after "<" keeps it
# readable but not live.
_TEMPLATE_TOKEN = re.compile(r"<(?=\|[A-Za-z0-9_]{1,40}\|>)")
_ZWSP = "\u200b"


def defuse_template_tokens(text: str) -> str:
    """``text`` with every ``<|name|>`` chat-template token made inert (a zero-width space after
    ``<``); anything else, ``<|`` alone included, is left as it is."""
    return _TEMPLATE_TOKEN.sub("<" + _ZWSP, text)


def _clean(text: str, *, from_self: bool) -> str:
    """``text`` without reasoning tags (and, in the bot's own answers, without think blocks)."""
    if from_self:
        # Stored answers have no reasoning; a block here is a bug elsewhere, and sending it back
        # would break QwQ's rule that history carries final answers only.
        text = THINK_BLOCK.sub("", text)
    # People's text keeps what is between tags (it is theirs); the tags themselves are QwQ's
    # reasoning markers and would read as the start or end of thinking.
    return without_tags(text).strip()


def turn_text(text: str, names: Mapping[str, str], *, bot_user_id: str | None, from_self: bool) -> str:
    """A stored message's text as its turn in a prompt shows it, without the turn's marker lines;
    ``""`` when nothing of it is left."""
    if "<" not in text and "&" not in text:
        # No Slack markup, no tag and no template token can be in it (each needs one of the two,
        # escaped or not): most messages, and this runs for every turn of every prompt.
        return text.strip()
    # Tags are looked for twice: raw (a bot answer stored unescaped), where to_plain would read
    # "<think>" as a Slack link, and after unescaping ("&lt;think&gt;", as Slack stores them).
    if _TAG_TAIL in text:
        text = _clean(text, from_self=from_self)
    text = to_plain(text, names, bot_user_id=bot_user_id)
    if _TAG_TAIL in text:
        text = _clean(text, from_self=from_self)
    if "<|" in text:
        text = defuse_template_tokens(text)
    return text


def addressee(text: str) -> str | None:
    """The user id a message (as stored) starts by mentioning, as "@qwqbot what is..." does; None
    when it starts otherwise."""
    if _MENTION_START not in text:
        return None
    lead = _LEADING_MENTION.match(text)
    return lead[1] if lead is not None else None


def stored_text(text: str) -> str:
    """What the store counts of a message (``tokens.message_tokens``): :func:`turn_text` with no
    names and its addressee taken for the bot, the way nearly every message that starts with a
    mention in a thread the bot is in addresses it. :func:`same_as_stored` says when a prompt shows
    exactly this."""
    return turn_text(text, {}, bot_user_id=addressee(text), from_self=False)


def same_as_stored(text: str, *, bot_user_id: str | None) -> bool:
    """Whether a person's ``text`` reads in a prompt for the bot ``bot_user_id`` exactly as
    :func:`stored_text` has it, whatever the names: it mentions nobody, or only the bot, starting with
    it. Any other mention shows a name the store could not know."""
    if _MENTION_START not in text:
        return True
    if bot_user_id is None or addressee(text) != bot_user_id:
        return False
    return all(target == bot_user_id for target in _MENTION_ID.findall(text))


def keeps_thinking(text: str) -> bool:
    """Whether :func:`turn_text` of ``text`` could differ between the bot's own message and
    anyone else's (a think block, raw or escaped, is dropped only from the bot's own)."""
    return "think" in text
