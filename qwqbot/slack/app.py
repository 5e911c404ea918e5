"""Build the Bolt app: a Web API client that survives rate limits, cross-cutting middleware,
and the listeners. Listeners only hand off to the Answerer; nothing slow runs before Slack
has its acknowledgement."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.config import Settings
from qwqbot.slack.identity import BotIdentity
from qwqbot.slack.listeners import register_all
from qwqbot.slack.services import Services
from qwqbot.store import Store

log = logging.getLogger(__name__)


def make_client(settings: Settings, session: aiohttp.ClientSession | None = None,
                ) -> AsyncWebClient:
    """slack_sdk retries only connection errors by default; a 429 or a 5xx must not lose an
    answer, so those are retried too (honouring Retry-After)."""
    assert settings.slack_bot_token is not None
    return AsyncWebClient(
        token=settings.slack_bot_token.get(),
        base_url=settings.slack_api_url,
        timeout=30,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=8),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ],
    )


def make_raw_client(settings: Settings, session: aiohttp.ClientSession | None = None,
                    ) -> AsyncWebClient:
    """For every post and edit: no rate-limit retries in the SDK. ``slack.calls.Calls``
    waits for room within Slack's limits and retries 429s and 5xx itself, for as long as it
    takes, so a retry counts against the same limits as the call it repeats."""
    assert settings.slack_bot_token is not None
    return AsyncWebClient(
        token=settings.slack_bot_token.get(), base_url=settings.slack_api_url, timeout=10,
        session=session, retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1),
                                         AsyncServerErrorRetryHandler(max_retry_count=2)])


class _DropMessage(logging.Filter):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def _quiet_bolts_token_warning() -> None:
    """Bolt reads SLACK_BOT_TOKEN from the environment whenever ``token`` is not passed
    (``token = token or os.environ.get("SLACK_BOT_TOKEN")``, slack_bolt/app/async_app.py) and
    then, ``client`` being given too, warns that the token will be unused: on every start of
    a deployment that sets its tokens as environment variables. Unused is what is meant (the
    client below gets its token from ``authorize``), and no argument avoids the warning: a
    token passed with the client warns the same, and a token without the client makes Bolt
    warn that ``authorize`` ignores it. So that one line, and only it, is dropped."""
    bolt = logging.getLogger("slack_bolt.AsyncApp")  # Bolt's framework logger for AsyncApp
    if not any(isinstance(f, _DropMessage) for f in bolt.filters):
        bolt.addFilter(_DropMessage(warning_client_prioritized_and_token_skipped()))


def build_app(services: Services) -> AsyncApp:
    settings, client, store = services.settings, services.client, services.store
    _quiet_bolts_token_warning()
    app = AsyncApp(
        # Bolt's default single-workspace authorization calls auth.test on every request
        # until its first call returns, so a burst at start made one call per event
        # (slack_bolt/middleware/authorization/async_single_team_authorization.py). The bot
        # already has that result from its start-up auth.test: ``authorize`` hands it over
        # (Bolt's public hook, https://docs.slack.dev/tools/bolt-python/concepts/authorization/),
        # at the cost of one AuthorizeResult per request and no Web API call. Setting the
        # single-team middleware's private ``auth_test_result`` would do the same but breaks
        # silently when Bolt renames it. Bolt ignores ``token`` when both are given, so the
        # app's client is a tokenless copy of ours (Bolt builds a client per request from it,
        # with the token ``authorize`` returns).
        client=_tokenless(client),
        authorize=_authorize(services.identity, client.token),
        signing_secret=settings.slack_signing_secret.get()
        if settings.slack_signing_secret else None,
        # Not Bolt's check: in HTTP mode server.py verifies every request before Bolt sees it,
        # with one short log line for a failure (Bolt's logs the whole body at INFO); Socket
        # Mode envelopes are authenticated by the app token, not signed.
        request_verification_enabled=False,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    app.middleware(_dedupe(store))
    register_all(app, services)
    return app


def _tokenless(client: AsyncWebClient) -> AsyncWebClient:
    return AsyncWebClient(token=None, base_url=client.base_url, timeout=client.timeout,
                          session=client.session, logger=client.logger,
                          retry_handlers=client.retry_handlers)


def _authorize(identity: BotIdentity, token: str | None) -> Any:
    result = AuthorizeResult(enterprise_id=identity.enterprise_id, team_id=identity.team_id,
                             url=identity.url, bot_user_id=identity.user_id,
                             bot_id=identity.bot_id, bot_token=token, bot_scopes=identity.scopes)

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        """One workspace, one bot token: every request gets the start-up result."""
        return result

    return authorize


def _dedupe(store: Store) -> Any:
    async def dedupe_deliveries(body: dict[str, Any], next: Any) -> BoltResponse | None:
        """Slack redelivers an event when our ack was late (X-Slack-Retry-Num) and Bolt does
        not dedupe: the event id is claimed in SQLite, so a redelivery is dropped even after
        a restart."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            event = body.get("event") or {}
            if not store.claim_event(str(event_id), event_type=str(event.get("type") or ""),
                                     channel_id=str(event.get("channel") or ""),
                                     ts=str(event.get("ts") or "")):
                log.info("dropping redelivered event %s", event_id)
                return BoltResponse(status=200, body="")
        await next()
        return None

    return dedupe_deliveries
