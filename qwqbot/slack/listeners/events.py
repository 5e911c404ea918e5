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

#: The events whose facts the Intake takes (qwqbot.slack.events.parse_event).
EVENTS = ("app_mention", "message", "file_deleted", "file_change")


def register(app: AsyncApp, intake: Intake) -> None:
    async def on_event(event: dict[str, Any]) -> None:
        intake.on_event(event)

    # app_mention and message both arrive for one post that mentions the bot; the Intake
    # answers the post once, keyed on (channel, ts). file_deleted
    # (https://docs.slack.dev/reference/events/file_deleted): the file's text leaves the store
    # at once. file_change (https://docs.slack.dev/reference/events/file_change, an edited
    # snippet or post): read afresh, details from files.info first, when an answer next needs it.
    for name in EVENTS:
        app.event(name)(on_event)
