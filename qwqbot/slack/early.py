"""Edits and deletions that arrive before the post they change.

Slack does not promise to deliver events in order (https://docs.slack.dev/apis/events-api/:
"events may be delivered out of order"; retries make it likelier), so a ``message_changed`` or
``message_deleted`` can come before the ``message`` it applies to. Such a change is kept here for a
few minutes and applied when its post arrives: a deleted question is not answered, an edited one
is answered as edited. Kept in memory only: it is about seconds of reordering, and changes to
messages the bot never stores (most of a channel's) must not pile up anywhere lasting.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: How long an early change waits for its post, and how many wait at most (oldest go first).
KEEP_S = 600.0
LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Change:
    text: str | None  # None: the post was deleted
    edited_ts: str | None
    at: float


class EarlyChanges:
    def __init__(self, *, keep_s: float = KEEP_S, limit: int = LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._keep_s = keep_s
        self._limit = limit
        self._clock = clock
        self._changes: OrderedDict[tuple[str, str], Change] = OrderedDict()

    def __len__(self) -> int:
        return len(self._changes)

    def keep(self, channel_id: str, ts: str, *, text: str | None,
             edited_ts: str | None = None) -> None:
        """Remember a change to a post not seen yet; a deletion wins over any edit."""
        key = (channel_id, ts)
        old = self._changes.pop(key, None)
        if old is not None and old.text is None:
            text = None
        self._changes[key] = Change(text, edited_ts, self._clock())
        self._expire()
        while len(self._changes) > self._limit:
            self._changes.popitem(last=False)

    def find(self, channel_id: str, ts: str) -> Change | None:
        """The change waiting for this post, if any. Kept until it expires: one post arrives
        twice (as ``app_mention`` and as ``message``), and both must see it."""
        self._expire()
        return self._changes.get((channel_id, ts))

    def _expire(self) -> None:
        cutoff = self._clock() - self._keep_s
        while self._changes:
            first = next(iter(self._changes.values()))
            if first.at >= cutoff:
                break
            self._changes.popitem(last=False)
