"""The answer pipeline: one question in, one answer (with its reasoning) out.

    start(job) -> task: placeholder -> backfill -> read the thread's new files -> queue for
    a model slot -> prompt from the store -> model stream (progress edits) -> store the
    outcome -> release the slot -> show it in Slack (with a footer about the files)

Every answer is a row in ``answers`` whose status says how far it got, so a restart can
find the ones left unfinished. Where the answer appears (a thread, or privately) is the
job's Surface; the pipeline is the same for both.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.accounting import model_call_row
from qwqbot.config import Settings
from qwqbot.conversation import MessageTooLongError, Prompt
from qwqbot.errors import AnswerCutOffError, ModelError, QwqbotError
from qwqbot.files.budget import FileReport
from qwqbot.files.footer import footer_lines
from qwqbot.fitting import FittedCall
from qwqbot.model.client import ModelClient
from qwqbot.model.events import AnswerDelta, Completion, ModelEvent
from qwqbot.policy import Policy
from qwqbot.slack.answer_blocks import answer_payloads
from qwqbot.slack.calls import Calls, Undeliverable
from qwqbot.slack.context import ContextBuilder
from qwqbot.slack.delivery import Delivery, slack_error
from qwqbot.slack.files import FileReader
from qwqbot.slack.history import backfill_thread
from qwqbot.slack.identity import BotIdentity
from qwqbot.slack.inert import Audience, inert
from qwqbot.slack.limits import PER_CHANNEL_PER_MINUTE, Limits
from qwqbot.slack.live import Streams
from qwqbot.slack.progress import Progress
from qwqbot.slack.render import (
    error_message,
    feedback_blocks,
    reasoning_attachment,
    retry_actions,
    to_mrkdwn,
)
from qwqbot.slack.surfaces import EphemeralSurface, Surface, ThreadSurface, View, gist
from qwqbot.slacktext import escape, mentioned_ids
from qwqbot.store import Store
from qwqbot.tokens import estimate_tokens

log = logging.getLogger(__name__)

#: What the user reads for each kind of failure; details come from the error itself.
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
    "context_length": "The conversation is too long for the model server",
}
#: Failures only an operator can fix: the user is told to pass them on.
OPERATOR_KINDS = {"auth", "credits", "model_not_found", "bad_request", "context_length"}
#: What a press of Retry or Regenerate that cannot be acted on tells the presser.
CANNOT_REASK = "That answer is already being worked on, or can't be asked again any more."


@dataclass(eq=False)
class Job:
    """One answer being produced, and what its progress renders from."""

    answer_id: int
    channel: str
    request_ts: str
    user_id: str
    surface: Surface
    thread_ts: str | None = None  # None: a private question, answered without memory
    question: str | None = None  # the question itself, for a private one
    backfill: bool = False
    #: messages of a previous answer to remove (Regenerate of a multi-message answer)
    replaces: list[str] = field(default_factory=list)
    phase: str = "thinking"  # queued | thinking | writing
    message_ts: str | None = None  # the message standing for the answer, as recorded
    started: float = field(default_factory=time.monotonic)
    completion: Completion = field(default_factory=Completion)
    #: what became of the files of the thread, for the answer's footer
    files: FileReport = field(default_factory=FileReport)


@dataclass(frozen=True)
class Kept:
    """A model call's outcome, already stored; what remains is to show it in Slack."""

    completion: Completion
    started: float  # wall time the model call began
    cut_off: AnswerCutOffError | None = None
    failure: QwqbotError | None = None
    retry: bool = True


class Answerer:
    def __init__(self, *, settings: Settings, store: Store, client: AsyncWebClient,
                 calls: Calls, limits: Limits, streams: Streams, model: ModelClient,
                 identity: BotIdentity, delivery: Delivery, policy: Policy,
                 context: ContextBuilder, files: FileReader) -> None:
        self.settings = settings
        self.store = store
        #: the SDK client (its own retries): history reads, uploads, deletes
        self.client = client
        #: everything that posts or edits: within Slack's limits, retried until it lands
        self.calls = calls
        self.limits = limits
        self.streams = streams
        self.model = model
        self.identity = identity
        self.delivery = delivery
        self.policy = policy
        self.context = context
        #: downloads and reads the files of a thread (with the bot token, files:read)
        self.files = files
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._waiting: list[Job] = []  # arrival order; the head gets the next free slot
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        #: answers in flight per channel: they share the channel's setStatus budget
        self._per_channel: collections.Counter[str] = collections.Counter()
        self.accepting = True

    def thread_surface(self, channel: str, thread_ts: str, asker: str,
                       placeholder_ts: str | None = None) -> ThreadSurface:
        return ThreadSurface(calls=self.calls, delivery=self.delivery, limits=self.limits,
                             streams=self.streams, channel=channel, thread_ts=thread_ts,
                             asker=asker, team_id=self.identity.team_id,
                             placeholder_ts=placeholder_ts,
                             status_interval=lambda: self._status_interval(channel),
                             reserve=lambda: self.in_flight,
                             audience=lambda: self.audience(channel, thread_ts, asker))

    def audience(self, channel: str, thread_ts: str | None, asker: str) -> Audience:
        """Whom the model's words may notify: the people of the conversation, that is the
        thread's authors and everyone they mention (not the bot's own posts: the model wrote
        them), or only the asker of a private question. Anyone else is shown by name."""
        people = {asker}
        if thread_ts:
            authors, mentioning = self.store.thread_voices(
                channel, thread_ts, bot_user_id=self.identity.user_id,
                bot_id=self.identity.bot_id)
            people |= authors | mentioned_ids(mentioning)
        return Audience(frozenset(people), names=self._known_name)

    def _known_name(self, user_id: str) -> str | None:
        row = self.store.users([user_id], fresh_after=0).get(user_id)
        return str(row["display_name"]) if row and row["display_name"] != user_id else None

    def _status_interval(self, channel: str) -> float:
        """Seconds between status changes of one thread: the answers in flight in a channel
        share its setStatus budget (planned as 54 a minute, see limits.py), so the more
        there are, the less often each one changes (10 answers: every 15 s)."""
        share = PER_CHANNEL_PER_MINUTE["assistant.threads.setStatus"] * 0.7
        return max(2 * self.settings.progress_interval, self._per_channel[channel] * 60 / share)

    def start(self, job: Job) -> None:
        self.spawn(self.run(job))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def notify(self, channel: str, user_id: str, text: str, *,
                     thread_ts: str | None = None) -> None:
        """A message only that person sees, where they are."""
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        try:
            await self.calls.call("chat.postEphemeral", channel=channel, give_up_after=120,
                                  user=user_id, text=text, **extra)
        except (SlackApiError, Undeliverable) as exc:
            log.warning("could not tell %s in %s: %s", user_id, channel, type(exc).__name__)

    def reask(self, answer_id: int, *, user_id: str, channel_id: str | None,
              response_url: str | None = None, regenerate: bool = False) -> str | None:
        """Ask the question behind an answer again, where that answer was shown: Retry
        (after a failure) or Regenerate (replacing a finished answer), pressed by
        ``user_id`` in ``channel_id``. None when the new attempt started; otherwise what to
        tell the person who pressed (nothing was sent to the model).

        A press is a new question: the same access and quota checks apply. Only the asker
        may press (or an admin, on an answer in a thread, where everyone sees the result);
        a private answer is only ever re-asked for, and shown to, its asker. The button's
        value is just an answer id, so the press is checked against the stored answer: its
        asker, and its conversation, which the press must come from."""
        what = "regenerate" if regenerate else "retry"
        old = self.store.find_answer(answer_id)
        if old is None or not self.accepting:
            return CANNOT_REASK
        problem = self._reask_refusal(old, user_id=user_id, channel_id=channel_id, what=what)
        if problem is not None:
            return problem
        asker, private = old["user_id"], not old["thread_ts"]
        latest = self.store.latest_attempt(old["channel_id"], old["request_ts"])
        allowed = ("done", "cut_off", "failed", "interrupted") if regenerate else (
            "cut_off", "failed", "interrupted")
        if latest is None or latest["status"] not in allowed:
            return CANNOT_REASK
        surface: Surface
        if not private:
            surface = self.thread_surface(old["channel_id"], old["thread_ts"], asker,
                                          latest["placeholder_ts"])
        elif response_url:
            surface = EphemeralSurface(response_url)  # the asker's own press (checked above)
        else:
            return CANNOT_REASK  # a private answer is shown nowhere but in the asker's message
        # The new attempt is the asker's, even when an admin pressed: their question, their
        # thread, and so their usage and quota (checked above).
        new_id = self.store.claim_answer(
            channel_id=old["channel_id"], request_ts=old["request_ts"],
            thread_ts=old["thread_ts"], user_id=asker,
            trigger="regenerate" if regenerate else "retry",
            attempt=latest["attempt"] + 1, placeholder_ts=latest["placeholder_ts"],
            question=old["question"])
        if new_id is None:
            return CANNOT_REASK  # a second click while the first is being handled
        log.info("%s of answer %d as %d requested by %s", what, answer_id, new_id, user_id)
        extra = json.loads(latest["message_ts"] or "[]")[1:] if old["thread_ts"] else []
        self.start(Job(answer_id=new_id, channel=old["channel_id"], request_ts=old["request_ts"],
                       user_id=asker, surface=surface, thread_ts=old["thread_ts"],
                       question=old["question"], replaces=extra))
        return None

    def _reask_refusal(self, old: dict[str, Any], *, user_id: str, channel_id: str | None,
                       what: str) -> str | None:
        """Why this person may not press Retry or Regenerate on that answer; None if they
        may."""
        if channel_id != old["channel_id"]:
            log.warning("%s of answer %d pressed by %s in %s, not in its channel: ignored",
                        what, old["id"], user_id, channel_id)
            return CANNOT_REASK
        asker = old["user_id"]
        if user_id != asker and (not old["thread_ts"] or not self.policy.is_admin(user_id)):
            return f"Only the person who asked can {what} this answer."
        refusal = self.policy.refusal(user_id, old["channel_id"])
        if refusal is not None:
            return f":no_entry: {refusal.message}"
        if user_id != asker and self.policy.quota_refusal(asker) is not None:
            return (f":no_entry: <@{asker}> has used up today's tokens, and the new attempt "
                    "would count against them.")
        return None

    # -- the pipeline ------------------------------------------------------------------

    async def run(self, job: Job) -> None:
        self._per_channel[job.channel] += 1
        try:
            await self._run(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("answer %d in %s failed unexpectedly", job.answer_id, job.channel)
            self.store.update_answer(job.answer_id, status="failed", error_kind="internal",
                                     error_message="internal error", finished_at=time.time())
            await self._show_failure(job, "Something went wrong on our side",
                                     "The answer could not be finished. Press Retry to ask "
                                     "again; the bot's operator can find details in its log.",
                                     retry=True)
        finally:
            self._per_channel[job.channel] -= 1
            if not self._per_channel[job.channel]:
                del self._per_channel[job.channel]

    async def _run(self, job: Job) -> None:
        # Join the queue before anything slow, so the placeholder can say at once whether
        # the answer waits for a model slot, and queue order is arrival order.
        self._waiting.append(job)
        try:
            busy = self._running + self._waiting.index(job) >= self.settings.max_concurrent
            job.phase = "queued" if busy else "thinking"
            if not await self._begin(job):
                return
            if job.thread_ts is not None:
                await self._join_thread(job, job.thread_ts)
            updater = Progress(show=lambda view: self._progress(job, view),
                               render=lambda: self._view(job),
                               interval=self.settings.progress_interval)
            updater.start()
            try:
                if job.thread_ts is not None:
                    await self._read_files(job, job.thread_ts)
                async with self._slots:
                    self._waiting.remove(job)
                    self._running += 1
                    try:
                        # Stored before the slot is released: a cancellation from here on
                        # (a shutdown) cannot lose a finished answer.
                        kept = await self._think(job)
                    finally:
                        self._running -= 1
            finally:
                await updater.stop()
        finally:
            if job in self._waiting:
                self._waiting.remove(job)
        await self._show(job, kept)

    async def _begin(self, job: Job) -> bool:
        """The first sign of life (see surfaces.py); False when there is nowhere to answer."""
        try:
            await job.surface.begin(self._view(job))
        except Undeliverable as exc:
            # Slack is down or refusing for long: the answer goes on, and shows when it can.
            log.warning("no sign of life for answer %d in %s: %s", job.answer_id, job.channel,
                        exc.error)
            return True
        except SlackApiError as exc:
            error = slack_error(exc)
            # not_in_channel / channel_not_found / is_archived: there is nowhere to answer.
            log.warning("cannot post in %s for answer %d: %s", job.channel, job.answer_id, error)
            self.store.update_answer(job.answer_id, status="failed", error_kind="slack",
                                     error_message=error, finished_at=time.time())
            return False
        if job.surface.placeholder_ts:
            self.store.update_answer(job.answer_id, placeholder_ts=job.surface.placeholder_ts)
        return True

    async def _join_thread(self, job: Job, thread_ts: str) -> None:
        if job.backfill:
            try:
                await backfill_thread(self.client, self.store, job.channel, thread_ts,
                                      bot_user_id=self.identity.user_id)
            except (SlackApiError, SlackClientError) as exc:
                # Answer with what we have rather than not at all.
                log.warning("backfill of %s/%s failed: %s", job.channel, thread_ts,
                            slack_error(exc) if isinstance(exc, SlackApiError) else exc)
        self.store.join_thread(job.channel, thread_ts)

    async def _read_files(self, job: Job, thread_ts: str) -> None:
        """Download and read the thread's files not read yet (before taking a model slot:
        a slow download must not hold one). Whatever fails, the question is answered from
        what could be read; each file's fate is stored and told in the footer."""
        try:
            await self.files.read_thread(job.channel, thread_ts, job.request_ts)
        except Exception:  # a bug here must not cost the answer
            log.exception("reading the files of %s/%s failed", job.channel, thread_ts)

    async def _progress(self, job: Job, view: View) -> None:
        await job.surface.progress(view)
        ts = job.surface.message_ts
        if ts is not None and ts != job.message_ts:
            # A message now stands for the answer (its streamed words): a restart must find
            # it to say the answer was interrupted.
            job.message_ts = ts
            self.store.update_answer(job.answer_id, placeholder_ts=ts)

    def _view(self, job: Job) -> View:
        elapsed = time.monotonic() - job.started
        if job.phase == "queued":
            position = self._waiting.index(job) if job in self._waiting else 0
            ahead = max(0, self._running + position - self.settings.max_concurrent + 1)
            return View("queued", elapsed, ahead=ahead)
        completion = job.completion
        return View(job.phase, elapsed, reasoning_chars=completion.reasoning_chars,
                    gist=gist(completion.reasoning) if job.phase == "thinking" else "",
                    answer=completion.answer if job.phase == "writing" else "")

    async def _think(self, job: Job) -> Kept:
        """Run the model inside the concurrency slot and store what it produced; showing it
        happens outside the slot (posting to Slack must not hold a model slot)."""
        job.phase = "thinking"
        job.started = time.monotonic()
        started_wall = time.time()
        self.store.update_answer(job.answer_id, status="running", started_at=started_wall,
                                 model=self.settings.model)
        try:
            prompt = await self._prompt(job)
        except MessageTooLongError as exc:
            return self._keep_failure(job, Kept(Completion(), started_wall, failure=exc,
                                                retry=False))

        first_token: list[float] = []

        def on_event(event: ModelEvent, completion: Completion) -> None:
            job.completion = completion
            if not first_token:
                first_token.append(time.time())
            if isinstance(event, AnswerDelta):
                job.phase = "writing"

        # A server that finds the prompt too long is asked once more with fewer turns.
        call = FittedCall(prompt, rebuild=lambda budget: self._prompt(job, budget=budget),
                          max_tokens=self.settings.max_tokens)
        try:
            completion = await call.complete(
                lambda messages: self.model.complete(messages, on_event=on_event))
        except MessageTooLongError as exc:
            return self._keep_failure(job, Kept(Completion(), started_wall, failure=exc,
                                                retry=False))
        except AnswerCutOffError as exc:
            self._record_call(job, exc.partial, started_wall, call.prompt, error_kind="cut_off")
            return self._keep_answer(job, Kept(exc.partial, started_wall, cut_off=exc))
        except ModelError as exc:
            self._record_call(job, exc.partial or job.completion, started_wall, call.prompt,
                              error_kind=exc.kind)
            return self._keep_failure(job, Kept(exc.partial or job.completion, started_wall,
                                                failure=exc))
        self._record_call(job, completion, started_wall, call.prompt)
        if first_token:
            self.store.update_answer(job.answer_id, first_token_at=first_token[0])
        return self._keep_answer(job, Kept(completion, started_wall))

    async def _prompt(self, job: Job, *, budget: int | None = None) -> Prompt:
        if job.thread_ts is None:
            return await self.context.for_question(job.channel, job.question or "", job.user_id,
                                                   budget_tokens=budget)
        prompt, job.files = await self.context.for_thread_with_files(
            job.channel, job.thread_ts, job.request_ts, job.user_id, budget_tokens=budget)
        return prompt

    def _record_call(self, job: Job, completion: Completion, started: float, prompt: Prompt,
                     *, error_kind: str | None = None) -> None:
        self.store.record_model_call(**model_call_row(
            completion, purpose="answer", model=self.settings.model, started=started,
            prompt_estimate=prompt.estimated_tokens, error_kind=error_kind,
            answer_id=job.answer_id, user_id=job.user_id, channel_id=job.channel),
            estimated_prompt_tokens=prompt.estimated_tokens)

    # -- outcomes (run after the model slot is released) --------------------------------

    def _keep_answer(self, job: Job, kept: Kept) -> Kept:
        """Store the answer (and the thread's memory of it) before Slack is asked to show
        it: whatever Slack does, nothing is lost."""
        completion, cut_off = kept.completion, kept.cut_off
        self.store.update_answer(
            job.answer_id, status="cut_off" if cut_off else "done",
            reasoning=completion.reasoning, answer=completion.answer,
            finish_reason=completion.finish_reason, finished_at=time.time(),
            prompt_tokens=completion.usage.prompt_tokens if completion.usage else None,
            completion_tokens=completion.usage.completion_tokens if completion.usage else None,
            reasoning_tokens=_reasoning_tokens(completion),
            error_kind="cut_off" if cut_off else None,
            error_message=cut_off.user_message if cut_off else None)
        return kept

    def _keep_failure(self, job: Job, kept: Kept) -> Kept:
        err = kept.failure
        assert err is not None
        self.store.update_answer(job.answer_id, status="failed", error_kind=err.kind,
                                 error_message=err.user_message, finished_at=time.time())
        log.warning("answer %d in %s failed: %s", job.answer_id, job.channel, err.kind)
        return kept

    async def _show(self, job: Job, kept: Kept) -> None:
        if kept.failure is not None:
            err = kept.failure
            detail = f"{err.user_message} {err.hint}".strip()
            if err.kind in OPERATOR_KINDS:
                detail += " Please tell the person who runs this bot."
            await self._show_failure(job, FAILURE_TITLES.get(err.kind, "Couldn't answer"),
                                     detail, retry=kept.retry)
            return
        await self._show_answer(job, kept)

    async def _show_answer(self, job: Job, kept: Kept) -> None:
        completion, cut_off = kept.completion, kept.cut_off
        seconds = time.time() - kept.started
        reasoning, answer = completion.reasoning, completion.answer
        reasoning_tokens = _reasoning_tokens(completion)
        note = None
        if cut_off is not None:
            note = f":warning: {cut_off.user_message} {cut_off.hint} Press Retry to ask again."
        audience = self.audience(job.channel, job.thread_ts, job.user_id)
        # Names for anyone else the model mentions (fetched into the store, where the
        # audience finds them).
        await self.context.people.names(mentioned_ids([reasoning, answer]) - audience.allowed)
        show = reasoning and self.policy.show_reasoning(job.channel)
        attachment = (reasoning_attachment(reasoning, tokens=reasoning_tokens, seconds=seconds,
                                           inert=audience) if show else None)
        if attachment is not None and attachment.truncated and not await \
                job.surface.upload_reasoning(reasoning, job.answer_id):
            attachment = reasoning_attachment(
                reasoning, tokens=reasoning_tokens, seconds=seconds, inert=audience,
                omitted_hint=f"the bot keeps the full text (answer {job.answer_id})")
        shown = answer or ("_The model ran out of tokens before it could answer; its reasoning "
                           "so far is below._" if cut_off else "_The model gave no answer._")
        files = footer_lines(job.files, name=lambda name: inert(escape(name)))
        note = "\n".join(filter(None, (note, self._prompt_note(job.channel), *files))) or None
        payloads = answer_payloads(shown, note=note, inert=audience)
        if attachment is not None:
            payloads[0]["attachments"] = [attachment.payload]
        payloads[-1]["blocks"] += ([retry_actions(str(job.answer_id))] if cut_off is not None
                                   else feedback_blocks(str(job.answer_id)))
        await self._remove_replaced(job)
        try:
            sent = await job.surface.deliver(payloads, plain_text=audience(to_mrkdwn(shown)))
        except (SlackApiError, Undeliverable) as exc:
            error = slack_error(exc) if isinstance(exc, SlackApiError) else exc.error
            log.error("could not deliver answer %d to %s: %s (answer kept in the database)",
                      job.answer_id, job.channel, error)
            self.store.update_answer(job.answer_id, status="failed", error_kind="slack",
                                     error_message=error)
            await self._tell_undelivered(job, audience(to_mrkdwn(shown)), error)
            return
        self.store.update_answer(job.answer_id, message_ts=json.dumps(sent),
                                 placeholder_ts=sent[0] if sent else job.surface.placeholder_ts)
        if answer and job.thread_ts is not None and sent:
            # The thread's memory gets the answer, never the reasoning (QwQ's guidance:
            # https://huggingface.co/Qwen/QwQ-32B#usage-guidelines), under the ts Slack
            # gave it, so follow-ups read in the order people saw.
            self.store.save_message(channel_id=job.channel, ts=sent[0], thread_ts=job.thread_ts,
                                    user_id=self.identity.user_id, text=answer, is_bot=True,
                                    bot_id=self.identity.bot_id)
        log.info("answered %d in %s: %.0f s, %d reasoning chars, %d answer chars",
                 job.answer_id, job.channel, seconds, len(reasoning), len(answer))

    def _prompt_note(self, channel: str) -> str | None:
        """The line an answer carries when this channel's extra instructions shaped it (they
        reach the model with every prompt made here), so nobody takes a steered answer for
        the model's own; None without them. The author is named in plain words: a mention
        on every answer would notify them each time."""
        if not self.policy.system_extra(channel):
            return None
        author = self.policy.controls.prompt_author(channel)
        row = self.store.users([author], fresh_after=0).get(author) if author else None
        by = f" (set by {inert(escape(str(row['display_name'])))})" if row else ""
        return f":memo: Shaped by this channel's instructions{by}."

    async def _tell_undelivered(self, job: Job, shown: str, error: str) -> None:
        """Slack would not take the answer (for as long as we kept trying): the asker gets
        it (``shown``: as mrkdwn, made inert) privately, and the answer stays stored."""
        if job.thread_ts is None:
            return  # a private answer: its own surface already failed
        text = (f":warning: I couldn't post my answer in the thread (Slack: {error}). Here it "
                f"is, only for you:\n\n{shown}")
        if len(text) > 3900:
            text = text[:3850].rstrip() + "\n… (cut short here; ask me again for the rest)"
        await self.notify(job.channel, job.user_id, text, thread_ts=job.thread_ts)

    async def _remove_replaced(self, job: Job) -> None:
        for ts in job.replaces:
            try:
                await self.client.chat_delete(channel=job.channel, ts=ts)
            except (SlackApiError, SlackClientError) as exc:
                log.warning("could not remove an old answer part in %s: %s", job.channel,
                            type(exc).__name__)

    async def _show_failure(self, job: Job, title: str, detail: str, *, retry: bool) -> None:
        payload = error_message(title, detail, retry_value=str(job.answer_id) if retry else None)
        try:
            await job.surface.failure(payload)
            if job.surface.placeholder_ts:  # Retry answers in this message
                self.store.update_answer(job.answer_id, placeholder_ts=job.surface.placeholder_ts)
        except (SlackApiError, SlackClientError, Undeliverable) as exc:
            log.error("could not show the failure of answer %d in %s: %s", job.answer_id,
                      job.channel, type(exc).__name__)

    # -- restarts and shutdown -----------------------------------------------------------

    async def recover(self, *, within: float | None = None) -> int:
        """Answers left unfinished (by a crash, a deploy, or a shutdown's grace running out)
        get a clear message with a Retry button instead of "thinking" forever.

        ``within``: seconds allowed (a shutdown has a deadline). Placeholders not edited in
        time stay recorded as running, and the next start edits them.
        """
        rows = self.store.unfinished_answers()
        if not rows:
            return 0
        edits = [asyncio.create_task(self._interrupt(row)) for row in rows]
        done, pending = await asyncio.wait(edits, timeout=within)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d interrupted answers left for the next start to mark", len(pending))
        return len(done)

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
        # Platforms kill a process 30 s after SIGTERM (Heroku): leave room to exit.
        await self.recover(within=4.0)

    async def _interrupt(self, row: dict[str, Any]) -> None:
        """Tell the thread (a private answer's response_url is not kept: nothing to edit)."""
        payload = error_message(
            "This answer was interrupted",
            "The bot restarted while it was thinking. Press Retry to ask again.",
            retry_value=str(row["id"]))
        try:
            if row["placeholder_ts"]:  # a placeholder, or the answer's words streamed so far
                await self.delivery.replace(row["channel_id"], row["placeholder_ts"], payload,
                                            give_up_after=60)
            elif row["thread_ts"]:  # only a status was shown: say it in the thread
                ts = await self.delivery.post(row["channel_id"], row["thread_ts"], payload)
                self.store.update_answer(row["id"], placeholder_ts=ts)
        except (SlackApiError, Undeliverable) as exc:
            log.warning("could not mark answer %d interrupted: %s", row["id"],
                        type(exc).__name__)
        # Recorded only once the user was told, so a cut-short attempt is retried at start.
        self.store.update_answer(row["id"], status="interrupted", error_kind="interrupted",
                                 error_message="the bot restarted", finished_at=time.time())


def _reasoning_tokens(completion: Completion) -> int | None:
    """The server's count when it gives one, else our estimate (usage rows keep the
    server's figure as reported)."""
    usage = completion.usage
    if usage and usage.reasoning_tokens:
        return usage.reasoning_tokens
    return estimate_tokens(completion.reasoning) if completion.reasoning else None
