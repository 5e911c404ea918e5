"""Slack event payloads -> plain facts, and the rule for when to answer. Pure functions.

Slack sends one user post that mentions the bot twice (``app_mention`` and ``message``,
different event ids, same channel + ts), echoes the bot's own posts back as ``message``
events, and reports edits and deletions as message subtypes
(https://docs.slack.dev/reference/events/message,
https://docs.slack.dev/reference/events/app_mention). Files shared with a post come as its
``files`` array (subtype ``file_share``); a file deleted later turns into a ``tombstone``
entry of an edit of the message and a ``file_deleted`` event, and a changed one (an edited
snippet) into ``file_change`` (https://docs.slack.dev/reference/events/file_deleted,
https://docs.slack.dev/reference/events/file_change).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from qwqbot.files.refs import FileRef, file_ref
from qwqbot.slacktext import mentions
from qwqbot.store.kinds import Trigger

# Subtypes that are ordinary posts by a person. Everything else (joins, topic changes,
# bot_message, ...) is never answered.
_USER_SUBTYPES = {None, "", "file_share", "thread_broadcast", "me_message"}


@dataclass(frozen=True, slots=True)
class Posted:
    channel_id: str
    ts: str
    thread_ts: str | None  # the parent's ts when the post is in a thread
    user_id: str | None
    text: str
    channel_type: str  # channel | group | im | mpim | "" when unknown (app_mention)
    bot_id: str | None
    subtype: str | None
    mentions_bot: bool
    files: tuple[FileRef, ...] = ()

    @property
    def conversation_ts(self) -> str:
        """The thread this post belongs to, or starts when the bot answers it."""
        return self.thread_ts or self.ts

    @property
    def is_dm(self) -> bool:
        return self.channel_type == "im"


@dataclass(frozen=True, slots=True)
class Edited:
    channel_id: str
    ts: str
    text: str
    edited_ts: str | None
    files: tuple[FileRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Deleted:
    channel_id: str
    ts: str


@dataclass(frozen=True, slots=True)
class FileDeleted:
    file_id: str


@dataclass(frozen=True, slots=True)
class FileChanged:
    file_id: str


SlackFact = Posted | Edited | Deleted | FileDeleted | FileChanged


def _files(message: dict[str, Any]) -> tuple[FileRef, ...]:
    raw = message.get("files")
    if not isinstance(raw, list):
        return ()
    refs = (file_ref(f) for f in raw if isinstance(f, dict))
    return tuple(r for r in refs if r is not None)


def parse_event(event: dict[str, Any], *, bot_user_id: str) -> SlackFact | None:
    """What a message/app_mention event means, or None for events that change nothing."""
    if event.get("type") in ("file_deleted", "file_change"):
        file_id = str(event.get("file_id") or (event.get("file") or {}).get("id") or "")
        if not file_id:
            return None
        return FileDeleted(file_id) if event["type"] == "file_deleted" else FileChanged(file_id)
    subtype = event.get("subtype")
    channel = str(event.get("channel") or "")
    if subtype == "message_changed":
        message = event.get("message") or {}
        if not channel or not message.get("ts"):
            return None
        return Edited(channel, str(message["ts"]), str(message.get("text") or ""),
                      (message.get("edited") or {}).get("ts"), files=_files(message))
    if subtype == "message_deleted":
        ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
        return Deleted(channel, str(ts)) if channel and ts else None
    if subtype not in _USER_SUBTYPES and subtype != "bot_message":
        return None
    ts = event.get("ts")
    if not channel or not ts:
        return None  # a payload missing what identifies it cannot be acted on
    text = str(event.get("text") or "")
    return Posted(
        channel_id=channel,
        ts=str(ts),
        thread_ts=str(event["thread_ts"]) if event.get("thread_ts") else None,
        user_id=event.get("user"),
        text=text,
        channel_type=str(event.get("channel_type") or ("im" if channel.startswith("D") else "")),
        bot_id=event.get("bot_id"),
        subtype=subtype,
        mentions_bot=event.get("type") == "app_mention" or mentions(text, bot_user_id),
        files=_files(event),
    )


class Decision(Enum):
    ANSWER = "answer"    # answer it (and remember the thread)
    REMEMBER = "remember"  # keep it in the thread's memory, don't answer
    IGNORE = "ignore"


def decide(post: Posted, *, bot_user_id: str, thread_known: bool, require_mention: bool,
           channel_tracked: bool = False) -> tuple[Decision, Trigger | Literal[""]]:
    """Whether to answer a post, and the trigger name stored with the answer.

    ``channel_tracked``: the channel has a digest, so every message in it is kept.
    """
    keep = Decision.REMEMBER if (thread_known or channel_tracked) else Decision.IGNORE
    from_bot = bool(post.bot_id) or post.subtype == "bot_message" or post.user_id == bot_user_id
    if from_bot or not post.user_id:
        # Never answer a bot, ourselves included (loop risk); keep other bots' words where
        # we keep the conversation, so it reads right.
        return (keep if post.user_id != bot_user_id else Decision.IGNORE), ""
    if post.is_dm:
        return Decision.ANSWER, "dm"
    if post.mentions_bot:
        return Decision.ANSWER, "mention"
    if post.thread_ts and thread_known and not require_mention:
        return Decision.ANSWER, "thread"
    return keep, ""
