"""``/qwq``: ack within Slack's 3 seconds, from a pure parse; the work runs after the ack."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond

from qwqbot.slack.commands import COMMAND, CommandContext, UsageError, parse_command, usage_help
from qwqbot.slack.services import Services
from qwqbot.store.store import StoreBusy

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    @app.command(COMMAND)
    async def on_qwq(ack: Any, command: dict[str, Any], respond: AsyncRespond) -> None:
        text = str(command.get("text") or "")
        try:
            sub, args = parse_command(text)
        except UsageError as exc:
            await ack(text=usage_help(exc.problem, exc.topic), response_type="ephemeral")
            return
        if sub.name == "help":
            await ack(text=usage_help(), response_type="ephemeral")
            return
        await ack()
        ctx = CommandContext(
            team_id=str(command.get("team_id") or ""),
            channel_id=str(command.get("channel_id") or ""),
            channel_name=str(command.get("channel_name") or ""),
            user_id=str(command.get("user_id") or ""),
            response_url=str(command.get("response_url") or ""),
            trigger_id=str(command.get("trigger_id") or ""),
            services=services, respond=respond)
        try:
            await sub.run(args, ctx)
        except StoreBusy as exc:
            log.warning("/qwq %s in %s not done: %s", sub.name, ctx.channel_id, exc.user_message)
            await respond(text=f":hourglass: {exc.one_line()}", response_type="ephemeral")
        except Exception:
            log.exception("/qwq %s failed in %s", sub.name, ctx.channel_id)
            await respond(text=":warning: Something went wrong handling that command. Please "
                          "try again; the bot's operator can find details in its log.",
                          response_type="ephemeral")
