"""Writes SQLite cannot take right now, kept in order and made when it can: the event loop never
waits on the database.

The bot's one connection lives on the event loop, so a write that waits for SQLite's lock
freezes every answer, slash command and health check for as long as the lock is held (another
process may hold it for minutes: an admin's ``sqlite3`` shell, a backup, a second instance by
mistake). So in the bot the connection's busy timeout is a few milliseconds
(https://sqlite.org/c3ref/busy_timeout.html), and a write that gets ``SQLITE_BUSY``/``LOCKED``
(or ``SQLITE_FULL``: the disk filled up) is rolled back and queued here. Every later write queues
behind it, so the order in which things happened is the order in which they are written; the
queue is retried on the loop with a growing pause (each try is bounded by the same few
milliseconds) until it empties. Reads keep working meanwhile: in WAL mode readers never wait for a
writer (https://sqlite.org/wal.html#concurrency).

What is queued lives in memory only until written, so a clean stop makes one last, patient try;
what still cannot be written then is counted in the log. Not a durability layer: a way to never
stall, and to lose nothing while the process runs.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

log = logging.getLogger(__name__)

State = Literal["ok", "busy", "full"]
T = TypeVar("T")

#: SQLite's primary result codes for "cannot write now, try later" (https://sqlite.org/rescode.html).
_BUSY, _LOCKED, _FULL = 5, 6, 13
_TRANSIENT: dict[int, State] = {_BUSY: "busy", _LOCKED: "busy", _FULL: "full"}

#: First and longest pause between tries while writes wait.
FIRST_PAUSE_S = 0.05
LONGEST_PAUSE_S = 2.0
#: One try at the queue gives up the loop after this long, so a long queue does not stall it.
FLUSH_SLICE_S = 0.02
#: Writes kept at most; past it new writes are dropped with an error (memory stays bounded).
LIMIT = 100_000


def transient(exc: BaseException) -> State | None:
    """``busy`` or ``full`` when ``exc`` is SQLite saying "not now"; None for anything else."""
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return _TRANSIENT.get(code & 0xFF)
    text = str(exc)  # older builds: the messages of sqlite3_errstr() for those codes
    if "locked" in text:
        return "busy"
    return "full" if "full" in text else None


@dataclass
class _Write:
    op: Callable[[], object]
    what: str
    queued_at: float


class Journal:
    """The queue of writes waiting for SQLite. ``rollback`` undoes a failed attempt's partial
    transaction on the shared connection."""

    def __init__(self, rollback: Callable[[], None], *, clock: Callable[[], float] = time.monotonic,
                 limit: int = LIMIT) -> None:
        self._rollback = rollback
        self._clock = clock
        self._limit = limit
        self._queue: deque[_Write] = deque()
        self.state: State = "ok"
        self.since: float | None = None  # when the current trouble began (monotonic)
        self.dropped = 0
        self._pause = FIRST_PAUSE_S
        self._timer: asyncio.TimerHandle | None = None
        self._listeners: list[Callable[[State], None]] = []

    @property
    def pending(self) -> int:
        return len(self._queue)

    def on_change(self, listener: Callable[[State], None]) -> None:
        """Call ``listener(state)`` whenever the state changes (e.g. to tell people)."""
        self._listeners.append(listener)

    def attempt(self, op: Callable[[], T]) -> tuple[bool, T | None]:
        """Run ``op`` now if nothing is waiting and SQLite lets us: ``(True, result)``; else
        ``(False, None)``, and the caller queues what to write later and answers from memory."""
        if self._queue:
            return False, None
        try:
            return True, op()
        except sqlite3.OperationalError as exc:
            state = transient(exc)
            if state is None:
                raise
            self._rollback()
            self._trouble(state, exc)
            return False, None

    def queue(self, op: Callable[[], object], what: str) -> None:
        if len(self._queue) >= self._limit:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("database writes are %s and %d are waiting: dropped %d writes (the "
                          "newest: %s)", self.state, len(self._queue), self.dropped, what)
            return
        self._queue.append(_Write(op, what, self._clock()))
        self._schedule()

    def flush(self, *, slice_s: float = FLUSH_SLICE_S) -> int:
        """Write what waits, oldest first, until SQLite says not now or ``slice_s`` is spent;
        how many were written. A write that fails for another reason is logged and dropped:
        retrying a broken statement cannot help, and it must not hold the others back."""
        done = 0
        started = self._clock()
        while self._queue:
            write = self._queue[0]
            try:
                write.op()
            except sqlite3.OperationalError as exc:
                state = transient(exc)
                if state is None:
                    self._drop(write, exc)
                    continue
                self._rollback()
                self._trouble(state, exc)
                return done
            except sqlite3.Error as exc:
                self._drop(write, exc)
                continue
            self._queue.popleft()
            done += 1
            if self._clock() - started > slice_s:
                break
        if not self._queue:
            self._recovered(done)
        return done

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- internals -------------------------------------------------------------------

    def _drop(self, write: _Write, exc: BaseException) -> None:
        self._rollback()
        self._queue.popleft()
        log.error("dropped a queued database write (%s): %s", write.what, exc)

    def _trouble(self, state: State, exc: BaseException) -> None:
        if self.state == state:
            return
        first = self.state == "ok"
        self.state = state
        if first:
            self.since = self._clock()
        if state == "full":
            log.error("the database's disk is full (%s): writes wait in memory and answers go on; "
                      "free space next to the database and they are written by themselves", exc)
        else:
            log.warning("the database is locked by another process (%s): writes wait in memory "
                        "and are made when it lets go", exc)
        self._notify(state)

    def _recovered(self, done: int) -> None:
        if self.state == "ok":
            return
        waited = self._clock() - (self.since or self._clock())
        log.warning("the database takes writes again: wrote %d waiting writes after %.1f s",
                    done, waited)
        self.state, self.since, self._pause = "ok", None, FIRST_PAUSE_S
        self._notify("ok")

    def _notify(self, state: State) -> None:
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:  # a listener's bug must not break the write path
                log.exception("database state listener failed")

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a command-line run): close() makes the last try
        self._timer = loop.call_later(self._pause, self._tick)

    def _tick(self) -> None:
        self._timer = None
        written = self.flush()
        if self._queue:
            # Progress (a slice ran out): go on at once; none (still refused): back off.
            self._pause = 0.0 if written else min(max(self._pause, FIRST_PAUSE_S) * 2,
                                                  LONGEST_PAUSE_S)
            self._schedule()
