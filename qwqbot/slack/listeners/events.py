"""Mentions, messages (channels, private channels, DMs, group DMs), edits and deletions,
and the file events: a shared file deleted or changed in Slack.

Every event the manifest subscribes to needs a listener here: Bolt drops an event no
listener matches (logging "Unhandled request"), so without one the store would keep the
text of a deleted file, or the stale text of an edited snippet.
"""

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

    # https://docs.slack.dev/reference/events/file_deleted: its text leaves the store at once.
    @app.event("file_deleted")
    async def on_file_deleted(event: dict[str, Any]) -> None:
        intake.on_event(event)

    # https://docs.slack.dev/reference/events/file_change (an edited snippet or post): it is
    # read afresh, details from files.info first, when an answer next needs it.
    @app.event("file_change")
    async def on_file_change(event: dict[str, Any]) -> None:
        intake.on_event(event)
