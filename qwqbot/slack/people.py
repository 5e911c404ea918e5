"""Display names for message authors and ``<@U...>`` mentions, cached in SQLite.

users.info is Tier 4 (https://docs.slack.dev/reference/methods/users.info) and a thread
names the same few people over and over: names are read from the store, fetched only when
missing or older than a day. A burst of mentions, or one message naming a thousand people,
must not become a thousand calls at once: ``slack.lookup.Lookup`` asks once per key while
a call is in flight, a few at a time, each within the method's planned rate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.limits import Limits
from qwqbot.slack.lookup import Lookup, NoRoom
from qwqbot.store import Store

log = logging.getLogger(__name__)
MAX_AGE = 24 * 3600
class People:
    def __init__(self, store: Store, client: AsyncWebClient, *,
                 limits: Limits | None = None) -> None:
        self.store = store
        self.client = client
        self._lookup: Lookup[None] = Lookup("users.info", limits)

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """user id -> display name; falls back to the id when Slack won't say."""
        wanted = sorted({u for u in user_ids if u})
        known = self.store.users(wanted, fresh_after=self.store.clock() - MAX_AGE)
        missing = [u for u in wanted if u not in known]
        if missing:
            fetched = await asyncio.gather(*(self._fetch(u) for u in missing))
            if not all(fetched):
                log.warning("users.info: %d of %d names not looked up: no room in its rate "
                            "limit within %.0f s; their ids stand in", fetched.count(False),
                            len(missing), self._lookup.patience)
            known = self.store.users(wanted, fresh_after=0)
        return {u: (known[u]["display_name"] if u in known else u) for u in wanted}

    async def timezone(self, user_id: str) -> str | None:
        await self.names([user_id])
        row = self.store.users([user_id], fresh_after=0).get(user_id)
        return row["tz"] if row else None

    async def _fetch(self, user_id: str) -> bool:
        """False when the rate limit had no room in time (the caller logs those once)."""
        try:
            await self._lookup.run(user_id, lambda: self._fetch_now(user_id))
        except NoRoom:
            return False
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("users.info failed for %s: %s", user_id, _error_name(exc))
        return True

    async def _fetch_now(self, user_id: str) -> None:
        response = await self.client.users_info(user=user_id)
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
