"""What the bot knows of channels: conversations.info and conversations.members, cached.

Both are rate limited per workspace (conversations.info Tier 3,
https://docs.slack.dev/reference/methods/conversations.info; conversations.members Tier 4,
https://docs.slack.dev/reference/methods/conversations.members), and the bot asks about the
same few channels over and over (a digest's title, a prompt's place, the Home tab), so one
cache serves every caller. Membership can change at any moment (``/invite``): callers that
decide on it ask for a fresh read. Concurrent askers about one channel share one call in
flight, a few calls run at once, and conversations.info keeps to its tier (``Lookup``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.limits import Limits
from qwqbot.slack.lookup import Lookup, NoRoom

log = logging.getLogger(__name__)
TTL = 600.0
MAX_MEMBER_PAGES = 20  # 20,000 members


class Channels:
    def __init__(self, client: AsyncWebClient, *, ttl: float = TTL,
                 clock: Callable[[], float] = time.monotonic, limits: Limits | None = None,
                 ) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._info: dict[str, tuple[float, dict[str, Any]]] = {}
        self._members: dict[str, tuple[float, set[str]]] = {}
        self._info_lookup: Lookup[dict[str, Any]] = Lookup("conversations.info", limits)
        self._members_lookup: Lookup[set[str]] = Lookup("conversations.members", limits)

    async def info(self, channel_id: str, *, fresh: bool = False) -> dict[str, Any] | None:
        """The channel object of conversations.info; None when Slack won't say."""
        cached = self._info.get(channel_id)
        if cached and not fresh and self.clock() - cached[0] < self.ttl:
            return cached[1]
        try:
            return await self._info_lookup.run(channel_id, lambda: self._info_now(channel_id))
        except (SlackApiError, SlackClientError, NoRoom) as exc:
            log.warning("conversations.info failed for %s: %s", channel_id, _error_name(exc))
            return cached[1] if cached else None

    async def _info_now(self, channel_id: str) -> dict[str, Any]:
        response = await self.client.conversations_info(channel=channel_id)
        channel = dict(response.get("channel") or {})
        self._info[channel_id] = (self.clock(), channel)
        return channel

    async def name(self, channel_id: str) -> str:
        """The channel's name without '#', or its id when Slack won't say."""
        info = await self.info(channel_id)
        return str((info or {}).get("name") or channel_id)

    async def members(self, channel_id: str) -> set[str]:
        """Who is in the channel (paginated conversations.members); empty when unknown."""
        cached = self._members.get(channel_id)
        if cached and self.clock() - cached[0] < self.ttl:
            return cached[1]
        return await self._members_lookup.run(channel_id, lambda: self._members_now(channel_id))

    async def _members_now(self, channel_id: str) -> set[str]:
        members: set[str] = set()
        cursor = None
        try:
            for _ in range(MAX_MEMBER_PAGES):
                page = await self.client.conversations_members(channel=channel_id, limit=1000,
                                                               cursor=cursor)
                members.update(page.get("members") or [])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except (SlackApiError, SlackClientError) as exc:
            log.warning("conversations.members failed for %s: %s", channel_id, _error_name(exc))
        self._members[channel_id] = (self.clock(), members)
        return members


def _error_name(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    if isinstance(exc, NoRoom):
        return "no room in its rate limit"
    return type(exc).__name__
