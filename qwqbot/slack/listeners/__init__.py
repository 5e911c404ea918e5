"""Thin listeners: ack, decide nothing slow, hand off. One module per surface."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from qwqbot.slack.answerer import Answerer
from qwqbot.slack.commands import Services
from qwqbot.slack.intake import Intake
from qwqbot.slack.listeners import actions, commands, events


def register_all(app: AsyncApp, answerer: Answerer) -> None:
    events.register(app, Intake(answerer))
    actions.register(app, answerer)
    commands.register(app, Services(answerer=answerer, store=answerer.store,
                                    client=answerer.client))
