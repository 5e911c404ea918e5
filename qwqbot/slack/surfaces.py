"""Where an answer appears: a thread everyone sees, or privately through a response_url.

The answer pipeline talks only to a Surface, so a mention, a ``/qwq`` question and a
private ``/qwq private`` question share one path for progress, rendering and failures.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from qwqbot.slack.delivery import Delivery
from qwqbot.slack.render import Payload

log = logging.getLogger(__name__)


class Surface(Protocol):
    #: whether progress edits are worth sending (a response_url allows only 5 posts)
    live_progress: bool
    #: the placeholder message's ts, when the surface has one that outlives the process
    placeholder_ts: str | None

    async def placeholder(self, payload: Payload) -> None: ...
    async def progress(self, payload: Payload) -> None: ...
    async def deliver(self, payloads: list[Payload], *, plain_text: str) -> list[str]: ...
    async def failure(self, payload: Payload) -> None: ...
    async def upload_reasoning(self, reasoning: str, answer_id: int) -> bool: ...


class ThreadSurface:
    """A placeholder in a thread that becomes the answer; the rest follows in the thread."""

    live_progress = True

    def __init__(self, delivery: Delivery, progress_client: AsyncWebClient, *, channel: str,
                 thread_ts: str, placeholder_ts: str | None = None) -> None:
        self.delivery = delivery
        self.progress_client = progress_client
        self.channel = channel
        self.thread_ts = thread_ts
        self.placeholder_ts = placeholder_ts

    async def placeholder(self, payload: Payload) -> None:
        if self.placeholder_ts is None:
            self.placeholder_ts = await self.delivery.post(self.channel, self.thread_ts, payload)
        else:  # a retry reuses the message that showed the failure
            await self.delivery.replace(self.channel, self.placeholder_ts, payload)

    async def progress(self, payload: Payload) -> None:
        assert self.placeholder_ts is not None
        await self.progress_client.chat_update(channel=self.channel, ts=self.placeholder_ts,
                                               **payload)

    async def deliver(self, payloads: list[Payload], *, plain_text: str) -> list[str]:
        assert self.placeholder_ts is not None
        return await self.delivery.deliver(self.channel, self.thread_ts, self.placeholder_ts,
                                           payloads, plain_text=plain_text)

    async def failure(self, payload: Payload) -> None:
        assert self.placeholder_ts is not None
        await self.delivery.replace(self.channel, self.placeholder_ts, payload)

    async def upload_reasoning(self, reasoning: str, answer_id: int) -> bool:
        return await self.delivery.upload_reasoning(self.channel, self.thread_ts, reasoning,
                                                    answer_id)


class EphemeralSurface:
    """Only the asker sees it: messages through a slash command's or button's response_url.

    Slack accepts 5 posts per response_url within 30 minutes, so there is no live progress:
    one placeholder, then the answer replacing it, in at most MAX_MESSAGES messages.
    """

    live_progress = False
    placeholder_ts: str | None = None  # ephemeral messages have no ts we could edit later
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

    async def placeholder(self, payload: Payload) -> None:
        await self._send(self._prefaced(payload), replace=True)

    async def progress(self, payload: Payload) -> None:
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
