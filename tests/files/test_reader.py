"""The Slack adapter's file reader against a scripted transport, and the store's file rows:
token only to Slack, caps, retries, tombstones, retention and erasure."""

from __future__ import annotations

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.files.refs import FileRef, file_ref
from qwqbot.slack import files as slack_files
from qwqbot.slack.files import FileReader, token_may_go_to
from qwqbot.store import open_store
from qwqbot.store.controls import ControlStore

API = "https://slack.com/api/"
URL = "https://files.slack.com/files-pri/T1-F1/download/build.log"


@pytest.fixture
def store():
    s = open_store(":memory:")
    yield s
    s.close()


def share(store, *refs: FileRef, ts: str = "1700000000.000100", user: str = "U1") -> None:
    store.save_message(channel_id="C1", ts=ts, thread_ts=ts, user_id=user, text="see")
    store.save_message_files(channel_id="C1", ts=ts, thread_ts=ts, user_id=user, files=refs)


def reader(store, handler):
    seen: list[httpx.Request] = []

    def record(request):
        seen.append(request)
        return handler(request)

    return FileReader(store=store, client=AsyncWebClient(token="xoxb-t"), token="xoxb-t",
                      api_url=API, transport=httpx.MockTransport(record)), seen


def rows(store):
    return list(store.db.query("SELECT file_id, status, text, reason, partial, attempts"
                               " FROM message_files ORDER BY file_id"))


@pytest.mark.parametrize(("url", "ok"), [
    ("https://files.slack.com/files-pri/T1-F1/download/a.txt", True),
    ("https://slack.com/x", True),
    ("https://acme.enterprise.slack.com/files/x", True),
    ("http://files.slack.com/files-pri/x", False),  # never over plain http
    ("https://files.slack.com.evil.example/x", False),
    ("https://evil.example/?files.slack.com", False),
    ("https://slack.com@evil.example/x", False),
    ("https://proxy.internal:8443/files-pri/x", False),
])
def test_the_token_goes_only_to_slack(url, ok):
    assert token_may_go_to(url, API) is ok


def test_the_token_may_go_to_the_configured_web_api_host():
    assert token_may_go_to("http://127.0.0.1:5000/files-pri/x", "http://127.0.0.1:5000/api/")
    assert not token_may_go_to("http://127.0.0.1:5001/files-pri/x", "http://127.0.0.1:5000/api/")


async def test_a_text_file_is_downloaded_with_the_bearer_token_and_stored(store):
    share(store, FileRef("F1", "build.log", "text", "text/plain", 12, "hosted", URL))
    r, seen = reader(store, lambda req: httpx.Response(200, content=b"ERROR boom\n",
                                                      headers={"content-type": "text/plain"}))
    assert await r.read_thread("C1", "1700000000.000100", "1700000000.000100") == 1
    assert seen[0].headers["authorization"] == "Bearer xoxb-t"
    assert rows(store) == [{"file_id": "F1", "status": "read", "text": "ERROR boom", "reason": None,
                            "partial": 0, "attempts": 1}]
    # read once: nothing left to read
    assert await r.read_thread("C1", "1700000000.000100", "1700000000.000100") == 0


async def test_a_file_pointing_away_from_slack_is_not_sent_the_token(store):
    share(store, FileRef("F1", "a.txt", "text", "text/plain", 3, "hosted", "https://evil.example/a"))
    r, seen = reader(store, lambda req: httpx.Response(200, content=b"abc"))
    await r.read_thread("C1", "1700000000.000100", "1700000000.000100")
    assert seen == []
    assert rows(store)[0]["reason"] == slack_files.FOREIGN_LINK


async def test_a_text_beyond_the_read_cap_keeps_its_beginning_marked_partial(store, monkeypatch):
    monkeypatch.setattr(slack_files, "TEXT_BYTES", 1000)
    share(store, FileRef("F1", "big.log", "text", "text/plain", 5000, "hosted", URL))
    body = b"".join(b"line %04d\n" % i for i in range(500))
    r, _ = reader(store, lambda req: httpx.Response(200, content=body))
    await r.read_thread("C1", "1700000000.000100", "1700000000.000100")
    [row] = rows(store)
    assert row["status"] == "read" and row["partial"] == 1
    assert body.decode().startswith(row["text"]) and len(row["text"]) <= 1000


async def test_server_errors_are_tried_again_but_not_forever(store):
    share(store, FileRef("F1", "a.txt", "text", "text/plain", 3, "hosted", URL))
    r, seen = reader(store, lambda req: httpx.Response(503))
    for _ in range(4):
        await r.read_thread("C1", "1700000000.000100", "1700000000.000100")
    assert len(seen) == slack_files.MAX_ATTEMPTS
    [row] = rows(store)
    assert row["status"] == "failed" and row["reason"] == (
        "Slack could not hand it over just then (HTTP 503)")


async def test_bytes_that_are_not_text_are_said_to_be_so_whatever_the_name(store):
    share(store, FileRef("F1", "notes", "binary", "application/octet-stream", 9, "hosted", URL))
    r, _ = reader(store, lambda req: httpx.Response(200, content=b"\x00\x01\x02\x03ELF"))
    await r.read_thread("C1", "1700000000.000100", "1700000000.000100")
    assert rows(store)[0]["reason"] == "it is not a text file"


async def test_at_most_the_configured_number_of_files_is_read_for_one_answer(store, monkeypatch):
    monkeypatch.setattr(slack_files, "FILES_PER_ANSWER", 2)
    share(store, *(FileRef(f"F{i}", f"{i}.txt", "text", "text/plain", 1, "hosted", URL)
                   for i in range(3)))
    r, seen = reader(store, lambda req: httpx.Response(200, content=b"x"))
    assert await r.read_thread("C1", "1700000000.000100", "1700000000.000100") == 2
    assert len(seen) == 2
    assert [row["status"] for row in rows(store)] == ["read", "read", "pending"]


def test_file_objects_become_refs():
    assert file_ref({"id": "F1", "name": "a.txt", "filetype": "text", "mimetype": "text/plain",
                     "size": 3, "mode": "hosted", "url_private_download": URL}) == FileRef(
        "F1", "a.txt", "text", "text/plain", 3, "hosted", URL)
    assert file_ref({"id": "F2", "mode": "file_access", "file_access": "check_file_info"}) == FileRef(
        "F2", "F2", mode="file_access", check_info=True)
    assert file_ref({"id": "F3", "mode": "external", "name": "doc"}) == FileRef(
        "F3", "doc", mode="external", external=True)
    assert file_ref({"name": "no id"}) is None


def test_a_redelivered_share_changes_nothing_and_a_tombstone_is_not_revived(store):
    ref = FileRef("F1", "a.txt", "text", "text/plain", 3, "hosted", URL)
    share(store, ref)
    store.record_file_read("C1", "1700000000.000100", "F1", status="read", kind="text", text="abc")
    share(store, ref)
    assert rows(store)[0]["text"] == "abc"
    assert store.file_deleted("F1") == 1
    share(store, ref)
    assert rows(store)[0]["status"] == "deleted" and rows(store)[0]["text"] is None
    assert store.message_files("C1", ["1700000000.000100"]) == []


def test_a_deleted_message_takes_its_files_text(store):
    share(store, FileRef("F1", "a.txt", "text", "text/plain", 3, "hosted", URL))
    store.record_file_read("C1", "1700000000.000100", "F1", status="read", kind="text", text="abc")
    store.forget_message_files("C1", "1700000000.000100")
    assert rows(store)[0]["text"] is None


def test_retention_and_forget_cover_file_text(store):
    share(store, FileRef("F1", "old.txt", "text"), ts="1600000000.000100", user="U1")
    share(store, FileRef("F2", "new.txt", "text"), ts="1800000000.000100", user="U2")
    share(store, FileRef("F3", "bob.txt", "text"), ts="1800000000.000200", user="U3")
    controls = ControlStore(store)
    controls.prune(older_than=1_700_000_000)
    assert [r["file_id"] for r in rows(store)] == ["F2", "F3"]
    controls.forget_user("U2")
    assert [r["file_id"] for r in rows(store)] == ["F3"]
    controls.forget_channel("C1")
    assert rows(store) == []


async def test_two_answers_reading_one_thread_at_once_download_each_file_once(store):
    import asyncio

    share(store, FileRef("F1", "a.txt", "text", "text/plain", 3, "hosted", URL))
    release, started = asyncio.Event(), asyncio.Event()
    calls: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        started.set()
        await release.wait()
        return httpx.Response(200, content=b"abc")

    r = FileReader(store=store, client=AsyncWebClient(token="xoxb-t"), token="xoxb-t", api_url=API,
                   transport=httpx.MockTransport(handler))
    first = asyncio.ensure_future(r.read_thread("C1", "1700000000.000100", "1700000000.000100"))
    second = asyncio.ensure_future(r.read_thread("C1", "1700000000.000100", "1700000000.000100"))
    await started.wait()
    for _ in range(5):  # let the second reader reach the file too
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, second)
    assert len(calls) == 1
    assert rows(store)[0]["text"] == "abc"
