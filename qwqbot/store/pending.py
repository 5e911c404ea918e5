"""What waits in the journal, as the store's reads must see it.

While writes wait (see journal.py), a question that was just "saved" is only in memory, yet the
answer to it is built from the thread read back from the store. So the store keeps the waiting
messages, threads and claims here and its reads merge them in; once the journal is empty again
everything here is in the table too, and this is cleared.
"""

from __future__ import annotations

from typing import Any

from qwqbot.store.journal import State

Key = tuple[str, str]


class Pending:
    def __init__(self) -> None:
        #: keys taken by claims that wait: ("event", id), ("answer", channel, ts, attempt), ...
        self.claims: set[tuple[str, ...]] = set()
        #: (channel_id, ts) -> the message row as it will be written (``deleted`` 1 for a delete)
        self.messages: dict[Key, dict[str, Any]] = {}
        self.threads: set[Key] = set()
        #: provisional answer id -> the id the answers table gave it (None: the post was claimed
        #: by someone else meanwhile)
        self.answer_ids: dict[int, int | None] = {}
        self.next_answer_id = 0

    def on_state(self, state: State) -> None:
        if state == "ok":
            self.claims.clear()
            self.messages.clear()
            self.threads.clear()
            # answer_ids stay: a job still running may hold a provisional id.

    def put_message(self, row: dict[str, Any]) -> None:
        key = (row["channel_id"], row["ts"])
        old = self.messages.get(key)
        if old is not None and old["deleted"]:
            return  # a save never revives a deleted message (as in save_message's SQL)
        self.messages[key] = {**(old or {}), **row, "deleted": 0}

    def change_message(self, key: Key, *, stored: dict[str, Any] | None,
                       **changes: Any) -> bool:
        """Apply an edit or delete to a waiting message or ``stored`` (its table row); False if
        neither exists."""
        base = self.messages.get(key) or stored
        if base is None or base.get("deleted"):
            return False
        self.messages[key] = {**base, **changes}
        return True

    def thread_rows(self, channel_id: str, thread_ts: str, up_to_ts: str) -> list[dict[str, Any]]:
        return [row for (channel, ts), row in self.messages.items()
                if channel == channel_id and row.get("thread_ts") == thread_ts and ts <= up_to_ts]


def merge_window(recent: list[dict[str, Any]], total: int, waiting: list[dict[str, Any]],
                 columns: tuple[str, ...]) -> tuple[list[dict[str, Any]], int]:
    """A thread window read from the table, with the messages that wait merged in."""
    by_ts = {row["ts"]: row for row in recent}
    for row in waiting:
        if row["deleted"]:
            if by_ts.pop(row["ts"], None) is not None:
                total -= 1
            continue
        if row["ts"] not in by_ts:
            total += 1
        by_ts[row["ts"]] = {c: row.get(c) for c in columns}
    return sorted(by_ts.values(), key=lambda r: str(r["ts"])), total
