"""Display names for message authors and ``<@U...>`` mentions, cached in SQLite.

users.info is Tier 4 but still rate limited, and a thread names the same few people over
and over: names are read from the store, fetched only when missing or older than a day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.store import Store

log = logging.getLogger(__name__)
MAX_AGE = 24 * 3600


class People:
    def __init__(self, store: Store, client: AsyncWebClient) -> None:
        self.store = store
        self.client = client

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """user id -> display name; falls back to the id when Slack won't say."""
        wanted = sorted({u for u in user_ids if u})
        known = self.store.users(wanted, fresh_after=self.store.clock() - MAX_AGE)
        missing = [u for u in wanted if u not in known]
        if missing:
            await asyncio.gather(*(self._fetch(u) for u in missing))
            known = self.store.users(wanted, fresh_after=0)
        return {u: (known[u]["display_name"] if u in known else u) for u in wanted}

    async def timezone(self, user_id: str) -> str | None:
        await self.names([user_id])
        row = self.store.users([user_id], fresh_after=0).get(user_id)
        return row["tz"] if row else None

    async def _fetch(self, user_id: str) -> None:
        try:
            response = await self.client.users_info(user=user_id)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("users.info failed for %s: %s", user_id, _error_name(exc))
            return
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        name = (profile.get("display_name") or profile.get("real_name") or user.get("real_name")
                or user.get("name") or user_id)
        self.store.save_user(user_id=user_id, display_name=name,
                             real_name=profile.get("real_name") or user.get("real_name"),
                             tz=user.get("tz"), is_bot=int(bool(user.get("is_bot"))))


def _error_name(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return type(exc).__name__
