"""Thin listeners: ack, decide nothing slow, hand off. One module per surface."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from qwqbot.slack.listeners import actions, app_events, assistant, commands, events, home
from qwqbot.slack.services import Services


def register_all(app: AsyncApp, services: Services) -> None:
    # First: its middleware answers app-level requests and, once the token is revoked,
    # drops everything before any other listener could call Slack.
    app_events.register(app, services)
    events.register(app, services.intake)
    actions.register(app, services)
    commands.register(app, services)
    home.register(app, services)
    # Slack's AI app split view: DM threads' messages go through it to the same Intake.
    assistant.register(app, services)
