"""The same bot over Socket Mode, against the fake's WebSocket endpoint."""

from __future__ import annotations

import json

import pytest

from qwqbot.config import load_settings
from qwqbot.errors import QwqbotError
from qwqbot.slack.server import Bot
from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT


def settings_for(slack, model_server, tmp_path, **extra):
    return load_settings({
        "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_APP_TOKEN": "xapp-test-token",
        "SLACK_API_URL": slack.api_url, "AIML_API_KEY": "test-key",
        "AIML_API_BASE_URL": model_server.base_url, "QWQBOT_DB": str(tmp_path / "s.db"),
        **extra}, env_file=None)


async def test_socket_mode_answers_a_mention_and_acks_envelopes(slack, model_server, tmp_path):
    model_server.enqueue(think_stream("socket thoughts", "Over the socket."))
    bot = Bot(settings_for(slack, model_server, tmp_path), mode="socket", port=0)
    await bot.start()
    try:
        await slack.wait_socket()
        ts = slack.add_message("C1", user="U1", text=f"<@{BOT}> hi")
        envelope = slack.send_socket_event({"type": "app_mention", "channel": "C1", "user": "U1",
                                            "text": f"<@{BOT}> hi", "ts": ts})
        await slack.wait_ack(envelope)
        await slack.wait_for(lambda: any(
            "Over the socket." in json.dumps(m.get("blocks", []))
            for m in slack.messages("C1", ts)), timeout=10)
        # a redelivery of the same event over the socket is dropped
        slack.send_socket_event({"type": "app_mention", "channel": "C1", "user": "U1",
                                 "text": f"<@{BOT}> hi", "ts": ts},
                                event_id=slack.socket_envelopes[-1]["payload"]["event_id"],
                                retry_attempt=1)
    finally:
        await bot.stop()
    assert len(model_server.requests) == 1


async def test_wrong_app_token_fails_fast(slack, model_server, tmp_path):
    bot = Bot(settings_for(slack, model_server, tmp_path, SLACK_APP_TOKEN="xapp-wrong"),
              mode="socket", port=0)
    with pytest.raises(QwqbotError, match=r"Slack rejected SLACK_APP_TOKEN \(invalid_auth\)"):
        await bot.start()


async def test_socket_mode_start_opens_one_connection(slack, model_server, tmp_path):
    bot = Bot(settings_for(slack, model_server, tmp_path), mode="socket", port=0)
    await bot.start()
    try:
        await slack.wait_socket()
    finally:
        await bot.stop()
    assert len(slack.calls_to("apps.connections.open")) == 1
    assert slack.calls_to("auth.test") and len(slack.calls_to("auth.test")) == 1
