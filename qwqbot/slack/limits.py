"""Slack's rate limits, as the bot plans its own calls around them.

Slack limits each Web API method per workspace by tier, counted over a minute
(https://docs.slack.dev/apis/web-api/rate-limits): Tier 2 "20+ per minute", Tier 3 "50+",
Tier 4 "100+", and answers a call over the limit with HTTP 429 and ``Retry-After``.
chat.postMessage is special: "one message per second per channel", with short bursts
allowed (https://docs.slack.dev/reference/methods/chat.postMessage#rate_limiting).

Waiting for a 429 is the slow way to learn a limit: every refused call costs a round trip
and a ``Retry-After`` of at least a second, and a storm of them starves everyone. So each
call first takes room from a local model of the limit it is subject to:

- a **sliding 60-second window** per method (the whole workspace), and
- for posts, a **token bucket per channel**: a burst, then a steady rate.

Callers wait in priority order, then arrival order, so a final answer is never held up
behind progress it does not need, and answers in one channel are posted in the order
they were asked. The figures are a little under Slack's, which leaves room for other
apps' clocks and for what we cannot see; a 429 that still arrives pauses the limit for
its ``Retry-After`` (see ``calls.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum


class Priority(IntEnum):
    """Lower goes first. What a user is waiting to read outranks decoration."""

    ANSWER = 0      # a final answer, a failure notice
    STREAM = 1      # starting or ending a live answer
    APPEND = 2      # more words of a live answer
    STATUS = 3      # the "is thinking…" line
    BACKGROUND = 4  # lookups, uploads, cleanup


#: Method -> calls per minute, per workspace, a little under each method's documented tier
#: (its reference page at https://docs.slack.dev/reference/methods/<method>).
PER_MINUTE: dict[str, int] = {
    "chat.update": 45,           # Tier 3 (50+)
    "chat.delete": 45,           # Tier 3
    "chat.postEphemeral": 90,    # Tier 4 (100+)
    "chat.startStream": 18,      # Tier 2 (20+)
    "chat.appendStream": 90,     # Tier 4
    "chat.stopStream": 18,       # Tier 2
    "assistant.threads.setTitle": 90,    # Tier 4
    "assistant.threads.setSuggestedPrompts": 90,  # Tier 4
    "views.publish": 90,         # Tier 4
    "files.getUploadURLExternal": 90,    # Tier 4
    "files.completeUploadExternal": 90,  # Tier 4
    "users.info": 90,            # Tier 4
    "conversations.info": 45,    # Tier 3
}
#: Method -> calls per minute per channel. assistant.threads.setStatus is "special" and
#: Slack gives no figure; Slack's own java-slack-sdk counts it as 60 a minute per channel
#: (``MethodsRateLimits``), which is what we plan for.
PER_CHANNEL_PER_MINUTE: dict[str, int] = {"assistant.threads.setStatus": 54}
#: chat.postMessage beyond the per-channel rate: Slack names a workspace-wide ceiling of
#: "several hundred messages per minute" without a figure; this stays well under it.
POSTS_PER_MINUTE = 300
#: Per channel: short bursts tolerated, then one a second (chat.postMessage docs). Planned
#: a little slower than that: our clock and Slack's differ by the network's jitter, and a
#: post that arrives a few milliseconds "early" is refused for a whole second.
CHANNEL_BURST = 5
CHANNEL_RATE = 0.95
#: Methods that post a new message into a channel, and so draw on its posting rate.
#: Whether chat.startStream counts is not documented; we assume it does.
POSTING = frozenset({"chat.postMessage", "chat.startStream"})


class Window:
    """At most ``per_minute`` calls in any 60 seconds (not a token bucket, whose bursts
    could exceed the figure in some minute)."""

    SPAN = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._calls: collections.deque[float] = collections.deque()
        self._paused_until = 0.0

    def used(self) -> int:
        horizon = self._clock() - self.SPAN
        while self._calls and self._calls[0] <= horizon:
            self._calls.popleft()
        return len(self._calls)

    def wait(self) -> float:
        """Seconds until a call fits (0: now)."""
        now = self._clock()
        pause = self._paused_until - now
        if self.used() < self.per_minute:
            return max(0.0, pause)
        return max(pause, self._calls[0] + self.SPAN - now)

    def take(self) -> None:
        self._calls.append(self._clock())

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)


class Bucket:
    """A burst of ``capacity`` calls, refilled at ``rate`` a second."""

    def __init__(self, capacity: int, rate: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._tokens = float(capacity)
        self._at = clock()
        self._paused_until = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait(self) -> float:
        self._refill()
        pause = self._paused_until - self._clock()
        if self._tokens >= 1:
            return max(0.0, pause)
        return max(pause, (1 - self._tokens) / self.rate)

    def take(self) -> None:
        self._refill()
        self._tokens -= 1

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = min(self._tokens, 0.0)


Limit = Window | Bucket


@dataclass(order=True)
class _Ticket:
    priority: int
    seq: int
    done: bool = field(default=False, compare=False)


class Gate:
    """The callers of one limit, let through one at a time as it has room, highest
    priority first, then in arrival order."""

    _seq = itertools.count()

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._queue: list[_Ticket] = []
        self._changed = asyncio.Event()

    @property
    def waiting(self) -> int:
        return sum(1 for t in self._queue if not t.done)

    def ready(self) -> bool:
        """Whether a call could go through right now, ahead of nobody."""
        return not self.waiting and self.limit.wait() <= 0

    async def enter(self, priority: int) -> None:
        ticket = _Ticket(priority, next(self._seq))
        heapq.heappush(self._queue, ticket)
        try:
            while True:
                self._drop_done()
                wait: float | None = None
                if self._queue[0] is ticket:
                    wait = self.limit.wait()
                    if wait <= 0:
                        self.limit.take()
                        return
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)
        finally:
            ticket.done = True
            self._drop_done()
            self._changed.set()

    def _drop_done(self) -> None:
        while self._queue and self._queue[0].done:
            heapq.heappop(self._queue)


class Limits:
    """Every limit the bot's Web API calls are subject to, for one workspace."""

    def __init__(self, *, per_minute: dict[str, int] | None = None,
                 posts_per_minute: int = POSTS_PER_MINUTE, channel_burst: int = CHANNEL_BURST,
                 channel_rate: float = CHANNEL_RATE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._per_minute = {**PER_MINUTE, **(per_minute or {}),
                            "chat.postMessage": posts_per_minute}
        self._channel_burst = channel_burst
        self._channel_rate = channel_rate
        self._methods: dict[str, Gate] = {}
        self._channels: dict[str, Gate] = {}
        self._per_channel: dict[tuple[str, str], Gate] = {}

    def method(self, name: str) -> Gate | None:
        """The workspace-wide gate of a method; None for methods we do not limit here."""
        if name not in self._per_minute:
            return None
        if name not in self._methods:
            self._methods[name] = Gate(Window(self._per_minute[name], self._clock))
        return self._methods[name]

    def channel(self, channel_id: str) -> Gate:
        """A channel's posting rate (chat.postMessage, chat.startStream)."""
        if channel_id not in self._channels:
            self._channels[channel_id] = Gate(Bucket(self._channel_burst, self._channel_rate,
                                                     self._clock))
        return self._channels[channel_id]

    def gates(self, method: str, channel_id: str | None) -> list[Gate]:
        gates = []
        if channel_id and method in POSTING:
            gates.append(self.channel(channel_id))
        if channel_id and method in PER_CHANNEL_PER_MINUTE:
            key = (method, channel_id)
            if key not in self._per_channel:
                self._per_channel[key] = Gate(Window(PER_CHANNEL_PER_MINUTE[method], self._clock))
            gates.append(self._per_channel[key])
        workspace = self.method(method)
        if workspace is not None:
            gates.append(workspace)
        return gates

    def ready(self, method: str, channel_id: str | None = None) -> bool:
        return all(g.ready() for g in self.gates(method, channel_id))

    def room(self, method: str) -> int:
        """Calls of a method still free in the current minute (a large number if we do not
        limit it)."""
        gate = self.method(method)
        if gate is None:
            return 1 << 30
        assert isinstance(gate.limit, Window)
        return gate.limit.per_minute - gate.limit.used() - gate.waiting

    async def acquire(self, method: str, channel_id: str | None, priority: int,
                      timeout: float | None = None) -> None:
        """Wait for room in every limit the call is subject to; TimeoutError after
        ``timeout`` seconds without it (the caller decides what a late call is worth)."""
        async with asyncio.timeout(timeout):
            for gate in self.gates(method, channel_id):
                await gate.enter(priority)

    def refused(self, method: str, channel_id: str | None, retry_after: float) -> None:
        """Slack answered 429: nothing more of that kind until ``retry_after`` passes. A
        refused post is taken to be the channel's rate (the one we can't fully see: other
        apps and people post too), so other channels go on."""
        gates = self.gates(method, channel_id)
        for gate in gates[:1] if method in POSTING and channel_id else gates:
            gate.limit.pause(retry_after)
