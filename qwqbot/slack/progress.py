"""One progress loop per answer: shows the answer's current view on its surface every
interval until stopped.

Exactly one loop per answer, so what one answer shows never overtakes itself; each step is
best effort (the surface decides whether the view is worth a Slack call now, within the
limits, see ``surfaces.py``), and a failed step never touches the answer itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
V = TypeVar("V")


class Progress(Generic[V]):
    def __init__(self, *, show: Callable[[V], Awaitable[None]], render: Callable[[], V],
                 interval: float) -> None:
        self._show = show
        self._render = render
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop, and wait for a step in flight to land, so the answer's message is last."""
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
            try:
                await self._show(self._render())
            except Exception as exc:  # progress is best effort; the answer must go on
                log.warning("progress update failed: %s", type(exc).__name__)
