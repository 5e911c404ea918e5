"""The store while SQLite takes no writes: writes wait in order, reads see them, claims stay
claims, and everything lands once the lock goes (qwqbot/store/journal.py, pending.py)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwqbot.store import Store, open_store
from qwqbot.store.journal import Journal, transient
from qwqbot.store.store import StoreBusy

THREAD = "1700000000.000000"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "j.db")
    s.stop_waiting()
    yield s
    s.close()


@pytest.fixture
def other(tmp_path: Path, store: Store) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    yield conn
    conn.close()


def lock(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def save(store: Store, ts: str, text: str, *, user: str = "U1") -> None:
    store.save_message(channel_id="C1", ts=ts, thread_ts=THREAD, user_id=user, text=text)


def window(store: Store) -> list[str]:
    rows, _ = store.thread_window("C1", THREAD, "9999999999.000000", enough=lambda r: False)
    return [r["text"] for r in rows]


def table_texts(store: Store) -> list[str]:
    return [r[0] for r in store.db.execute(
        "SELECT text FROM messages WHERE deleted = 0 ORDER BY ts")]


def test_writes_wait_in_order_and_reads_see_them(store: Store, other: sqlite3.Connection) -> None:
    save(store, THREAD, "root")
    lock(other)
    save(store, "1700000001.000000", "first")
    save(store, "1700000002.000000", "second")
    store.edit_message(channel_id="C1", ts="1700000001.000000", text="first, edited",
                       edited_ts="1")
    store.delete_message(channel_id="C1", ts=THREAD)
    assert store.journal is not None and store.journal.pending == 4
    assert table_texts(store) == ["root"]  # nothing written yet
    assert window(store) == ["first, edited", "second"]  # but reads see it all
    assert store.health() == {"db": "busy", "db_pending_writes": 4}
    assert store.journal.flush() == 0  # still held
    other.rollback()
    assert store.journal.flush() == 4
    assert table_texts(store) == ["first, edited", "second"]
    assert window(store) == ["first, edited", "second"]
    assert store.health()["db"] == "ok"


def test_claims_stay_once_only_while_writes_wait(store: Store, other: sqlite3.Connection) -> None:
    assert store.claim_event("Ev0")
    lock(other)
    assert not store.claim_event("Ev0")  # claimed before the lock: read from the table
    assert store.claim_event("Ev1")
    assert not store.claim_event("Ev1")  # claimed while waiting: known from memory
    first = store.claim_answer(channel_id="C1", request_ts="1.1", thread_ts=None,
                               user_id="U1", trigger="mention")
    assert first is not None
    assert store.claim_answer(channel_id="C1", request_ts="1.1", thread_ts=None,
                              user_id="U1", trigger="mention") is None
    store.update_answer(first, status="done", answer="kept")
    other.rollback()
    assert store.journal is not None
    store.journal.flush()
    assert store.find_answer(first)["answer"] == "kept"  # type: ignore[index]
    assert store.db.execute("SELECT COUNT(*) FROM slack_events").fetchone()[0] == 2


def test_an_answer_id_taken_meanwhile_is_followed(store: Store, other: sqlite3.Connection) -> None:
    lock(other)
    provisional = store.claim_answer(channel_id="C1", request_ts="2.2", thread_ts=None,
                                     user_id="U1", trigger="mention")
    assert provisional == 1
    # Another process (a second instance by mistake) takes that very id first.
    other.execute("INSERT INTO answers (id, channel_id, request_ts, attempt, user_id, trigger,"
                  " status, created_at) VALUES (1, 'C9', '9.9', 0, 'U9', 'mention', 'done', 0)")
    other.execute("COMMIT")
    store.update_answer(provisional, status="done", answer="mine")
    assert store.journal is not None
    store.journal.flush()
    mine = store.find_answer(provisional)
    assert mine is not None and (mine["channel_id"], mine["answer"]) == ("C1", "mine")
    assert mine["id"] != 1
    theirs = store.db.execute("SELECT channel_id, answer FROM answers WHERE id = 1").fetchone()
    assert theirs == ("C9", None)


def test_a_write_that_must_happen_now_says_busy(store: Store, other: sqlite3.Connection) -> None:
    from qwqbot.store.controls import ControlStore

    controls = ControlStore(store)
    lock(other)
    with pytest.raises(StoreBusy, match="another program is holding it"):
        controls.set_quota("U2", 10, by="U1")
    other.rollback()
    controls.set_quota("U2", 10, by="U1")
    assert controls.quota("U2") == 10


def test_a_broken_write_is_dropped_not_retried_forever(store: Store, other: sqlite3.Connection,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    lock(other)
    assert store.journal is not None
    store.journal.queue(lambda: store.db.execute("INSERT INTO no_such_table VALUES (1)"), "broken")
    save(store, "1700000003.000000", "after the broken one")
    other.rollback()
    with caplog.at_level(logging.ERROR):
        assert store.journal.flush() == 1
    assert "dropped a queued database write (broken)" in caplog.text
    assert table_texts(store) == ["after the broken one"]


def test_the_queue_is_bounded() -> None:
    journal = Journal(lambda: None, limit=2)
    for _ in range(3):
        journal.queue(lambda: None, "w")
    assert (journal.pending, journal.dropped) == (2, 1)


def test_transient_errors_are_told_apart() -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13
    syntax = sqlite3.OperationalError("near x: syntax error")
    syntax.sqlite_errorcode = 1
    assert [transient(e) for e in (busy, full, syntax)] == ["busy", "full", None]
    assert transient(ValueError("locked")) is None


def test_closing_makes_a_last_patient_try(tmp_path: Path) -> None:
    store = open_store(tmp_path / "c.db")
    store.stop_waiting()
    conn = sqlite3.connect(tmp_path / "c.db", isolation_level=None, check_same_thread=False)
    lock(conn)
    save(store, THREAD, "written at close")
    import threading
    threading.Timer(0.3, conn.rollback).start()  # the lock goes while close() waits
    store.close()
    conn.close()
    reopened = open_store(tmp_path / "c.db")
    assert table_texts(reopened) == ["written at close"]
    reopened.close()
