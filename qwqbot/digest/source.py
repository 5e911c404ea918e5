"""Reading a digest period's history from Slack, for what the bot did not see live.

Normally the store already holds every message of a digest channel (the bot keeps them
from the moment a digest is set). Before that moment, or while the bot was down, the
period is read with conversations.history and, for threads, conversations.replies,
paginated; slack_sdk's rate-limit handler waits out any 429.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.backfill import message_row
from qwqbot.store import Store

log = logging.getLogger(__name__)
PAGE = 200
MAX_HISTORY_PAGES = 50      # 10,000 top-level messages per period
MAX_THREADS = 500           # threads read per period


async def backfill_period(client: AsyncWebClient, store: Store, channel_id: str, start: float,
                          end: float) -> int:
    """Store the channel's messages posted in (start, end], thread replies included."""
    rows: list[dict[str, Any]] = []
    threads: list[str] = []
    cursor: str | None = None
    for _ in range(MAX_HISTORY_PAGES):
        page = await client.conversations_history(
            channel=channel_id, oldest=f"{start:.6f}", latest=f"{end:.6f}", inclusive=False,
            limit=PAGE, cursor=cursor)
        for message in page.get("messages") or []:
            row = message_row(channel_id, message)
            if row is None:
                continue
            rows.append(row)
            if message.get("reply_count"):
                threads.append(str(message["ts"]))
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    # Threads started before the period but known to the store may have replies in it.
    threads += store.threads_active_since(channel_id, started_by=start,
                                          active_since=start - 7 * 86400)
    for thread_ts in dict.fromkeys(threads[:MAX_THREADS]):
        cursor = None
        while True:
            page = await client.conversations_replies(channel=channel_id, ts=thread_ts,
                                                      oldest=f"{start:.6f}", limit=PAGE,
                                                      cursor=cursor)
            for message in page.get("messages") or []:
                row = message_row(channel_id, message)
                if row is not None and start < float(row["ts"]) <= end and row["ts"] != thread_ts:
                    row["thread_ts"] = thread_ts
                    rows.append(row)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    store.save_messages(rows)
    log.info("read %d messages of %s from Slack history for a digest", len(rows), channel_id)
    return len(rows)
