"""Drive tests.fakes.slack_api.FakeSlack with the real slack_sdk clients."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-test-token"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    # These tests are about the wire format and workspace behaviour and post in bursts;
    # Slack's rate limits have their own tests in test_slack_rate_limits.py.
    fake = FakeSlack(rate_limits=False)
    fake.add_user("U1", name="alice", real_name="Alice Liddell", display_name="ali", tz="America/New_York")
    fake.add_user("U2", name="bob")
    fake.add_channel("C1", name="general", members={"U1", "U2"})
    fake.add_channel("C2", name="random", bot_is_member=False)
    fake.add_channel("G1", name="secret", is_private=True, bot_is_member=False)
    fake.add_channel("D1", name="D1", is_im=True, members={"U1"})
    with fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


async def _error_of(coro: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value


# --------------------------------------------------------------------- auth


@pytest.mark.asyncio
async def test_auth_test_ok(slack: FakeSlack, client: AsyncWebClient) -> None:
    assert slack.api_url.endswith("/api/")
    r = await client.auth_test()
    assert (r["user_id"], r["bot_id"], r["team_id"]) == ("UBOT", "BBOT", "T1")
    assert r["url"] == "https://fake.slack.com/" and r["team"] and r["user"]
    (call,) = slack.calls_to("auth.test")
    assert call.token == TOKEN and call.params == {}


@pytest.mark.asyncio
async def test_auth_invalid_and_missing_token(slack: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    err = await _error_of(bad.auth_test())
    assert err.response.status_code == 200
    assert err.response["error"] == "invalid_auth"
    err = await _error_of(AsyncWebClient(base_url=slack.api_url).auth_test())
    assert err.response["error"] == "not_authed"
    assert [c.token for c in slack.calls] == ["xoxb-wrong", None]


@pytest.mark.asyncio
async def test_unknown_method(client: AsyncWebClient) -> None:
    err = await _error_of(client.api_call("nope.nothing"))
    assert err.response["error"] == "unknown_method"


# --------------------------------------------------------------- chat.*


@pytest.mark.asyncio
async def test_post_update_permalink(slack: FakeSlack, client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    r = await client.chat_postMessage(channel="C1", text="hi", blocks=blocks)
    ts = r["ts"]
    assert r["channel"] == "C1"
    assert r["message"]["user"] == "UBOT" and r["message"]["bot_id"] == "BBOT"
    assert r["message"]["blocks"] == blocks

    reply = await client.chat_postMessage(channel="C1", text="in thread", thread_ts=ts)
    assert float(reply["ts"]) > float(ts)
    assert reply["message"]["thread_ts"] == ts

    u = await client.chat_update(channel="C1", ts=ts, text="edited")
    assert u["ts"] == ts and u["text"] == "edited"
    msgs = slack.messages("C1")
    assert [m["text"] for m in msgs] == ["edited", "in thread"]
    assert msgs[0]["blocks"] == blocks  # kept: chat.update without blocks retains them
    assert msgs[0]["edited"]["user"] == "UBOT"
    assert msgs[0]["reply_count"] == 1 and msgs[0]["latest_reply"] == reply["ts"]

    p = await client.chat_getPermalink(channel="C1", message_ts=ts)
    assert p["permalink"] == f"https://fake.slack.com/archives/C1/p{ts.replace('.', '')}"
    p = await client.chat_getPermalink(channel="C1", message_ts=reply["ts"])
    assert p["permalink"].startswith(
        f"https://fake.slack.com/archives/C1/p{reply['ts'].replace('.', '')}?thread_ts={ts}"
    )

    err = await _error_of(client.chat_update(channel="C1", ts="1.000001", text="x"))
    assert err.response["error"] == "message_not_found"
    err = await _error_of(client.chat_getPermalink(channel="C1", message_ts="1.000001"))
    assert err.response["error"] == "message_not_found"


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_channel_errors_and_dm(slack: FakeSlack, client: AsyncWebClient) -> None:
    err = await _error_of(client.chat_postMessage(channel="C404", text="x"))
    assert err.response["error"] == "channel_not_found"
    err = await _error_of(client.chat_postMessage(channel="C2", text="x"))
    assert err.response["error"] == "not_in_channel"
    err = await _error_of(client.chat_postMessage(channel="G1", text="x"))
    assert err.response["error"] == "channel_not_found"  # private + not a member: hidden
    err = await _error_of(client.chat_postMessage(channel="C1"))
    assert err.response["error"] == "no_text"

    r = await client.chat_postMessage(channel="D1", text="dm")
    assert r["channel"] == "D1"
    r = await client.chat_postMessage(channel="U1", text="dm by user id")
    assert r["channel"] == "D1"
    r = await client.chat_postMessage(channel="#general", text="by name")
    assert r["channel"] == "C1"
    assert [m["text"] for m in slack.messages("D1")] == ["dm", "dm by user id"]


@pytest.mark.asyncio
async def test_delete_ephemeral_and_foreign_messages(slack: FakeSlack, client: AsyncWebClient) -> None:
    user_ts = slack.add_message("C1", user="U1", text="hello bot")
    own = await client.chat_postMessage(channel="C1", text="answer", thread_ts=user_ts)
    err = await _error_of(client.chat_update(channel="C1", ts=user_ts, text="hijack"))
    assert err.response["error"] == "cant_update_message"
    err = await _error_of(client.chat_delete(channel="C1", ts=user_ts))
    assert err.response["error"] == "cant_delete_message"
    d = await client.chat_delete(channel="C1", ts=own["ts"])
    assert d["ts"] == own["ts"]
    assert [m["text"] for m in slack.messages("C1")] == ["hello bot"]

    e = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert e["message_ts"]
    assert slack.ephemerals[0]["user"] == "U1" and slack.ephemerals[0]["text"] == "only you"
    assert len(slack.messages("C1")) == 1


@pytest.mark.asyncio
async def test_limits_enforced(slack: FakeSlack, client: AsyncWebClient) -> None:
    ok = await client.chat_postMessage(channel="C1", text="x" * 40_000)
    err = await _error_of(client.chat_postMessage(channel="C1", text="x" * 40_001))
    assert err.response["error"] == "msg_too_long"

    divider = {"type": "divider"}
    await client.chat_postMessage(channel="C1", text="50", blocks=[divider] * 50)
    err = await _error_of(client.chat_postMessage(channel="C1", text="51", blocks=[divider] * 51))
    assert err.response["error"] == "invalid_blocks"
    assert err.response["errors"]

    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]
    err = await _error_of(client.chat_postMessage(channel="C1", text="s", blocks=long_section))
    assert err.response["error"] == "invalid_blocks"
    assert "/blocks/0/text/text" in err.response["errors"][0]
    header = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    err = await _error_of(client.chat_postMessage(channel="C1", text="h", blocks=header))
    assert err.response["error"] == "invalid_blocks"
    md = [{"type": "markdown", "text": "m" * 7000}] * 2
    err = await _error_of(client.chat_postMessage(channel="C1", text="m", blocks=md))
    assert err.response["error"] == "invalid_blocks"

    # chat.update is held to the same limits and leaves the message alone
    err = await _error_of(client.chat_update(channel="C1", ts=ok["ts"], text="z" * 40_001))
    assert err.response["error"] == "msg_too_long"
    err = await _error_of(client.chat_update(channel="C1", ts=ok["ts"], text="u", blocks=long_section))
    assert err.response["error"] == "invalid_blocks"
    assert len(slack.messages("C1")) == 2
    assert slack.messages("C1")[0]["text"] == "x" * 40_000


# ------------------------------------------------------ conversations.*


@pytest.mark.asyncio
async def test_replies_pagination_three_pages(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_message("C1", user="U1", text="question")
    replies = [slack.add_message("C1", user="U2", text=f"r{i}", thread_ts=parent) for i in range(4)]
    slack.add_message("C1", user="U1", text="unrelated")

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        r = await client.conversations_replies(channel="C1", ts=parent, limit=2, cursor=cursor)
        pages.append([m["ts"] for m in r["messages"]])
        cursor = (r.get("response_metadata") or {}).get("next_cursor")
        assert r["has_more"] == bool(cursor)
        if not cursor:
            break
    assert pages == [[parent, replies[0]], [replies[1], replies[2]], [replies[3]]]
    first = (await client.conversations_replies(channel="C1", ts=parent))["messages"]
    assert first[0]["reply_count"] == 4 and first[0]["thread_ts"] == parent
    assert [m["text"] for m in first] == ["question", "r0", "r1", "r2", "r3"]
    # a reply's ts names the same thread
    via_reply = await client.conversations_replies(channel="C1", ts=replies[2])
    assert [m["ts"] for m in via_reply["messages"]] == [parent, *replies]

    err = await _error_of(client.conversations_replies(channel="C1", ts="1.000001"))
    assert err.response["error"] == "thread_not_found"
    err = await _error_of(client.conversations_replies(channel="C1", ts=parent, cursor="garbage!"))
    assert err.response["error"] == "invalid_cursor"


@pytest.mark.asyncio
async def test_history_window_and_pagination(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = [slack.add_message("C1", user="U1", text=f"m{i}", ts=f"1700000000.00000{i}") for i in range(1, 6)]
    slack.add_message("C1", user="U2", text="reply", ts="1700000000.000009", thread_ts=ts[0])

    r = await client.conversations_history(channel="C1")
    assert [m["text"] for m in r["messages"]] == ["m5", "m4", "m3", "m2", "m1"]  # newest first, no replies
    assert r["has_more"] is False
    assert r["messages"][-1]["reply_count"] == 1

    r = await client.conversations_history(channel="C1", oldest=ts[1], latest=ts[3])
    assert [m["text"] for m in r["messages"]] == ["m3"]
    r = await client.conversations_history(channel="C1", oldest=ts[1], latest=ts[3], inclusive=True)
    assert [m["text"] for m in r["messages"]] == ["m4", "m3", "m2"]

    r = await client.conversations_history(channel="C1", limit=2)
    assert [m["text"] for m in r["messages"]] == ["m5", "m4"] and r["has_more"] is True
    r = await client.conversations_history(
        channel="C1", limit=2, cursor=r["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in r["messages"]] == ["m3", "m2"]

    err = await _error_of(client.conversations_history(channel="C2"))
    assert err.response["error"] == "not_in_channel"


@pytest.mark.asyncio
async def test_conversations_info_members_users(slack: FakeSlack, client: AsyncWebClient) -> None:
    info = (await client.conversations_info(channel="C1"))["channel"]
    assert info["name"] == "general" and info["is_member"] is True and info["is_private"] is False
    info = (await client.conversations_info(channel="C2"))["channel"]
    assert info["is_member"] is False
    info = (await client.conversations_info(channel="D1"))["channel"]
    assert info["is_im"] is True and info["user"] == "U1"
    err = await _error_of(client.conversations_info(channel="G1"))
    assert err.response["error"] == "channel_not_found"

    members = await client.conversations_members(channel="C1")
    assert set(members["members"]) == {"U1", "U2", "UBOT"}

    user = (await client.users_info(user="U1"))["user"]
    assert user["name"] == "alice" and user["real_name"] == "Alice Liddell"
    assert user["profile"]["display_name"] == "ali" and user["tz"] == "America/New_York"
    assert user["tz_offset"] in (-5 * 3600, -4 * 3600) and user["tz_label"]
    assert (await client.users_info(user="U2"))["user"]["tz"] == "Europe/Berlin"
    assert (await client.users_info(user="UBOT"))["user"]["is_bot"] is True
    err = await _error_of(client.users_info(user="U404"))
    assert err.response["error"] == "user_not_found"
    ids = [u["id"] for u in (await client.users_list())["members"]]
    assert set(ids) == {"U1", "U2", "UBOT"}


@pytest.mark.asyncio
async def test_reactions_status_views(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = slack.add_message("C1", user="U1", text="hi")
    await client.reactions_add(channel="C1", name="eyes", timestamp=ts)
    assert slack.messages("C1")[0]["reactions"] == [{"name": "eyes", "users": ["UBOT"], "count": 1}]
    err = await _error_of(client.reactions_add(channel="C1", name="eyes", timestamp=ts))
    assert err.response["error"] == "already_reacted"
    await client.reactions_remove(channel="C1", name="eyes", timestamp=ts)
    assert "reactions" not in slack.messages("C1")[0]
    err = await _error_of(client.reactions_remove(channel="C1", name="eyes", timestamp=ts))
    assert err.response["error"] == "no_reaction"

    await client.assistant_threads_setStatus(
        channel_id="D1", thread_ts=ts, status="is thinking...", loading_messages=["Pondering"]
    )
    assert slack.assistant_statuses == [
        {"channel_id": "D1", "thread_ts": ts, "status": "is thinking...", "loading_messages": ["Pondering"]}
    ]

    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "home"}}]}
    r = await client.views_publish(user_id="U1", view=view)
    assert r["view"]["id"] and slack.views["U1"]["blocks"] == view["blocks"]


@pytest.mark.asyncio
async def test_chat_stream_helper(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_message("D1", user="U1", text="question")
    streamer = await client.chat_stream(channel="D1", thread_ts=parent, buffer_size=5)
    await streamer.append(markdown_text="hello ")
    await streamer.append(markdown_text="world")
    await streamer.stop(markdown_text="!")
    replies = slack.messages("D1", thread_ts=parent)
    assert [m["text"] for m in replies] == ["question", "hello world!"]
    err = await _error_of(client.chat_appendStream(channel="D1", ts=replies[1]["ts"], markdown_text="x"))
    assert err.response["error"] == "message_not_in_streaming_state"


# ---------------------------------------------------------- fault injection


@pytest.mark.asyncio
async def test_fail_next(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", "not_in_channel", count=2, needed="chat:write")
    for _ in range(2):
        err = await _error_of(client.chat_postMessage(channel="C1", text="x"))
        assert err.response.status_code == 200
        assert err.response["error"] == "not_in_channel" and err.response["needed"] == "chat:write"
    assert slack.messages("C1") == []
    await client.chat_postMessage(channel="C1", text="x")
    assert len(slack.messages("C1")) == 1
    assert len(slack.calls_to("chat.postMessage")) == 3


@pytest.mark.asyncio
async def test_rate_limit_retried_by_sdk_handler(slack: FakeSlack) -> None:
    slack.rate_limit_next("chat.postMessage", count=2, retry_after=0)
    client = AsyncWebClient(
        token=TOKEN,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    r = await client.chat_postMessage(channel="C1", text="eventually")
    assert r["ok"] is True
    assert len(slack.calls_to("chat.postMessage")) == 3
    assert [m["text"] for m in slack.messages("C1")] == ["eventually"]


@pytest.mark.asyncio
async def test_rate_limit_without_handler_surfaces_429(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.rate_limit_next("conversations.replies", retry_after=7)
    err = await _error_of(client.conversations_replies(channel="C1", ts="1.000001"))
    assert err.response.status_code == 429
    assert err.response.headers["Retry-After"] == "7"
    assert err.response["error"] == "ratelimited"


@pytest.mark.asyncio
async def test_server_error_retried(slack: FakeSlack) -> None:
    slack.server_error_next("auth.test", count=1, status=503)
    fast = FixedValueRetryIntervalCalculator(0.01)
    retrying = AsyncWebClient(
        token=TOKEN,
        base_url=slack.api_url,
        retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1, interval_calculator=fast)],
    )
    assert (await retrying.auth_test())["user_id"] == "UBOT"
    assert len(slack.calls_to("auth.test")) == 2

    slack.server_error_next("auth.test")
    err = await _error_of(AsyncWebClient(token=TOKEN, base_url=slack.api_url).auth_test())
    assert err.response.status_code == 500


@pytest.mark.asyncio
async def test_latency_and_concurrency(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.set_latency(0.2)
    start = time.monotonic()
    results = await asyncio.gather(*(client.chat_postMessage(channel="C1", text=f"n{i}") for i in range(20)))
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 2.0  # delayed, but concurrently
    tss = [r["ts"] for r in results]
    assert len(set(tss)) == 20
    stored = [m["ts"] for m in slack.messages("C1")]
    assert stored == sorted(stored, key=float) and len(stored) == 20


@pytest.mark.asyncio
async def test_stop_is_quick_with_request_in_flight() -> None:
    fake = FakeSlack().start()
    fake.set_latency(30)
    client = AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])
    pending = asyncio.create_task(client.auth_test())
    await fake.wait_for(lambda: len(fake.calls) == 1)
    start = time.monotonic()
    await asyncio.to_thread(fake.stop)
    assert time.monotonic() - start < 1.0
    with pytest.raises(aiohttp.ClientError):  # the client sees a disconnect
        await asyncio.wait_for(pending, 5)


@pytest.mark.asyncio
async def test_bolt_async_app_say_reaches_fake(slack: FakeSlack) -> None:
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    ts = slack.add_message("C1", user="U1", text="<@UBOT> hi")
    app = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=slack.api_url),
        signing_secret="unused",
        request_verification_enabled=False,
    )

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        await say(text="hello!", thread_ts=event["ts"])

    body = {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event_id": "Ev1",
        "event_time": 1,
        "event": {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "ts": ts, "channel": "C1"},
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
    }
    req = AsyncBoltRequest(body=json.dumps(body), headers={"content-type": ["application/json"]})
    assert (await app.async_dispatch(req)).status == 200
    await slack.wait_for(lambda: len(slack.messages("C1")) == 2)
    assert slack.messages("C1", thread_ts=ts)[1]["text"] == "hello!"
    assert [c.method for c in slack.calls] == ["auth.test", "chat.postMessage"]


# ------------------------------------------------------------------ files


@pytest.mark.asyncio
async def test_files_upload_v2_end_to_end(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_message("C1", user="U1", text="send me the log")
    r = await client.files_upload_v2(
        channel="C1",
        thread_ts=parent,
        content="line1\nline2\n",
        filename="answer.md",
        title="Full answer",
        initial_comment="here you go",
    )
    file_id = r["file"]["id"]
    assert r["file"]["title"] == "Full answer" and r["file"]["name"] == "answer.md"
    assert slack.file_content(file_id) == b"line1\nline2\n"
    (get_url,) = slack.calls_to("files.getUploadURLExternal")
    assert get_url.params["filename"] == "answer.md" and get_url.params["length"] == "12"
    thread = slack.messages("C1", thread_ts=parent)
    assert len(thread) == 2
    share = thread[1]
    assert share["text"] == "here you go" and share["thread_ts"] == parent
    assert [f["id"] for f in share["files"]] == [file_id]
    assert share["files"][0]["shares"]["public"]["C1"][0]["thread_ts"] == parent

    err = await _error_of(client.files_completeUploadExternal(files=[{"id": "F404", "title": "x"}]))
    assert err.response["error"] == "file_not_found"


# ----------------------------------------------------------- response_url


@pytest.mark.asyncio
async def test_response_url_records_json_posts(slack: FakeSlack) -> None:
    url = slack.response_url("cmd1")
    assert url == f"{slack.base_url}/response/cmd1"
    assert slack.responses["cmd1"] == []
    async with httpx.AsyncClient() as http:
        r = await http.post(url, json={"text": "working on it", "response_type": "in_channel"})
        assert r.status_code == 200
        for i in range(4):
            await http.post(url, json={"text": f"update {i}", "replace_original": True})
        r = await http.post(url, json={"text": "sixth"})
        assert r.status_code == 404  # Slack allows 5 uses
    assert slack.responses["cmd1"][0] == {"text": "working on it", "response_type": "in_channel"}
    assert len(slack.responses["cmd1"]) == 5
    other = slack.response_url()
    assert other != url and other.startswith(f"{slack.base_url}/response/")


# -------------------------------------------------------------- wire format


def test_sync_web_client(slack: FakeSlack) -> None:
    """The sync client sends form-encoded bodies (and JSON for chat.*) via urllib."""
    sync = WebClient(token=TOKEN, base_url=slack.api_url)
    assert sync.auth_test()["user_id"] == "UBOT"
    r = sync.chat_postMessage(channel="C1", text="sync", blocks=[{"type": "divider"}])
    sync.chat_postMessage(channel="C1", text="reply", thread_ts=r["ts"])
    replies = sync.conversations_replies(channel="C1", ts=r["ts"], limit=1)
    assert [m["text"] for m in replies["messages"]] == ["sync"] and replies["has_more"] is True
    up = sync.files_upload_v2(channel="C1", content=b"\x00\x01bin", filename="x.bin")
    assert slack.file_content(up["file"]["id"]) == b"\x00\x01bin"
    assert slack.messages("C1")[0]["blocks"] == [{"type": "divider"}]


def test_form_and_query_bodies_are_decoded(slack: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "form"}}]
    attachments = [{"text": "reasoning", "color": "#cccccc"}]
    with httpx.Client(base_url=slack.api_url) as http:
        r = http.post(
            "chat.postMessage",
            data={
                "channel": "C1",
                "text": "f",
                "blocks": json.dumps(blocks),
                "attachments": json.dumps(attachments),
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).json()
        assert r["ok"] is True
        r = http.get("chat.getPermalink", params={"token": TOKEN, "channel": "C1", "message_ts": r["ts"]})
        assert r.json()["ok"] is True
        bad = http.post(
            "chat.postMessage", data={"token": TOKEN, "channel": "C1", "text": "f", "blocks": "[not json"}
        ).json()
        assert bad == {"ok": False, "error": "invalid_blocks_format"}
    (msg,) = slack.messages("C1")
    assert msg["blocks"] == blocks and msg["attachments"] == attachments
    assert slack.calls_to("chat.postMessage")[0].params["blocks"] == blocks
    assert slack.calls_to("chat.getPermalink")[0].token == TOKEN
    assert "token" not in slack.calls_to("chat.getPermalink")[0].params


def test_wait_for_sync_and_threads(slack: FakeSlack) -> None:
    def later() -> None:
        time.sleep(0.05)
        WebClient(token=TOKEN, base_url=slack.api_url).auth_test()

    t = threading.Thread(target=later)
    t.start()
    slack.wait_for_sync(lambda: bool(slack.calls_to("auth.test")), timeout=5)
    t.join()
    with pytest.raises(TimeoutError):
        slack.wait_for_sync(lambda: False, timeout=0.05)


@pytest.mark.asyncio
async def test_wait_for_times_out(slack: FakeSlack) -> None:
    with pytest.raises(TimeoutError):
        await slack.wait_for(lambda: False, timeout=0.05)


def test_deterministic_ts() -> None:
    with FakeSlack(start_ts=1_700_000_000.0001) as fake:
        fake.add_channel("C1", name="general")
        sync = WebClient(token=TOKEN, base_url=fake.api_url)
        assert sync.chat_postMessage(channel="C1", text="a")["ts"] == "1700000000.000100"
        assert sync.chat_postMessage(channel="C1", text="b")["ts"] == "1700000000.000200"


def test_standalone_subprocess(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "users": [{"id": "U1", "name": "alice"}],
                "channels": [{"id": "C1", "name": "general", "members": ["U1"]}],
                "messages": [{"channel": "C1", "user": "U1", "text": "seeded"}],
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.slack_api", "--seed", str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        api_url = proc.stdout.readline().strip()
        assert api_url.startswith("http://127.0.0.1:") and api_url.endswith("/api/")
        sync = WebClient(token=TOKEN, base_url=api_url)
        hist = sync.conversations_history(channel="C1")
        assert [m["text"] for m in hist["messages"]] == ["seeded"]
        sync.chat_postMessage(channel="C1", text="from test")
        state_url = api_url.removesuffix("api/") + "_fake/state"
        with urllib.request.urlopen(state_url, timeout=5) as resp:
            state = json.load(resp)
        assert [m["text"] for m in state["messages"]["C1"]] == ["seeded", "from test"]
        assert [c["method"] for c in state["calls"]] == ["conversations.history", "chat.postMessage"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
