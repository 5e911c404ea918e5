"""Read a thread the bot was never part of from Slack, into the store.

Used when the bot is mentioned in the middle of an existing thread: without it the bot
would ignore what was said before (peers.md, complaint 8). Afterwards the store is the
memory; Slack is not read again for that thread.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.store import Store

log = logging.getLogger(__name__)
PAGE = 200
MAX_PAGES = 50  # 10,000 messages: beyond that the context budget keeps only the newest anyway


def message_row(channel_id: str, message: dict[str, Any]) -> dict[str, Any] | None:
    """A Slack history message as a store row; None for ones that carry no conversation."""
    ts = message.get("ts")
    if not ts or message.get("subtype") in ("channel_join", "channel_leave", "tombstone"):
        return None
    return {
        "channel_id": channel_id,
        "ts": str(ts),
        "thread_ts": message.get("thread_ts"),
        "user_id": message.get("user"),
        "text": str(message.get("text") or ""),
        "is_bot": int(bool(message.get("bot_id")) or message.get("subtype") == "bot_message"),
        "bot_id": message.get("bot_id"),
        "subtype": message.get("subtype"),
    }


async def backfill_thread(client: AsyncWebClient, store: Store, channel_id: str,
                          thread_ts: str) -> int:
    """Store every message of a thread (paginated conversations.replies); returns the count."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        response = await client.conversations_replies(
            channel=channel_id, ts=thread_ts, limit=PAGE, cursor=cursor)
        for message in response.get("messages") or []:
            row = message_row(channel_id, message)
            if row is not None:
                row["thread_ts"] = row["thread_ts"] or thread_ts
                rows.append(row)
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    store.save_messages(rows)
    store.join_thread(channel_id, thread_ts, backfilled=True)
    log.info("backfilled thread %s/%s: %d messages", channel_id, thread_ts, len(rows))
    return len(rows)
