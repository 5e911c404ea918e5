"""The digest core's Slack operations (``qwqbot.digest.port.DigestSlack``), done with the
bot's Web API client, its caches and its renderer.

A digest is the model's words posted into a whole channel, so it goes through the same
``inert`` as answers (``qwqbot.slack.inert``): no broadcasts, no disguised links, and only
the people who wrote in the period summarised may be mentioned; anyone else is named."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TypeVar

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.digest.port import DigestPost, SlackCallError
from qwqbot.slack.answer_blocks import answer_payloads
from qwqbot.slack.channels import Channels
from qwqbot.slack.delivery import slack_error
from qwqbot.slack.history import backfill_period
from qwqbot.slack.inert import Audience
from qwqbot.slack.people import People
from qwqbot.slack.render import reasoning_attachment
from qwqbot.slacktext import mentioned_ids
from qwqbot.store import Store

T = TypeVar("T")


class SlackDigestPort:
    def __init__(self, *, client: AsyncWebClient, store: Store, people: People,
                 channels: Channels, team_url: str, bot_user_id: str | None = None) -> None:
        self.client = client
        #: the bot's own uploads (its reasoning files) are not recorded as shared files
        self.bot_user_id = bot_user_id
        self.store = store
        self.people = people
        self.channels = channels
        self.team_url = team_url.rstrip("/") + "/"

    async def read_period(self, channel_id: str, start: float, end: float) -> int:
        return await _slack(lambda: backfill_period(self.client, self.store, channel_id,
                                                    start, end, bot_user_id=self.bot_user_id))

    async def names(self, user_ids: set[str], texts: Iterable[str]) -> dict[str, str]:
        return await self.people.names(user_ids | mentioned_ids(texts))

    async def channel_name(self, channel_id: str) -> str:
        return await self.channels.name(channel_id)

    def permalink(self, channel_id: str, ts: str) -> str:
        # The permalink shape Slack documents for chat.getPermalink
        # (https://docs.slack.dev/reference/methods/chat.getPermalink); building it saves a
        # Web API call per thread.
        return f"{self.team_url}archives/{channel_id}/p{ts.replace('.', '')}"

    async def post_digest(self, channel_id: str, digest: DigestPost) -> str:
        audience = await self.audience(digest.authors, [digest.markdown, digest.reasoning])
        payloads = answer_payloads(
            digest.markdown, inert=audience,
            note=f"Summarised in {digest.parts} parts" if digest.parts > 1 else None)
        if digest.reasoning:
            payloads[0]["attachments"] = [reasoning_attachment(
                digest.reasoning, tokens=None, seconds=digest.seconds, inert=audience,
                omitted_hint="the bot keeps the full text").payload]
        sent: list[str] = []
        for payload in payloads:
            response = await _slack(partial(self.client.chat_postMessage, channel=channel_id,
                                            **payload))
            sent.append(str(response["ts"]))
        return sent[0]

    async def audience(self, authors: frozenset[str], texts: list[str]) -> Audience:
        """The period's authors may be mentioned; anyone else the digest names is shown by
        name."""
        names = await self.people.names(mentioned_ids(texts) - authors)
        return Audience(authors,
                        names=lambda user: names.get(user) if names.get(user) != user else None)

    async def post_note(self, channel_id: str, text: str) -> None:
        await _slack(lambda: self.client.chat_postMessage(channel=channel_id, text=text))


async def _slack(call: Callable[[], Awaitable[T]]) -> T:
    """Slack's refusals as the core's SlackCallError, with the cause kept for the log."""
    try:
        return await call()
    except SlackApiError as exc:
        raise SlackCallError(slack_error(exc)) from exc
    except SlackClientError as exc:
        raise SlackCallError(type(exc).__name__) from exc
