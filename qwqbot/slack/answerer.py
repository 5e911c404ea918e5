"""The answer pipeline: one Slack post in, one answer (with reasoning) out.

    listener -> on_event (sync, quick: store + claim) -> task: placeholder -> backfill ->
    queue slot -> prompt from the store -> model stream (progress edits) -> delivery -> store

Acknowledging Slack never waits on any of this: listeners only call ``on_event``, which
does a few indexed SQLite writes and spawns a task. Every answer is a row in ``answers``
whose status says where it got to, so a restart can find the ones left unfinished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.config import Settings
from qwqbot.conversation import (
    MessageTooLongError,
    Place,
    Prompt,
    Turn,
    build_prompt,
    to_plain,
)
from qwqbot.errors import AnswerCutOffError, ModelError, QwqbotError
from qwqbot.model.client import ModelClient
from qwqbot.model.events import AnswerDelta, Completion, ModelEvent
from qwqbot.slack.backfill import backfill_thread
from qwqbot.slack.delivery import Delivery, slack_error
from qwqbot.slack.events import Decision, Deleted, Edited, Posted, decide, parse_event
from qwqbot.slack.people import People, mentioned_ids
from qwqbot.slack.progress import ProgressUpdater, UpdateBudget
from qwqbot.slack.render import (
    answer_messages,
    error_message,
    progress_message,
    reasoning_attachment,
    retry_actions,
    to_mrkdwn,
)
from qwqbot.store import Store
from qwqbot.tokens import estimate_tokens

log = logging.getLogger(__name__)

#: What the user reads for each kind of failure (titles); details come from the error.
FAILURE_TITLES = {
    "auth": "The model server rejected the bot's API key",
    "credits": "The model account is out of credits",
    "model_not_found": "The configured model isn't available",
    "bad_request": "The model server refused the request",
    "rate_limited": "The model server is busy right now",
    "overloaded": "The model provider is overloaded",
    "timeout": "The model took too long",
    "connection": "Couldn't reach the model server",
    "protocol": "The model server sent a broken answer",
    "too_long": "Your message is too long for the model",
}
BARE_MENTION_IN_THREAD = "(mentions you without a question: respond to the conversation above)"
BARE_MENTION_ALONE = "(mentions you without a question: greet them and say briefly what you can do)"
#: Failures only an operator can fix: the user is told to pass them on.
OPERATOR_KINDS = {"auth", "credits", "model_not_found", "bad_request"}


@dataclass(frozen=True)
class BotIdentity:
    user_id: str
    bot_id: str
    team_id: str
    name: str = "qwqbot"


@dataclass
class Job:
    """One answer being produced; what progress renders from."""

    answer_id: int
    channel: str
    thread_ts: str
    request_ts: str
    user_id: str
    backfill: bool = False
    placeholder_ts: str | None = None
    phase: str = "thinking"  # queued | thinking | writing
    started: float = field(default_factory=time.monotonic)
    completion: Completion = field(default_factory=Completion)


class Answerer:
    def __init__(self, *, settings: Settings, store: Store, client: AsyncWebClient,
                 model: ModelClient, identity: BotIdentity,
                 progress_client: AsyncWebClient | None = None) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.progress_client = progress_client or client
        self.model = model
        self.identity = identity
        self.budget = UpdateBudget(settings.update_budget_per_minute)
        self.delivery = Delivery(client, self.budget)
        self.people = People(store, client)
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._waiting: list[Job] = []  # arrival order; the head gets the next free slot
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._places: dict[str, Place] = {}
        self.accepting = True

    # -- intake (called by listeners; must stay quick) ---------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        fact = parse_event(event, bot_user_id=self.identity.user_id)
        if isinstance(fact, Edited):
            self.store.edit_message(channel_id=fact.channel_id, ts=fact.ts, text=fact.text,
                                    edited_ts=fact.edited_ts)
        elif isinstance(fact, Deleted):
            self.store.delete_message(channel_id=fact.channel_id, ts=fact.ts)
        elif isinstance(fact, Posted):
            self._on_post(fact)

    def _on_post(self, post: Posted) -> None:
        thread_known = self.store.thread(post.channel_id, post.conversation_ts) is not None
        decision, trigger = decide(post, bot_user_id=self.identity.user_id,
                                   thread_known=thread_known,
                                   require_mention=self.settings.require_mention)
        if decision is Decision.IGNORE:
            return
        if decision is Decision.REMEMBER and post.user_id == self.identity.user_id:
            return  # our own posts are stored by the pipeline, in their final form
        self.store.save_message(
            channel_id=post.channel_id, ts=post.ts,
            thread_ts=post.conversation_ts if (post.thread_ts or decision is Decision.ANSWER)
            else None,
            user_id=post.user_id, text=post.text, is_bot=bool(post.bot_id), bot_id=post.bot_id,
            subtype=post.subtype)
        if decision is not Decision.ANSWER or not self.accepting:
            return
        answer_id = self.store.claim_answer(
            channel_id=post.channel_id, request_ts=post.ts, thread_ts=post.conversation_ts,
            user_id=post.user_id or "", trigger=trigger)
        if answer_id is None:
            log.info("post %s/%s already claimed; not answering twice", post.channel_id, post.ts)
            return
        job = Job(answer_id, post.channel_id, post.conversation_ts, post.ts, post.user_id or "",
                  backfill=bool(post.thread_ts) and not thread_known)
        self.spawn(self.run(job))

    def retry(self, answer_id: int, *, user_id: str) -> bool:
        """Re-ask the question behind a failed answer, in the same placeholder."""
        old = self.store.find_answer(answer_id)
        if old is None:
            return False
        latest = self.store.latest_attempt(old["channel_id"], old["request_ts"])
        if latest is None or latest["status"] in ("queued", "running") or not self.accepting:
            return False
        new_id = self.store.claim_answer(
            channel_id=old["channel_id"], request_ts=old["request_ts"],
            thread_ts=old["thread_ts"], user_id=old["user_id"], trigger="retry",
            attempt=latest["attempt"] + 1, placeholder_ts=latest["placeholder_ts"])
        if new_id is None:
            return False  # a second click while the first is being handled
        log.info("retry of answer %d as %d requested by %s", answer_id, new_id, user_id)
        job = Job(new_id, old["channel_id"], old["thread_ts"], old["request_ts"], old["user_id"],
                  placeholder_ts=latest["placeholder_ts"])
        self.spawn(self.run(job))
        return True

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- the pipeline ------------------------------------------------------------------

    async def run(self, job: Job) -> None:
        try:
            await self._run(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("answer %d in %s failed unexpectedly", job.answer_id, job.channel)
            self.store.update_answer(job.answer_id, status="failed", error_kind="internal",
                                     error_message="internal error", finished_at=time.time())
            if job.placeholder_ts:
                await self._show_failure(job, "Something went wrong on our side",
                                         "The answer could not be finished. Press Retry to ask "
                                         "again; the bot's operator can find details in its log.",
                                         retry=True)

    async def _run(self, job: Job) -> None:
        # Join the queue before anything slow, so the placeholder can say at once whether
        # the answer waits for a model slot, and queue order is arrival order.
        self._waiting.append(job)
        try:
            busy = self._running + self._waiting.index(job) >= self.settings.max_concurrent
            job.phase = "queued" if busy else "thinking"
            if not await self._post_placeholder(job):
                return
            if job.backfill:
                try:
                    await backfill_thread(self.client, self.store, job.channel, job.thread_ts)
                except (SlackApiError, SlackClientError) as exc:
                    # Answer with what we have rather than not at all.
                    log.warning("backfill of %s/%s failed: %s", job.channel, job.thread_ts,
                                slack_error(exc) if isinstance(exc, SlackApiError) else exc)
            self.store.join_thread(job.channel, job.thread_ts)
            placeholder_ts = job.placeholder_ts
            assert placeholder_ts is not None
            updater = ProgressUpdater(
                update=lambda payload: self.progress_client.chat_update(
                    channel=job.channel, ts=placeholder_ts, **payload),
                render=lambda: self._progress(job), budget=self.budget,
                interval=self.settings.progress_interval)
            updater.start()
            try:
                async with self._slots:
                    self._waiting.remove(job)
                    self._running += 1
                    try:
                        outcome = await self._think(job)
                    finally:
                        self._running -= 1
            finally:
                await updater.stop()
        finally:
            if job in self._waiting:
                self._waiting.remove(job)
        await outcome

    async def _post_placeholder(self, job: Job) -> bool:
        payload = self._progress(job)
        try:
            if job.placeholder_ts is None:
                job.placeholder_ts = await self.delivery.post(job.channel, job.thread_ts, payload)
                self.store.update_answer(job.answer_id, placeholder_ts=job.placeholder_ts)
            else:
                await self.delivery.replace(job.channel, job.placeholder_ts, payload)
        except SlackApiError as exc:
            error = slack_error(exc)
            # not_in_channel / channel_not_found / is_archived: there is nowhere to answer.
            log.warning("cannot post in %s for answer %d: %s", job.channel, job.answer_id, error)
            self.store.update_answer(job.answer_id, status="failed", error_kind="slack",
                                     error_message=error, finished_at=time.time())
            return False
        return True

    def _progress(self, job: Job) -> dict[str, Any]:
        elapsed = time.monotonic() - job.started
        if job.phase == "queued":
            position = self._waiting.index(job) if job in self._waiting else 0
            ahead = max(0, self._running + position - self.settings.max_concurrent + 1)
            return progress_message(state="queued", elapsed=elapsed, reasoning_chars=0,
                                    queued_position=ahead)
        return progress_message(state=job.phase, elapsed=elapsed,
                                reasoning_chars=job.completion.reasoning_chars)

    async def _think(self, job: Job) -> Coroutine[Any, Any, None]:
        """Run the model inside the concurrency slot; return the delivery to run outside it
        (posting to Slack must not hold a model slot)."""
        job.phase = "thinking"
        job.started = time.monotonic()
        started_wall = time.time()
        self.store.update_answer(job.answer_id, status="running", started_at=started_wall,
                                 model=self.settings.model)
        try:
            prompt = await self._prompt(job)
        except MessageTooLongError as exc:
            return self._fail(job, exc, retry=False)

        first_token: list[float] = []

        def on_event(event: ModelEvent, completion: Completion) -> None:
            job.completion = completion
            if not first_token:
                first_token.append(time.time())
            if isinstance(event, AnswerDelta):
                job.phase = "writing"

        try:
            completion = await self.model.complete(prompt.messages, on_event=on_event)
        except AnswerCutOffError as exc:
            self._record_call(job, exc.partial, started_wall, prompt, error_kind="cut_off")
            return self._finish(job, exc.partial, started_wall, cut_off=exc)
        except ModelError as exc:
            self._record_call(job, exc.partial or job.completion, started_wall, prompt,
                              error_kind=exc.kind)
            return self._fail(job, exc, retry=True)
        self._record_call(job, completion, started_wall, prompt)
        if first_token:
            self.store.update_answer(job.answer_id, first_token_at=first_token[0])
        return self._finish(job, completion, started_wall)

    async def _prompt(self, job: Job) -> Prompt:
        rows = [r for r in self.store.thread_messages(job.channel, job.thread_ts)
                if r["ts"] <= job.request_ts]
        authors = {r["user_id"] for r in rows if r["user_id"]}
        names = await self.people.names(authors | mentioned_ids(r["text"] for r in rows))
        turns = [
            Turn(author=self._author(r, names), text=r["text"], from_self=self._is_self(r),
                 ts=r["ts"])
            for r in rows
        ]
        if turns and not to_plain(turns[-1].text, names, bot_user_id=self.identity.user_id):
            # A bare "@qwqbot": asked to weigh in on the thread, or just saying hello.
            ask = BARE_MENTION_IN_THREAD if len(turns) > 1 else BARE_MENTION_ALONE
            turns[-1] = Turn(author=turns[-1].author, text=ask, from_self=False,
                             ts=turns[-1].ts)
        place = await self._place(job.channel, names.get(job.user_id))
        return build_prompt(
            turns, names=names, bot_user_id=self.identity.user_id,
            system_prompt=self.settings.system_prompt, today=self._today(job.user_id),
            place=place,
            budget_tokens=self.settings.context_tokens - self.settings.max_tokens)

    def _is_self(self, row: dict[str, Any]) -> bool:
        return bool(row["is_bot"]) and (row["user_id"] == self.identity.user_id
                                        or row["bot_id"] == self.identity.bot_id)

    def _author(self, row: dict[str, Any], names: dict[str, str]) -> str:
        if self._is_self(row):
            return self.identity.name
        if row["user_id"]:
            return names.get(str(row["user_id"]), str(row["user_id"]))
        return "a bot" if row["is_bot"] else "someone"

    def _today(self, user_id: str) -> date:
        row = self.store.users([user_id], fresh_after=0).get(user_id)
        try:
            zone = ZoneInfo(row["tz"]) if row and row.get("tz") else None
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        return datetime.now(zone).date()

    async def _place(self, channel: str, user_name: str | None) -> Place:
        if channel not in self._places:
            try:
                info = (await self.client.conversations_info(channel=channel)).get("channel") or {}
            except (SlackApiError, SlackClientError):
                info = {"is_im": channel.startswith("D")}
            if info.get("is_im"):
                place = Place("dm", with_user=user_name)
            elif info.get("is_mpim"):
                place = Place("group_dm")
            else:
                place = Place("private_channel" if info.get("is_private") else "channel",
                              name=info.get("name"))
            self._places[channel] = place
        place = self._places[channel]
        return Place("dm", with_user=user_name) if place.kind == "dm" else place

    def _record_call(self, job: Job, completion: Completion, started: float, prompt: Prompt,
                     *, error_kind: str | None = None) -> None:
        usage = completion.usage
        self.store.record_model_call(
            answer_id=job.answer_id, purpose="answer", user_id=job.user_id, channel_id=job.channel,
            model=self.settings.model,
            prompt_tokens=usage.prompt_tokens if usage else prompt.estimated_tokens,
            completion_tokens=usage.completion_tokens if usage else None,
            reasoning_tokens=usage.reasoning_tokens if usage else None,
            total_tokens=usage.total_tokens if usage else None,
            latency_ms=int((time.time() - started) * 1000),
            finish_reason=completion.finish_reason, error_kind=error_kind)

    # -- outcomes (run after the model slot is released) --------------------------------

    async def _finish(self, job: Job, completion: Completion, started: float,
                      cut_off: AnswerCutOffError | None = None) -> None:
        assert job.placeholder_ts is not None
        seconds = time.time() - started
        reasoning, answer = completion.reasoning, completion.answer
        usage = completion.usage
        reasoning_tokens = (usage.reasoning_tokens if usage and usage.reasoning_tokens
                            else estimate_tokens(reasoning) if reasoning else None)
        # Keep the answer before talking to Slack: whatever Slack does, nothing is lost.
        self.store.update_answer(
            job.answer_id, status="cut_off" if cut_off else "done", reasoning=reasoning,
            answer=answer, finish_reason=completion.finish_reason, finished_at=time.time(),
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            reasoning_tokens=reasoning_tokens,
            error_kind="cut_off" if cut_off else None,
            error_message=cut_off.user_message if cut_off else None)
        if answer:
            self.store.save_message(channel_id=job.channel, ts=job.placeholder_ts,
                                    thread_ts=job.thread_ts, user_id=self.identity.user_id,
                                    text=answer, is_bot=True, bot_id=self.identity.bot_id)
        note = None
        if cut_off is not None:
            note = (f":warning: {cut_off.user_message} {cut_off.hint} Press Retry to ask again.")
        attachment = (reasoning_attachment(reasoning, tokens=reasoning_tokens, seconds=seconds)
                      if reasoning else None)
        if attachment is not None and attachment.truncated and not await \
                self.delivery.upload_reasoning(job.channel, job.thread_ts, reasoning,
                                               job.answer_id):
            attachment = reasoning_attachment(
                reasoning, tokens=reasoning_tokens, seconds=seconds,
                omitted_hint=f"the bot keeps the full text (answer {job.answer_id})")
        shown = answer or ("_The model ran out of tokens before it could answer; its reasoning "
                           "so far is below._" if cut_off else "_The model gave no answer._")
        payloads = answer_messages(shown, reasoning=None, reasoning_tokens=reasoning_tokens,
                                   seconds=seconds, note=note)
        if attachment is not None:
            payloads[0]["attachments"] = [attachment.payload]
        if cut_off is not None:
            payloads[-1]["blocks"].append(retry_actions(str(job.answer_id)))
        try:
            await self.delivery.deliver(job.channel, job.thread_ts, job.placeholder_ts, payloads,
                                        plain_text=to_mrkdwn(shown))
        except (SlackApiError, SlackClientError) as exc:
            error = slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            log.error("could not deliver answer %d to %s: %s (answer kept in the database)",
                      job.answer_id, job.channel, error)
            self.store.update_answer(job.answer_id, status="failed", error_kind="slack",
                                     error_message=error)
            return
        log.info("answered %d in %s/%s: %.0f s, %d reasoning chars, %d answer chars",
                 job.answer_id, job.channel, job.thread_ts, seconds, len(reasoning), len(answer))

    async def _fail(self, job: Job, err: QwqbotError, *, retry: bool) -> None:
        self.store.update_answer(job.answer_id, status="failed", error_kind=err.kind,
                                 error_message=err.user_message, finished_at=time.time())
        log.warning("answer %d in %s/%s failed: %s", job.answer_id, job.channel, job.thread_ts,
                    err.kind)
        detail = f"{err.user_message} {err.hint}".strip()
        if err.kind in OPERATOR_KINDS:
            detail += " Please tell the person who runs this bot."
        await self._show_failure(job, FAILURE_TITLES.get(err.kind, "Couldn't answer"), detail,
                                 retry=retry)

    async def _show_failure(self, job: Job, title: str, detail: str, *, retry: bool) -> None:
        assert job.placeholder_ts is not None
        payload = error_message(title, detail, retry_value=str(job.answer_id) if retry else None)
        try:
            await self.delivery.replace(job.channel, job.placeholder_ts, payload)
        except (SlackApiError, SlackClientError) as exc:
            log.error("could not show the failure of answer %d in %s: %s", job.answer_id,
                      job.channel, type(exc).__name__)

    # -- restarts and shutdown -----------------------------------------------------------

    async def recover(self) -> int:
        """At start-up: answers left unfinished by a crash or deploy get a clear message
        with a Retry button instead of "thinking" forever."""
        rows = self.store.unfinished_answers()
        for row in rows:
            await self._interrupt(row)
        return len(rows)

    async def shutdown(self, grace: float) -> None:
        """Stop taking work, let answers in flight finish for ``grace`` s, interrupt the rest."""
        self.accepting = False
        if self._tasks:
            log.info("waiting up to %.0f s for %d answers in flight", grace, len(self._tasks))
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.recover()

    async def _interrupt(self, row: dict[str, Any]) -> None:
        self.store.update_answer(row["id"], status="interrupted", error_kind="interrupted",
                                 error_message="the bot restarted", finished_at=time.time())
        if not row["placeholder_ts"]:
            return
        payload = error_message(
            "This answer was interrupted",
            "The bot restarted while it was thinking. Press Retry to ask again.",
            retry_value=str(row["id"]))
        try:
            await self.delivery.replace(row["channel_id"], row["placeholder_ts"], payload)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("could not mark answer %d interrupted: %s", row["id"], type(exc).__name__)
