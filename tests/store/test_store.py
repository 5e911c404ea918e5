import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from qwqbot.errors import StoreError
from qwqbot.store import open_store
from qwqbot.store.controls import ControlStore
from qwqbot.store.digests import DigestStore
from qwqbot.store.migrations import migrations


def test_opens_in_wal_with_all_migrations(tmp_path: Path):
    store = open_store(tmp_path / "q.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = set(store.db.table_names())
    assert {"messages", "threads", "answers", "slack_events", "model_calls", "users"} <= tables
    applied = [m.name for m in migrations.applied(store.db)]
    assert applied[0] == "m001_initial"
    assert store.table("messages").pks == ["channel_id", "ts"]
    store.close()


def test_reopening_applies_nothing_twice_and_keeps_data(tmp_path: Path):
    path = tmp_path / "q.db"
    store = open_store(path)
    store.save_message(channel_id="C1", ts="1.1", thread_ts="1.1", user_id="U1", text="hi")
    applied = [m.applied_at for m in migrations.applied(store.db)]
    store.close()
    store = open_store(path)
    assert [r["text"] for r in store.thread_messages("C1", "1.1")] == ["hi"]
    assert [m.applied_at for m in migrations.applied(store.db)] == applied
    assert migrations.pending(store.db) == []


def test_claim_event_is_durable_dedupe(tmp_path: Path):
    path = tmp_path / "q.db"
    store = open_store(path)
    assert store.claim_event("Ev1", event_type="app_mention")
    assert not store.claim_event("Ev1")
    store.close()
    assert not open_store(path).claim_event("Ev1")  # survives a restart


def test_messages_are_idempotent_and_edits_and_deletes_apply(tmp_path: Path):
    store = open_store(tmp_path / "q.db")
    for _ in range(2):
        store.save_message(channel_id="C1", ts="1.1", thread_ts="1.1", user_id="U1", text="q")
    store.save_message(channel_id="C1", ts="1.2", thread_ts="1.1", user_id="UB", text="a",
                       is_bot=True)
    assert store.table("messages").count == 2
    assert store.edit_message(channel_id="C1", ts="1.1", text="q2", edited_ts="1.5")
    assert store.delete_message(channel_id="C1", ts="1.2")
    rows = store.thread_messages("C1", "1.1")
    assert [(r["ts"], r["text"]) for r in rows] == [("1.1", "q2")]
    # the deleted text is gone from the database, not just hidden
    assert store.table("messages").get(("C1", "1.2"))["text"] == ""
    # a redelivered original never resurrects a deleted message
    store.save_message(channel_id="C1", ts="1.2", thread_ts="1.1", user_id="UB", text="a")
    assert store.table("messages").get(("C1", "1.2"))["text"] == ""


def test_corrupted_file_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database, just some text" * 100)
    with pytest.raises(StoreError) as info:
        open_store(bad)
    assert str(bad) in str(info.value) and "not a database" in str(info.value)
    assert "QWQBOT_DB" in info.value.hint


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nope" / "q.db")


def test_unwritable_path_is_a_clear_error(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "q.db").mkdir()  # a directory where the file should be: cannot be opened as one
    with pytest.raises(StoreError, match="Cannot open the database"):
        open_store(folder / "q.db")


def test_model_calls_recorded(tmp_path: Path):
    store = open_store(tmp_path / "q.db")
    call_id = store.record_model_call(purpose="digest", model="m", prompt_tokens=3, total_tokens=9)
    assert store.table("model_calls").get(call_id)["total_tokens"] == 9


def test_locked_database_waits_instead_of_failing(tmp_path: Path):
    path = tmp_path / "q.db"
    store = open_store(path)
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock...
    import threading

    threading.Timer(0.3, other.commit).start()  # ...and releases it shortly
    store.save_message(channel_id="C", ts="1", thread_ts=None, user_id="U", text="x")
    assert store.table("messages").count == 1


def test_every_kind_of_write_is_committed_when_its_method_returns(tmp_path: Path):
    """No method leaves its write in an open transaction: another connection (the CLI next to the
    bot, a backup) sees it at once. One write of each kind: ``db.execute``, ``db.conn.executemany``
    inside ``atomic()``, ``Table.insert``, ``Table.upsert``, ``Table.update``, and two statements in
    one ``atomic()``."""
    path = tmp_path / "q.db"
    store = open_store(path)
    controls, digests = ControlStore(store), DigestStore(store)
    other = sqlite3.connect(path)

    def seen(sql: str) -> list[tuple[Any, ...]]:
        assert not store.db.conn.in_transaction
        return other.execute(sql).fetchall()

    assert store.claim_event("Ev1")
    assert seen("SELECT event_id FROM slack_events") == [("Ev1",)]
    store.save_messages([{"channel_id": "C1", "ts": "1.1", "thread_ts": "1.1", "user_id": "U1",
                          "text": "from history"}])
    assert seen("SELECT text FROM messages") == [("from history",)]
    answer_id = store.claim_answer(channel_id="C1", request_ts="1.1", thread_ts="1.1",
                                   user_id="U1", trigger="mention")
    assert answer_id is not None
    store.update_answer(answer_id, status="done", answer="42")
    assert seen("SELECT status, answer FROM answers") == [("done", "42")]
    store.record_model_call(purpose="answer", answer_id=answer_id, total_tokens=7)
    assert seen("SELECT purpose, total_tokens FROM model_calls") == [("answer", 7)]
    controls.set_quota("U1", 500, by="UA")
    assert seen("SELECT daily_tokens FROM quotas") == [(500,)]
    digests.set_schedule(channel_id="C1", kind="daily", day=None, hour=9, minute=0, tz="UTC",
                         created_by="UA")
    assert seen("SELECT COUNT(*) FROM tracked_channels") == [(1,)]
    digests.remove_schedules("C1")
    assert seen("SELECT (SELECT COUNT(*) FROM digest_schedules),"
                " (SELECT COUNT(*) FROM tracked_channels)") == [(0, 0)]
    other.close()


def test_update_answer_sets_status_only_when_given(tmp_path: Path):
    store = open_store(tmp_path / "q.db")
    answer_id = store.claim_answer(channel_id="C1", request_ts="1.1", thread_ts=None,
                                   user_id="U1", trigger="private", question="why?")
    assert answer_id is not None
    store.update_answer(answer_id, placeholder_ts="1.2")
    row = store.find_answer(answer_id)
    assert row is not None
    assert (row["status"], row["placeholder_ts"], row["trigger"]) == ("queued", "1.2", "private")
    store.update_answer(answer_id, status="running", started_at=5.0)
    row = store.find_answer(answer_id)
    assert row is not None and (row["status"], row["started_at"]) == ("running", 5.0)
    assert [r["id"] for r in store.unfinished_answers()] == [answer_id]


def test_threads_active_since(tmp_path: Path):
    store = open_store(tmp_path / "q.db")
    day = 1_700_000_000.0  # Slack ts are compared as text: real ones have 10 integer digits

    def post(at: float, thread_at: float | None, channel_id: str = "C1") -> None:
        store.save_message(channel_id=channel_id, ts=f"{at:.6f}", user_id="U1", text="x",
                           thread_ts=None if thread_at is None else f"{thread_at:.6f}")

    post(day, day)  # started before, replied to after `active_since`: found
    post(day + 500, day)
    post(day + 100, day + 100)  # started before, nothing stored after `active_since`: not found
    post(day + 1000, day + 1000)  # exactly at `started_by`: found
    post(day + 1000.000001, day + 1000.000001)  # started after `started_by`: not found
    post(day + 600, None)  # not in a thread
    post(day + 700, day, channel_id="C2")  # another channel
    found = store.threads_active_since("C1", started_by=day + 1000, active_since=day + 200)
    assert sorted(found) == [f"{day:.6f}", f"{day + 1000:.6f}"]
    assert store.threads_active_since("C1", started_by=day - 1, active_since=day - 7 * 86400) == []


def test_assistant_threads_are_erased_with_their_user_channel_or_age(tmp_path: Path):

    clock = [1_000_000.0]
    store = open_store(tmp_path / "a.db", clock=lambda: clock[0])
    controls = ControlStore(store)
    store.save_assistant_thread("D1", "1.0", user_id="U1", context_channel_id="C1")
    store.save_assistant_thread("D2", "2.0", user_id="U2", context_channel_id="C2")
    store.save_assistant_thread("D3", "3.0", user_id="U3", context_channel_id="C3")
    controls.forget_user("U1")
    assert store.assistant_thread("D1", "1.0") is None
    controls.forget_channel("C2")  # the channel the user was viewing
    assert store.assistant_thread("D2", "2.0") is None
    assert store.assistant_thread("D3", "3.0") is not None
    controls.prune(older_than=clock[0] + 1)
    assert store.assistant_thread("D3", "3.0") is None
    store.close()


def test_claim_request_refuses_the_same_signature_again_even_after_a_restart(tmp_path: Path):
    path = tmp_path / "q.db"
    store = open_store(path)
    assert store.claim_request("v0=abc", kind="command", channel_id="C1", ts="1700000000")
    assert not store.claim_request("v0=abc", kind="command")
    assert store.claim_request("v0=abd")
    assert store.claim_event("v0=abc")  # an event id of the same text is another thing
    store.close()
    assert not open_store(path).claim_request("v0=abc")


def test_a_new_database_is_created_readable_by_its_owner_only(tmp_path: Path):
    previous = os.umask(0o022)
    try:
        store = open_store(tmp_path / "q.db")
        store.save_message(channel_id="C1", ts="1.1", thread_ts=None, user_id="U1", text="hi")
    finally:
        os.umask(previous)
    for name in ("q.db", "q.db-wal", "q.db-shm"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    store.close()


def test_an_existing_database_keeps_its_mode_with_a_warning_when_anyone_can_read_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "q.db"
    open_store(path).close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="qwqbot.store.store"):
        open_store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    [warning] = [r.getMessage() for r in caplog.records if str(path) + " " in r.getMessage()]
    assert "can be read by every user" in warning and "644" in warning and "chmod 600" in warning
    caplog.clear()
    path.chmod(0o640)  # group-readable is the operator's choice: no warning
    with caplog.at_level(logging.WARNING, logger="qwqbot.store.store"):
        open_store(path).close()
    assert not [r for r in caplog.records if "can be read by every user" in r.getMessage()]


def test_forget_user_erases_the_digests_of_periods_they_posted_in_and_only_those(tmp_path: Path):
    store = open_store(tmp_path / "q.db")
    controls, digests = ControlStore(store), DigestStore(store)
    day = 1_700_000_000.0

    def digest(channel: str, start: float, key: str) -> int:
        run = digests.claim_run(channel_id=channel, schedule_id=None, period_key=key, start=start,
                                end=start + 86400)
        assert run is not None
        digests.finish_run(run, status="posted", digest=f"digest {key}", reasoning="r",
                           message_ts=f"{start + 86400:.6f}")
        # the bot's post, as a thread's history read back from Slack stores it
        store.save_messages([{"channel_id": channel, "ts": f"{start + 86400:.6f}",
                              "thread_ts": None, "user_id": "UBOT", "text": f"digest {key}",
                              "is_bot": 1}])
        return run

    posted_in = digest("C1", day, "c1-day1")
    later = digest("C1", day + 86400, "c1-day2")  # they said nothing that day
    other_channel = digest("C2", day, "c2-day1")
    store.save_message(channel_id="C1", ts=f"{day + 600:.6f}", thread_ts=None, user_id="U1",
                       text="mine")
    store.save_message(channel_id="C2", ts=f"{day + 600:.6f}", thread_ts=None, user_id="U2",
                       text="theirs")
    counts = controls.forget_user("U1")
    assert counts == {"messages": 1, "answers": 0, "digests": 1}
    runs = {r["id"]: r for r in store.db.query("SELECT * FROM digest_runs")}
    assert (runs[posted_in]["digest"], runs[posted_in]["reasoning"]) == (None, None)
    assert runs[posted_in]["status"] == "posted"  # the period stays done: not digested again
    assert runs[later]["digest"] == "digest c1-day2" and runs[other_channel]["digest"] == "digest c2-day1"
    texts = {r["text"] for r in store.db.query("SELECT text FROM messages")}
    assert texts == {"digest c1-day2", "digest c2-day1", "theirs"}
    assert controls.forget_user("U1")["digests"] == 0  # nothing left to erase
    store.close()


def test_thread_voices_are_its_people_and_their_mentioning_texts(tmp_path: Path):
    store = open_store(tmp_path / "v.db")
    rows = [("1.0", "U1", "hi <@U9>", None), ("1.1", "U2", "plain", None),
            ("1.2", "UBOT", "<@U7> from the bot", "B1"), ("1.3", "U3", "gone <@U8>", None)]
    for ts, user, text, bot_id in rows:
        store.save_message(channel_id="C1", ts=ts, thread_ts="1.0", user_id=user, text=text,
                           is_bot=bot_id is not None, bot_id=bot_id)
    store.delete_message(channel_id="C1", ts="1.3")
    authors, mentioning = store.thread_voices("C1", "1.0", bot_user_id="UBOT", bot_id="B1")
    assert authors == {"U1", "U2"}
    assert mentioning == ["hi <@U9>"]
    store.close()
