"""Thin listeners: ack, decide nothing slow, hand off. One module per surface."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from qwqbot.slack.commands import Services
from qwqbot.slack.intake import Intake
from qwqbot.slack.listeners import actions, commands, events, home


def register_all(app: AsyncApp, services: Services) -> None:
    events.register(app, Intake(services.answerer, tracked=services.tracked))
    actions.register(app, services.answerer)
    commands.register(app, services)
    home.register(app, services)
