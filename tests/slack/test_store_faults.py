"""The database misbehaving under the running bot: another process holding SQLite's write lock,
a full disk, the file deleted, and edits that arrive before their post. Through the real app and
the loopback fakes; after each: the user was told or answered, the next question is answered,
and ``PRAGMA integrity_check`` holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.model_server import stream, think_stream
from tests.slack.harness import BOT, Harness
from tests.slack.test_faults import intact, still_serving, told


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"never became true: {check}")


@contextlib.contextmanager
def held_lock(path: str) -> Iterator[sqlite3.Connection]:
    """Another process's view: a connection that takes SQLite's write lock and keeps it (as
    an operator's ``sqlite3`` shell in a transaction, or a second instance, would)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.rollback()
        other.close()


async def healthz(harness: Harness) -> httpx.Response:
    url = harness.url.replace("/slack/events", "/healthz")
    return await harness.http.get(url, timeout=2)


async def test_a_held_write_lock_freezes_nothing_and_loses_nothing(harness, caplog):
    caplog.set_level(logging.WARNING, logger="qwqbot.store.journal")
    before = intact(harness)
    harness.model.enqueue(think_stream("r", "Answered while the database was held."),
                          think_stream("r", "Private answer while held."))
    with held_lock(harness.env["QWQBOT_DB"]):
        ts = await harness.post("C1", "U1", f"<@{BOT}> during the lock")
        # Answered while the lock is still held: the loop never waited for SQLite.
        await eventually(lambda: "Answered while the database was held." in told(
            harness, "C1", ts))
        health = await healthz(harness)
        assert health.status_code == 200
        assert health.json()["db"] == "busy"
        assert health.json()["db_pending_writes"] > 0
        # A slash command is acked and answered too.
        response, key = await harness.command("private what now?")
        assert response.status_code == 200
        await eventually(lambda: "Private answer while held." in json.dumps(
            harness.responses(key)))
        # A command whose reply would claim a change it cannot make says so instead.
        _, settings_key = await harness.command("settings mention off")
        await eventually(lambda: harness.responses(settings_key))
        assert "cannot be written just now" in json.dumps(harness.responses(settings_key))
        # Nothing is in the table yet: it waits in memory.
        assert harness.answers("C1", ts) == []
    # The lock goes: what waited is written by itself, in order.
    row = await harness.finished("C1", ts)
    assert row["status"] == "done"
    assert "Answered while the database was held." in (row["answer"] or "")
    await eventually(lambda: harness.store.health()["db"] == "ok")  # the rest is written too
    assert intact(harness) == before + 2  # the question and the answer
    assert (await healthz(harness)).json()["db"] == "ok"
    assert "locked by another process" in caplog.text
    assert "takes writes again" in caplog.text
    await still_serving(harness)


async def test_a_lock_taken_mid_answer_does_not_fail_it(harness):
    harness.model.enqueue(stream(["<think>", "slow ", "thoughts", "</think>", "Finished ",
                                  "despite the lock."], chunk_delay=0.15))
    ts = await harness.post("C1", "U1", f"<@{BOT}> take your time")
    await eventually(lambda: [r for r in harness.answers("C1", ts) if r["status"] == "running"])
    with held_lock(harness.env["QWQBOT_DB"]):
        await eventually(lambda: "Finished despite the lock." in told(harness, "C1", ts))
    row = await harness.finished("C1", ts)
    assert (row["status"], row["answer"]) == ("done", "Finished despite the lock.")
    intact(harness)
    await still_serving(harness)


async def test_redeliveries_during_a_lock_are_still_dropped(harness):
    harness.model.enqueue(think_stream("r", "Once."))
    event_id = f"Ev{uuid.uuid4().hex[:10]}"
    with held_lock(harness.env["QWQBOT_DB"]):
        ts = harness.slack.add_message("C1", user="U1", text=f"<@{BOT}> once please")
        event = {"type": "app_mention", "channel": "C1", "user": "U1",
                 "text": f"<@{BOT}> once please", "ts": ts, "event_ts": ts}
        for _ in range(3):  # Slack's retries of one delivery
            assert (await harness.deliver(event, event_id=event_id)).status_code == 200
        await eventually(lambda: "Once." in told(harness, "C1", ts))
    await harness.finished("C1", ts)
    assert len(harness.answers("C1", ts)) == 1
    assert len(harness.model.requests) == 1
    await still_serving(harness)


def limit_pages(db: sqlite3.Connection | Any, pages: int) -> None:
    db.execute(f"PRAGMA max_page_count = {pages}")


async def test_a_full_database_tells_the_asker_answers_and_recovers(harness, caplog):
    """SQLite's own limit on the file's size (https://sqlite.org/pragma.html#pragma_max_page_count)
    gives exactly the error a full disk gives: SQLITE_FULL, "database or disk is full"."""
    caplog.set_level(logging.WARNING)
    db = harness.store.db
    before = intact(harness)
    limit_pages(db, db.execute("PRAGMA page_count").fetchone()[0])
    harness.model.enqueue(think_stream("r", "Answered from memory."),
                          think_stream("r", "Still answering."))
    first = await harness.post("C1", "U1", f"<@{BOT}> {'a long question ' * 300}")
    await eventually(lambda: "Answered from memory." in told(harness, "C1", first))
    assert (await healthz(harness)).json()["db"] == "full"
    second = await harness.post("C1", "U2", f"<@{BOT}> and mine?")
    await eventually(lambda: "Still answering." in told(harness, "C1", second))
    told_full = [e for e in harness.slack.ephemerals if "disk is full" in e.get("text", "")]
    assert {e["user"] for e in told_full} == {"U1", "U2"}  # each asker, privately
    disk_lines = [r for r in caplog.records if "disk is full" in r.getMessage()]
    assert len(disk_lines) == 1  # one line for the operator, not one per write
    limit_pages(db, 1_000_000)  # space returns
    for ts in (first, second):
        assert (await harness.finished("C1", ts))["status"] == "done"
    await eventually(lambda: harness.store.health()["db"] == "ok")
    assert intact(harness) == before + 4
    assert (await healthz(harness)).json()["db"] == "ok"
    await still_serving(harness)


def _mount_tiny_fs(where: Path) -> bool:
    """A 1 MB tmpfs, where this machine lets us mount one (root in a container that allows it)."""
    if os.geteuid() != 0:
        return False
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                          capture_output=True, check=False)
    return done.returncode == 0


def _unmount(where: Path) -> None:
    subprocess.run(["umount", str(where)], check=False)


async def test_a_really_full_filesystem(slack, model_server, tmp_path):
    """The same on a real filesystem that runs out of space, where the machine can make one."""
    tiny = tmp_path / "tiny"
    if not _mount_tiny_fs(tiny):
        pytest.skip("cannot mount a tmpfs here; test_a_full_database_... covers SQLITE_FULL")
    try:
        h = Harness(slack, model_server, str(tiny / "bot.db"))
        await h.start()
        try:
            ballast = tiny / "ballast"
            fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
            with contextlib.suppress(OSError):  # fill the disk to the last block
                while os.write(fd, b"\0" * 512):
                    pass
            os.close(fd)
            model_server.enqueue(think_stream("r", "Answered on a full disk."))
            ts = await h.post("C1", "U1", f"<@{BOT}> {'fill it up ' * 2000}")
            await eventually(lambda: "Answered on a full disk." in told(h, "C1", ts))
            assert (await healthz(h)).json()["db"] == "full"
            ballast.unlink()
            assert (await h.finished("C1", ts))["status"] == "done"
            intact(h)
            await still_serving(h)
        finally:
            await h.stop()
    finally:
        _unmount(tiny)


async def test_a_deleted_database_file_is_noticed(harness, caplog):
    assert (await healthz(harness)).json()["db"] == "ok"
    os.unlink(harness.env["QWQBOT_DB"])
    with caplog.at_level(logging.ERROR, logger="qwqbot.store.store"):
        await harness.bot._watch_db()  # the periodic job (Socket Mode has no /healthz)
        health = await healthz(harness)
    assert health.status_code == 503
    assert health.json()["ok"] is False
    assert health.json()["db"] == "missing"
    told_operator = [r for r in caplog.records if "was deleted or replaced" in r.getMessage()]
    assert len(told_operator) == 1  # once, however often it is checked
    intact(harness)
    await still_serving(harness)  # answering goes on meanwhile


async def test_an_edit_or_delete_before_its_post_is_applied_when_it_arrives(harness):
    channel = "C1"
    # Deleted before Slack delivered the post: never stored, never answered.
    gone = harness.slack.add_message(channel, user="U1", text=f"<@{BOT}> forget this")
    await harness.deliver({"type": "message", "subtype": "message_deleted", "channel": channel,
                           "deleted_ts": gone, "ts": "9.000001", "hidden": True,
                           "previous_message": {"user": "U1", "ts": gone, "text": "x"}})
    for kind in ("app_mention", "message"):
        await harness.deliver({"type": kind, "channel": channel, "user": "U1",
                               "text": f"<@{BOT}> forget this", "ts": gone, "event_ts": gone})
    # Edited before delivery: answered as edited.
    harness.model.enqueue(think_stream("r", "Answered the edit."))
    edited = harness.slack.add_message(channel, user="U1", text=f"<@{BOT}> old words")
    await harness.deliver({"type": "message", "subtype": "message_changed", "channel": channel,
                           "ts": "9.000002", "hidden": True,
                           "message": {"user": "U1", "ts": edited, "text": f"<@{BOT}> new words",
                                       "edited": {"user": "U1", "ts": "9.000002"}},
                           "previous_message": {"user": "U1", "ts": edited,
                                                "text": f"<@{BOT}> old words"}})
    await harness.deliver({"type": "message", "channel": channel, "user": "U1",
                           "text": f"<@{BOT}> old words", "ts": edited, "event_ts": edited,
                           "channel_type": "channel"})
    assert (await harness.finished(channel, edited))["status"] == "done"
    assert harness.answers(channel, gone) == []
    assert not harness.store.has_message(channel, gone)
    assert len(harness.model.requests) == 1
    prompt = json.dumps(harness.model.requests[0].json["messages"])
    assert "new words" in prompt and "old words" not in prompt
    intact(harness)
    await still_serving(harness)
