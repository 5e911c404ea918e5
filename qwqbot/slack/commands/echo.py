"""What people typed, reposted by the bot: inert, and shortened visibly. Pure.

``/qwq QUESTION`` shows the question in the channel as the bot, and a new channel prompt is
announced there. Slack sends what was typed with its markup already made (a typed
``@channel`` arrives as ``<!channel>`` when the command escapes, as ours does:
https://docs.slack.dev/interactivity/implementing-slash-commands), so a
repost as-is would ping the channel with the bot's privileges, past Slack's own rule on who
may use @channel. ``inert`` shows those as plain words, like model output. A text longer
than the room it is shown in says that it was shortened, and where the rest is.
"""

from __future__ import annotations

from qwqbot.slack.inert import Audience, inert
from qwqbot.slacktext import mentioned_ids, unescape

#: Slack's longest entity (``&amp;``): a cut within this many characters after an "&"
#: could leave half of one.
_ENTITY = 5


def model_reads_all(text: str) -> str:
    """The note for a question: the model still gets every character of it."""
    return f"the model reads all {len(unescape(text)):,} characters"


def echo(text: str, limit: int, *, rest: str) -> str:
    """``text`` (Slack-escaped mrkdwn) made inert, in at most ``limit`` characters; when it
    does not fit, it ends with "… (shortened here; ``rest``)".

    The people the author mentioned stay mentioned (they would be notified had the author
    posted it); broadcasts, groups and disguised links do not survive."""
    shown = inert(text, Audience(frozenset(mentioned_ids([text]))))
    if len(shown) <= limit:
        return shown
    mark = f"… _(shortened here; {rest})_"
    cut = _safe_cut(shown, max(0, limit - len(mark)))
    return shown[:cut].rstrip() + mark


def _safe_cut(text: str, at: int) -> int:
    """An index at or before ``at`` that splits no ``<...>`` markup (a mention, a link) and
    no ``&amp;``-style entity, so the shortened text renders as what it shows."""
    opened = text.rfind("<", 0, at)
    if opened > text.rfind(">", 0, at):
        at = opened
    amp = text.rfind("&", max(0, at - _ENTITY), at)
    if amp != -1 and ";" not in text[amp:at]:
        at = amp
    return at
