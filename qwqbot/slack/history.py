"""Reading Slack history into the store, for what the bot did not see live.

- A thread the bot is mentioned in the middle of (``backfill_thread``): without it the bot
  would ignore what was said before. Afterwards the store is the memory; Slack is not read
  again for that thread.
- A digest period from before the channel was tracked, or while the bot was down
  (``backfill_period``): conversations.history and, for threads, conversations.replies.

Both paginate with cursors (https://docs.slack.dev/apis/web-api/pagination); the client's
rate-limit handler waits out any 429 (conversations.history and .replies are Tier 3,
https://docs.slack.dev/reference/methods/conversations.history).

Files shared in those messages (a history message carries its file objects in ``files``, as a
``file_share`` event does: https://docs.slack.dev/reference/events/message/file_share) are
recorded like the ones seen live, so a log posted before the bot was asked is read by the
answer that needs it. The bot's own uploads (its long reasoning) are not: the model would
read its earlier thoughts as someone's file.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.files.refs import FileRef, file_ref
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


def shared_files(message: dict[str, Any], *,
                 bot_user_id: str | None) -> tuple[FileRef, ...]:
    """The files a history message shares, as the store records them. None of the bot's own
    (``bot_user_id``); when the caller does not know the bot's id, none of any bot's, since
    the bot's own uploads cannot be told from another app's."""
    raw = message.get("files")
    if not isinstance(raw, list):
        return ()
    if bot_user_id is not None:
        withheld = message.get("user") == bot_user_id
    else:
        withheld = bool(message.get("bot_id")) or message.get("subtype") == "bot_message"
    if withheld:
        return ()
    refs = (file_ref(f) for f in raw if isinstance(f, dict))
    return tuple(r for r in refs if r is not None)


def _save(store: Store, rows: list[dict[str, Any]],
          files: list[tuple[dict[str, Any], tuple[FileRef, ...]]]) -> None:
    """The messages, then their files (``save_message_files`` leaves a file already recorded
    as it is: what the bot saw live, a deletion included, wins over an older read)."""
    store.save_messages(rows)
    for row, refs in files:
        store.save_message_files(channel_id=row["channel_id"], ts=row["ts"],
                                 thread_ts=row["thread_ts"], user_id=row["user_id"], files=refs)


async def backfill_thread(client: AsyncWebClient, store: Store, channel_id: str,
                          thread_ts: str, *, bot_user_id: str | None = None) -> int:
    """Store every message of a thread (paginated conversations.replies), and the files they
    share (``shared_files``); returns the count of messages."""
    rows: list[dict[str, Any]] = []
    files: list[tuple[dict[str, Any], tuple[FileRef, ...]]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        response = await client.conversations_replies(
            channel=channel_id, ts=thread_ts, limit=PAGE, cursor=cursor)
        for message in response.get("messages") or []:
            row = message_row(channel_id, message)
            if row is not None:
                row["thread_ts"] = row["thread_ts"] or thread_ts
                rows.append(row)
                if refs := shared_files(message, bot_user_id=bot_user_id):
                    files.append((row, refs))
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    _save(store, rows, files)
    store.join_thread(channel_id, thread_ts, backfilled=True)
    log.info("backfilled thread %s/%s: %d messages", channel_id, thread_ts, len(rows))
    return len(rows)


async def backfill_period(client: AsyncWebClient, store: Store, channel_id: str, start: float,
                          end: float, *, bot_user_id: str | None = None) -> int:
    """Store the channel's messages posted in (start, end], thread replies included, and the
    files they share (``shared_files``); returns the count of messages."""
    rows: list[dict[str, Any]] = []
    files: list[tuple[dict[str, Any], tuple[FileRef, ...]]] = []
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
            if refs := shared_files(message, bot_user_id=bot_user_id):
                files.append((row, refs))
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
                    if refs := shared_files(message, bot_user_id=bot_user_id):
                        files.append((row, refs))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    _save(store, rows, files)
    log.info("read %d messages of %s from Slack history for a digest", len(rows), channel_id)
    return len(rows)
