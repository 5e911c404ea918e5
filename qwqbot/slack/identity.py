"""Who the bot is in this workspace, from ``auth.test`` at start.

A bad token stops the bot with one clear line at start rather than at the first mention
(https://docs.slack.dev/reference/methods/auth.test). The result is also what Bolt's
authorization is given (``slack.app``), so no request ever calls auth.test again.
``qwqbot run`` waits out a Slack that is down or busy (``backoff``, see startup.py); the
one-shot commands fail at the first error instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.errors import QwqbotError
from qwqbot.slack.startup import Backoff, error_of, retrying


@dataclass(frozen=True)
class BotIdentity:
    user_id: str
    bot_id: str
    team_id: str
    name: str = "qwqbot"
    url: str = "https://slack.com/"  # the workspace's address, for permalinks
    enterprise_id: str | None = None  # Enterprise Grid org, when there is one
    #: the token's scopes, as auth.test's X-OAuth-Scopes header lists them
    scopes: str | None = None


def _unheard(reason: str) -> None:
    """No one to tell why the bot is waiting."""


async def authenticate(client: AsyncWebClient, api_url: str, *, backoff: Backoff | None = None,
                       waiting: Callable[[str], None] = _unheard) -> BotIdentity:
    """The bot's identity from auth.test. With ``backoff``, transient failures are retried
    (each reason handed to ``waiting``) and only a refusal of the token raises."""
    try:
        if backoff is None:
            auth = await client.auth_test()
        else:
            auth = await retrying(client.auth_test, what="auth.test", backoff=backoff,
                                  waiting=waiting)
    except SlackApiError as exc:
        raise QwqbotError(
            f"Slack rejected SLACK_BOT_TOKEN ({error_of(exc) or 'no error code'}).",
            hint="Copy the Bot User OAuth Token (xoxb-...) from your app's OAuth & Permissions "
            "page, and reinstall the app if it was revoked.") from exc
    except (SlackClientError, aiohttp.ClientError, OSError) as exc:
        raise QwqbotError(f"Could not reach Slack at {api_url} ({type(exc).__name__}).",
                          hint="Check the network, or SLACK_API_URL.") from exc
    return BotIdentity(user_id=str(auth["user_id"]), bot_id=str(auth.get("bot_id") or ""),
                       team_id=str(auth.get("team_id") or ""),
                       name=str(auth.get("user") or "qwqbot"),
                       url=str(auth.get("url") or "https://slack.com/"),
                       enterprise_id=auth.get("enterprise_id") or None,
                       scopes=auth.headers.get("x-oauth-scopes") or auth.headers.get(
                           "X-OAuth-Scopes"))
