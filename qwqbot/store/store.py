"""The store: one SQLite connection (WAL), owned by the event loop.

Every method is a short synchronous call (indexed look-up or small write) made from the
loop: one writer, no cross-thread connections. In the bot (``open_store(patient=False)``) a write
that SQLite cannot take at once (another process holds the lock, the disk is full) does not wait:
it goes to the :class:`~qwqbot.store.journal.Journal`, the method answers from memory, and reads
see the waiting messages (``_Pending``) until they are written. The command line waits instead.

Every write is committed before its method returns, with no ``commit()`` of our own. The
connection keeps Python's default isolation level, so sqlite3 opens an implicit transaction
before each INSERT/UPDATE/DELETE and leaves it open
(https://docs.python.org/3/library/sqlite3.html#sqlite3-transaction-control-isolation-level);
since sqlite-utils 4, ``Database.execute`` commits such a transaction when its statement opened
it, and ``Table.insert``/``upsert``/``update`` run inside ``db.atomic()``, which commits on
leaving (https://sqlite-utils.datasette.io/en/stable/python-api.html#python-api-transactions).
Statements run on ``db.conn`` directly (``executemany``) bypass that, so they run inside
``with self.db.atomic()``. Inside an ``atomic()`` block every write joins its transaction.

The file holds people's messages and the bot's answers, so only the bot's own user may read it: a
new database is created 0600 before SQLite opens it, and SQLite gives the -wal and -shm files it
makes the database file's permissions (``findCreateFileMode`` in
https://sqlite.org/src/file/src/os_unix.c). An existing file keeps its mode (an operator may have
chosen it), with a warning when every local user can read it.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlite_utils import Database
from sqlite_utils.db import Table

from qwqbot.errors import StoreError
from qwqbot.store.file_rows import MessageFiles
from qwqbot.store.journal import Journal, State
from qwqbot.store.kinds import AnswerStatus, ModelCallPurpose, Trigger
from qwqbot.store.migrations import migrations
from qwqbot.store.pending import Pending, merge_window
from qwqbot.tokens import message_tokens

log = logging.getLogger(__name__)

# A second process (the CLI next to the bot, a backup) may hold the write lock briefly: the
# command line waits for it (and so does the bot while it opens and migrates the database).
BUSY_TIMEOUT_MS = 10_000
#: The bot's wait once running: a few ms, so no write can hold the event loop; see journal.py.
LOOP_BUSY_TIMEOUT_MS = 5
#: The mode a new database file is created with: read and write for the bot's user only.
FILE_MODE = 0o600
#: SQLite's companions of the database file in WAL mode (https://sqlite.org/wal.html#files).
COMPANIONS = ("-wal", "-shm")
# Names sqlite3.connect reads as "no file" (https://docs.python.org/3/library/sqlite3.html#sqlite3.connect).
_NOT_A_FILE = ("", ":memory:")
#: The columns a thread window (context assembly) reads.
WINDOW_COLUMNS = ("ts", "user_id", "text", "is_bot", "bot_id", "tokens")


T = TypeVar("T")
P = ParamSpec("P")


class StoreBusy(StoreError):
    """A write that must happen now (its result is needed) while SQLite cannot take writes."""

    def __init__(self, state: State) -> None:
        why = "its disk is full" if state == "full" else "another program is holding it"
        super().__init__(f"The bot's database cannot be written just now ({why}), so nothing "
                         "was changed.", hint="Try again in a minute.")


class Store(MessageFiles):
    def __init__(self, db: Database, *, clock: Any = time.time, path: str | None = None) -> None:
        self.db = db
        self.clock = clock
        #: None: writes wait for SQLite (the command line, the bot's start). Else: see the
        #: module docstring.
        self.journal: Journal | None = None
        self.path = path
        self._identity = _file_identity(path)
        self._told_missing = False
        self._pending = Pending()

    def stop_waiting(self) -> Journal:
        """From now on no write waits more than ``LOOP_BUSY_TIMEOUT_MS`` for SQLite: what
        cannot be written at once is queued (the bot, once started: see journal.py)."""
        if self.journal is None:
            self.db.execute(f"PRAGMA busy_timeout = {LOOP_BUSY_TIMEOUT_MS}")
            self.journal = Journal(lambda: _rollback(self.db))
            self.journal.on_change(self._pending.on_state)
        return self.journal

    # -- writing without waiting -------------------------------------------------------

    def write(self, op: Callable[[], T], what: str, *, otherwise: T) -> T:
        """Run the write ``op`` now, or queue it and return ``otherwise``."""
        if self.journal is None:
            return op()
        done, result = self.journal.attempt(op)
        if done:
            return result  # type: ignore[return-value]  # attempt returns op's result
        self.journal.queue(op, what)
        return otherwise

    def write_now(self, op: Callable[[], T]) -> T:
        """Run the write ``op`` now (after what waits, to keep the order); StoreBusy if SQLite
        cannot take it: for writes whose result the caller needs."""
        if self.journal is None:
            return op()
        self.journal.flush()
        done, result = self.journal.attempt(op)
        if not done:
            raise StoreBusy(self.journal.state)
        return result  # type: ignore[return-value]

    def _claim(self, op: Callable[[], bool], key: tuple[str, ...], exists: Callable[[], bool],
               what: str) -> bool:
        """A claim (True once per key) that works while writes wait: then a key is taken when
        the table or the waiting writes hold it (reads still work: see journal.py)."""
        if self.journal is None:
            return op()
        done, claimed = self.journal.attempt(op)
        if done:
            return bool(claimed)
        if key in self._pending.claims or exists():
            return False
        self._pending.claims.add(key)
        self.journal.queue(op, what)
        return True

    def health(self) -> dict[str, Any]:
        """The database as /healthz reports it: ``ok``, ``busy`` (locked by another process),
        ``full`` (no disk space) or ``missing`` (the file was deleted or replaced under the
        running bot, which then writes to a file nobody can open again)."""
        state: str = self.journal.state if self.journal else "ok"
        if self._identity is not None and _file_identity(self.path) != self._identity:
            state = "missing"
            if not self._told_missing:
                self._told_missing = True
                log.error("the database file %s was deleted or replaced while the bot runs: "
                          "what it stores now goes to a file no one can open again, and a "
                          "restart starts from an empty one. Put the file back (or restore a "
                          "backup) and restart the bot", self.path)
        pending = self.journal.pending if self.journal else 0
        return {"db": state, "db_pending_writes": pending}

    def table(self, name: str) -> Table:
        return self.db.table(name)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    def close(self) -> None:
        if self.journal is not None and self.journal.pending:
            # A last, patient try: shutting down may wait for the lock, the loop may not.
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.journal.flush(slice_s=BUSY_TIMEOUT_MS / 1000)
            if self.journal.pending:
                log.error("stopping with %d database writes that could not be made (%s)",
                          self.journal.pending, self.journal.state)
        if self.journal is not None:
            self.journal.close()
        self.db.close()

    # -- Slack deliveries --------------------------------------------------------------

    def claim_event(self, event_id: str, *, event_type: str = "", channel_id: str = "",
                    ts: str = "") -> bool:
        """Record a Slack delivery; False when it was seen before (a retry or duplicate)."""
        args = [event_id, event_type, channel_id, ts, self.clock()]

        def op() -> bool:
            return self.db.execute(
                "INSERT OR IGNORE INTO slack_events (event_id, event_type, channel_id, ts,"
                " received_at) VALUES (?, ?, ?, ?, ?)", args).rowcount == 1

        return self._claim(op, ("event", event_id), lambda: self.db.execute(
            "SELECT 1 FROM slack_events WHERE event_id = ?", [event_id]).fetchone() is not None,
            f"claim of event {event_id}")

    def claim_request(self, signature: str, *, kind: str = "", channel_id: str = "",
                      ts: str = "") -> bool:
        """Record a signed request that is not an event (a slash command, a button press) by
        its signature; False when that very request came before.

        Slack never resends those, and a signature is valid for one body at one timestamp, so a
        second arrival is a replay of a captured request. Kept with the event ids (and pruned
        with them, long after Slack's 5-minute signature window has closed on it).
        """
        return self.claim_event(f"sig:{signature}", event_type=kind, channel_id=channel_id, ts=ts)

    # -- messages ----------------------------------------------------------------------

    def save_message(self, *, channel_id: str, ts: str, thread_ts: str | None, user_id: str | None,
                     text: str, is_bot: bool = False, bot_id: str | None = None,
                     subtype: str | None = None) -> None:
        """Insert or refresh a message (idempotent on (channel_id, ts)), with its token count."""
        now = self.clock()
        tokens = message_tokens(text)
        args = [channel_id, ts, thread_ts, user_id, text, int(is_bot), bot_id, subtype, now, now,
                tokens]

        def op() -> None:
            self.db.execute(
                "INSERT INTO messages (channel_id, ts, thread_ts, user_id, text, is_bot, bot_id,"
                " subtype, deleted, created_at, updated_at, tokens)"
                " VALUES (?,?,?,?,?,?,?,?,0,?,?,?)"
                " ON CONFLICT (channel_id, ts) DO UPDATE SET text = excluded.text,"
                " tokens = excluded.tokens,"
                " thread_ts = COALESCE(excluded.thread_ts, messages.thread_ts),"
                " updated_at = excluded.updated_at WHERE messages.deleted = 0", args)

        if not self._wrote(op, f"message {channel_id}/{ts}"):
            self._pending.put_message({
                "channel_id": channel_id, "ts": ts, "thread_ts": thread_ts or self._thread_of(
                    channel_id, ts), "user_id": user_id, "text": text, "is_bot": int(is_bot),
                "bot_id": bot_id, "tokens": tokens})

    def edit_message(self, *, channel_id: str, ts: str, text: str, edited_ts: str | None) -> bool:
        """Change a stored message's text; False when there is no such (live) message."""
        tokens = message_tokens(text)
        args = [text, tokens, edited_ts, self.clock(), channel_id, ts]

        def op() -> bool:
            return self.db.execute(
                "UPDATE messages SET text = ?, tokens = ?, edited_ts = ?, updated_at = ?"
                " WHERE channel_id = ? AND ts = ? AND deleted = 0", args).rowcount == 1

        return self._change(op, channel_id, ts, f"edit of {channel_id}/{ts}", text=text,
                            tokens=tokens)

    def delete_message(self, *, channel_id: str, ts: str) -> bool:
        """Remove a deleted message's text at once; keep a tombstone row."""
        args = [self.clock(), channel_id, ts]

        def op() -> bool:
            return self.db.execute(
                "UPDATE messages SET text = '', deleted = 1, updated_at = ?"
                " WHERE channel_id = ? AND ts = ?", args).rowcount == 1

        return self._change(op, channel_id, ts, f"deletion of {channel_id}/{ts}", text="",
                            deleted=1)

    def _change(self, op: Callable[[], bool], channel_id: str, ts: str, what: str,
                **changes: Any) -> bool:
        if self.journal is None:
            return op()
        done, changed = self.journal.attempt(op)
        if done:
            return bool(changed)
        stored = self._message_row(channel_id, ts)
        if not self._pending.change_message((channel_id, ts), stored=stored, **changes):
            return False
        self.journal.queue(op, what)
        return True

    def _message_row(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT channel_id, ts, thread_ts, user_id, text, is_bot, bot_id, deleted"
            " FROM messages WHERE channel_id = ? AND ts = ?", [channel_id, ts]))
        return rows[0] if rows else None

    def _thread_of(self, channel_id: str, ts: str) -> str | None:
        row = self._message_row(channel_id, ts)
        return row["thread_ts"] if row else None

    def _wrote(self, op: Callable[[], object], what: str) -> bool:
        """Run ``op`` now (True) or queue it (False: the caller keeps what reads need)."""
        if self.journal is None:
            op()
            return True
        done, _ = self.journal.attempt(op)
        if not done:
            self.journal.queue(op, what)
        return done

    def thread_messages(self, channel_id: str, thread_ts: str) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT * FROM messages WHERE channel_id = ? AND thread_ts = ? AND deleted = 0"
            " ORDER BY ts",
            [channel_id, thread_ts],
        ))

    def thread_voices(self, channel_id: str, thread_ts: str, *, bot_user_id: str,
                      bot_id: str) -> tuple[set[str], list[str]]:
        """Who wrote in a thread, the bot aside, and those of their texts that mention
        someone: what deciding whom an answer may notify needs, and no more of the rows."""
        authors: set[str] = set()
        mentioning: list[str] = []
        for user_id, text in self.db.execute(
                "SELECT user_id, CASE WHEN instr(text, '<@') > 0 THEN text END FROM messages"
                " WHERE channel_id = ? AND thread_ts = ? AND deleted = 0 AND user_id IS NOT NULL"
                " AND user_id != ? AND (bot_id IS NULL OR bot_id != ?)",
                [channel_id, thread_ts, bot_user_id, bot_id]):
            authors.add(str(user_id))
            if text:
                mentioning.append(str(text))
        return authors, mentioning

    def thread_window(self, channel_id: str, thread_ts: str, up_to_ts: str, *,
                      enough: Callable[[dict[str, Any]], bool]) -> tuple[list[dict[str, Any]], int]:
        """The thread's first message and its newest ones up to ``up_to_ts``, in order, read
        newest-first until ``enough(row)`` says to stop; and the thread's size up to there.

        Reading newest-first and stopping keeps context assembly at a fixed cost however long
        the thread grows (the context budget keeps only the newest anyway); only the columns
        the prompt needs are read.
        """
        where = ("FROM messages WHERE channel_id = ? AND thread_ts = ? AND deleted = 0"
                 " AND ts <= ?")
        args = [channel_id, thread_ts, up_to_ts]
        columns = f"SELECT {', '.join(WINDOW_COLUMNS)} "
        # Counted on indexes only (m006): every row, less the tombstones.
        span = "FROM messages WHERE channel_id = ? AND thread_ts = ? AND ts <= ?"
        total = int(self.db.execute(
            f"SELECT (SELECT COUNT(*) {span}) - (SELECT COUNT(*) {span} AND deleted IS NOT 0)",
            args + args).fetchone()[0])
        cursor = self.db.execute(f"{columns}{where} ORDER BY ts DESC", args)
        names = [d[0] for d in cursor.description]
        recent: list[dict[str, Any]] = []
        for values in cursor:  # rows are fetched as iterated: stopping early reads no more
            row = dict(zip(names, values, strict=True))
            recent.append(row)
            if enough(row):
                break
        cursor.close()
        recent.reverse()
        if len(recent) < total:
            recent[:0] = self.db.query(f"{columns}{where} ORDER BY ts LIMIT 1", args)
        waiting = self._pending.thread_rows(channel_id, thread_ts, up_to_ts)
        if waiting:
            return merge_window(recent, total, waiting, WINDOW_COLUMNS)
        return recent, total

    def threads_active_since(self, channel_id: str, *, started_by: float,
                             active_since: float) -> list[str]:
        """The ``thread_ts`` of the channel's threads started at or before ``started_by`` of
        which the store holds a message posted after ``active_since``: threads that may have
        gone on into a later period."""
        return [r["thread_ts"] for r in self.db.query(
            "SELECT DISTINCT thread_ts FROM messages WHERE channel_id = ? AND thread_ts IS NOT NULL"
            " AND thread_ts <= ? AND ts > ?",
            [channel_id, f"{started_by:.6f}", f"{active_since:.6f}"])]

    def has_message(self, channel_id: str, ts: str) -> bool:
        if (channel_id, ts) in self._pending.messages:
            return True
        return self.db.execute(
            "SELECT 1 FROM messages WHERE channel_id = ? AND ts = ?", [channel_id, ts]
        ).fetchone() is not None

    # -- threads -----------------------------------------------------------------------

    def thread(self, channel_id: str, thread_ts: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT * FROM threads WHERE channel_id = ? AND thread_ts = ?", [channel_id, thread_ts]))
        if not rows and (channel_id, thread_ts) in self._pending.threads:
            return {"channel_id": channel_id, "thread_ts": thread_ts, "joined_at": None,
                    "backfilled_at": None}
        return rows[0] if rows else None

    def join_thread(self, channel_id: str, thread_ts: str, *, backfilled: bool = False) -> None:
        """Mark a thread as one the bot takes part in (idempotent)."""
        now = self.clock()
        args = [channel_id, thread_ts, now, now if backfilled else None]

        def op() -> None:
            self.db.execute(
                "INSERT INTO threads (channel_id, thread_ts, joined_at, backfilled_at)"
                " VALUES (?,?,?,?) ON CONFLICT (channel_id, thread_ts) DO UPDATE SET"
                " backfilled_at = COALESCE(threads.backfilled_at, excluded.backfilled_at)", args)

        if not self._wrote(op, f"thread {channel_id}/{thread_ts}"):
            self._pending.threads.add((channel_id, thread_ts))

    def save_messages(self, rows: list[dict[str, Any]]) -> None:
        """Batch-insert messages read from Slack history; existing rows are left alone, so
        what the bot saw live (edits, deletions) wins over an older read."""
        now = self.clock()
        full = [{"bot_id": None, "subtype": None, "is_bot": 0, **r, "now": now,
                 "tokens": message_tokens(r["text"] or "")} for r in rows]

        def op() -> None:
            with self.db.atomic():
                self.db.conn.executemany(
                    "INSERT OR IGNORE INTO messages (channel_id, ts, thread_ts, user_id, text,"
                    " is_bot, bot_id, subtype, deleted, created_at, updated_at, tokens)"
                    " VALUES (:channel_id, :ts, :thread_ts, :user_id, :text, :is_bot, :bot_id,"
                    " :subtype, 0, :now, :now, :tokens)", full)

        if not self._wrote(op, f"{len(rows)} messages read from Slack"):
            for row in full:
                if (row["channel_id"], row["ts"]) not in self._pending.messages:
                    self._pending.put_message(row)

    # -- assistant threads (Slack's AI app split view) ---------------------------------

    def save_assistant_thread(self, channel_id: str, thread_ts: str, *,
                              user_id: str | None = None, context_channel_id: str | None,
                              context_team_id: str | None = None,
                              context_enterprise_id: str | None = None) -> None:
        """Record an assistant thread, or replace its context (the channel the user is
        viewing); idempotent. Its user and title mark are kept."""
        now = self.clock()
        args = [channel_id, thread_ts, user_id, context_channel_id, context_team_id,
                context_enterprise_id, now, now]
        self._wrote(lambda: self.db.execute(
            "INSERT INTO assistant_threads (channel_id, thread_ts, user_id, context_channel_id,"
            " context_team_id, context_enterprise_id, started_at, context_at)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (channel_id, thread_ts) DO UPDATE SET"
            " user_id = COALESCE(assistant_threads.user_id, excluded.user_id),"
            " context_channel_id = excluded.context_channel_id,"
            " context_team_id = excluded.context_team_id,"
            " context_enterprise_id = excluded.context_enterprise_id,"
            " context_at = excluded.context_at", args), f"assistant thread {channel_id}/{thread_ts}")

    def assistant_thread(self, channel_id: str, thread_ts: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT * FROM assistant_threads WHERE channel_id = ? AND thread_ts = ?",
            [channel_id, thread_ts]))
        return rows[0] if rows else None

    def claim_assistant_title(self, channel_id: str, thread_ts: str) -> bool:
        """True once per known assistant thread: its first question names it. False for a
        thread that is not an assistant thread, or already has its title."""
        args = [self.clock(), channel_id, thread_ts]

        def op() -> bool:
            return self.db.execute(
                "UPDATE assistant_threads SET titled_at = ?"
                " WHERE channel_id = ? AND thread_ts = ? AND titled_at IS NULL", args).rowcount == 1

        return self._claim(op, ("title", channel_id, thread_ts), lambda: self.db.execute(
            "SELECT 1 FROM assistant_threads WHERE channel_id = ? AND thread_ts = ?"
            " AND titled_at IS NULL", [channel_id, thread_ts]).fetchone() is None,
            f"title of {channel_id}/{thread_ts}")

    # -- answers -----------------------------------------------------------------------

    def claim_answer(self, *, channel_id: str, request_ts: str, thread_ts: str | None,
                     user_id: str, trigger: Trigger, attempt: int = 0,
                     placeholder_ts: str | None = None, question: str | None = None,
                     ) -> int | None:
        """Create the answer row for one user post; None if that post is already claimed.

        The unique (channel_id, request_ts, attempt) key is what makes one post answered
        once, whether Slack sends app_mention and message for it, retries it, or the bot
        restarted in between.
        """
        values = [channel_id, thread_ts, request_ts, attempt, user_id, trigger, placeholder_ts,
                  question, self.clock()]
        sql = ("INSERT OR IGNORE INTO answers ({id}channel_id, thread_ts, request_ts, attempt,"
               " user_id, trigger, status, placeholder_ts, question, created_at)"
               " VALUES ({mark}?,?,?,?,?,?, 'queued', ?, ?, ?)")

        def op() -> int | None:
            cursor = self.db.execute(sql.format(id="", mark=""), values)
            return cursor.lastrowid if cursor.rowcount == 1 else None

        if self.journal is not None:
            done, answer_id = self.journal.attempt(op)
            if done:
                return answer_id
            return self._claim_answer_later(op, sql, values)
        return op()

    def _claim_answer_later(self, op: Callable[[], int | None], sql: str,
                            values: list[Any]) -> int | None:
        """claim_answer while writes wait: the row gets the next free id now (so the job, its
        buttons and later updates can name it), and keeps it when written unless another
        process took that id meanwhile (then the id it does get is remembered)."""
        assert self.journal is not None
        key = ("answer", *(str(v) for v in values[:4]))
        channel_id, _, request_ts, attempt = values[:4]
        if key in self._pending.claims or self.db.execute(
                "SELECT 1 FROM answers WHERE channel_id = ? AND request_ts = ? AND attempt = ?",
                [channel_id, request_ts, attempt]).fetchone() is not None:
            return None
        self._pending.claims.add(key)
        top = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM answers").fetchone()[0]
        provisional = self._pending.next_answer_id = max(int(top), self._pending.next_answer_id) + 1

        def later() -> None:
            if self.db.execute(sql.format(id="id, ", mark="?, "), [provisional, *values]).rowcount:
                return
            self._pending.answer_ids[provisional] = op()  # the id was taken: a new one, or None

        self.journal.queue(later, f"answer claim {channel_id}/{request_ts}")
        return provisional

    def _answer_id(self, answer_id: int) -> int | None:
        return self._pending.answer_ids.get(answer_id, answer_id)

    def find_answer(self, answer_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM answers WHERE id = ?",
                                  [self._answer_id(answer_id)]))
        return rows[0] if rows else None

    def latest_attempt(self, channel_id: str, request_ts: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT * FROM answers WHERE channel_id = ? AND request_ts = ?"
            " ORDER BY attempt DESC LIMIT 1", [channel_id, request_ts]))
        return rows[0] if rows else None

    def update_answer(self, answer_id: int, *, status: AnswerStatus | None = None,
                      **fields: Any) -> None:
        """Set columns of one answer row; ``status`` is left as it is unless given."""
        if status is not None:
            fields["status"] = status

        def op() -> None:
            # The id is looked up when written: a claim that waited may have got another one.
            real = self._answer_id(answer_id)
            if real is not None:
                self.table("answers").update(real, fields)

        self._wrote(op, f"answer {answer_id}")

    def unfinished_answers(self) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT * FROM answers WHERE status IN ('queued', 'running') ORDER BY id"))

    # -- people ------------------------------------------------------------------------

    def users(self, user_ids: list[str], *, fresh_after: float) -> dict[str, dict[str, Any]]:
        if not user_ids:
            return {}
        marks = ",".join("?" * len(user_ids))
        return {r["user_id"]: r for r in self.db.query(
            f"SELECT * FROM users WHERE user_id IN ({marks}) AND fetched_at >= ?",
            [*user_ids, fresh_after])}

    def save_user(self, **row: Any) -> None:
        full = {**row, "fetched_at": self.clock()}
        self._wrote(lambda: self.table("users").upsert(full, pk="user_id"), "a person's name")

    # -- model usage -------------------------------------------------------------------

    def record_model_call(self, *, purpose: ModelCallPurpose, **row: Any) -> int:
        """Record one model call; its row id, or 0 when the write has to wait."""
        row.setdefault("created_at", self.clock())
        full = {"purpose": purpose, **row}
        return self.write(lambda: int(self.table("model_calls").insert(full).last_pk or 0),
                          f"usage of a {purpose} model call", otherwise=0)


def _create_private(path: Path) -> None:
    """Create ``path`` empty with ``FILE_MODE`` unless it exists (SQLite reads an empty file as a
    new database)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def _warn_if_readable_by_all(path: Path) -> None:
    for file in (path, *(path.with_name(path.name + suffix) for suffix in COMPANIONS)):
        try:
            st_mode = file.stat().st_mode
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(st_mode)
        if stat.S_ISREG(st_mode) and mode & stat.S_IROTH:
            log.warning("%s can be read by every user of this machine (mode %o), and it holds "
                        "people's messages: chmod 600 it", file, mode)


class _OnStore(Protocol):
    store: Store


S = TypeVar("S", bound=_OnStore)


def writes_now(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """A method of a store part whose write must happen now (a command's reply says it was
    done, or its result is needed): ``Store.write_now``, so StoreBusy while SQLite cannot."""
    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.store.write_now(lambda: method(self, *args, **kwargs))
    return wrapper


def writes_later(method: Callable[Concatenate[S, P], None]) -> Callable[Concatenate[S, P], None]:
    """A method of a store part whose write may wait (nothing reads its result at once)."""
    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> None:
        self.store.write(lambda: method(self, *args, **kwargs), method.__name__, otherwise=None)
    return wrapper


def _file_identity(path: str | None) -> tuple[int, int] | None:
    """The database file's (device, inode), to notice it deleted or replaced; None for no file."""
    if path is None or path in _NOT_A_FILE:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return st.st_dev, st.st_ino


def open_store(path: str | Path, *, clock: Any = time.time) -> Store:
    """Open (creating if needed, readable by this user only) and migrate the database;
    StoreError with a fix if not. Writes wait for SQLite's lock until ``stop_waiting()``."""
    where = str(path)
    hint = ("Set QWQBOT_DB to a writable file path (the folder must exist), or move the file "
            "aside to start afresh.")
    on_disk = where not in _NOT_A_FILE
    try:
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise StoreError(f"Cannot open the database {where}: folder {parent} does not exist.",
                             hint=hint)
        if on_disk:
            _create_private(Path(where))  # the very path sqlite3 opens
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        db = Database(conn)
        # Reading the schema forces SQLite to read the file header: a corrupted or
        # non-database file fails here, at start, rather than on a user's first message.
        db.execute("PRAGMA schema_version").fetchone()
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.enable_wal()  # outside any transaction, once
        # WAL + NORMAL is durable across application crashes (only an OS crash can lose
        # the last commits) and avoids an fsync per message.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"Cannot open the database {where}: {exc}.", hint=hint) from None
    except OSError as exc:
        raise StoreError(f"Cannot create the database {where}: {exc.strerror}.", hint=hint) from None
    if on_disk:
        _warn_if_readable_by_all(Path(where))
    return Store(db, clock=clock, path=where)


def _rollback(db: Database) -> None:
    """Undo what a failed write left open (sqlite3 keeps the implicit transaction)."""
    if db.conn.in_transaction:
        db.conn.rollback()
