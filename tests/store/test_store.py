import sqlite3
from pathlib import Path

import pytest

from qwqbot.errors import StoreError
from qwqbot.store import open_store
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
    call_id = store.record_model_call(purpose="ask", model="m", prompt_tokens=3, total_tokens=9)
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
