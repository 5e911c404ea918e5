"""Buttons on the bot's messages: Retry, 👍 / 👎 and Regenerate. Retry and Regenerate ask
the model again, so the answerer checks them like a new question (``Answerer.reask``)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond

from qwqbot.slack.render import FEEDBACK_ACTION_ID, REGENERATE_ACTION_ID, RETRY_ACTION_ID
from qwqbot.slack.services import Services

# Slack's feedback_buttons element (one action id, the pressed button's value), and the
# plain 👍/👎 buttons of answers posted before it.
_FEEDBACK = re.compile(rf"^{FEEDBACK_ACTION_ID}(_up|_down)?$")


def _answer_id(value: str) -> int | None:
    head = value.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def register(app: AsyncApp, services: Services) -> None:
    answerer = services.answerer

    async def reask(ack: Any, body: dict[str, Any], action: dict[str, Any],
                    respond: AsyncRespond, *, regenerate: bool) -> None:
        await ack()
        answer_id = _answer_id(str(action.get("value") or ""))
        if answer_id is None:
            return  # a payload not made by us: nothing to do
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("channel") or {}).get("id")
        problem = answerer.reask(answer_id, user_id=user, channel_id=channel,
                                 response_url=body.get("response_url"), regenerate=regenerate)
        if problem is not None and body.get("response_url"):
            # Only the presser sees why nothing happened; the answer stays as it was.
            await respond(text=problem, response_type="ephemeral", replace_original=False)

    @app.action(RETRY_ACTION_ID)
    async def on_retry(ack: Any, body: dict[str, Any], action: dict[str, Any],
                       respond: AsyncRespond) -> None:
        await reask(ack, body, action, respond, regenerate=False)

    @app.action(REGENERATE_ACTION_ID)
    async def on_regenerate(ack: Any, body: dict[str, Any], action: dict[str, Any],
                            respond: AsyncRespond) -> None:
        await reask(ack, body, action, respond, regenerate=True)

    @app.action(_FEEDBACK)
    async def on_feedback(ack: Any, body: dict[str, Any], action: dict[str, Any],
                          respond: AsyncRespond) -> None:
        await ack()
        value = str(action.get("value") or "")
        answer_id = _answer_id(value)
        vote = value.rsplit(":", 1)[-1]
        if answer_id is None or vote not in ("up", "down") or \
                services.store.find_answer(answer_id) is None:
            return
        user = (body.get("user") or {}).get("id", "")
        services.controls.record_feedback(answer_id, user, vote)
        if body.get("response_url"):
            await respond(text="Thanks for the feedback :+1:" if vote == "up" else
                          "Thanks for telling me. Press Regenerate for another try.",
                          response_type="ephemeral", replace_original=False)
