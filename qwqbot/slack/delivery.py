"""Putting a finished answer into Slack without losing any of it.

Every post and edit goes through ``Calls`` (within Slack's limits, 429s waited out, 5xx
retried until a deadline). The first message of the answer either replaces a message that
is already there (the streamed one, a placeholder, the answer being regenerated) or is
posted; the rest of a long answer follows in the thread. When Slack refuses a payload's
shape or size (``msg_too_long``, ``invalid_blocks``, ``msg_blocks_too_long``), it is sent
again as plain text chunks; reasoning too long for the attachment is uploaded whole as a
text file.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.calls import Calls, slack_error
from qwqbot.slack.limits import Priority
from qwqbot.slack.render import Payload, split_message

log = logging.getLogger(__name__)

#: Errors that mean "this payload's shape or size", fixed by sending simpler payloads.
PAYLOAD_ERRORS = {"msg_too_long", "invalid_blocks", "msg_blocks_too_long", "invalid_attachments",
                  "too_many_attachments", "invalid_arguments", "markdown_text_conflict"}
PLAIN_CHUNK = 3500  # under the 4,000 characters Slack advises for `text`

__all__ = ["PAYLOAD_ERRORS", "Delivery", "slack_error"]


class Delivery:
    def __init__(self, calls: Calls, client: AsyncWebClient) -> None:
        self.calls = calls
        #: for files_upload_v2, which makes three calls of its own
        self.client = client

    async def replace(self, channel: str, ts: str, payload: Payload, *,
                      priority: Priority = Priority.ANSWER,
                      give_up_after: float | None = None) -> None:
        await self.calls.call("chat.update", channel=channel, priority=priority,
                              give_up_after=give_up_after, ts=ts, **_with_defaults(payload))

    async def post(self, channel: str, thread_ts: str | None, payload: Payload, *,
                   priority: Priority = Priority.ANSWER) -> str:
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        response = await self.calls.call("chat.postMessage", channel=channel,
                                         priority=priority, **extra, **payload)
        return str(response["ts"])

    async def deliver(self, channel: str, thread_ts: str, first_ts: str | None,
                      payloads: list[Payload], *, plain_text: str) -> list[str]:
        """Send the answer's messages, the first into ``first_ts`` when given. Returns
        their ts. ``plain_text`` is the whole answer as mrkdwn, for when Slack refuses the
        rich form."""
        # Messages that exist already, in order: a refused payload is sent again into
        # them, so a retry in plain text never repeats a part that got through.
        existing = [first_ts] if first_ts is not None else []
        try:
            return await self._send(channel, thread_ts, existing, payloads)
        except SlackApiError as exc:
            if slack_error(exc) not in PAYLOAD_ERRORS:
                raise
            log.warning("Slack refused the answer payload in %s (%s); sending plain text",
                        channel, slack_error(exc))
        attachments = payloads[0].get("attachments") if payloads else None
        plain: list[Payload] = [{"text": piece} for piece in split_message(plain_text,
                                                                           PLAIN_CHUNK)]
        plain = plain or [{"text": "_(empty answer)_"}]
        if attachments:
            plain[0]["attachments"] = attachments
        try:
            return await self._send(channel, thread_ts, existing, plain)
        except SlackApiError as exc:
            if slack_error(exc) not in PAYLOAD_ERRORS or not attachments:
                raise
            plain[0].pop("attachments")
            return await self._send(channel, thread_ts, existing, plain)

    async def _send(self, channel: str, thread_ts: str, existing: list[str],
                    payloads: list[Payload]) -> list[str]:
        """Replace the ``existing`` messages in order, post the rest; ``existing`` grows
        as messages are posted, so the caller knows what is in Slack if this fails."""
        for i, payload in enumerate(payloads):
            if i < len(existing):
                await self.replace(channel, existing[i], payload)
            else:
                existing.append(await self.post(channel, thread_ts, payload))
        return existing[: len(payloads)]

    async def upload_reasoning(self, channel: str, thread_ts: str, reasoning: str,
                               answer_id: int) -> bool:
        """The whole reasoning as a text file in the thread; False when Slack won't take it."""
        try:
            await self.client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, content=reasoning,
                filename=f"reasoning-{answer_id}.md", title="Full reasoning")
        except SlackApiError as exc:
            log.warning("could not upload the full reasoning of answer %d to %s: %s",
                        answer_id, channel, slack_error(exc))
            return False
        return True


def _with_defaults(payload: Payload) -> dict[str, Any]:
    # chat.update keeps the message's previous blocks/attachments unless told otherwise
    # ("include an empty array to remove them"): a placeholder's must not survive.
    return {"blocks": [], "attachments": [], **payload}
