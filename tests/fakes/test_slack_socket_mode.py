"""Drive FakeSlack's Socket Mode with the real Bolt AsyncApp + AsyncSocketModeHandler."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack()
    slack.add_user("U1", name="alice")
    slack.add_channel("C1", name="general", members={"U1"})
    with slack:
        yield slack


def make_app(fake: FakeSlack) -> AsyncApp:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)
    return AsyncApp(client=client, request_verification_enabled=False)


@pytest.fixture
def app(fake: FakeSlack) -> AsyncApp:
    return make_app(fake)


@pytest.fixture
async def handler(fake: FakeSlack, app: AsyncApp) -> AsyncIterator[AsyncSocketModeHandler]:
    """A connected handler (the fake has registered the connection)."""
    h = AsyncSocketModeHandler(app, APP_TOKEN)
    await h.connect_async()
    await fake.wait_socket()
    yield h
    await h.close_async()


def mention(text: str = "<@UBOT> hello", ts: str = "1700000000.000100") -> dict[str, Any]:
    return {"type": "app_mention", "user": "U1", "text": text, "ts": ts, "channel": "C1"}


# ------------------------------------------------------------ connecting


async def test_connect_async_gets_hello(fake: FakeSlack, app: AsyncApp) -> None:
    h = AsyncSocketModeHandler(app, APP_TOKEN)
    seen: list[dict[str, Any]] = []

    async def on_message(client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None) -> None:
        seen.append(message)

    h.client.message_listeners.append(on_message)
    try:
        await h.connect_async()
        await fake.wait_socket()
        assert fake.socket_connections == 1
        (call,) = fake.calls_to("apps.connections.open")
        assert call.token == APP_TOKEN
        assert h.client.wss_uri is not None
        assert h.client.wss_uri.startswith(f"ws://127.0.0.1:{fake.port}/socket/")
        await fake.wait_for(lambda: bool(seen))
        hello = seen[0]
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": "A1"}
        assert hello["debug_info"]["host"]
        # the SDK's first ping ("sdk-ping-pong:<t>") was answered with a pong carrying the same data
        await fake.wait_for(lambda: fake.socket_pings >= 1 and h.client.last_ping_pong_time is not None)
    finally:
        await h.close_async()
    await fake.wait_for(lambda: fake.socket_connections == 0)


async def test_wrong_app_token_fails_clearly(fake: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    web = AsyncWebClient(base_url=fake.api_url)
    with pytest.raises(SlackApiError) as info:
        await web.apps_connections_open(app_token="xapp-wrong")
    assert info.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as info:
        await web.api_call("apps.connections.open")
    assert info.value.response["error"] == "not_authed"
    # token types are not interchangeable
    with pytest.raises(SlackApiError) as info:
        await web.apps_connections_open(app_token=BOT_TOKEN)
    assert info.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as info:
        await AsyncWebClient(token=APP_TOKEN, base_url=fake.api_url).auth_test()
    assert info.value.response["error"] == "not_allowed_token_type"

    # Through Bolt: issuing the URL raises; connect_async() itself would retry forever.
    h = AsyncSocketModeHandler(make_app(fake), "xapp-wrong", ping_interval=0.05)
    try:
        with pytest.raises(SlackApiError, match="invalid_auth"):
            await h.client.issue_new_wss_url()
        with caplog.at_level(logging.ERROR):
            connecting = asyncio.ensure_future(h.connect_async())
            await fake.wait_for(lambda: len(fake.calls_to("apps.connections.open")) >= 7)
            connecting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await connecting
        assert "invalid_auth" in caplog.text
        assert fake.socket_connections == 0
        assert {c.token for c in fake.calls_to("apps.connections.open")} >= {"xapp-wrong"}
    finally:
        await h.close_async()


async def test_unknown_ticket_is_rejected(fake: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(f"ws://127.0.0.1:{fake.port}/socket/nope")
    assert info.value.status == 404
    assert fake.socket_connections == 0


async def test_raw_protocol_ping_ack_and_custom_app_token() -> None:
    with FakeSlack(app_token="xapp-1-A1-custom", app_id="A9") as fake:
        web = AsyncWebClient(base_url=fake.api_url)
        url = (await web.apps_connections_open(app_token="xapp-1-A1-custom"))["url"]
        async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=False) as ws:
            hello = await ws.receive_json(timeout=2)
            assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == "A9"
            await fake.wait_socket()
            await ws.ping(b"sdk-ping-pong:1")
            pong = await ws.receive(timeout=2)
            assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"sdk-ping-pong:1")

            eid = await asyncio.to_thread(fake.send_socket_event, mention(), event_id="Ev1", retry_attempt=2)
            envelope = await ws.receive_json(timeout=2)
            assert envelope["envelope_id"] == eid and envelope["type"] == "events_api"
            assert (envelope["retry_attempt"], envelope["retry_reason"]) == (2, "timeout")
            assert envelope["accepts_response_payload"] is False
            payload = envelope["payload"]
            assert payload["type"] == "event_callback" and payload["event_id"] == "Ev1"
            assert (payload["team_id"], payload["api_app_id"]) == ("T1", "A9")
            assert isinstance(payload["event_time"], int)
            assert payload["event"] == {**mention(), "event_ts": "1700000000.000100"}
            assert fake.ack_for(eid) is None

            await ws.send_str(json.dumps({"envelope_id": eid}))
            assert await fake.wait_ack(eid) == {"envelope_id": eid}
            assert fake.socket_envelopes[-1] == envelope

            await ws.send_str("not json")
            await fake.wait_for(lambda: {"raw": "not json"} in fake.socket_acks)
        await fake.wait_for(lambda: fake.socket_connections == 0)


# ---------------------------------------------------------- delivering


async def test_app_mention_reaches_listener_and_is_acked(
    fake: FakeSlack, app: AsyncApp, handler: AsyncSocketModeHandler
) -> None:
    got: list[dict[str, Any]] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        got.append(event)
        await say(text="hi back", thread_ts=event["ts"])

    eid = fake.send_socket_event(mention())
    ack = await fake.wait_ack(eid)
    assert ack == {"envelope_id": eid}  # events carry no response payload
    await fake.wait_for(lambda: len(fake.messages("C1")) == 1)
    assert got[0]["text"] == "<@UBOT> hello" and got[0]["user"] == "U1"
    (reply,) = fake.messages("C1")
    assert (reply["text"], reply["thread_ts"], reply["user"]) == ("hi back", "1700000000.000100", "UBOT")


async def test_retry_headers_reach_bolt(
    fake: FakeSlack, app: AsyncApp, handler: AsyncSocketModeHandler
) -> None:
    retries: list[tuple[Any, Any]] = []

    @app.event("app_mention")
    async def on_mention(request: Any) -> None:
        headers = request.headers
        retries.append((headers.get("x-slack-retry-num"), headers.get("x-slack-retry-reason")))

    eid = fake.send_socket_event(mention(), retry_attempt=1, retry_reason="http_timeout")
    await fake.wait_ack(eid)
    await fake.wait_for(lambda: bool(retries))
    assert retries == [(["1"], ["http_timeout"])]
    (envelope,) = fake.socket_envelopes
    assert (envelope["retry_attempt"], envelope["retry_reason"]) == (1, "http_timeout")
    assert envelope["payload"]["event_id"] == "Ev0000000001"


async def test_slash_command_ack_carries_payload(
    fake: FakeSlack, app: AsyncApp, handler: AsyncSocketModeHandler
) -> None:
    @app.command("/qwq")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack(text=f"thinking about {command['text']}")

    eid = fake.send_socket_command({"command": "/qwq", "text": "life", "user_id": "U1", "channel_id": "C1"})
    ack = await fake.wait_ack(eid)
    assert ack["envelope_id"] == eid
    assert ack["payload"]["text"] == "thinking about life"
    (envelope,) = fake.socket_envelopes
    assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"] is True
    assert "retry_attempt" not in envelope
    form = envelope["payload"]
    assert form["response_url"].startswith(fake.base_url + "/response/")
    assert form["trigger_id"] and form["team_id"] == "T1" and form["api_app_id"] == "A1"


async def test_interactive_block_action_reaches_action_listener(
    fake: FakeSlack, app: AsyncApp, handler: AsyncSocketModeHandler
) -> None:
    clicked: list[str] = []

    @app.action("qwq_retry")
    async def on_retry(ack: Any, action: dict[str, Any], respond: Any) -> None:
        await ack()
        clicked.append(action["value"])
        await respond(text="retrying", replace_original=False)

    response_url = fake.response_url("click")
    eid = fake.send_socket_interactive(
        {
            "type": "block_actions",
            "user": {"id": "U1", "username": "alice", "team_id": "T1"},
            "channel": {"id": "C1", "name": "general"},
            "container": {"type": "message", "message_ts": "1.0", "channel_id": "C1"},
            "message": {"ts": "1.0", "text": "answer"},
            "response_url": response_url,
            "actions": [
                {
                    "type": "button",
                    "action_id": "qwq_retry",
                    "block_id": "b1",
                    "value": "again",
                    "action_ts": "1700000001.000000",
                }
            ],
        }
    )
    assert await fake.wait_ack(eid) == {"envelope_id": eid}
    await fake.wait_for(lambda: bool(fake.responses["click"]))
    assert clicked == ["again"]
    assert fake.responses["click"][0]["text"] == "retrying"
    (envelope,) = fake.socket_envelopes
    assert envelope["type"] == "interactive" and envelope["accepts_response_payload"] is False
    assert envelope["payload"]["team"]["id"] == "T1" and envelope["payload"]["trigger_id"]


async def test_view_submission_accepts_response_payload(
    fake: FakeSlack, app: AsyncApp, handler: AsyncSocketModeHandler
) -> None:
    @app.view("qwq_settings")
    async def on_submit(ack: Any) -> None:
        await ack(response_action="errors", errors={"b1": "nope"})

    eid = fake.send_socket_interactive(
        {
            "type": "view_submission",
            "user": {"id": "U1"},
            "view": {"id": "V1", "callback_id": "qwq_settings", "type": "modal", "state": {"values": {}}},
        }
    )
    ack = await fake.wait_ack(eid)
    assert ack["payload"] == {"response_action": "errors", "errors": {"b1": "nope"}}
    assert fake.socket_envelopes[-1]["accepts_response_payload"] is True


async def test_send_from_other_threads_and_errors(fake: FakeSlack, app: AsyncApp) -> None:
    with pytest.raises(RuntimeError, match="no Socket Mode client"):
        fake.send_socket_event(mention())
    with pytest.raises(ValueError, match="command"):
        fake.send_socket_command({"text": "x"})
    with pytest.raises(ValueError, match="type"):
        fake.send_socket_interactive({})
    assert fake.ack_for("nope") is None
    with pytest.raises(TimeoutError, match="no ack for envelope nope"):
        await fake.wait_ack("nope", timeout=0.05)
    with pytest.raises(TimeoutError, match="Socket Mode connection"):
        await fake.wait_socket(timeout=0.05)

    got: list[str] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        got.append(event["ts"])

    h = AsyncSocketModeHandler(app, APP_TOKEN)
    await h.connect_async()
    try:
        await asyncio.to_thread(fake.wait_socket_sync)
        ids: list[str] = []

        def burst(n: int) -> None:
            for i in range(5):
                ids.append(fake.send_socket_event(mention(ts=f"1700000000.{n}0000{i}")))

        threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()

        def join_all() -> None:
            for t in threads:
                t.join()

        await asyncio.to_thread(join_all)
        assert len(set(ids)) == 20
        for eid in ids:
            await fake.wait_ack(eid)
        await asyncio.to_thread(fake.wait_ack_sync, ids[0])
        await fake.wait_for(lambda: len(got) == 20)
        event_ids = [e["payload"]["event_id"] for e in fake.socket_envelopes]
        assert len(set(event_ids)) == 20
    finally:
        await h.close_async()


# --------------------------------------------------------- reconnecting


async def test_disconnect_message_makes_client_reconnect(
    fake: FakeSlack, app: AsyncApp, handler: AsyncSocketModeHandler
) -> None:
    got: list[str] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        got.append(event["text"])

    first = handler.client.current_session
    assert await asyncio.to_thread(fake.send_socket_disconnect) == 1
    await fake.wait_for(
        lambda: (
            len(fake.calls_to("apps.connections.open")) == 2
            and handler.client.current_session is not first
            and fake.socket_connections == 1
        )
    )
    eid = fake.send_socket_event(mention("<@UBOT> after refresh"))
    await fake.wait_ack(eid)
    await fake.wait_for(lambda: got == ["<@UBOT> after refresh"])


async def test_dropped_connection_is_reestablished(
    fake: FakeSlack, app: AsyncApp, handler: AsyncSocketModeHandler
) -> None:
    @app.command("/qwq")
    async def on_command(ack: Any) -> None:
        await ack()

    first = handler.client.current_session
    assert await asyncio.to_thread(fake.drop_sockets) == 1
    await fake.wait_for(lambda: handler.client.current_session is not first and fake.socket_connections == 1)
    assert len(fake.calls_to("apps.connections.open")) == 2
    eid = fake.send_socket_command({"command": "/qwq", "text": "x"})
    assert (await fake.wait_ack(eid))["envelope_id"] == eid


# ------------------------------------------------------------- shutdown


async def test_close_async_is_clean(fake: FakeSlack, app: AsyncApp) -> None:
    h = AsyncSocketModeHandler(app, APP_TOKEN)
    await h.connect_async()
    await fake.wait_socket()
    started = time.monotonic()
    await h.close_async()
    assert time.monotonic() - started < 1
    assert h.client.closed and h.client.aiohttp_client_session.closed
    await fake.wait_for(lambda: fake.socket_connections == 0)
    with pytest.raises(RuntimeError, match="no Socket Mode client"):
        fake.send_socket_event(mention())


async def test_stop_sends_close_and_is_quick() -> None:
    fake = FakeSlack().start()
    closes: list[aiohttp.WSMessage] = []
    h = AsyncSocketModeHandler(make_app(fake), APP_TOKEN)

    async def on_close(message: aiohttp.WSMessage) -> None:
        closes.append(message)

    h.client.on_close_listeners.append(on_close)
    h.client.default_auto_reconnect_enabled = False  # the server is going away for good
    try:
        await h.connect_async()
        await fake.wait_socket()
        started = time.monotonic()
        await asyncio.to_thread(fake.stop)
        assert time.monotonic() - started < 1.5
        await fake.wait_for(lambda: bool(closes))
        assert closes[0].data == aiohttp.WSCloseCode.GOING_AWAY
    finally:
        await h.close_async()


async def test_stop_is_quick_even_when_client_loop_is_blocked() -> None:
    fake = FakeSlack().start()
    h = AsyncSocketModeHandler(make_app(fake), APP_TOKEN)
    h.client.default_auto_reconnect_enabled = False
    try:
        await h.connect_async()
        await fake.wait_socket()
        started = time.monotonic()
        fake.stop()  # blocks this loop: the client cannot answer the close frame
        assert time.monotonic() - started < 1.5
        with pytest.raises(RuntimeError, match="not started"):
            fake.send_socket_event(mention())
    finally:
        await h.close_async()
