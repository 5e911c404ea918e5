"""Progress edits of placeholder messages, within Slack's chat.update rate limit.

chat.update is Tier 3 (about 50 calls a minute per workspace). Each answer has exactly
one updater task (edits of one message must not overtake each other), which edits at most
once per interval and only when the shared budget has room. With many answers in flight
progress gets coarser; final edits have reserved headroom that progress never uses.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class UpdateBudget:
    """At most ``per_minute`` chat.update calls in any 60 seconds, for the whole workspace.

    A sliding window (not a token bucket, whose bursts could exceed the figure in some
    minute). Progress edits may use only ``progress_share`` of the window and are skipped
    when it is full; final edits wait for room, so they are never refused and progress
    always leaves them headroom.
    """

    WINDOW = 60.0

    def __init__(self, per_minute: int, *, progress_share: float = 0.6,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.progress_limit = max(1, int(per_minute * progress_share))
        self._clock = clock
        self._calls: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        #: calls granted since start
        self.granted = 0

    def _in_window(self) -> int:
        horizon = self._clock() - self.WINDOW
        while self._calls and self._calls[0] <= horizon:
            self._calls.popleft()
        return len(self._calls)

    def _record(self) -> None:
        self._calls.append(self._clock())
        self.granted += 1

    def try_take(self, *, reserve: int = 0) -> bool:
        """For progress: a call now if the window has room for it, else False (skip).

        ``reserve``: final edits still to come (answers in flight). Progress never takes the
        room they will need, so many answers finishing together are not held back by it.
        """
        used = self._in_window()
        if (self._clock() < self._paused_until or used >= self.progress_limit
                or used + reserve >= self.per_minute):
            return False
        self._record()
        return True

    def pause(self, seconds: float) -> None:
        """Slack answered 429: no progress edits for ``seconds`` (finals still go through)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def take(self) -> None:
        """For final edits: wait until the window has room, then take it."""
        # Polling, capped at 1 s: room appears by the clock, not by an event anyone sets.
        while self._in_window() >= self.per_minute:  # noqa: ASYNC110
            await asyncio.sleep(min(1.0, max(0.01, self._calls[0] + self.WINDOW - self._clock())))
        self._record()


class ProgressUpdater:
    """One per answer: edits the placeholder from ``render()`` until stopped."""

    def __init__(self, *, update: Callable[[dict[str, Any]], Awaitable[Any]],
                 render: Callable[[], dict[str, Any]], budget: UpdateBudget,
                 interval: float, reserve: Callable[[], int] = lambda: 0) -> None:
        self._update = update
        self._render = render
        self._budget = budget
        self._interval = interval
        self._reserve = reserve
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_shown: Any = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop and wait for an edit in flight to land, so the caller's final edit is last."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
                return
            except TimeoutError:
                pass
            payload = self._render()
            if payload == self._last_shown or not self._budget.try_take(reserve=self._reserve()):
                continue
            try:
                await self._update(payload)
                self._last_shown = payload
            except SlackApiError as exc:
                if exc.response.status_code == 429:
                    retry_after = float(exc.response.headers.get("retry-after", 1) or 1)
                    self._budget.pause(retry_after)
                log.warning("progress update skipped: %s", exc.response.get("error"))
            except Exception as exc:  # progress is best effort; the answer must go on
                log.warning("progress update failed: %s", type(exc).__name__)
