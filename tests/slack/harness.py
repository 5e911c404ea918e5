"""End-to-end harness: the real bot in HTTP mode against the loopback fakes.

Requests are signed exactly as Slack signs them (``v0=HMAC_SHA256(secret,
"v0:{ts}:{body}")``), so Bolt's real verification runs; every Web API call goes through
slack_sdk to the fake Slack server; every model call through httpx to the fake model server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

from qwqbot.config import load_settings
from qwqbot.slack.server import Bot
from tests.fakes.model_server import FakeModelServer
from tests.fakes.slack_api import FakeSlack

SECRET = "test-signing-secret"
BOT = "UBOT"
# One person's turn in a prompt's user message (qwqbot/conversation.py's markers).
_TURN = re.compile(r'<<turn (\w+) from="((?:[^"\\]|\\.)*)">>\n(.*?)\n<<end \1>>(?:\n\n|$)', re.DOTALL)


def turns(content: str) -> list[tuple[str, str]]:
    """The (author, text) turns of a user message the model received, read by the markers alone;
    AssertionError if anything in it is outside a turn."""
    found = list(_TURN.finditer(content))
    assert "".join(m[0] for m in found) == content, content
    return [(m[2], m[3]) for m in found]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(body: str, *, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


class Harness:
    def __init__(self, slack: FakeSlack, model: FakeModelServer, db_path: str, **env: str) -> None:
        self.slack = slack
        self.model = model
        self.port = free_port()
        self.env = {
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url,
            "AIML_API_KEY": "test-key",
            "AIML_API_BASE_URL": model.base_url,
            "QWQBOT_DB": db_path,
            "QWQBOT_PROGRESS_INTERVAL": "0.2",
            "QWQBOT_MAX_RETRIES": "1",
            "QWQBOT_SHUTDOWN_GRACE": "2",
            **env,
        }
        self.url = f"http://127.0.0.1:{self.port}/slack/events"
        self.http = httpx.AsyncClient(timeout=10)

    async def start(self, *, now: Any = None) -> Bot:
        """``now``: a clock for the digest scheduler (catch-up and retries), for tests of
        what happens after time has passed."""
        settings = load_settings(self.env, env_file=None)
        self.bot = Bot(settings, mode="http", port=self.port, scheduler_now=now)
        await self.bot.start()
        return self.bot

    async def stop(self) -> None:
        await self.bot.stop()
        await self.http.aclose()

    @property
    def store(self) -> Any:
        return self.bot.store

    # -- what Slack sends ------------------------------------------------------------

    async def deliver(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        headers: dict[str, str] | None = None,
        sign_ts: int | None = None,
    ) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": "T1",
                "api_app_id": "A1",
                "type": "event_callback",
                "event": event,
                "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}",
                "event_time": int(time.time()),
            }
        )
        return await self.http.post(
            self.url,
            content=body,
            headers={"Content-Type": "application/json", **sign(body, ts=sign_ts), **(headers or {})},
        )

    async def post(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        channel_type: str = "channel",
        both_events: bool = True,
        files: list[dict[str, Any]] | None = None,
    ) -> str:
        """A person posts: the message exists in Slack, and Slack sends its events (for a
        mention of the bot, both ``app_mention`` and ``message``, as real Slack does).
        ``files``: file objects (``FakeSlack.add_file``) shared with it: a ``file_share``
        message, with them in its ``files`` array, as Slack sends it."""
        extra: dict[str, Any] = {}
        if files:
            extra = {"subtype": "file_share", "files": files, "upload": True,
                     "display_as_bot": False}
        ts = self.slack.add_message(channel, user=user, text=text, thread_ts=thread_ts, **extra)
        for f in files or ():
            self.slack.share_file(f["id"], channel, ts, thread_ts)
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "channel_type": channel_type,
            "event_ts": ts,
            **extra,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if f"<@{BOT}>" in text and both_events and channel_type != "im":
            mention = {**event, "type": "app_mention"}
            mention.pop("channel_type")
            await self.deliver(mention)
        await self.deliver(event)
        return ts

    async def command(self, text: str, *, channel: str = "C1", user: str = "U1",
                      channel_name: str = "general", key: str | None = None,
                      ) -> tuple[httpx.Response, str]:
        """A person types ``/qwq text``: Slack's signed, form-encoded slash-command POST.
        Returns Slack's view of the ack and the response_url key."""
        key = key or uuid.uuid4().hex[:8]
        body = urlencode({
            "token": "legacy", "team_id": "T1", "team_domain": "fake", "channel_id": channel,
            "channel_name": channel_name, "user_id": user, "user_name": user.lower(),
            "command": "/qwq", "text": text, "api_app_id": "A1", "is_enterprise_install": "false",
            "response_url": self.slack.response_url(key), "trigger_id": f"trig.{key}"})
        response = await self.http.post(self.url, content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", **sign(body)})
        return response, key

    def responses(self, key: str) -> list[dict[str, Any]]:
        return list(self.slack.responses.get(key, []))

    async def action(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.http.post(
            self.url,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)},
        )

    # -- waiting for outcomes ----------------------------------------------------------

    def answers(self, channel: str, request_ts: str) -> list[dict[str, Any]]:
        return list(
            self.store.db.query(
                "SELECT * FROM answers WHERE channel_id = ? AND request_ts = ? ORDER BY attempt",
                [channel, request_ts],
            )
        )

    async def finished(
        self, channel: str, request_ts: str, *, attempt: int = 0, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait until that answer attempt is finished and its task done (Slack calls made)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = [r for r in self.answers(channel, request_ts) if r["attempt"] == attempt]
            if rows and rows[0]["status"] not in ("queued", "running") and self.bot.answerer.in_flight == 0:
                return rows[0]
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"answer to {channel}/{request_ts} not finished: {self.answers(channel, request_ts)}"
        )

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return self.slack.messages(channel, thread_ts)

    def bot_replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.thread(channel, thread_ts) if m.get("user") == BOT]
