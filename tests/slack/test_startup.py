"""Starting while Slack is down: the HTTP server answers at once ("not ready" on /healthz,
503 to events) while auth.test is retried with capped backoff, then the bot serves as usual;
a refused token still ends the start with its clear line. Through the real Bot and the
loopback fakes; the backoff is injected with small figures so no test waits seconds."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import aiohttp
import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

from qwqbot.config import load_settings
from qwqbot.errors import QwqbotError
from qwqbot.slack.server import STARTING_NOTE, Bot
from qwqbot.slack.startup import Backoff, backoff_delay, transient
from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT, SECRET, Harness, free_port, sign
from tests.slack.test_socket_mode import settings_for

FAST = Backoff(base=0.01, cap=0.02)


# -- the backoff and what counts as transient (pure) -----------------------------------


def test_backoff_doubles_from_base_and_stops_at_the_cap():
    ceilings = [backoff_delay(n, base=1.0, cap=60.0, jitter=1.0) for n in range(1, 10)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    floors = [backoff_delay(n, base=1.0, cap=60.0, jitter=0.0) for n in range(1, 10)]
    assert floors == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    # a very long outage neither overflows nor passes the cap
    assert backoff_delay(10_000, base=1.0, cap=60.0, jitter=1.0) == 60.0


def test_jitter_stays_between_half_and_all_of_the_ceiling():
    for jitter in (0.0, 0.25, 0.5, 0.99, 1.0):
        delay = backoff_delay(4, base=1.0, cap=60.0, jitter=jitter)
        assert 4.0 <= delay <= 8.0
    assert backoff_delay(4, base=1.0, cap=60.0, jitter=0.5) == 6.0


def test_a_retry_after_is_a_floor_for_the_delay():
    backoff = Backoff(base=1.0, cap=60.0, jitter=lambda: 0.0)
    assert backoff.delay(1) == 0.5
    assert backoff.delay(1, at_least=7.0) == 7.0
    assert backoff.delay(8, at_least=7.0) == 30.0


def api_error(status: int, error: str, headers: dict[str, str] | None = None) -> SlackApiError:
    response = SlackResponse(client=None, http_verb="POST", api_url="https://slack.com/api/auth.test",
                             req_args={}, data={"ok": False, "error": error},
                             headers=headers or {}, status_code=status)
    return SlackApiError("failed", response)


@pytest.mark.parametrize("error", ["invalid_auth", "not_authed", "account_inactive",
                                   "token_revoked", "not_allowed_token_type"])
def test_a_refused_token_is_not_transient(error):
    assert transient(api_error(200, error)) is None


@pytest.mark.parametrize(("status", "error", "reason"), [
    (500, "fatal_error", "HTTP 500 fatal_error"),
    (503, "", "HTTP 503"),
    (200, "internal_error", "HTTP 200 internal_error"),
    (200, "service_unavailable", "HTTP 200 service_unavailable"),
    (200, "request_timeout", "HTTP 200 request_timeout"),
])
def test_server_trouble_is_transient(status, error, reason):
    found = transient(api_error(status, error))
    assert found is not None and found.reason == reason and found.retry_after == 0.0


def test_a_429_is_transient_and_carries_retry_after():
    found = transient(api_error(429, "ratelimited", {"Retry-After": "7"}))
    assert found is not None and found.retry_after == 7.0


def test_a_proxy_error_page_is_transient():
    """slack_sdk raises SlackApiError with aiohttp's own response when a body is not JSON
    (slack_sdk/web/async_internal_utils.py): it has ``status``, not ``status_code``."""
    page = SimpleNamespace(status=502, headers={"Content-Type": "text/html"})
    found = transient(SlackApiError("Received a response in a non-JSON format: <html>", page))
    assert found is not None and found.reason == "HTTP 502"


def test_no_connection_is_transient_and_other_bugs_are_not():
    found = transient(aiohttp.ClientConnectionError("refused"))
    assert found is not None and "ClientConnectionError" in found.reason
    assert transient(TimeoutError()) is not None
    assert transient(ValueError("a bug")) is None


# -- the real bot in HTTP mode ----------------------------------------------------------


def bot_for(harness: Harness, backoff: Backoff = FAST, **env: str) -> Bot:
    settings = load_settings({**harness.env, **env}, env_file=None)
    harness.bot = Bot(settings, mode="http", port=harness.port, backoff=backoff)
    return harness.bot


async def health(harness: Harness) -> httpx.Response:
    """GET /healthz as soon as the port answers (the bot is starting in another task)."""
    url = f"http://127.0.0.1:{harness.port}/healthz"
    for _ in range(500):
        try:
            return await harness.http.get(url)
        except httpx.TransportError:
            await asyncio.sleep(0.01)
    raise AssertionError("nothing listens on the bot's port")


async def test_http_mode_is_not_ready_while_slack_is_down_then_serves(
        slack, model_server, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    slack.server_down("auth.test", status=500)
    harness = Harness(slack, model_server, str(tmp_path / "bot.db"))
    bot = bot_for(harness)
    starting = asyncio.create_task(bot.start())
    try:
        first = await health(harness)
        assert first.status_code == 503
        body = first.json()
        assert body["ready"] is False and body["ok"] is False and body["in_flight"] == 0
        await slack.wait_for(lambda: len(slack.calls_to("auth.test")) >= 3)
        body = (await health(harness)).json()
        assert body["reason"] == "waiting for Slack auth.test: HTTP 500 fatal_error"

        # Slack's requests meanwhile: events are refused for Slack to deliver again ...
        ts = slack.add_message("C1", user="U1", text=f"<@{BOT}> early")
        early = await harness.deliver({"type": "app_mention", "channel": "C1", "user": "U1",
                                       "text": f"<@{BOT}> early", "ts": ts})
        assert early.status_code == 503
        # ... the Request URL check is answered ...
        check = json.dumps({"token": "legacy", "challenge": "c-123", "type": "url_verification"})
        verified = await harness.http.post(harness.url, content=check, headers={
            "Content-Type": "application/json", **sign(check)})
        assert verified.status_code == 200 and verified.json() == {"challenge": "c-123"}
        # ... a slash command is told only to its sender, and unsigned requests still fail
        command, _ = await harness.command("what is 6 x 7?")
        assert command.status_code == 200
        assert command.json() == {"response_type": "ephemeral", "text": STARTING_NOTE}
        unsigned = await harness.http.post(harness.url, content=check,
                                           headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401
        assert not starting.done()

        slack.server_up("auth.test")
        await asyncio.wait_for(starting, timeout=10)
        ready = await health(harness)
        assert ready.status_code == 200
        assert ready.json() == {"ok": True, "ready": True, "in_flight": 0, "db": "ok",
                                "db_pending_writes": 0}

        model_server.enqueue(think_stream("thinking", "Slack is back."))
        asked = await harness.post("C1", "U1", f"<@{BOT}> are you there?")
        row = await harness.finished("C1", asked)
        assert row["status"] == "done"
        assert "Slack is back." in json.dumps(harness.bot_replies("C1", asked))
        assert harness.answers("C1", ts) == []  # the refused event left nothing behind
    finally:
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        else:
            await harness.stop()
    retries = [r for r in caplog.records
               if r.name == "qwqbot.slack.startup" and r.levelno == logging.WARNING]
    tries = len(slack.calls_to("auth.test"))
    assert len(retries) == tries - 1 >= 3  # one line per failed try, none for the good one
    assert "attempt 1; retrying in" in retries[0].getMessage()
    assert "attempt 3; retrying in" in retries[2].getMessage()
    assert "xoxb-test-token" not in caplog.text


async def test_the_bot_waits_as_the_backoff_says(slack, model_server, tmp_path):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    slack.server_error_next("auth.test", count=3, status=502)
    slack.rate_limit_next("auth.test", retry_after=9)
    harness = Harness(slack, model_server, str(tmp_path / "bot.db"))
    bot = bot_for(harness, Backoff(base=2.0, cap=5.0, jitter=lambda: 1.0, sleep=sleep))
    await bot.start()
    try:
        assert waits == [2.0, 4.0, 5.0, 9.0]  # doubling, capped, and Retry-After as a floor
        assert len(slack.calls_to("auth.test")) == 5
        assert bot.health()["ready"] is True
    finally:
        await harness.stop()


@pytest.mark.parametrize("error", ["invalid_auth", "account_inactive", "token_revoked"])
async def test_a_refused_token_ends_the_start_even_after_an_outage(
        slack, model_server, tmp_path, error):
    # more 5xx than the SDK's own retry handlers would wait out (they try 3 times more)
    slack.server_error_next("auth.test", count=4)
    slack.fail_next("auth.test", error)
    harness = Harness(slack, model_server, str(tmp_path / "bot.db"))
    bot = bot_for(harness)
    try:
        with pytest.raises(QwqbotError, match=rf"Slack rejected SLACK_BOT_TOKEN \({error}\)"):
            await bot.start()
        assert len(slack.calls_to("auth.test")) == 5  # no retry after the refusal
        with pytest.raises(httpx.TransportError):  # and the port was let go
            await harness.http.get(f"http://127.0.0.1:{harness.port}/healthz")
    finally:
        await harness.http.aclose()


# -- Socket Mode ------------------------------------------------------------------------


async def test_socket_mode_waits_out_auth_test_and_connections_open(slack, model_server, tmp_path):
    slack.server_error_next("auth.test", count=2, status=503)
    slack.server_error_next("apps.connections.open", count=2, status=500)
    slack.fail_next("apps.connections.open", "internal_error")
    bot = Bot(settings_for(slack, model_server, tmp_path), mode="socket", port=0, backoff=FAST)
    await bot.start()
    try:
        await slack.wait_socket()
        assert len(slack.calls_to("auth.test")) == 3
        assert len(slack.calls_to("apps.connections.open")) == 4
        model_server.enqueue(think_stream("socket", "Connected after all."))
        ts = slack.add_message("C1", user="U1", text=f"<@{BOT}> hi")
        slack.send_socket_event({"type": "app_mention", "channel": "C1", "user": "U1",
                                 "text": f"<@{BOT}> hi", "ts": ts})
        await slack.wait_for(lambda: "Connected after all." in json.dumps(
            slack.messages("C1", ts)), timeout=10)
    finally:
        await bot.stop()


async def test_socket_mode_refused_app_token_still_fails_after_an_outage(slack, model_server, tmp_path):
    slack.server_error_next("apps.connections.open", count=4)
    slack.fail_next("apps.connections.open", "token_revoked")
    bot = Bot(settings_for(slack, model_server, tmp_path), mode="socket", port=0, backoff=FAST)
    with pytest.raises(QwqbotError, match=r"Slack rejected SLACK_APP_TOKEN \(token_revoked\)"):
        await bot.start()
    assert len(slack.calls_to("apps.connections.open")) == 5


# -- as a platform runs it --------------------------------------------------------------


def test_the_process_is_up_and_stops_cleanly_while_slack_is_down(slack, model_server, tmp_path):
    """What a health check sees: a port that answers "not ready" at once; SIGTERM then
    ends the waiting process with status 0 (a deploy during an outage)."""
    slack.server_down("auth.test", status=503)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.api_url, "AIML_API_KEY": "test-key",
                "AIML_API_BASE_URL": model_server.base_url, "QWQBOT_DB": str(tmp_path / "r.db")})
    proc = subprocess.Popen([sys.executable, "-m", "qwqbot", "run", "--mode", "http", "--port",
                             str(port)], env=env, cwd=Path(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        answer = None
        while answer is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.TransportError:
                time.sleep(0.05)
        assert answer is not None and answer.status_code == 503
        assert answer.json()["ready"] is False
        body = urlencode({"command": "/qwq", "text": "hi", "user_id": "U1", "channel_id": "C1"})
        command = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", **sign(body)})
        assert command.status_code == 200 and command.json()["text"] == STARTING_NOTE
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.stderr is not None
    assert "xoxb-test-token" not in proc.stderr.read()
