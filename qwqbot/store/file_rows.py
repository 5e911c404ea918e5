"""The files shared with stored messages, and the text read from each (table ``message_files``,
migration m008): a part of :class:`~qwqbot.store.store.Store`, kept apart to keep that module to
messages, threads and answers. Its writes go through the store's journal like all others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlite_utils import Database

from qwqbot.files.refs import FileRef

T = TypeVar("T")


class MessageFiles:
    db: Database
    clock: Callable[[], float]

    def write(self, op: Callable[[], T], what: str, *, otherwise: T) -> T:
        raise NotImplementedError  # Store's

    def _wrote(self, op: Callable[[], object], what: str) -> bool:
        raise NotImplementedError  # Store's

    def save_message_files(self, *, channel_id: str, ts: str, thread_ts: str | None,
                           user_id: str | None, files: Sequence[FileRef]) -> None:
        """Record the files of a message, to be read when an answer needs them (idempotent:
        a file already recorded, read or deleted, is left as it is)."""
        now = self.clock()
        rows = [[channel_id, ts, f.id, n, thread_ts, user_id, f.name, f.filetype, f.mimetype,
                 f.mode, f.size, f.url, int(f.external),
                 "deleted" if f.mode == "tombstone" else "check" if f.check_info else "pending",
                 now] for n, f in enumerate(files)]

        def op() -> None:
            with self.db.atomic():
                self.db.conn.executemany(
                    "INSERT OR IGNORE INTO message_files (channel_id, ts, file_id, position,"
                    " thread_ts, user_id, name, filetype, mimetype, mode, size, url, external,"
                    " status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

        self._wrote(op, f"files of {channel_id}/{ts}")

    def files_to_read(self, channel_id: str, thread_ts: str, up_to_ts: str, *,
                      max_attempts: int, limit: int) -> list[dict[str, Any]]:
        """The thread's files not read yet (or whose download failed fewer than
        ``max_attempts`` times), up to ``up_to_ts``, newest first, at most ``limit``."""
        return list(self.db.query(
            "SELECT * FROM message_files WHERE channel_id = ? AND thread_ts = ? AND ts <= ?"
            " AND (status IN ('pending', 'check') OR (status = 'failed' AND attempts < ?))"
            " ORDER BY ts DESC, position LIMIT ?",
            [channel_id, thread_ts, up_to_ts, max_attempts, limit]))

    def message_files(self, channel_id: str, ts: Sequence[str]) -> list[dict[str, Any]]:
        """The files of these messages that a prompt shows, oldest message first: read,
        unreadable or failed (deleted ones are gone from the conversation)."""
        if not ts:
            return []
        marks = ",".join("?" * len(ts))
        return list(self.db.query(
            "SELECT ts, file_id, name, filetype, mimetype, status, kind, text, reason, partial"
            f" FROM message_files WHERE channel_id = ? AND ts IN ({marks})"
            " AND status != 'deleted' ORDER BY ts, position", [channel_id, *ts]))

    def refresh_file(self, channel_id: str, ts: str, file_id: str, ref: FileRef) -> None:
        """Replace a file's details with what files.info says now, to be read again."""
        self._rows(
            "UPDATE message_files SET name = ?, filetype = ?, mimetype = ?, mode = ?, size = ?,"
            " url = ?, external = ?, status = 'pending' WHERE channel_id = ? AND ts = ?"
            " AND file_id = ? AND status != 'deleted'",
            [ref.name, ref.filetype, ref.mimetype, ref.mode, ref.size, ref.url,
             int(ref.external), channel_id, ts, file_id], f"file {file_id}")

    def record_file_read(self, channel_id: str, ts: str, file_id: str, *, status: str,
                         kind: str, text: str | None = None, reason: str | None = None,
                         partial: bool = False) -> None:
        """What reading one file gave: its text (``read``), or why there is none
        (``unread``, or ``failed`` to be tried again). A file deleted meanwhile stays so."""
        self._rows(
            "UPDATE message_files SET status = ?, kind = ?, text = ?, reason = ?, partial = ?,"
            " attempts = attempts + 1, read_at = ? WHERE channel_id = ? AND ts = ?"
            " AND file_id = ? AND status != 'deleted'",
            [status, kind, text, reason, int(partial), self.clock(), channel_id, ts, file_id],
            f"text of file {file_id}")

    def forget_message_files(self, channel_id: str, ts: str) -> int:
        """A deleted message takes its files' text with it at once; their rows stay as
        tombstones, so a redelivery of the message cannot bring them back."""
        return self._rows(
            "UPDATE message_files SET status = 'deleted', text = NULL, reason = NULL"
            " WHERE channel_id = ? AND ts = ?", [channel_id, ts], f"files of {channel_id}/{ts}")

    def file_deleted(self, file_id: str, *, channel_id: str | None = None,
                     ts: str | None = None) -> int:
        """A file deleted in Slack (everywhere, or from one message): its text goes at once;
        a tombstone row stays."""
        where, args = "file_id = ?", [file_id]
        if channel_id is not None and ts is not None:
            where, args = where + " AND channel_id = ? AND ts = ?", [file_id, channel_id, ts]
        return self._rows(
            "UPDATE message_files SET status = 'deleted', text = NULL, reason = NULL"
            f" WHERE {where}", args, f"deletion of file {file_id}")

    def file_changed(self, file_id: str) -> int:
        """A file changed in Slack (a snippet edited): what was read from it goes, and it is
        read afresh, details from files.info first, when an answer next needs it."""
        return self._rows(
            "UPDATE message_files SET status = 'check', text = NULL, reason = NULL,"
            " attempts = 0 WHERE file_id = ? AND status != 'deleted'", [file_id],
            f"change of file {file_id}")

    def _rows(self, sql: str, args: list[Any], what: str) -> int:
        """One statement's changed rows, now; 0 when it has to wait (see journal.py)."""
        return self.write(lambda: self.db.execute(sql, args).rowcount, what, otherwise=0)
