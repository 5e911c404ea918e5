"""Slack's Web API rate limits, as the loopback fake Slack enforces them.

Why: a fake that answers every call at once makes benchmarks and load tests describe a
workspace that does not exist.  Real Slack limits each app per workspace per method
(https://docs.slack.dev/apis/web-api/rate-limits): Tier 1 1+/min, Tier 2 20+/min,
Tier 3 50+/min, Tier 4 100+/min, and "special" methods with their own rules.  This module
holds the table (method -> tier, each row citing its reference page) and the limiter; it
knows nothing about HTTP, so the fake decides what a refusal looks like.

Modelled as:

* tiered and special methods: a SLIDING 60 s window per method (per channel where marked).
  A call is admitted while fewer than ``per_minute`` admitted calls happened in the last
  60 s; a call admitted at ``t`` leaves the window at ``t + 60`` exactly.  The "+" in
  "50+ per minute" (tolerated bursts) is not modelled: the floor is what a client may
  count on.
* chat.postMessage (about 1 message per second per channel, short bursts tolerated, plus
  a workspace-wide ceiling): a token bucket per channel (capacity ``POST_BURST``, refilled
  ``POST_PER_SECOND``) and a sliding window over the whole workspace
  (``POST_WORKSPACE_PER_MINUTE``).
* chat.startStream: its own Tier 2 window, and - undocumented, assumed here - it also
  spends the channel's posting bucket and the workspace posting window, because a stream
  opens a message in the channel just as chat.postMessage does.  appendStream/stopStream
  edit that message and only count against their own tiers.

Refused calls are not counted: only admitted calls fill windows and drain buckets, so
``Retry-After`` (whole seconds, at least 1) is exactly when room returns.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = [
    "METHOD_LIMITS",
    "POSTS_TO_CHANNEL",
    "POST_BURST",
    "POST_PER_SECOND",
    "POST_WORKSPACE_PER_MINUTE",
    "TIER_PER_MINUTE",
    "WINDOW_SECONDS",
    "MethodLimit",
    "RateLimiter",
    "Refusal",
    "Rule",
    "reference_url",
]

WINDOW_SECONDS = 60.0

# https://docs.slack.dev/apis/web-api/rate-limits ("Rate limit tiers"): the floor of each tier.
TIER_PER_MINUTE: dict[str, int] = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}

# chat.postMessage, https://docs.slack.dev/reference/methods/chat.postMessage ("Rate limiting"):
# "generally allow an app to post 1 message per second to a specific channel ... limits governing
# your app's relationship with the entire workspace above that, limiting posting to several hundred
# messages per minute.  Generous burst behavior is also granted." (that wording is also quoted in
# slackapi/java-slack-sdk's MethodsRateLimitTier); the rate-limits guide's table says "Posting messages:
# 1 per second, short bursts >1 allowed".  The burst size is not published:
# 5 is a modest "short burst"; "several hundred" is taken as 300.
POST_BURST = 5
POST_PER_SECOND = 1.0
POST_WORKSPACE_PER_MINUTE = 300

# Methods that put a new message into a channel and so spend its posting bucket (see docstring).
POSTS_TO_CHANNEL = frozenset({"chat.postMessage", "chat.startStream"})

Scope = Literal["workspace", "channel"]
Rule = Literal["method", "channel_posts", "workspace_posts"]


@dataclass(frozen=True)
class MethodLimit:
    """One method's limit: ``tier`` as the reference page names it ("t1".."t4", "special")."""

    tier: str
    per_minute: int
    scope: Scope = "workspace"


def _row(tier: str) -> MethodLimit:
    return MethodLimit(tier, TIER_PER_MINUTE[tier])


# Tiers as each method's reference page lists them (the page's "Rate Limits" fact; its .md form
# says e.g. ``rate_limit: "t3"``), read 2026-05; cross-checked against slackapi/java-slack-sdk's
# MethodsRateLimits.  Every method FakeSlack serves has a row (tests/fakes/test_slack_rate_limits.py
# checks that).
METHOD_LIMITS: dict[str, MethodLimit] = {
    # https://docs.slack.dev/reference/methods/api.test
    "api.test": _row("t4"),
    # https://docs.slack.dev/reference/methods/apps.connections.open
    # (Tier 3 on docs.slack.dev; the older api.slack.com page and java-slack-sdk said Tier 1)
    "apps.connections.open": _row("t3"),
    # https://docs.slack.dev/reference/methods/auth.test - "special": "hundreds of requests per
    # minute" without a number; 600 is java-slack-sdk's figure.  Our choice, overridable.
    "auth.test": MethodLimit("special", 600),
    # https://docs.slack.dev/reference/methods/chat.postMessage - special; per_minute here is the
    # workspace-wide posting ceiling, the per-channel bucket is POST_BURST / POST_PER_SECOND.
    "chat.postMessage": MethodLimit("special", POST_WORKSPACE_PER_MINUTE),
    # https://docs.slack.dev/reference/methods/chat.update
    "chat.update": _row("t3"),
    # https://docs.slack.dev/reference/methods/chat.delete
    "chat.delete": _row("t3"),
    # https://docs.slack.dev/reference/methods/chat.postEphemeral
    "chat.postEphemeral": _row("t4"),
    # https://docs.slack.dev/reference/methods/chat.getPermalink - "special", "hundreds of requests
    # per minute" without a number; 600 as for auth.test.  Our choice, overridable.
    "chat.getPermalink": MethodLimit("special", 600),
    # https://docs.slack.dev/reference/methods/chat.startStream (also spends the posting limits)
    "chat.startStream": _row("t2"),
    # https://docs.slack.dev/reference/methods/chat.appendStream
    "chat.appendStream": _row("t4"),
    # https://docs.slack.dev/reference/methods/chat.stopStream
    "chat.stopStream": _row("t2"),
    # https://docs.slack.dev/reference/methods/conversations.replies
    # (internal apps; commercially distributed non-Marketplace apps get 1/min since 2025-05-29)
    "conversations.replies": _row("t3"),
    # https://docs.slack.dev/reference/methods/conversations.history (same note as replies)
    "conversations.history": _row("t3"),
    # https://docs.slack.dev/reference/methods/conversations.info
    "conversations.info": _row("t3"),
    # https://docs.slack.dev/reference/methods/conversations.members
    "conversations.members": _row("t4"),
    # https://docs.slack.dev/reference/methods/conversations.open
    "conversations.open": _row("t3"),
    # https://docs.slack.dev/reference/methods/conversations.join
    "conversations.join": _row("t3"),
    # https://docs.slack.dev/reference/methods/users.info
    "users.info": _row("t4"),
    # https://docs.slack.dev/reference/methods/users.list
    "users.list": _row("t2"),
    # https://docs.slack.dev/reference/methods/reactions.add
    "reactions.add": _row("t3"),
    # https://docs.slack.dev/reference/methods/reactions.remove
    "reactions.remove": _row("t2"),
    # https://docs.slack.dev/reference/methods/assistant.threads.setStatus - "special" (.md:
    # rate_limit "t5"), no number published.  java-slack-sdk models it like chat.postMessage's
    # channel rule: 60 a minute per conversation.  Our choice, overridable.
    "assistant.threads.setStatus": MethodLimit("special", 60, "channel"),
    # https://docs.slack.dev/reference/methods/assistant.threads.setTitle (java-slack-sdk: Tier 3)
    "assistant.threads.setTitle": _row("t4"),
    # https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts
    # (java-slack-sdk: Tier 3)
    "assistant.threads.setSuggestedPrompts": _row("t4"),
    # https://docs.slack.dev/reference/methods/views.publish
    "views.publish": _row("t4"),
    # https://docs.slack.dev/reference/methods/files.getUploadURLExternal
    "files.getUploadURLExternal": _row("t4"),
    # https://docs.slack.dev/reference/methods/files.completeUploadExternal
    "files.completeUploadExternal": _row("t4"),
    # https://docs.slack.dev/reference/methods/files.info
    "files.info": _row("t4"),
}


def reference_url(method: str) -> str:
    return f"https://docs.slack.dev/reference/methods/{method}"


@dataclass(frozen=True)
class Refusal:
    """Why a call was refused and how long until it would be admitted (whole seconds, >= 1)."""

    rule: Rule
    retry_after: int
    at: float  # the clock reading the decision was made at


def _whole_seconds(wait: float) -> int:
    # a hair of float noise (59.999999999) must not round a wait up by a second
    return max(1, math.ceil(wait - 1e-9))


class _Window:
    """Admission times inside the last WINDOW_SECONDS."""

    def __init__(self) -> None:
        self._times: collections.deque[float] = collections.deque()

    def wait(self, now: float, limit: int) -> float:
        while self._times and self._times[0] <= now - WINDOW_SECONDS:
            self._times.popleft()
        if len(self._times) < limit:
            return 0.0
        # the (len - limit + 1)-th oldest admission has to leave before one more fits
        return self._times[len(self._times) - limit] + WINDOW_SECONDS - now

    def admit(self, now: float) -> None:
        self._times.append(now)


class _Bucket:
    def __init__(self, capacity: int, now: float) -> None:
        self.tokens = float(capacity)
        self.updated = now

    def wait(self, now: float, capacity: int, rate: float) -> float:
        self.tokens = min(float(capacity), self.tokens + max(0.0, now - self.updated) * rate)
        self.updated = max(self.updated, now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / rate

    def take(self) -> None:
        self.tokens -= 1.0


class RateLimiter:
    """Admits or refuses calls; not thread-safe (FakeSlack calls it under its lock)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.limits: dict[str, MethodLimit] = dict(METHOD_LIMITS)
        self.post_burst = POST_BURST
        self.post_per_second = POST_PER_SECOND
        self._windows: dict[tuple[str, str | None], _Window] = collections.defaultdict(_Window)
        self._buckets: dict[str, _Bucket] = {}

    # ------------------------------------------------------------- settings

    def set_method_limit(self, method: str, per_minute: int | None) -> None:
        """Override ``method``'s per-minute figure (None restores the documented one)."""
        if method not in METHOD_LIMITS:
            raise KeyError(f"no rate limit is modelled for {method!r}")
        if per_minute is None:
            self.limits[method] = METHOD_LIMITS[method]
            return
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.limits[method] = replace(self.limits[method], per_minute=per_minute)

    def set_post_rate(self, *, burst: int | None = None, per_second: float | None = None) -> None:
        """Override chat.postMessage's per-channel bucket (None keeps the current value)."""
        if burst is not None:
            if burst < 1:
                raise ValueError("burst must be at least 1")
            self.post_burst = burst
        if per_second is not None:
            if per_second <= 0:
                raise ValueError("per_second must be positive")
            self.post_per_second = per_second

    def forget(self) -> None:
        """Drop every window and bucket (as if no call had been made); overrides stay."""
        self._windows.clear()
        self._buckets.clear()

    # ------------------------------------------------------------ admission

    def check(self, method: str, channel: str | None) -> Refusal | None:
        """Admit the call (record it everywhere it counts) or say why not; methods without a
        row are never limited.  Reads the clock once."""
        limit = self.limits.get(method)
        if limit is None:
            return None
        now = self.clock()
        waits: list[tuple[float, Rule]] = []
        windows: list[_Window] = []
        if method != "chat.postMessage":  # its row *is* the workspace posting ceiling
            key = (method, channel if limit.scope == "channel" else None)
            window = self._windows[key]
            waits.append((window.wait(now, limit.per_minute), "method"))
            windows.append(window)
        bucket: _Bucket | None = None
        if method in POSTS_TO_CHANNEL:
            posts = self._windows[("chat.postMessage", None)]
            waits.append((posts.wait(now, self.limits["chat.postMessage"].per_minute), "workspace_posts"))
            windows.append(posts)
            bucket = self._buckets.get(channel or "")
            if bucket is None:
                bucket = self._buckets[channel or ""] = _Bucket(self.post_burst, now)
            waits.append((bucket.wait(now, self.post_burst, self.post_per_second), "channel_posts"))
        longest, rule = max(waits, key=lambda w: w[0])
        if longest > 0:
            return Refusal(rule, _whole_seconds(longest), now)
        for window in windows:
            window.admit(now)
        if bucket is not None:
            bucket.take()
        return None

    # ---------------------------------------------------------- inspection

    def table(self) -> dict[str, Any]:
        """JSON-able: every method's tier, effective and documented figures, scope and source."""
        methods: dict[str, Any] = {}
        for method, limit in sorted(self.limits.items()):
            methods[method] = {
                "tier": limit.tier,
                "per_minute": limit.per_minute,
                "documented_per_minute": METHOD_LIMITS[method].per_minute,
                "scope": limit.scope,
                "window_s": WINDOW_SECONDS,
                "source": reference_url(method),
            }
        methods["chat.postMessage"]["channel_burst"] = self.post_burst
        methods["chat.postMessage"]["channel_per_second"] = self.post_per_second
        return methods
