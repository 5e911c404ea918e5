"""An answer's words in Slack while the model is still writing them.

Slack's text streaming (https://docs.slack.dev/reference/methods/chat.startStream,
``chat.appendStream``, ``chat.stopStream``) opens one message in the thread and appends
Markdown to it. Its budgets are small and shared by the whole workspace: start and stop
are Tier 2 (about 20 a minute), appends Tier 4 (about 100 a minute, for all live streams
together). So streaming is something the bot spends where it buys the most:

- a stream starts only when start *and* stop have room (a stream that cannot be stopped
  is worse than none) and the channel may take a post now;
- appends are spaced so that all live streams together stay inside the append budget:
  with one stream, about one append a second; with ten, one every six;
- when there is no room, the answer is simply posted whole when it is done: slower to
  appear, never lost.

Text is appended up to whitespace, so a partial mention or link is never sent half-made.
Slack shows what was appended so far as one text, so ``inert`` (``qwqbot.slack.inert``: no
pings, no strangers notified, no disguised links) judges the whole answer so far, and only
what it adds to what Slack already has is appended. When more of the answer changes how the
part already shown reads (a link whose label turns out to name another site), the stream
stops growing; the final message, judged whole, replaces it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from qwqbot.slack.calls import Calls, Undeliverable, slack_error
from qwqbot.slack.inert import NOBODY
from qwqbot.slack.limits import Limits, Priority

log = logging.getLogger(__name__)
#: Live text stops growing here; the final message carries the rest. Under the 12,000
#: characters a markdown payload may hold.
MAX_LIVE_CHARS = 10_000
MIN_APPEND_INTERVAL = 1.0
#: Appends budgeted per minute for all live streams (chat.appendStream is Tier 4).
APPENDS_PER_MINUTE = 80


class Streams:
    """Which answers may stream now, and how often each may append."""

    def __init__(self, limits: Limits, *, enabled: bool = True) -> None:
        self.limits = limits
        self.enabled = enabled
        self.live = 0

    def may_start(self, channel: str) -> bool:
        return (self.enabled and self.limits.room("chat.startStream") > 0
                and self.limits.room("chat.stopStream") > self.live
                and self.limits.ready("chat.postMessage", channel)
                and self.limits.ready("chat.startStream", channel))

    def append_interval(self) -> float:
        return max(MIN_APPEND_INTERVAL, 60.0 * max(1, self.live) / APPENDS_PER_MINUTE)


class LiveAnswer:
    """One answer's stream; ``feed`` it the answer so far, then ``stop`` it."""

    def __init__(self, calls: Calls, streams: Streams, *, channel: str, thread_ts: str,
                 recipient_user: str, recipient_team: str,
                 inert: Callable[[str], str] = NOBODY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.calls = calls
        self.streams = streams
        self.channel = channel
        self.thread_ts = thread_ts
        self.recipient_user = recipient_user
        self.recipient_team = recipient_team
        self._inert = inert
        self._clock = clock
        self.ts: str | None = None
        self.sent = 0  # characters of the answer appended so far
        self.shown = ""  # what Slack has of them: the answer so far, made inert
        self._at = 0.0
        self.refused = False  # Slack would not stream here: don't try again
        self.stopped = False  # no more appends (done, expired, or Slack struggling)
        self.frozen = False  # no more appends: what was shown would read otherwise now
        self._counted = False  # counted in streams.live

    @property
    def started(self) -> bool:
        return self.ts is not None

    async def feed(self, answer: str) -> None:
        """Send what the model wrote since the last call, if it is time to."""
        if self.refused or self.stopped or self.frozen:
            return
        end = _last_break(answer, limit=MAX_LIVE_CHARS)
        if end <= self.sent:
            return
        if self.ts is None:
            if not self.streams.may_start(self.channel):
                return
            shown = self._inert(answer[:end])
            await self._start(shown)
            if self.ts is not None:
                self.sent, self.shown = end, shown
            return
        if self._clock() - self._at < self.streams.append_interval():
            return
        shown = self._inert(answer[:end])
        if not shown.startswith(self.shown):
            log.info("live answer in %s stops here: the rest reads differently whole",
                     self.channel)
            self.frozen = True
            return
        chunk = shown[len(self.shown):]
        if not chunk:  # what was added shows as nothing (yet)
            self.sent = end
            return
        try:
            await self.calls.call("chat.appendStream", channel=self.channel,
                                  priority=Priority.APPEND, give_up_after=10, only_if_room=True,
                                  ts=self.ts, markdown_text=chunk)
        except Undeliverable as exc:
            if exc.error == "busy":
                return  # no room now: the next step sends more at once
            log.info("stopped streaming in %s: %s", self.channel, exc.error)
            self.stopped = True
            self._release()
            return
        except SlackApiError as exc:
            # The stream expired or Slack is struggling: the final message has it all.
            log.info("stopped streaming in %s: %s", self.channel, _name(exc))
            self.stopped = True
            self._release()
            return
        self.sent, self.shown = end, shown
        self._at = self._clock()

    async def _start(self, text: str) -> None:
        kwargs: dict[str, Any] = {"thread_ts": self.thread_ts, "markdown_text": text}
        if not self.channel.startswith("D"):
            # In channels Slack needs to know whom the stream is for.
            kwargs.update(recipient_user_id=self.recipient_user,
                          recipient_team_id=self.recipient_team)
        try:
            response = await self.calls.call("chat.startStream", channel=self.channel,
                                              priority=Priority.STREAM, give_up_after=15,
                                              **kwargs)
        except (SlackApiError, Undeliverable) as exc:
            log.info("no live answer in %s: %s", self.channel, _name(exc))
            self.refused = True
            return
        self.ts = str(response["ts"])
        self.streams.live += 1
        self._counted = True
        self._at = self._clock()

    def _release(self) -> None:
        if self._counted:
            self.streams.live -= 1
            self._counted = False

    async def stop(self) -> None:
        """End the stream (the final message then replaces its text with chat.update)."""
        if self.ts is None or not self._counted:
            return
        self.stopped = True
        self._release()
        try:
            await self.calls.call("chat.stopStream", channel=self.channel,
                                  priority=Priority.STREAM, give_up_after=60, ts=self.ts)
        except (SlackApiError, Undeliverable) as exc:
            # An expired stream is still a message we can edit.
            log.info("stopStream in %s: %s", self.channel, _name(exc))


def _last_break(text: str, *, limit: int) -> int:
    """How much of ``text`` can be shown now: up to its last whitespace (a word, a mention
    or a link may still be being written), at most ``limit`` characters."""
    head = text[:limit]
    cut = max(head.rfind(" "), head.rfind("\n"))
    return cut + 1 if cut >= 0 else 0


def _name(exc: Exception) -> str:
    return slack_error(exc) if isinstance(exc, SlackApiError) else str(exc)
