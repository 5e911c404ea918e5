"""Thin listeners: ack, decide nothing slow, hand off. One module per surface."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from qwqbot.slack.answerer import Answerer
from qwqbot.slack.listeners import actions, events


def register_all(app: AsyncApp, answerer: Answerer) -> None:
    events.register(app, answerer)
    actions.register(app, answerer)
