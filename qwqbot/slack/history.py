"""Reading Slack history into the store, for what the bot did not see live.

- A thread the bot is mentioned in the middle of (``backfill_thread``): without it the bot
  would ignore what was said before. Afterwards the store is the memory; Slack is not read
  again for that thread.
- A digest period from before the channel was tracked, or while the bot was down
  (``backfill_period``): conversations.history and, for threads, conversations.replies.

Both paginate with cursors (https://docs.slack.dev/apis/web-api/pagination); the client's
rate-limit handler waits out any 429 (conversations.history and .replies are Tier 3,
https://docs.slack.dev/reference/methods/conversations.history).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.store import Store

log = logging.getLogger(__name__)
PAGE = 200
MAX_PAGES = 50  # 10,000 messages: beyond that the context budget keeps only the newest anyway
MAX_HISTORY_PAGES = 50      # 10,000 top-level messages per digest period
MAX_THREADS = 500           # threads read per digest period


def message_row(channel_id: str, message: dict[str, Any]) -> dict[str, Any] | None:
    """A Slack history message as a store row; None for ones that carry no conversation."""
    ts = message.get("ts")
    # assistant_app_thread: the "New chat" root Slack posts for an AI app split-view thread.
    if not ts or message.get("subtype") in ("channel_join", "channel_leave", "tombstone",
                                            "assistant_app_thread"):
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
