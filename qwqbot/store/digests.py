"""Digest schedules, runs, tracked channels and downtime: the digest feature's tables."""

from __future__ import annotations

from typing import Any

from qwqbot.store.kinds import DigestRunStatus
from qwqbot.store.store import Store, writes_later, writes_now


class DigestStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    # -- schedules ---------------------------------------------------------------------

    @writes_now
    def set_schedule(self, *, channel_id: str, kind: str, day: int | None, hour: int, minute: int,
                     tz: str, created_by: str) -> int:
        self.db.execute(
            "INSERT INTO digest_schedules (channel_id, kind, day, hour, minute, tz, created_by,"
            " created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (channel_id, kind) DO UPDATE SET"
            " day = excluded.day, hour = excluded.hour, minute = excluded.minute,"
            " tz = excluded.tz, created_by = excluded.created_by, created_at = excluded.created_at",
            [channel_id, kind, day, hour, minute, tz, created_by, self.store.clock()])
        row = self.db.execute("SELECT id FROM digest_schedules WHERE channel_id = ? AND kind = ?",
                              [channel_id, kind]).fetchone()
        self.track(channel_id)
        return int(row[0])

    def schedules(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        if channel_id is None:
            return list(self.db.query("SELECT * FROM digest_schedules ORDER BY id"))
        return list(self.db.query(
            "SELECT * FROM digest_schedules WHERE channel_id = ? ORDER BY kind", [channel_id]))

    def schedule(self, schedule_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM digest_schedules WHERE id = ?", [schedule_id]))
        return rows[0] if rows else None

    @writes_now
    def remove_schedules(self, channel_id: str) -> list[int]:
        ids = [r["id"] for r in self.schedules(channel_id)]
        with self.db.atomic():
            self.db.execute("DELETE FROM digest_schedules WHERE channel_id = ?", [channel_id])
            self.db.execute("DELETE FROM tracked_channels WHERE channel_id = ?", [channel_id])
        return ids

    # -- tracked channels --------------------------------------------------------------

    @writes_now
    def track(self, channel_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO tracked_channels (channel_id, tracked_since)"
                        " VALUES (?, ?)", [channel_id, self.store.clock()])

    def tracked(self) -> dict[str, float]:
        return {r["channel_id"]: r["tracked_since"]
                for r in self.db.query("SELECT * FROM tracked_channels")}

    # -- runs --------------------------------------------------------------------------

    @writes_now
    def claim_run(self, *, channel_id: str, schedule_id: int | None, period_key: str,
                  start: float, end: float) -> int | None:
        """Claim a period for posting; None when it is taken (running, posted or empty).
        A failed run is claimed again (its attempt count goes up)."""
        now = self.store.clock()
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO digest_runs (channel_id, schedule_id, period_key, period_start,"
            " period_end, status, attempts, created_at) VALUES (?,?,?,?,?, 'running', 1, ?)",
            [channel_id, schedule_id, period_key, start, end, now])
        if cursor.rowcount == 1:
            return cursor.lastrowid
        cursor = self.db.execute(
            "UPDATE digest_runs SET status = 'running', attempts = attempts + 1,"
            " next_retry_at = NULL WHERE channel_id = ? AND period_key = ? AND status = 'failed'",
            [channel_id, period_key])
        if cursor.rowcount != 1:
            return None
        row = self.db.execute("SELECT id FROM digest_runs WHERE channel_id = ? AND period_key = ?",
                              [channel_id, period_key]).fetchone()
        return int(row[0])

    @writes_later
    def finish_run(self, /, run_id: int, *, status: DigestRunStatus, **fields: Any) -> None:
        self.store.table("digest_runs").update(run_id, {"status": status, **fields,
                                                        "finished_at": self.store.clock()})

    def run(self, run_id: int) -> dict[str, Any]:
        return dict(self.store.table("digest_runs").get(run_id))

    def last_run(self, schedule_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT * FROM digest_runs WHERE schedule_id = ? ORDER BY period_end DESC, id DESC"
            " LIMIT 1", [schedule_id]))
        return rows[0] if rows else None

    def last_posted_end(self, channel_id: str) -> float | None:
        row = self.db.execute(
            "SELECT MAX(period_end) FROM digest_runs WHERE channel_id = ?"
            " AND status IN ('posted', 'empty')", [channel_id]).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def run_for(self, channel_id: str, period_key: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "SELECT * FROM digest_runs WHERE channel_id = ? AND period_key = ?",
            [channel_id, period_key]))
        return rows[0] if rows else None

    def failed_runs_due(self, now: float) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT * FROM digest_runs WHERE status = 'failed' AND next_retry_at IS NOT NULL"
            " AND next_retry_at <= ?", [now]))

    @writes_now
    def interrupt_running(self) -> int:
        """At start-up: runs left 'running' by a crash become failed, to be retried."""
        cursor = self.db.execute(
            "UPDATE digest_runs SET status = 'failed', error_kind = 'interrupted',"
            " error_message = 'the bot restarted', next_retry_at = ? WHERE status = 'running'",
            [self.store.clock()])
        return cursor.rowcount

    # -- messages of a period ----------------------------------------------------------

    def period_messages(self, channel_id: str, start: float, end: float) -> list[dict[str, Any]]:
        """Messages posted in (start, end], thread replies included. Slack ts strings have a
        fixed 10.6 digit shape for centuries, so text comparison is time order."""
        return list(self.db.query(
            "SELECT * FROM messages WHERE channel_id = ? AND ts > ? AND ts <= ? AND deleted = 0"
            " ORDER BY ts", [channel_id, f"{start:.6f}", f"{end:.6f}"]))

    # -- downtime ----------------------------------------------------------------------

    @writes_later
    def heartbeat(self) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES ('last_alive', ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [repr(self.store.clock())])

    @writes_now
    def record_downtime(self, *, min_gap: float) -> tuple[float, float] | None:
        """At start-up: the gap since the last heartbeat, if longer than ``min_gap``."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'last_alive'").fetchone()
        now = self.store.clock()
        if row is None:
            return None
        last = float(row[0])
        if now - last <= min_gap:
            return None
        self.db.execute("INSERT INTO downtime (start, end) VALUES (?, ?)", [last, now])
        return last, now

    def unseen(self, channel_id: str, start: float, end: float) -> bool:
        """Whether (start, end] may hold messages the bot never saw live."""
        tracked = self.db.execute("SELECT tracked_since FROM tracked_channels WHERE channel_id = ?",
                                  [channel_id]).fetchone()
        if tracked is None or tracked[0] > start:
            return True
        gap = self.db.execute("SELECT 1 FROM downtime WHERE start < ? AND end > ?",
                              [end, start]).fetchone()
        return gap is not None
