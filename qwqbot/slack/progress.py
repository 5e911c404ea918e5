"""Progress edits of placeholder messages, within Slack's chat.update rate limit.

chat.update is Tier 3 (about 50 calls a minute per workspace). Each answer has exactly
one updater task (edits of one message must not overtake each other), which edits at most
once per interval and only when a shared token bucket allows. With many answers in flight
the bucket runs dry and progress gets coarser; final answers never wait for it: they take
their token unconditionally (the bucket may go negative), so progress yields to them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class UpdateBudget:
    def __init__(self, per_minute: int, *, burst: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, min(per_minute, 10)))
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        #: calls granted, for the benchmark's calls-per-minute figure
        self.granted = 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_take(self) -> bool:
        """For progress: a token if one is free now, else False (skip this edit)."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            self.granted += 1
            return True
        return False

    def pause(self, seconds: float) -> None:
        """Slack answered 429: no progress edits for ``seconds`` (finals still go through)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0) - seconds * self.rate

    def take(self) -> None:
        """For final answers: always granted; the debt delays later progress edits."""
        self._refill()
        self._tokens -= 1
        self.granted += 1


class ProgressUpdater:
    """One per answer: edits the placeholder from ``render()`` until stopped."""

    def __init__(self, *, update: Callable[[dict[str, Any]], Awaitable[Any]],
                 render: Callable[[], dict[str, Any]], budget: UpdateBudget,
                 interval: float) -> None:
        self._update = update
        self._render = render
        self._budget = budget
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_shown: Any = None
        self.edits = 0

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
            if payload == self._last_shown or not self._budget.try_take():
                continue
            try:
                await self._update(payload)
                self._last_shown = payload
                self.edits += 1
            except SlackApiError as exc:
                if exc.response.status_code == 429:
                    retry_after = float(exc.response.headers.get("retry-after", 1) or 1)
                    self._budget.pause(retry_after)
                log.warning("progress update skipped: %s", exc.response.get("error"))
            except Exception as exc:  # progress is best effort; the answer must go on
                log.warning("progress update failed: %s", type(exc).__name__)
