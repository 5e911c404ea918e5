"""Each stored message keeps its token count: written with every save and edit, read with the thread,
and filled in by migration m006 for messages stored before it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from qwqbot.store import open_store
from qwqbot.store.migrations import migrations
from qwqbot.tokens import QWEN25, message_tokens

TEXT = "deploy 1700000000.000100 failed <https://ci.acme.dev/b/42|build 42> &amp; rolled back"


def tokens_of(store, channel: str = "C1") -> dict[str, int | None]:
    return {r["ts"]: r["tokens"] for r in store.db.query(
        "SELECT ts, tokens FROM messages WHERE channel_id = ?", [channel])}


def test_saves_and_edits_keep_the_count_of_the_text_a_prompt_shows(tmp_path: Path):
    store = open_store(tmp_path / "q.db")
    store.save_message(channel_id="C1", ts="1.1", thread_ts="1.1", user_id="U1", text=TEXT)
    shown = "deploy 1700000000.000100 failed build 42 (https://ci.acme.dev/b/42) & rolled back"
    expected = QWEN25.tokens(shown)
    assert tokens_of(store) == {"1.1": expected} and expected == message_tokens(TEXT)
    store.save_message(channel_id="C1", ts="1.1", thread_ts="1.1", user_id="U1", text="redelivered, changed")
    assert tokens_of(store) == {"1.1": QWEN25.tokens("redelivered, changed")}
    assert store.edit_message(channel_id="C1", ts="1.1", text="edited 12345", edited_ts="2.0")
    assert tokens_of(store) == {"1.1": QWEN25.tokens("edited 12345")}
    store.save_messages([{"channel_id": "C1", "ts": "1.2", "thread_ts": "1.1", "user_id": "U2", "text": TEXT},
                         {"channel_id": "C1", "ts": "1.3", "thread_ts": "1.1", "user_id": "U2", "text": ""}])
    assert tokens_of(store) == {"1.1": QWEN25.tokens("edited 12345"), "1.2": expected, "1.3": 0}
    rows, total = store.thread_window("C1", "1.1", "9.9", enough=lambda row: False)
    assert total == 3 and [r["tokens"] for r in rows] == [QWEN25.tokens("edited 12345"), expected, 0]
    store.close()


def test_migration_counts_the_messages_stored_before_it(tmp_path: Path):
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m006_token_counts")
    assert "tokens" not in db.table("messages").columns_dict
    texts = {f"1.{i}": f"message {i}: " + TEXT * (i % 3) for i in range(12_000)}  # more than one batch
    db.table("messages").insert_all(
        [{"channel_id": "C1", "ts": ts, "thread_ts": "1.0", "user_id": "U1", "text": text, "deleted": 0}
         for ts, text in texts.items()])
    db.table("messages").insert({"channel_id": "C1", "ts": "0.5", "text": "", "deleted": 1})
    db.close()
    store = open_store(path)
    counted = tokens_of(store)
    assert counted.pop("0.5") == 0
    assert counted == {ts: message_tokens(text) for ts, text in texts.items()}
    assert "estimated_prompt_tokens" in store.table("model_calls").columns_dict
    store.close()
