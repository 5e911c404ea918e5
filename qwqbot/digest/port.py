"""What a digest needs from Slack, as an interface the Slack adapter implements.

The digest core (runner, scheduler) stays free of Slack objects, the way ``compose()``
takes its model call: it reads history, names people, posts and links through this port,
so it can be read and tested without the adapter (``qwqbot/slack/digest_port.py`` is the
real one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class SlackCallError(Exception):
    """Slack refused or could not take a call; ``error`` is Slack's error code (or the
    exception's name for connection failures), safe to show and to store."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class DigestPost:
    """A finished digest, for the adapter to render and post."""

    markdown: str
    reasoning: str
    seconds: float
    parts: int
    #: the people who wrote in the period: the only ones the digest may notify
    authors: frozenset[str] = frozenset()


class DigestSlack(Protocol):
    async def read_period(self, channel_id: str, start: float, end: float) -> int:
        """Store the channel's messages of (start, end] from Slack history; the count."""

    async def names(self, user_ids: set[str], texts: Iterable[str]) -> dict[str, str]:
        """Display names of these people and of everyone mentioned in ``texts``."""

    async def channel_name(self, channel_id: str) -> str:
        """The channel's name without '#', or its id when Slack won't say."""

    def permalink(self, channel_id: str, ts: str) -> str:
        """A link to a message."""

    async def post_digest(self, channel_id: str, digest: DigestPost) -> str:
        """Post the digest into the channel; the ts of its first message."""

    async def post_note(self, channel_id: str, text: str) -> None:
        """Post a one-line note into the channel (a quiet period)."""
