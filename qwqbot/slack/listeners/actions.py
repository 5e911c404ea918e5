"""Buttons on the bot's messages."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond

from qwqbot.slack.answerer import Answerer
from qwqbot.slack.render import RETRY_ACTION_ID


def register(app: AsyncApp, answerer: Answerer) -> None:
    @app.action(RETRY_ACTION_ID)
    async def on_retry(ack: Any, body: dict[str, Any], action: dict[str, Any],
                       respond: AsyncRespond) -> None:
        await ack()
        try:
            answer_id = int(action.get("value", ""))
        except ValueError:
            return
        user = (body.get("user") or {}).get("id", "")
        if not answerer.retry(answer_id, user_id=user, response_url=body.get("response_url")):
            await respond(text="That question is already being answered again.",
                          response_type="ephemeral", replace_original=False)
