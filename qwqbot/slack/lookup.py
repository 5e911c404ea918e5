"""Read-only Web API lookups (users.info, conversations.info) that never stampede.

A burst of mentions, or one message naming a thousand people, would otherwise start one
call per person at once and meet the method's tier (users.info Tier 4,
https://docs.slack.dev/reference/methods/users.info; conversations.info Tier 3,
https://docs.slack.dev/reference/methods/conversations.info): one call per key while it
is in flight, a few at a time, each within the method's planned rate (``limits.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from qwqbot.slack.limits import Limits, Priority

T = TypeVar("T")

#: Lookups of one method in flight at once.
LOOKUP_SLOTS = 8
#: Seconds a lookup waits for room in its rate limit before the caller does without it.
LOOKUP_PATIENCE = 20.0


class NoRoom(Exception):
    """A lookup found no room in its rate limit within its patience."""


class Lookup(Generic[T]):
    """Calls of one read-only Web API method: one call per key while it is in flight (later
    callers share its result), at most ``slots`` at once, each taking room from ``limits``
    first (``NoRoom`` when there is none within ``patience`` seconds)."""

    def __init__(self, method: str, limits: Limits | None, *, slots: int = LOOKUP_SLOTS,
                 patience: float = LOOKUP_PATIENCE) -> None:
        self.method = method
        self.limits = limits
        self.patience = patience
        self._slots = asyncio.Semaphore(slots)
        self._in_flight: dict[str, asyncio.Task[T]] = {}

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._bounded(call))
            self._in_flight[key] = task
            task.add_done_callback(lambda _: self._in_flight.pop(key, None))
        # shielded: one caller giving up does not cancel the call the others wait on
        return await asyncio.shield(task)

    async def _bounded(self, call: Callable[[], Awaitable[T]]) -> T:
        async with self._slots:
            if self.limits is not None:
                try:
                    await self.limits.acquire(self.method, None, Priority.BACKGROUND,
                                              timeout=self.patience)
                except TimeoutError as exc:
                    raise NoRoom(self.method) from exc
            return await call()
