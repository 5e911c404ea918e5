"""Slack's native "is thinking…" line under a thread, kept true while an answer is made.

``assistant.threads.setStatus`` shows "<bot> is thinking…" under the thread, rotating
through up to 10 ``loading_messages``; Slack clears it when the bot replies in the thread,
or after two minutes without a reply
(https://docs.slack.dev/reference/methods/assistant.threads.setStatus). Since March 2026 it
accepts ``chat:write``, so it works in channel threads and DMs, not only in the AI app
split view (https://docs.slack.dev/changelog/2026/03/05/set-status-scope-update).

It costs no message post and no chat.update, which is why it is the bot's first sign of
life. What it shows is refreshed as the answer moves on (queued, thinking, the gist of the
latest reasoning) and at least every ``REFRESH`` seconds, so it never expires while the
model still thinks; refreshes are spaced out as more answers share the workspace's budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from qwqbot.slack.calls import Calls, Undeliverable, slack_error
from qwqbot.slack.limits import Priority

log = logging.getLogger(__name__)
REFRESH = 90.0       # well inside Slack's two minutes
MAX_LOADING = 10     # Slack's maximum of loading_messages
#: the shortest time a status call may wait for room: a status late is a status wrong
STATUS_PATIENCE = 10.0


@dataclass(frozen=True)
class Shown:
    status: str
    loading: tuple[str, ...]


class ThreadStatus:
    def __init__(self, calls: Calls, *, channel: str, thread_ts: str,
                 interval: Callable[[], float] = lambda: 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.calls = calls
        self.channel = channel
        self.thread_ts = thread_ts
        self._interval = interval
        self._clock = clock
        self._shown: Shown | None = None
        self._at = 0.0
        #: False once Slack refused the method here (not allowed in this conversation, an
        #: old workspace): the caller then falls back to a placeholder message
        self.available = True

    async def show(self, status: str, loading: list[str], *, force: bool = False) -> bool:
        """Show ``status`` with rotating ``loading`` lines; True when Slack has it.

        Skipped (True) when nothing changed and the last refresh is recent, or when the
        last change was less than the current interval ago, unless ``force``.
        """
        wanted = Shown(status, tuple(line[:200] for line in loading[:MAX_LOADING]))
        since = self._clock() - self._at
        if not force and self._shown is not None:
            if wanted == self._shown and since < REFRESH:
                return True
            if since < self._interval() and since < REFRESH:
                return True
        return await self._send(wanted, wait=force)

    async def clear(self) -> None:
        if self._shown is not None and self.available:
            await self._send(Shown("", ()), wait=False)

    async def _send(self, wanted: Shown, *, wait: bool = True) -> bool:
        """``wait``: for room in the limit (the first sign of life); a later change that
        finds no room now is skipped, and the next one says more anyway."""
        if not self.available:
            return False
        kwargs: dict[str, Any] = {"thread_ts": self.thread_ts, "status": wanted.status}
        if wanted.loading:
            kwargs["loading_messages"] = list(wanted.loading)
        try:
            await self.calls.call("assistant.threads.setStatus", channel=self.channel,
                                  priority=Priority.STATUS, give_up_after=STATUS_PATIENCE,
                                  only_if_room=not wait, **kwargs)
        except SlackApiError as exc:
            log.info("no thread status in %s (%s); falling back to a message", self.channel,
                     slack_error(exc))
            self.available = False
            return False
        except Undeliverable as exc:
            log.info("thread status in %s not set: %s", self.channel, exc.error)
            return False
        self._shown = wanted
        self._at = self._clock()
        return True
