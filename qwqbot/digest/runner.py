"""One digest, start to finish: claim the period, gather its messages, compose, post, record.

A period is posted at most once: the run row's unique (channel, period key) is claimed
before anything else, so overlapping runs and runs repeated after a restart find it
taken. A failed run (model down, Slack refusing) is recorded with the time of its next
attempt, and `list` shows it; the scheduler retries it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qwqbot.accounting import model_call_row
from qwqbot.config import Settings
from qwqbot.digest.compose import DigestMessage, DigestRequest, compose
from qwqbot.digest.port import DigestPost, DigestSlack, SlackCallError
from qwqbot.errors import AnswerCutOffError, ModelError
from qwqbot.formatting import format_span
from qwqbot.model.client import Message, ModelClient
from qwqbot.slacktext import author_name
from qwqbot.store import Store
from qwqbot.store.digests import DigestStore
from qwqbot.store.store import StoreBusy
from qwqbot.tokens import counter_for_model

log = logging.getLogger(__name__)
#: minutes to wait before each retry of a failed digest
RETRY_AFTER_MINUTES = (5, 15, 60, 180)
#: Pauses while a run cannot be claimed because the database takes no writes.
CLAIM_FIRST_PAUSE_S = 0.5
CLAIM_LONGEST_PAUSE_S = 30.0


@dataclass(frozen=True)
class Outcome:
    status: str  # posted | empty | failed | taken | dry_run
    run_id: int | None = None
    messages: int = 0
    markdown: str = ""
    reasoning: str = ""
    error: str = ""
    #: the people who wrote in the period (see DigestPost.authors)
    authors: frozenset[str] = frozenset()


class DigestRunner:
    def __init__(self, *, settings: Settings, store: Store, digests: DigestStore,
                 model: ModelClient, slack: DigestSlack, bot_user_id: str,
                 post_empty: Callable[[str], bool], clock: Callable[[], float] = time.time,
                 ) -> None:
        self.settings = settings
        #: per channel: post a note for a period without messages (a channel setting)
        self.post_empty = post_empty
        self.store = store
        self.digests = digests
        self.model = model
        self.slack = slack
        self.bot_user_id = bot_user_id
        self.clock = clock

    async def run(self, *, channel_id: str, channel_name: str, schedule_id: int | None,
                  period_key: str, start: float, end: float, tz: str, title: str,
                  dry_run: bool = False, asker: str | None = None) -> Outcome:
        """``asker``: the person who asked for this digest, whose usage the model calls
        count against (scheduled digests have none)."""
        run_id = None
        if not dry_run:
            run_id = await self._claim(channel_id=channel_id, schedule_id=schedule_id,
                                       period_key=period_key, start=start, end=end)
            if run_id is None:
                log.info("digest %s of %s already taken", period_key, channel_id)
                return Outcome("taken")
        try:
            return await self._run(run_id, channel_id, channel_name, start, end, tz, title,
                                   asker)
        except (ModelError, SlackCallError) as exc:
            return self._failed(run_id, channel_id, exc)
        except Exception as exc:
            log.exception("digest of %s failed unexpectedly", channel_id)
            return self._failed(run_id, channel_id, exc)

    async def _claim(self, **run: Any) -> int | None:
        """Claim the run, waiting (without holding the loop) while the database cannot be
        written: a digest due while an admin holds the database is posted when they let go."""
        pause = CLAIM_FIRST_PAUSE_S
        while True:
            try:
                return self.digests.claim_run(**run)
            except StoreBusy:
                await asyncio.sleep(pause)
                pause = min(pause * 2, CLAIM_LONGEST_PAUSE_S)

    async def _run(self, run_id: int | None, channel_id: str, channel_name: str, start: float,
                   end: float, tz: str, title: str, asker: str | None) -> Outcome:
        if self.digests.unseen(channel_id, start, end):
            await self.slack.read_period(channel_id, start, end)
        rows = self.digests.period_messages(channel_id, start, end)
        authors = frozenset(str(r["user_id"]) for r in rows if r["user_id"] and not r["is_bot"])
        if not rows:
            if run_id is not None:
                self.digests.finish_run(run_id, status="empty", messages=0)
                if self.post_empty(channel_id):
                    await self.slack.post_note(channel_id, f"{title}: no messages in this period.")
            return Outcome("empty", run_id)
        names = await self.slack.names({r["user_id"] for r in rows if r["user_id"]},
                                       (r["text"] for r in rows))
        request = DigestRequest(
            channel_name=channel_name,
            period_start=datetime.fromtimestamp(start, UTC),
            period_end=datetime.fromtimestamp(end, UTC),
            tz=tz,
            messages=[DigestMessage(ts=r["ts"], thread_ts=r["thread_ts"],
                                    author=author_name(r, names, from_self=r["user_id"] == self.bot_user_id,
                                                       bot_name="qwqbot"),
                                    text=r["text"])
                      for r in rows],
            names=names, bot_user_id=self.bot_user_id,
            budget_tokens=self.settings.context_tokens - self.settings.max_tokens,
            counter=counter_for_model(self.settings.model))
        started = time.monotonic()
        result = await compose(request, self._summarize(channel_id, asker),
                               permalink=lambda ts: self.slack.permalink(channel_id, ts))
        seconds = time.monotonic() - started
        count = f"{len(rows):,} message{'' if len(rows) == 1 else 's'}"
        markdown = f"## {title}\n\n_{format_span(start, end, tz)} · {count}_\n\n{result.markdown}"
        if run_id is None:
            return Outcome("dry_run", None, len(rows), markdown, result.reasoning,
                           authors=authors)
        message_ts = await self.slack.post_digest(channel_id, DigestPost(
            markdown=markdown, reasoning=result.reasoning, seconds=seconds, parts=result.parts,
            authors=authors))
        self.digests.finish_run(run_id, status="posted", messages=len(rows), parts=result.parts,
                                digest=result.markdown, reasoning=result.reasoning,
                                message_ts=message_ts, error_kind=None, error_message=None)
        log.info("digest of %s posted: %d messages, %d parts, %d model calls", channel_id,
                 len(rows), result.parts, result.calls)
        return Outcome("posted", run_id, len(rows), markdown, result.reasoning)


    def _summarize(self, channel_id: str, asker: str | None,
                   ) -> Callable[[list[Message]], Any]:
        async def summarize(messages: list[Message]) -> tuple[str, str]:
            started = time.time()
            try:
                completion = await self.model.complete(messages)
            except AnswerCutOffError as exc:
                # A digest cut off mid-answer is still worth posting; one cut off while
                # thinking is not.
                if not exc.partial.answer:
                    raise
                completion = exc.partial
            self.store.record_model_call(**model_call_row(
                completion, purpose="digest", model=self.settings.model, started=started,
                channel_id=channel_id, user_id=asker))
            return completion.answer, completion.reasoning

        return summarize

    def _failed(self, run_id: int | None, channel_id: str, exc: Exception) -> Outcome:
        if isinstance(exc, ModelError):
            kind, message = exc.kind, exc.user_message
        elif isinstance(exc, SlackCallError):
            kind, message = "slack", exc.error
        else:
            kind, message = "internal", type(exc).__name__
        log.warning("digest of %s failed: %s", channel_id, kind)
        if run_id is not None:
            attempts = int(self.digests.run(run_id)["attempts"])
            retry_at = None
            if attempts <= len(RETRY_AFTER_MINUTES) and kind != "internal":
                retry_at = self.clock() + 60 * RETRY_AFTER_MINUTES[attempts - 1]
            self.digests.finish_run(run_id, status="failed", error_kind=kind,
                                    error_message=message, next_retry_at=retry_at)
        return Outcome("failed", run_id, error=message)
