"""Putting a finished answer into Slack without losing any of it.

The placeholder becomes the first message of the answer (so no stray "thinking" message is
left behind); the rest of a long answer follows in the thread. When Slack refuses a payload
(``msg_too_long``, ``invalid_blocks``, ``msg_blocks_too_long``), it is sent again as plain
text chunks; reasoning too long for the attachment is uploaded whole as a text file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.slack.progress import UpdateBudget
from qwqbot.slack.render import Payload, split_message

log = logging.getLogger(__name__)

#: Errors that mean "this payload's shape or size", fixed by sending simpler payloads.
PAYLOAD_ERRORS = {"msg_too_long", "invalid_blocks", "msg_blocks_too_long", "invalid_attachments",
                  "too_many_attachments", "invalid_arguments"}
PLAIN_CHUNK = 3500
UPDATE_ATTEMPTS = 8  # under the 4,000 characters Slack advises for `text`


def slack_error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "unknown_error")


class Delivery:
    def __init__(self, client: AsyncWebClient, budget: UpdateBudget,
                 update_client: AsyncWebClient | None = None) -> None:
        self.client = client
        self.budget = budget
        #: chat.update goes through a client without the SDK's 429 retries, so that every
        #: attempt, retries included, is counted against the budget
        self.update_client = update_client or client

    async def replace(self, channel: str, ts: str, payload: Payload) -> None:
        """Edit a message, within the workspace's chat.update budget; 429s are waited out."""
        for attempt in range(UPDATE_ATTEMPTS):
            await self.budget.take()
            try:
                await self.update_client.chat_update(channel=channel, ts=ts,
                                                     **_with_defaults(payload))
                return
            except SlackApiError as exc:
                if exc.response.status_code != 429 or attempt == UPDATE_ATTEMPTS - 1:
                    raise
                retry_after = float(exc.response.headers.get("retry-after", 1) or 1)
                self.budget.pause(retry_after)
                await asyncio.sleep(retry_after)

    async def post(self, channel: str, thread_ts: str, payload: Payload) -> str:
        response = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                                      **payload)
        return str(response["ts"])

    async def deliver(self, channel: str, thread_ts: str, placeholder_ts: str,
                      payloads: list[Payload], *, plain_text: str) -> list[str]:
        """Send the answer's messages, the first into the placeholder. Returns their ts.

        ``plain_text`` is the whole answer as mrkdwn, used when Slack refuses the rich form.
        """
        try:
            return await self._send(channel, thread_ts, placeholder_ts, payloads)
        except SlackApiError as exc:
            if slack_error(exc) not in PAYLOAD_ERRORS:
                raise
            log.warning("Slack refused the answer payload in %s (%s); sending plain text",
                        channel, slack_error(exc))
        attachments = payloads[0].get("attachments") if payloads else None
        plain = [{"text": piece} for piece in split_message(plain_text, PLAIN_CHUNK)] or [
            {"text": "_(empty answer)_"}]
        if attachments:
            plain[0]["attachments"] = attachments
        try:
            return await self._send(channel, thread_ts, placeholder_ts, plain)
        except SlackApiError as exc:
            if slack_error(exc) not in PAYLOAD_ERRORS or not attachments:
                raise
            plain[0].pop("attachments")
            return await self._send(channel, thread_ts, placeholder_ts, plain)

    async def _send(self, channel: str, thread_ts: str, placeholder_ts: str,
                    payloads: list[Payload]) -> list[str]:
        await self.replace(channel, placeholder_ts, payloads[0])
        sent = [placeholder_ts]
        for payload in payloads[1:]:
            sent.append(await self.post(channel, thread_ts, payload))
        return sent

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
    # ("include an empty array to remove them"): the placeholder's must not survive.
    return {"blocks": [], "attachments": [], **payload}
