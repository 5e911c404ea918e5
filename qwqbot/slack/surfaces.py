"""Where an answer appears: a thread everyone sees, or privately through a response_url.

The answer pipeline talks only to a Surface, so a mention, a ``/qwq`` question and a
private ``/qwq private`` question share one path for progress, rendering and failures.

A thread, within Slack's limits (``limits.py``), in order of what each costs:

1. **Sign of life**: Slack's native "is thinking…" status under the thread
   (``status.py``); no post, no edit. Only where Slack refuses it does a placeholder
   message stand in (and then progress edits it, while chat.update has room).
2. **While the model thinks**: the status says how long, how much reasoning, the gist of
   the latest reasoning line, or the place in the queue; it is refreshed as that changes.
3. **While it writes**: the answer's words stream into one message (``live.py``) when the
   workspace's stream budgets have room; otherwise the status says it is writing.
4. **The answer**: the streamed message (or the placeholder) becomes the answer with one
   chat.update; otherwise the answer is one chat.postMessage, the floor for any answer.
   The rest of a long answer follows in the thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk.webhook.async_client import AsyncWebhookClient

from qwqbot.formatting import format_duration
from qwqbot.slack.calls import Calls
from qwqbot.slack.delivery import Delivery
from qwqbot.slack.inert import NOBODY, Audience, inert
from qwqbot.slack.limits import Limits, Priority
from qwqbot.slack.live import LiveAnswer, Streams
from qwqbot.slack.render import Payload, progress_message
from qwqbot.slack.status import ThreadStatus

log = logging.getLogger(__name__)
GIST_CHARS = 120


@dataclass(frozen=True)
class View:
    """What an answer in progress can truthfully say about itself."""

    phase: str  # queued | thinking | writing
    elapsed: float
    reasoning_chars: int = 0
    ahead: int = 0  # answers ahead in the queue
    gist: str = ""  # the latest line of reasoning
    answer: str = ""  # the answer so far

    def status(self) -> tuple[str, list[str]]:
        """The thread status and its rotating loading lines."""
        took = format_duration(self.elapsed)
        if self.phase == "queued":
            ahead = (f"{self.ahead} answer{'s' if self.ahead != 1 else ''} ahead of yours"
                     if self.ahead else "yours is next")
            return "is waiting for a free slot…", [f"Waiting for a free slot: {ahead}"]
        if self.phase == "writing":
            return "is writing the answer…", [f"Writing the answer… {took}"]
        lines = [f"Thinking… {took}"]
        if self.reasoning_chars:
            lines.append(f"Thinking… {took} · {self.reasoning_chars:,} characters of reasoning")
        if self.gist:
            lines.append(f"Weighing: {inert(self.gist)}")
        return "is thinking…", lines

    def placeholder(self) -> Payload:
        if self.phase == "queued":
            return progress_message(state="queued", elapsed=self.elapsed, reasoning_chars=0,
                                    queued_position=self.ahead)
        return progress_message(state=self.phase, elapsed=self.elapsed,
                                reasoning_chars=self.reasoning_chars)


def gist(reasoning: str) -> str:
    """The last complete line of reasoning, made inert and shortened: what the model is
    weighing now."""
    lines = [line.strip() for line in reasoning[-4000:].split("\n")[:-1] if line.strip()]
    if not lines:
        return ""
    line = inert(lines[-1])  # whole, before it is cut: a cut link is not judged as one
    return line if len(line) <= GIST_CHARS else line[: GIST_CHARS - 1].rstrip() + "…"


class Surface(Protocol):
    #: the message that will become the answer, when there is one already
    placeholder_ts: str | None

    @property
    def message_ts(self) -> str | None:
        """The message standing for the answer now (placeholder or streamed words)."""

    async def begin(self, view: View) -> None: ...
    async def progress(self, view: View) -> None: ...
    async def deliver(self, payloads: list[Payload], *, plain_text: str) -> list[str]: ...
    async def failure(self, payload: Payload) -> None: ...
    async def upload_reasoning(self, reasoning: str, answer_id: int) -> bool: ...


class ThreadSurface:
    def __init__(self, *, calls: Calls, delivery: Delivery, limits: Limits, streams: Streams,
                 channel: str, thread_ts: str, asker: str, team_id: str,
                 placeholder_ts: str | None = None,
                 status_interval: Callable[[], float] = lambda: 2.0,
                 reserve: Callable[[], int] = lambda: 0,
                 audience: Callable[[], Audience] = lambda: NOBODY) -> None:
        """``audience``: who the model's words may mention (``qwqbot.slack.inert``), asked
        once, when the first words are shown: by then the thread is in the store."""
        self.calls = calls
        self.delivery = delivery
        self.limits = limits
        self.channel = channel
        self.thread_ts = thread_ts
        self.placeholder_ts = placeholder_ts
        self._reserve = reserve
        self.status = ThreadStatus(calls, channel=channel, thread_ts=thread_ts,
                                   interval=status_interval)
        self._audience = audience
        self._known: Audience | None = None
        self.live = LiveAnswer(calls, streams, channel=channel, thread_ts=thread_ts,
                               recipient_user=asker, recipient_team=team_id, inert=self._inert)
        self._shown: Payload | None = None

    def _inert(self, text: str) -> str:
        if self._known is None:
            self._known = self._audience()
        return self._known(text)

    @property
    def message_ts(self) -> str | None:
        return self.live.ts or self.placeholder_ts

    async def begin(self, view: View) -> None:
        """The first sign of life; raises SlackApiError where the bot cannot post at all."""
        if self.placeholder_ts is not None:  # a retry: the message that showed the failure
            await self.delivery.replace(self.channel, self.placeholder_ts, view.placeholder())
            self._shown = view.placeholder()
            return
        if await self.status.show(*view.status(), force=True):
            return
        self.placeholder_ts = await self.delivery.post(self.channel, self.thread_ts,
                                                       view.placeholder())
        self._shown = view.placeholder()

    async def progress(self, view: View) -> None:
        if self.placeholder_ts is not None and not self.live.started:
            await self._edit_placeholder(view)
            return
        if view.phase == "writing":
            await self.live.feed(view.answer)
            if self.live.started:
                return
        await self.status.show(*view.status())

    async def _edit_placeholder(self, view: View) -> None:
        """Progress in the placeholder: only when chat.update has room beyond what the
        answers in flight will need for their final messages."""
        payload = view.placeholder()
        if payload == self._shown or not self.limits.ready("chat.update") or \
                self.limits.room("chat.update") <= self._reserve():
            return
        await self.delivery.replace(self.channel, str(self.placeholder_ts), payload,
                                    priority=Priority.STATUS, give_up_after=5)
        self._shown = payload

    async def deliver(self, payloads: list[Payload], *, plain_text: str) -> list[str]:
        first = self.placeholder_ts
        if self.live.started:
            await self.live.stop()
            first = self.live.ts
        return await self.delivery.deliver(self.channel, self.thread_ts, first, payloads,
                                           plain_text=plain_text)

    async def failure(self, payload: Payload) -> None:
        first = self.placeholder_ts
        if self.live.started:
            await self.live.stop()
            first = self.live.ts
        if first is None:
            self.placeholder_ts = await self.delivery.post(self.channel, self.thread_ts, payload)
        else:
            await self.delivery.replace(self.channel, first, payload)

    async def upload_reasoning(self, reasoning: str, answer_id: int) -> bool:
        return await self.delivery.upload_reasoning(self.channel, self.thread_ts, reasoning,
                                                    answer_id)


class EphemeralSurface:
    """Only the asker sees it: messages through a slash command's or button's response_url.

    Slack accepts 5 posts per response_url within 30 minutes
    (https://docs.slack.dev/interactivity/handling-user-interaction#message_responses), so
    there is no live progress and no streaming: one placeholder, then the answer
    replacing it, in at most ``USES`` messages.
    """

    placeholder_ts: str | None = None  # ephemeral messages have no ts we could edit later
    message_ts: str | None = None
    USES = 5

    def __init__(self, response_url: str, *, preface: str | None = None,
                 session: Any = None) -> None:
        self.webhook = AsyncWebhookClient(response_url, session=session, timeout=30)
        self.preface = preface
        self.used = 0

    async def _send(self, payload: Payload, *, replace: bool) -> None:
        body = {"response_type": "ephemeral", "replace_original": replace, **payload}
        self.used += 1
        response = await self.webhook.send_dict(body)
        if response.status_code != 200:
            log.warning("response_url refused a message: %s %s", response.status_code,
                        response.body[:100])

    async def begin(self, view: View) -> None:
        await self._send(self._prefaced(view.placeholder()), replace=True)

    async def progress(self, view: View) -> None:
        return None

    async def deliver(self, payloads: list[Payload], *, plain_text: str) -> list[str]:
        room = self.USES - self.used
        if len(payloads) > room:
            hidden = len(payloads) - room + 1
            payloads = [*payloads[: room - 1], {
                "text": f"… the answer goes on for {hidden} more parts, more than Slack lets "
                        "me show privately. Ask me in a direct message to get all of it."}]
        for i, payload in enumerate(payloads):
            await self._send(self._prefaced(payload) if i == 0 else payload, replace=i == 0)
        return []  # ephemeral messages have no ts

    async def failure(self, payload: Payload) -> None:
        await self._send(self._prefaced(payload), replace=True)

    async def upload_reasoning(self, reasoning: str, answer_id: int) -> bool:
        return False  # a file would be visible to the channel; the reasoning stays private

    def _prefaced(self, payload: Payload) -> Payload:
        if not self.preface:
            return payload
        note = {"type": "context", "elements": [{"type": "mrkdwn", "text": self.preface}]}
        blocks = payload.get("blocks") or [
            {"type": "section", "text": {"type": "mrkdwn", "text": payload.get("text", "")}}]
        return {**payload, "blocks": [note, *blocks]}
