"""Mentions, messages (channels, private channels, DMs, group DMs), edits and deletions."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from qwqbot.slack.intake import Intake


def register(app: AsyncApp, intake: Intake) -> None:
    # Both events arrive for one post that mentions the bot; the Intake answers the
    # post once, keyed on (channel, ts).
    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        intake.on_event(event)

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        intake.on_event(event)
