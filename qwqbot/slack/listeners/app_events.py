"""Events about the app itself rather than a conversation: Slack's rate limiting of our
event deliveries, revoked tokens, and the app being uninstalled.

- ``app_rate_limited`` is not an ``event_callback`` but a request of its own type, sent when
  the workspace's events exceed 30,000 an hour for the app
  (https://docs.slack.dev/reference/events/app_rate_limited). Bolt matches no listener to it
  and answers 404; the operator should hear of it instead, so it is answered 200 with one
  WARNING line.
- ``tokens_revoked`` (https://docs.slack.dev/reference/events/tokens_revoked) and
  ``app_uninstalled`` (https://docs.slack.dev/reference/events/app_uninstalled): once the bot
  token is gone every Web API call would fail, so the bot stops making them: requests from
  Slack are acknowledged and dropped, scheduled digests are paused, and the log says so once.
  Stored data is kept (see the README); the bot needs a new token and a restart.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from qwqbot.slack.services import Services

log = logging.getLogger(__name__)


class TokenState:
    """Whether the bot token still works, as far as Slack has told us."""

    def __init__(self) -> None:
        self.revoked = False


def register(app: AsyncApp, services: Services) -> TokenState:
    state = TokenState()
    bot_user_id = services.identity.user_id

    def stop(why: str) -> None:
        if state.revoked:
            return
        state.revoked = True
        # APScheduler's pause keeps the jobs, so nothing is lost if the process restarts
        # with a new token.
        if services.jobs.running:
            services.jobs.pause()
        log.warning("%s: the bot token no longer works, so qwqbot makes no more Web API "
                    "calls; events are acknowledged and dropped. Stored data is kept. Install "
                    "the app again and restart qwqbot with the new SLACK_BOT_TOKEN.", why)

    @app.middleware
    async def app_level(body: dict[str, Any], next: Any) -> BoltResponse | None:
        if body.get("type") == "app_rate_limited":
            log.warning("Slack is rate limiting event deliveries to this app (team %s, minute "
                        "starting %s): events over 30,000 an hour are not sent "
                        "(https://docs.slack.dev/reference/events/app_rate_limited)",
                        body.get("team_id"), body.get("minute_rate_limited"))
            return BoltResponse(status=200, body="")
        if state.revoked:
            return BoltResponse(status=200, body="")
        await next()
        return None

    @app.event("tokens_revoked")
    async def on_tokens_revoked(event: dict[str, Any]) -> None:
        bots = (event.get("tokens") or {}).get("bot") or []
        if bot_user_id in bots:
            stop("Slack revoked the bot token (tokens_revoked)")
        else:
            log.info("tokens_revoked for other tokens than the bot's; nothing to do")

    @app.event("app_uninstalled")
    async def on_app_uninstalled() -> None:
        stop("the app was uninstalled from the workspace (app_uninstalled)")

    return state
