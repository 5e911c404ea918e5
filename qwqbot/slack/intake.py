"""Slack message events -> the store and, when the bot should answer, a claimed answer.

Called by the listeners; it must stay quick (a few indexed SQLite writes) because nothing
slow may run before Slack has its acknowledgement.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from qwqbot.policy import Policy
from qwqbot.slack.answerer import Answerer, Job
from qwqbot.slack.early import EarlyChanges
from qwqbot.slack.events import (
    Decision,
    Deleted,
    Edited,
    FileChanged,
    FileDeleted,
    Posted,
    decide,
    parse_event,
)
from qwqbot.slacktext import mentions
from qwqbot.store import Store

log = logging.getLogger(__name__)

DISK_FULL = (":floppy_disk: The bot's disk is full, so it cannot save this conversation just "
             "now. It is answering anyway, but may not remember this exchange later; the bot's "
             "operator has been told.")


class Intake:
    def __init__(self, *, store: Store, policy: Policy, answerer: Answerer, bot_user_id: str,
                 tracked: set[str]) -> None:
        self.store = store
        self.policy = policy
        self.answerer = answerer
        self.bot_user_id = bot_user_id
        #: channels with a digest (shared with the digest command, which edits it)
        self.tracked = tracked
        self.early = EarlyChanges()

    def on_event(self, event: dict[str, Any]) -> None:
        fact = parse_event(event, bot_user_id=self.bot_user_id)
        if isinstance(fact, Edited):
            if not self.store.edit_message(channel_id=fact.channel_id, ts=fact.ts,
                                           text=fact.text, edited_ts=fact.edited_ts):
                self.early.keep(fact.channel_id, fact.ts, text=fact.text,
                                edited_ts=fact.edited_ts)
            for gone in (f for f in fact.files if f.mode == "tombstone"):
                self.store.file_deleted(gone.id, channel_id=fact.channel_id, ts=fact.ts)
        elif isinstance(fact, Deleted):
            if not self.store.delete_message(channel_id=fact.channel_id, ts=fact.ts):
                self.early.keep(fact.channel_id, fact.ts, text=None)
            self.store.forget_message_files(fact.channel_id, fact.ts)
        elif isinstance(fact, FileDeleted):
            self.store.file_deleted(fact.file_id)
        elif isinstance(fact, FileChanged):
            self.store.file_changed(fact.file_id)
        elif isinstance(fact, Posted):
            change = self.early.find(fact.channel_id, fact.ts)
            if change is None:
                self._on_post(fact)
            elif change.text is None:
                log.info("post %s/%s was deleted before it arrived; not kept or answered",
                         fact.channel_id, fact.ts)
            else:
                self._on_post(replace(fact, text=change.text, mentions_bot=fact.mentions_bot
                                      and mentions(change.text, self.bot_user_id)))

    def _on_post(self, post: Posted) -> None:
        thread_known = self.store.thread(post.channel_id, post.conversation_ts) is not None
        decision, trigger = decide(post, bot_user_id=self.bot_user_id, thread_known=thread_known,
                                   require_mention=self.policy.require_mention(
                                       post.channel_id),
                                   channel_tracked=post.channel_id in self.tracked)
        if decision is Decision.IGNORE:
            return
        if decision is Decision.REMEMBER and post.user_id == self.bot_user_id:
            return  # our own posts are stored by the pipeline, in their final form
        in_thread = post.thread_ts is not None or decision is Decision.ANSWER
        self.store.save_message(
            channel_id=post.channel_id, ts=post.ts,
            thread_ts=post.conversation_ts if in_thread else None, user_id=post.user_id,
            text=post.text, is_bot=bool(post.bot_id), bot_id=post.bot_id, subtype=post.subtype)
        if post.files:
            # Only recorded here: they are downloaded and read by the answer that needs them,
            # after Slack has its acknowledgement (qwqbot.slack.files).
            self.store.save_message_files(
                channel_id=post.channel_id, ts=post.ts,
                thread_ts=post.conversation_ts if in_thread else None, user_id=post.user_id,
                files=post.files)
        if decision is not Decision.ANSWER or not self.answerer.accepting:
            return
        if self.store.journal is not None and self.store.journal.state == "full":
            # Answered all the same, from memory; the operator's line is the journal's.
            self.answerer.spawn(self.answerer.notify(
                post.channel_id, post.user_id or "", DISK_FULL, thread_ts=post.thread_ts))
        assert trigger  # decide() names the trigger of every post it answers
        answer_id = self.store.claim_answer(
            channel_id=post.channel_id, request_ts=post.ts, thread_ts=post.conversation_ts,
            user_id=post.user_id or "", trigger=trigger)
        if answer_id is None:
            log.info("post %s/%s already claimed; not answering twice", post.channel_id, post.ts)
            return
        refusal = self.policy.refusal(post.user_id or "", post.channel_id)
        if refusal is not None:
            # Claimed first, so the app_mention + message pair is refused (and told) once.
            self.store.update_answer(answer_id, status="refused", error_kind=refusal.reason,
                                     error_message=refusal.message)
            log.info("answer %d in %s refused: %s", answer_id, post.channel_id, refusal.reason)
            self.answerer.spawn(self.answerer.notify(
                post.channel_id, post.user_id or "", refusal.message,
                thread_ts=post.thread_ts))
            return
        self.answerer.start(Job(
            answer_id=answer_id, channel=post.channel_id, request_ts=post.ts,
            user_id=post.user_id or "",
            surface=self.answerer.thread_surface(post.channel_id, post.conversation_ts,
                                                 post.user_id or ""),
            thread_ts=post.conversation_ts,
            backfill=post.thread_ts is not None and not thread_known))
