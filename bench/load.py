"""Load benchmark: the real bot (a subprocess, HTTP mode) answering mentions in a workspace
whose Slack enforces Slack's own rate limits.

    .venv/bin/python bench/load.py [--scenario single|six|one-channel|twenty|custom|all]
        [--limits on|off|both] [--answers N] [--model-seconds S] [--channels C]
        [--inject-429 SHARE] [--timeout S] [--ramp S] [--seed N] [--json FILE] [--strict]

Why: what a user of a busy workspace waits for is decided by Slack's limits (about one
message a second per channel, chat.update 50 a minute, chat.startStream 20 a minute ...),
not by how fast the bot's own code runs; a fake that answers every call at once measures a
workspace that does not exist (https://docs.slack.dev/apis/web-api/rate-limits). So the
fake Slack (``tests/fakes/slack_api.py``) enforces the limits of
``tests/fakes/rate_limits.py`` unless ``--limits off`` (``both`` runs each scenario twice
and shows the ratios).

Scenarios (``--scenario``, default ``all``: the four named ones in this order), each with
a timeout after which an answer not yet final counts lost:

* ``single``: 1 mention, 6 s model stream (can its words be read while the model still
  writes?), 30 s;
* ``six``: 60 mentions over 6 channels, 3 s streams, 30 s;
* ``one-channel``: 20 mentions in one channel, 3 s streams, 60 s;
* ``twenty``: 200 mentions over 20 channels, 5 s streams, 40 s.

``--answers`` / ``--model-seconds`` / ``--channels`` change one named scenario (its name
gets a ``*``, its targets stay) or, given alone, make a ``custom`` run (4 mentions, 2
channels, 3 s, 30 s); ``--timeout`` replaces the timeout. ``--inject-429 SHARE`` also
answers HTTP 429 (Retry-After 1) to that share of every delivery call (``INJECTED_METHODS``;
not setStatus), drawn with ``--seed``.

How: everything runs on 127.0.0.1. The fake Slack Web API and the fake model server run
in this process (each in its own thread); the bot is started as a platform starts it
(``python -m qwqbot run --mode http``) with the bot's own defaults except
``QWQBOT_MAX_CONCURRENT=256`` - that caps parallel requests to the *model server* (a
loopback fake here, which has no capacity limit), not anything about Slack - and a short
``QWQBOT_SHUTDOWN_GRACE`` (the measurement is over when the bot is stopped). It gets N
signed ``app_mention`` events (spread over ``--ramp`` seconds, default 1, so no listen
backlog overflows) and answers them. The model streams a ``<think>`` block and then an
answer of a few sentences, word groups spread evenly over the scenario's seconds, whose
last sentence (``FINAL_SENTENCE``) marks the answer's final message.

Every Web API call is recorded by the fake on arrival (``Call.at``, ``time.monotonic()``
of this process); the bench also records which calls Slack *accepted* (HTTP 200,
``ok: true``; a call answered 429 or with an error shows nothing to anyone). Per mention,
from its POST:

* final answer: the first accepted ``chat.postMessage`` / ``chat.update`` in its thread
  whose blocks carry the final sentence in any block's text (``markdown`` blocks or the
  older ``section`` blocks alike). None by ``--timeout`` after the first POST: **lost**;
* first sign of life: the first accepted ``assistant.threads.setStatus`` (non-empty
  status) for the thread, or the first accepted bot ``chat.postMessage`` /
  ``chat.startStream`` in it, whichever came first;
* first answer words: the first accepted ``chat.startStream`` / ``chat.appendStream`` /
  ``chat.postMessage`` / ``chat.update`` in the thread whose text (``markdown_text``,
  ``text`` or block text; not attachments, where the reasoning rides) contains a word
  only the answer has (``ANSWER_WORDS``), set against the end of that answer's model
  stream (when the fake model wrote its last byte);
* ack latency: POST sent -> HTTP 200, next to the "ack floor" (as many simultaneous
  ``GET /healthz`` just before; aiohttp answers those without Bolt).

And per run: the total (first POST -> last final answer; "never" when one is lost, shown
with when the last answer that did arrive came), 429s the bot got (limit-driven and
injected, by method), streams started, Web API calls per answer by method (every call
between the first POST and the end of the wait, 429s included), the bot's peak RSS
(``VmHWM``, read just before SIGTERM) and CPU time.

Percentiles are **nearest-rank**: the smallest value with at least p% of the samples at or
below it (for fewer than 100 samples p99 is the maximum). A mention that never got the
event counts as infinitely late, so a p99 over lost answers reads "never".

Targets (PASS/MISS): no answer lost in any run; ``six`` all delivered within 12 s,
``one-channel`` within 30 s, ``twenty`` within 15 s (first POST -> last final answer);
first sign of life p99 < 1 s; ``single``: first answer words before the model stream
ended. Exit status: 0 when every run ran (bot healthy, stopped with status 0), 1 when one
did not or, with ``--strict``, when a target was missed; 3 when the watchdog gave up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/load.py`: the fakes live in tests/
    sys.path.insert(0, str(ROOT))

from tests.fakes.model_server import FakeModelServer, Stream, stream  # noqa: E402
from tests.fakes.slack_api import Call, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
BOT_USER = "UBOT"
USERS = 50
MB = 1_000_000
SHUTDOWN_GRACE = 1.0  # QWQBOT_SHUTDOWN_GRACE: what arrives after the wait is not counted anyway
STOP_WAIT = 20.0  # longest wait for the bot to exit after SIGTERM
SIGN_OF_LIFE_P99_S = 1.0

# The model's script. The reasoning, the question and the bot's own progress lines share no
# word of at least five letters with the answer, so a call showing an ANSWER_WORDS word shows
# the answer; every word group the model sends holds one (tests/test_bench_load.py checks).
REASONING_STEP = "Step {k}: checking the numbers once more. "
QUESTION = "<@{bot}> question {i}: what is six times seven?"
ANSWER_BODY = ("Forty-two, by straightforward multiplication. Doubling twenty-one likewise produces "
               "forty-two. Cross-checking with fourteen threes agrees completely.")
FINAL_SENTENCE = "Final check passed, so the benchmark closes here."
ANSWER_TEXT = f"{ANSWER_BODY} {FINAL_SENTENCE}"
# Words the old and new bots' progress and status lines use ("Writing the answer…", ...).
UI_WORDS = frozenset({"answer", "thinking", "writing", "queued", "next", "ahead", "characters",
                      "reasoning", "question", "working"})
CHUNK_EVERY = 0.25  # seconds between the model's chunks
ANSWER_SHARE = 0.4  # of the stream's parts, the answer's (the rest is the think block)

# Methods --inject-429 refuses a share of: every way either bot delivers an answer
# (setStatus is left alone, so the first sign of life stays measurable).
INJECTED_METHODS = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream",
                    "chat.stopStream")
POSTS = frozenset({"chat.postMessage", "chat.startStream"})
WORD_CARRIERS = frozenset({"chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream"})
FINAL_CARRIERS = frozenset({"chat.postMessage", "chat.update"})
SET_STATUS = "assistant.threads.setStatus"


@dataclass(frozen=True)
class Scenario:
    name: str
    answers: int
    channels: int
    model_seconds: float
    timeout: float  # seconds after the first POST; answers not final by then are lost
    deliver_within: float | None = None  # target: first POST -> last final answer
    words_before_end: bool = False  # target: first words before the model stream ended
    about: str = ""


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("single", 1, 1, 6.0, 30.0, words_before_end=True,
             about="one answer, a 6 s model stream: are words visible while the model writes?"),
    Scenario("six", 60, 6, 3.0, 30.0, deliver_within=12.0,
             about="60 mentions over 6 channels, 3 s answers"),
    Scenario("one-channel", 20, 1, 3.0, 60.0, deliver_within=30.0,
             about="20 mentions in one channel, 3 s answers (1 post a second per channel)"),
    Scenario("twenty", 200, 20, 5.0, 40.0, deliver_within=15.0,
             about="200 mentions over 20 channels, 5 s answers"),
)}
CUSTOM = Scenario("custom", 4, 2, 3.0, 30.0, about="ad-hoc")


# --------------------------------------------------------------------------------------
# The model's script and what counts as answer text
# --------------------------------------------------------------------------------------


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 5}


def _reasoning(k: int) -> str:
    return REASONING_STEP.format(k=k)


ANSWER_WORDS = frozenset(words(ANSWER_TEXT) - words(_reasoning(1)) - words(QUESTION) - UI_WORDS)


def answer_parts(groups: int) -> list[str]:
    """The answer cut into about ``groups`` consecutive word groups, each holding at least
    one ANSWER_WORDS word (joined they give ANSWER_TEXT exactly)."""
    tokens = re.findall(r"\S+\s*", ANSWER_TEXT)
    size = max(1, math.ceil(len(tokens) / max(1, groups)))
    parts: list[str] = []
    current = ""
    for n, token in enumerate(tokens):
        current += token
        full = len(re.findall(r"\S+", current)) >= size
        if (full and words(current) & ANSWER_WORDS) or n == len(tokens) - 1:
            parts.append(current)
            current = ""
    if len(parts) > 1 and not words(parts[-1]) & ANSWER_WORDS:  # a marker-less tail joins its neighbour
        parts[-2:] = [parts[-2] + parts[-1]]
    return parts


def model_script(seconds: float) -> Stream:
    """QwQ-style: reasoning inside ``<think>...</think>``, then the answer in word groups, all
    parts spread evenly over ``seconds`` (the fake sleeps ``chunk_delay`` before every part
    but the first and before the finish chunk: n parts take n * chunk_delay)."""
    total = max(8, round(seconds / CHUNK_EVERY))
    answer = answer_parts(max(2, round(total * ANSWER_SHARE)))
    steps = max(1, total - len(answer) - 2)
    parts = ["<think>\n", *(_reasoning(k) for k in range(1, steps + 1)), "\n</think>\n\n", *answer]
    return stream(parts, chunk_delay=seconds / len(parts))


def strings_under(value: Any, key: str = "text") -> Iterable[str]:
    """Every string held under ``key`` anywhere in a block structure."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key and isinstance(v, str):
                yield v
            else:
                yield from strings_under(v, key)
    elif isinstance(value, list):
        for item in value:
            yield from strings_under(item, key)


def visible_text(method: str, params: dict[str, Any]) -> str:
    """What a call puts in front of the user: stream text, or a message's text and blocks;
    never attachments (the reasoning)."""
    if method.startswith("chat.") and method.endswith("Stream"):
        chunks = params.get("chunks")
        extra = [str(c.get("text") or "") for c in chunks if isinstance(c, dict)] if isinstance(
            chunks, list) else []
        return " ".join([str(params.get("markdown_text") or ""), *extra])
    return " ".join([str(params.get("text") or ""), *strings_under(params.get("blocks"))])


def shows_answer_words(method: str, params: dict[str, Any]) -> bool:
    return method in WORD_CARRIERS and bool(words(visible_text(method, params)) & ANSWER_WORDS)


def final_shape(method: str, params: dict[str, Any]) -> str | None:
    """``"markdown"`` or ``"section"`` (the block type whose text holds the final sentence)
    when the call is an answer's final message; None otherwise."""
    blocks = params.get("blocks")
    if method not in FINAL_CARRIERS or not isinstance(blocks, list):
        return None
    for block in blocks:
        if isinstance(block, dict) and any(FINAL_SENTENCE in s for s in strings_under(block)):
            return str(block.get("type"))
    return None


def has_feedback(params: dict[str, Any]) -> bool:
    blocks = params.get("blocks")
    return isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") in ("context_actions", "actions") for b in blocks)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(body: str, ts: int | None = None) -> dict[str, str]:
    """Slack's request signature: ``v0=HMAC_SHA256(secret, "v0:{ts}:{body}")``
    (https://docs.slack.dev/authentication/verifying-requests-from-slack)."""
    ts = int(time.time()) if ts is None else ts
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the ceil(p/100 * n)-th smallest value (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float | None], scale: float = 1.0, digits: int = 2) -> dict[str, Any]:
    """p50 / p99 / max over every sample; a None sample (the event never came) ranks as
    infinitely late, and a percentile landing on one is None ("never")."""
    ranked = [math.inf if v is None else v for v in values]

    def r(v: float | None) -> float | None:
        return None if v is None or math.isinf(v) else round(v * scale, digits) + 0.0  # no "-0"

    return {"n": len(values), "missing": sum(1 for v in values if v is None),
            "p50": r(percentile(ranked, 50)), "p99": r(percentile(ranked, 99)),
            "max": r(max(ranked) if ranked else None)}


def rnd(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def proc_status(pid: int) -> dict[str, int]:
    """kB figures (VmHWM, VmRSS) from /proc/PID/status; empty when the process is gone."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(rest.split()[0])
    return out


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc/PID/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "; fields[0] is field 3
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime (14), stime (15)


# --------------------------------------------------------------------------------------
# The fakes, recording what the bench needs besides their own logs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """A call Slack accepted, and where its message is."""

    params_id: int  # id() of the Call's params (the same dict the handler got)
    method: str
    channel: str | None
    ts: str | None
    thread_ts: str | None


class BenchSlack(FakeSlack):
    """FakeSlack that also records which calls it accepted (its handler returned; no 429,
    no error), with the channel / ts / thread the response named. FakeSlack's ``Call`` does
    not say how a call was answered, so every handler of its dispatch table is wrapped; the
    handler gets the very ``params`` dict its ``Call`` holds, which pairs the two."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.accepted: list[Accepted] = []
        self._dispatch = {m: self._recording(m, h) for m, h in self._dispatch.items()}

    def _recording(self, method: str, handler: Callable[[dict[str, Any]], dict[str, Any]]
                   ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def run(params: dict[str, Any]) -> dict[str, Any]:
            result = handler(params)  # raises SlackApiFault for an error answer
            message = result.get("message")
            thread = message.get("thread_ts") if isinstance(message, dict) else None
            channel = result.get("channel") or params.get("channel_id") or params.get("channel")
            self.accepted.append(Accepted(
                id(params), method, None if channel is None else str(channel),
                None if result.get("ts") is None else str(result["ts"]),
                str(thread or params.get("thread_ts") or "") or None))
            return result
        return run


@dataclass(frozen=True)
class ModelStream:
    question: int | None  # the mention's index, read from the prompt
    began: float
    ended: float  # monotonic time the fake wrote the stream's last byte


class TimedModel(FakeModelServer):
    """FakeModelServer that also records when each streamed completion began and ended."""

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[ModelStream] = []

    async def _stream_response(self, request: web.Request, req: dict[str, Any],
                               script: Stream) -> web.StreamResponse:
        began = time.monotonic()
        response = await super()._stream_response(request, req, script)
        found = re.findall(r"question (\d+):", json.dumps(req.get("messages")))
        self.streams.append(ModelStream(int(found[-1]) if found else None, began, time.monotonic()))
        return response


# --------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    scenario: Scenario
    limits: bool
    inject_429: float = 0.0
    ramp: float = 1.0
    seed: int = 0
    max_concurrent: int = 256

    @property
    def label(self) -> str:
        return f"{self.scenario.name}, limits {'on' if self.limits else 'off'}"


@dataclass
class Mention:
    index: int
    channel: str
    user: str
    ts: str
    body: str
    sent: float = math.nan
    acked: float | None = None
    status: int | None = None
    error: str | None = None
    # the first accepted call of each kind (see the module docstring)
    life: Call | None = None
    life_kind: str | None = None  # "status" or "post"
    words: Call | None = None
    final: Call | None = None
    final_shape: str | None = None
    final_feedback: bool = False
    stream_end: float | None = None


class Timeline:
    """Matches the accepted calls to mentions, incrementally (polled while the run goes on)."""

    def __init__(self, slack: BenchSlack, mentions: list[Mention]) -> None:
        self.slack = slack
        self.by_thread = {(m.channel, m.ts): m for m in mentions}
        self.thread_of: dict[tuple[str, str], tuple[str, str]] = {}  # bot message -> thread
        self.calls: dict[int, Call] = {}
        self._calls_seen = 0
        self._accepted_seen = 0
        self.finals = 0

    def poll(self) -> None:
        # accepted first: every call it names was recorded before it was accepted
        accepted = self.slack.accepted[self._accepted_seen:]
        calls = self.slack.calls[self._calls_seen:]
        self._accepted_seen += len(accepted)
        self._calls_seen += len(calls)
        self.calls.update((id(c.params), c) for c in calls)
        for record in accepted:
            call = self.calls.get(record.params_id)
            if call is not None:
                self._take(call, record)

    def _take(self, call: Call, record: Accepted) -> None:
        method, channel = record.method, record.channel
        if channel is None:
            return
        thread = (channel, record.thread_ts) if record.thread_ts else None
        if record.ts is not None:
            if method in POSTS and thread is not None:
                self.thread_of[(channel, record.ts)] = thread
            thread = thread or self.thread_of.get((channel, record.ts))
        m = self.by_thread.get(thread) if thread is not None else None
        if m is None:
            return
        if m.life is None and ((method == SET_STATUS and call.params.get("status")) or method in POSTS):
            m.life, m.life_kind = call, "status" if method == SET_STATUS else "post"
        if m.words is None and shows_answer_words(method, call.params):
            m.words = call
        shape = final_shape(method, call.params) if m.final is None else None
        if shape is not None:
            m.final, m.final_shape, m.final_feedback = call, shape, has_feedback(call.params)
            self.finals += 1


@dataclass
class Outcome:
    """What a run left behind besides the fakes' records."""

    started: float = math.nan  # first POST sent
    deadline: float = math.nan  # started + timeout: finals after it do not count
    wait_end: float = math.nan  # when the bench stopped waiting (all final, or the deadline)
    floor: list[float] = field(default_factory=list)  # N x GET /healthz latencies
    healthy: bool = False
    timed_out: bool = False
    rss_kb: dict[str, int] = field(default_factory=dict)
    bot_cpu_s: float | None = None
    bot_exit: int | None = None
    problems: list[str] = field(default_factory=list)


def bot_env(cfg: RunConfig, slack: FakeSlack, model: FakeModelServer, db: Path) -> dict[str, str]:
    """The bot's own defaults (QWQBOT_UPDATE_BUDGET included) but for where things are,
    QWQBOT_MAX_CONCURRENT (model requests at once; the fake model has no capacity limit)
    and a short shutdown grace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    env.update({
        # an inherited PYTHONPATH goes first: a bot from another checkout can be measured
        "PYTHONPATH": os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), str(ROOT)) if p),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "AIML_API_KEY": "test-key",
        "AIML_API_BASE_URL": model.base_url,
        "QWQBOT_DB": str(db),
        "QWQBOT_MAX_CONCURRENT": str(cfg.max_concurrent),
        "QWQBOT_LOG_LEVEL": "WARNING",
        "QWQBOT_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE),
    })
    return env


def make_workspace(cfg: RunConfig) -> tuple[BenchSlack, TimedModel, list[Mention]]:
    slack = BenchSlack(bot_token=BOT_TOKEN, bot_user_id=BOT_USER, rate_limits=cfg.limits)
    model = TimedModel()
    model.default = model_script(cfg.scenario.model_seconds)
    users = [f"U{i}" for i in range(1, USERS + 1)]
    for u in users:
        slack.add_user(u, name=f"user{u[1:]}", real_name=f"User {u[1:]}", display_name=f"User{u[1:]}")
    for c in range(1, cfg.scenario.channels + 1):
        slack.add_channel(f"C{c:04d}", name=f"bench-{c}", members=set(users))
    mentions = []
    for i in range(cfg.scenario.answers):
        channel = f"C{i % cfg.scenario.channels + 1:04d}"
        user = users[i % USERS]
        text = QUESTION.format(bot=BOT_USER, i=i)
        ts = slack.add_message(channel, user=user, text=text)
        body = json.dumps({
            "token": "legacy", "team_id": slack.team_id, "api_app_id": slack.app_id,
            "type": "event_callback", "event_id": f"EvBench{i:06d}", "event_time": int(time.time()),
            "event": {"type": "app_mention", "channel": channel, "user": user, "text": text,
                      "ts": ts, "event_ts": ts},
        })
        mentions.append(Mention(i, channel, user, ts, body))
    return slack, model, mentions


CLIENT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


async def post_mention(session: aiohttp.ClientSession, url: str, m: Mention) -> None:
    headers = {"Content-Type": "application/json", **sign(m.body)}
    m.sent = time.monotonic()
    try:
        async with session.post(url, data=m.body, headers=headers) as response:
            await response.read()
            m.status = response.status
    except CLIENT_ERRORS as exc:
        m.error = type(exc).__name__
        return
    m.acked = time.monotonic()


def new_session(concurrency: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 16),
                                 timeout=aiohttp.ClientTimeout(total=30.0))


async def http_floor(url: str, n: int) -> list[float]:
    """Latencies of n simultaneous GET /healthz from a fresh client: what the client, the
    loopback and the bot's HTTP server alone cost at this concurrency."""
    async with new_session(n) as session:
        async def one() -> float | None:
            sent = time.monotonic()
            try:
                async with session.get(url) as response:
                    await response.read()
                    ok = response.status == 200
            except CLIENT_ERRORS:
                return None
            return time.monotonic() - sent if ok else None

        results = await asyncio.gather(*(one() for _ in range(n)))
    return [r for r in results if r is not None]


async def wait_healthy(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with contextlib.suppress(*CLIENT_ERRORS):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return True
            await asyncio.sleep(0.1)
    return False


async def drive(cfg: RunConfig, slack: BenchSlack, proc: subprocess.Popen[bytes], port: int,
                timeline: Timeline, mentions: list[Mention], outcome: Outcome) -> None:
    outcome.healthy = await wait_healthy(proc, port, time.monotonic() + 30)
    if not outcome.healthy:
        outcome.problems.append("the bot did not become healthy")
        return
    if cfg.inject_429 > 0:
        slack.rate_limit_share(INJECTED_METHODS, cfg.inject_429, retry_after=1, seed=cfg.seed)
    outcome.floor = await http_floor(f"http://127.0.0.1:{port}/healthz", len(mentions))
    await asyncio.sleep(0.5)
    url = f"http://127.0.0.1:{port}/slack/events"
    outcome.started = time.monotonic()
    outcome.deadline = outcome.started + cfg.scenario.timeout
    async with new_session(len(mentions)) as session:
        async def arrive(i: int, m: Mention) -> None:
            await asyncio.sleep(cfg.ramp * i / len(mentions))
            await post_mention(session, url, m)

        await asyncio.gather(*(arrive(i, m) for i, m in enumerate(mentions)))
    while True:
        timeline.poll()
        if timeline.finals == len(mentions):
            break
        if proc.poll() is not None:
            outcome.problems.append(f"the bot exited early with status {proc.returncode}")
            break
        if time.monotonic() >= outcome.deadline:
            outcome.timed_out = True
            break
        await asyncio.sleep(0.1)
    outcome.wait_end = time.monotonic()


def stop_bot(proc: subprocess.Popen[bytes], outcome: Outcome) -> None:
    if proc.poll() is None:
        outcome.rss_kb = proc_status(proc.pid)
        outcome.bot_cpu_s = proc_cpu_seconds(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            outcome.problems.append(f"the bot did not stop within {STOP_WAIT:.0f} s of SIGTERM; killed")
            proc.kill()
            proc.wait(timeout=10)
            return
    outcome.bot_exit = proc.returncode


def run_once(cfg: RunConfig, watchdog: Watchdog) -> dict[str, Any]:
    t0 = time.monotonic()
    outcome = Outcome()
    slack, model, mentions = make_workspace(cfg)
    timeline = Timeline(slack, mentions)
    with tempfile.TemporaryDirectory(prefix="qwqbot-bench-") as tmp:
        log_path = Path(tmp) / "bot.log"
        with slack, model, open(log_path, "wb") as log:
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "qwqbot", "run", "--mode", "http", "--port", str(port)],
                env=bot_env(cfg, slack, model, Path(tmp) / "bench.db"), cwd=tmp,
                stdout=log, stderr=subprocess.STDOUT)
            watchdog.track(proc)
            try:
                asyncio.run(drive(cfg, slack, proc, port, timeline, mentions, outcome))
            finally:
                stop_bot(proc, outcome)
                watchdog.untrack(proc)
            timeline.poll()
            figures = analyse(cfg, slack, model, timeline, mentions, outcome)
        log_lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    figures["bot_log_lines"] = len(log_lines)
    figures["bot_log_tail"] = log_lines[-5:]
    figures["wall_s"] = round(time.monotonic() - t0, 2)
    return figures


# --------------------------------------------------------------------------------------
# Figures and targets
# --------------------------------------------------------------------------------------


def since(m: Mention, call: Call | None, deadline: float) -> float | None:
    return call.at - m.sent if call is not None and call.at <= deadline else None


def analyse(cfg: RunConfig, slack: BenchSlack, model: TimedModel, timeline: Timeline,
            mentions: list[Mention], outcome: Outcome) -> dict[str, Any]:
    sc = cfg.scenario
    deadline = outcome.deadline if not math.isnan(outcome.deadline) else -math.inf
    sent = [m for m in mentions if not math.isnan(m.sent)]
    for s in model.streams:
        if s.question is not None and 0 <= s.question < len(mentions):
            mentions[s.question].stream_end = s.ended
    final = [since(m, m.final, deadline) for m in mentions]
    delivered = [m for m, f in zip(mentions, final, strict=True) if f is not None]
    lost = len(mentions) - len(delivered)
    last = (max(m.final.at for m in delivered if m.final) - outcome.started) if delivered else None
    life = [since(m, m.life, deadline) for m in mentions]
    first_words = [since(m, m.words, deadline) for m in mentions]
    lead = [m.stream_end - m.words.at for m in mentions if m.words and m.stream_end is not None]

    # every call between the first POST and the end of the wait, and the 429s among them
    window = [c for c in list(slack.calls) if outcome.started <= c.at <= outcome.wait_end]
    in_window = {id(c) for c in window}
    accepted_ids = {a.params_id for a in slack.accepted}
    limited = [lc.call for lc in list(slack.limited_calls) if id(lc.call) in in_window]
    limited_ids = {id(c) for c in limited}
    injected = [c for c in list(slack.rate_limited_calls) if id(c) in in_window and id(c) not in limited_ids]
    rules = Counter(lc.rule for lc in list(slack.limited_calls) if id(lc.call) in in_window)
    by_method: dict[str, dict[str, Any]] = {}
    answers = max(1, len(mentions))
    for method in sorted({c.method for c in window}):
        mine = [c for c in window if c.method == method]
        by_method[method] = {
            "calls": len(mine), "accepted": sum(1 for c in mine if id(c.params) in accepted_ids),
            "limited": sum(1 for c in mine if id(c) in limited_ids),
            "injected": sum(1 for c in injected if c.method == method),
            "per_answer": round(len(mine) / answers, 2)}
    streams = by_method.get("chat.startStream", {}).get("accepted", 0)
    rss_mb = outcome.rss_kb["VmHWM"] * 1024 / MB if "VmHWM" in outcome.rss_kb else None
    acks = [m.acked - m.sent for m in mentions if m.acked is not None and m.status == 200]
    figures: dict[str, Any] = {
        "scenario": sc.name,
        "limits": "on" if cfg.limits else "off",
        "inject_429": cfg.inject_429,
        "config": {"answers": sc.answers, "channels": sc.channels, "model_seconds": sc.model_seconds,
                   "timeout_s": sc.timeout, "ramp_s": cfg.ramp, "seed": cfg.seed,
                   "max_concurrent": cfg.max_concurrent, "cpus": os.cpu_count(), "about": sc.about},
        "percentile_method": "nearest-rank",
        "answers": len(mentions),
        "mentions_sent": len(sent),
        "delivered": len(delivered),
        "lost": lost,
        "timed_out": outcome.timed_out,
        "final_s": summary(final),
        "total_s": rnd(last) if lost == 0 else None,  # every user has the answer: never, if one is lost
        "last_final_s": rnd(last),  # first POST -> the last answer that did arrive
        "sign_of_life_s": {**summary(life),
                           "by": dict(Counter(m.life_kind for m in mentions
                                              if m.life_kind and since(m, m.life, deadline) is not None))},
        "first_words_s": summary(first_words),
        "first_words_vs_model_end": {
            "model_end_s": summary([m.stream_end - m.sent if m.stream_end is not None else None
                                    for m in mentions]),
            "before": sum(1 for v in lead if v > 0), "after": sum(1 for v in lead if v <= 0),
            "lead_s": summary(lead)},
        "final_messages": {"markdown": sum(1 for m in delivered if m.final_shape == "markdown"),
                           "section": sum(1 for m in delivered if m.final_shape == "section"),
                           "with_feedback": sum(1 for m in delivered if m.final_feedback)},
        "rate_limited": {"limited": len(limited), "injected": len(injected), "by_rule": dict(rules),
                         "by_method": {k: {"limited": v["limited"], "injected": v["injected"]}
                                       for k, v in by_method.items() if v["limited"] or v["injected"]}},
        "streams_started": streams,
        "calls": by_method,
        "calls_per_answer": round(len(window) / answers, 2),
        "model_requests": len(model.requests),
        "ack_ms": {**summary(acks, 1000, 1), "errors": sum(1 for m in mentions if m.status != 200)},
        "ack_floor_ms": summary(outcome.floor, 1000, 1),
        "peak_rss_mb": rnd(rss_mb, 1),
        "bot_cpu_s": rnd(outcome.bot_cpu_s, 1),
        "bot_exit_code": outcome.bot_exit,
        "problems": list(outcome.problems),
    }
    figures["targets"] = targets(sc, figures)
    figures["targets_met"] = all(t["ok"] for t in figures["targets"])
    figures["ran_ok"] = outcome.healthy and outcome.bot_exit == 0 and not outcome.problems
    return figures


def targets(sc: Scenario, f: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, value: str, ok: bool) -> None:
        out.append({"name": name, "value": value, "ok": bool(ok)})

    add("no answer lost", f"{f['lost']} lost of {f['answers']}", f["lost"] == 0)
    if sc.deliver_within is not None:
        total = f["total_s"]
        add(f"all delivered within {sc.deliver_within:g} s", total_text(f),
            total is not None and total <= sc.deliver_within)
    p99 = f["sign_of_life_s"]["p99"]
    add(f"first sign of life p99 < {SIGN_OF_LIFE_P99_S:g} s", "never" if p99 is None else f"{p99} s",
        p99 is not None and p99 < SIGN_OF_LIFE_P99_S)
    if sc.words_before_end:
        vs = f["first_words_vs_model_end"]
        known = vs["before"] + vs["after"]
        add("first words before the model stream ended",
            f"{vs['before']} of {f['answers']} (lead p50 {vs['lead_s']['p50']} s)" if known
            else "no first words seen", vs["before"] == f["answers"])
    return out


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def total_text(f: dict[str, Any]) -> str:
    if f["total_s"] is not None:
        return f"{f['total_s']:g} s"
    if f["last_final_s"] is None:
        return "never"
    return f"never ({f['lost']} lost; the other {f['delivered']} by {f['last_final_s']:g} s)"


def three(s: dict[str, Any], unit: str = "s") -> str:
    def one(v: float | None) -> str:
        return "never" if v is None else f"{v:g}"

    if s["n"] and s["missing"] == s["n"]:
        return f"never ({s['n']} of {s['n']})"
    text = f"{one(s['p50'])} / {one(s['p99'])} / {one(s['max'])} {unit}"
    return text + (f" ({s['missing']} never)" if s["missing"] else "")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def run_table(f: dict[str, Any]) -> str:
    c = f["config"]
    injected = f", injected 429 share {f['inject_429']:g}" if f["inject_429"] else ""
    head = (f"### {f['scenario']}, Slack's limits {f['limits']}{injected}\n\n"
            f"{c['answers']} mentions over {c['channels']} channel(s), {c['model_seconds']:g} s model "
            "streams, "
            f"timeout {c['timeout_s']:g} s, ramp {c['ramp_s']:g} s, max concurrent {c['max_concurrent']}, "
            f"{c['cpus']} CPUs; run took {f.get('wall_s', '?')} s. Percentiles nearest-rank, from each "
            "mention's POST.\n")
    rl = f["rate_limited"]
    by = ", ".join(f"{k} {v['limited']}+{v['injected']}" for k, v in rl["by_method"].items()) or "none"
    vs = f["first_words_vs_model_end"]
    fm = f["final_messages"]
    calls = ", ".join(f"{k} {v['per_answer']:g}" for k, v in f["calls"].items())
    life_by = ", ".join(f"{k} {v}" for k, v in sorted(f["sign_of_life_s"]["by"].items())) or "none"
    rows: list[tuple[str, str]] = [
        ("answers delivered / lost", f"{f['delivered']} / {f['lost']} of {f['answers']}"),
        ("final answer p50 / p99 / max", three(f["final_s"])),
        ("total (first POST -> last final)", total_text(f)),
        ("first sign of life p50 / p99 / max", three(f["sign_of_life_s"]) + f" (by {life_by})"),
        ("first answer words p50 / p99 / max", three(f["first_words_s"])),
        ("model stream end p50 / p99 / max", three(vs["model_end_s"])),
        ("first words before the model ended", f"{vs['before']} (after: {vs['after']}); lead "
                                               f"{three(vs['lead_s'])}"),
        ("final messages: markdown / section / with feedback",
         f"{fm['markdown']} / {fm['section']} / {fm['with_feedback']}"),
        ("429s received: limit-driven / injected", f"{rl['limited']} / {rl['injected']} ({by})"),
        ("streams started", str(f["streams_started"])),
        ("Web API calls per answer", f"{f['calls_per_answer']:g} ({calls})"),
        ("ack latency p50 / p99 / max", three(f["ack_ms"], "ms")
         + (f", {f['ack_ms']['errors']} not 200" if f["ack_ms"]["errors"] else "")),
        (f"ack floor ({f['ack_floor_ms']['n']} x GET /healthz)", three(f["ack_floor_ms"], "ms")),
        ("bot peak RSS / CPU", f"{f['peak_rss_mb']} MB / {f['bot_cpu_s']} s"),
        ("bot exit status after SIGTERM", str(f["bot_exit_code"])),
    ]
    table = markdown_table(("figure", "value"), rows)
    goals = markdown_table(("target", "value", "result"),
                           ((t["name"], t["value"], "PASS" if t["ok"] else "MISS") for t in f["targets"]))
    text = f"{head}\n{table}\n\n{goals}"
    if f["problems"]:
        text += "\n\nproblems: " + "; ".join(f["problems"])
    if f.get("bot_log_lines"):
        text += f"\n\nbot log: {f['bot_log_lines']} lines at WARNING or above; last ones:\n"
        text += "\n".join(f"    {line[:160]}" for line in f["bot_log_tail"])
    return text


def summary_table(runs: Sequence[dict[str, Any]]) -> str:
    def v(x: float | None) -> str:
        return "never" if x is None else f"{x:g}"

    rows = []
    for f in runs:
        rl = f["rate_limited"]
        met = sum(1 for t in f["targets"] if t["ok"])
        rows.append((
            f["scenario"], f["limits"] + (f" +429 {f['inject_429']:g}" if f["inject_429"] else ""),
            f["answers"], f["lost"],
            f"{v(f['final_s']['p50'])} / {v(f['final_s']['p99'])} / {v(f['final_s']['max'])}",
            v(f["total_s"]), v(f["sign_of_life_s"]["p99"]), v(f["first_words_s"]["p50"]),
            f"{rl['limited']} / {rl['injected']}", f["streams_started"], f"{f['calls_per_answer']:g}",
            v(f["peak_rss_mb"]), f"{met}/{len(f['targets'])}" + ("" if f["targets_met"] else " MISS")))
    return markdown_table(
        ("scenario", "limits", "answers", "lost", "final p50 / p99 / max (s)", "total (s)",
         "sign of life p99 (s)", "first words p50 (s)", "429s limit / injected", "streams",
         "calls / answer", "peak RSS (MB)", "targets"), rows)


def ratio_table(runs: Sequence[dict[str, Any]]) -> str | None:
    """Limits on next to off for each scenario run both ways: on / off = ratio."""
    figures: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("final p50", ("final_s", "p50")), ("final p99", ("final_s", "p99")), ("total", ("total_s",)),
        ("sign of life p99", ("sign_of_life_s", "p99")), ("first words p50", ("first_words_s", "p50")))

    def get(f: dict[str, Any], path: tuple[str, ...]) -> float | None:
        value: Any = f
        for key in path:
            value = value[key]
        return None if value is None else float(value)

    pairs = []
    for on in runs:
        off = next((r for r in runs if r["scenario"] == on["scenario"] and r["limits"] == "off"), None)
        if on["limits"] == "on" and off is not None:
            pairs.append((on, off))
    if not pairs:
        return None

    def ratio(a: float | None, b: float | None) -> str:
        if a is None or b is None:
            return f"{'never' if a is None else f'{a:g}'} / {'never' if b is None else f'{b:g}'}"
        return f"{a:g} / {b:g} = {a / b:.2f}x" if b > 0 else f"{a:g} / {b:g}"

    rows = [(on["scenario"], f"{on['lost']} / {off['lost']}",
             *(ratio(get(on, path), get(off, path)) for _, path in figures)) for on, off in pairs]
    return markdown_table(("scenario", "lost on / off", *(f"{n} on / off (s)" for n, _ in figures)), rows)


# --------------------------------------------------------------------------------------
# Safety net and entry point
# --------------------------------------------------------------------------------------


class Watchdog:
    """Last resort when something hangs past every bounded wait: kill the bots this run
    started (by pid) and exit with status 3."""

    def __init__(self, seconds: float) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._seconds = seconds

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def track(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)

    def untrack(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def _fire(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.kill()
        err: IO[str] = sys.stderr
        err.write(f"bench/load.py: still running after {self._seconds:.0f} s; gave up\n")
        err.flush()
        os._exit(3)


RUN_OVERHEAD_S = 60.0  # per run, on top of its timeout, before the watchdog fires


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/load.py", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--scenario", choices=(*SCENARIOS, "custom", "all"), default=None,
                   help="all (default) runs single, six, one-channel and twenty; custom (the default "
                   "when --answers/--model-seconds/--channels are given alone) is an ad-hoc run")
    p.add_argument("--limits", choices=("on", "off", "both"), default="on",
                   help="Slack's rate limits in the fake (default on); both: each run twice, with ratios")
    p.add_argument("--answers", type=int, help="mentions (overrides the scenario's)")
    p.add_argument("--model-seconds", type=float, help="length of each model stream (overrides)")
    p.add_argument("--channels", type=int, help="channels the mentions are spread over (overrides)")
    p.add_argument("--inject-429", type=float, default=0.0, metavar="SHARE",
                   help="also answer HTTP 429 (Retry-After 1) to this share of "
                   + ", ".join(INJECTED_METHODS))
    p.add_argument("--timeout", type=float, help="seconds after the first POST; answers not final "
                   "by then are lost (default: the scenario's)")
    p.add_argument("--ramp", type=float, default=1.0,
                   help="seconds over which the mentions arrive (default 1; 0 = one instant)")
    p.add_argument("--seed", type=int, default=0, help="seed of the injected 429 draws")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    overrides = (args.answers, args.model_seconds, args.channels)
    if args.scenario is None:
        args.scenario = "custom" if any(v is not None for v in overrides) else "all"
    if args.scenario == "all" and any(v is not None for v in overrides):
        p.error("--answers, --model-seconds and --channels change one scenario, not all")
    if any(v is not None and v <= 0 for v in (*overrides, args.timeout)) or args.ramp < 0:
        p.error("--answers, --channels, --model-seconds and --timeout must be positive, --ramp >= 0")
    if not 0 <= args.inject_429 <= 1:
        p.error("--inject-429 must be between 0 and 1")
    return args


def plan(args: argparse.Namespace) -> list[RunConfig]:
    if args.scenario == "all":
        chosen = list(SCENARIOS.values())
    else:
        base = SCENARIOS.get(args.scenario, CUSTOM)
        changes: dict[str, Any] = {k: v for k, v in (("answers", args.answers), ("channels", args.channels),
                                                     ("model_seconds", args.model_seconds)) if v is not None}
        if changes and base is not CUSTOM:  # the scenario's targets stay; the name says it changed
            changes["name"] = base.name + "*"
        chosen = [replace(base, **changes)]
    if args.timeout is not None:
        chosen = [replace(s, timeout=args.timeout) for s in chosen]
    limits = {"on": (True,), "off": (False,), "both": (True, False)}[args.limits]
    return [RunConfig(s, on, inject_429=args.inject_429, ramp=args.ramp, seed=args.seed)
            for s in chosen for on in limits]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runs = plan(args)
    watchdog = Watchdog(sum(r.scenario.timeout + RUN_OVERHEAD_S for r in runs))
    watchdog.start()
    results = []
    t0 = time.monotonic()
    try:
        for n, cfg in enumerate(runs):
            print(f"running {cfg.label} ...", file=sys.stderr, flush=True)
            results.append(run_once(cfg, watchdog))
            print(("\n" if n else "") + run_table(results[-1]) + "\n", flush=True)
    finally:
        watchdog.cancel()
    print("### Summary\n\n" + summary_table(results), flush=True)
    ratios = ratio_table(results)
    if ratios:
        print("\n### Slack's limits on vs off\n\n" + ratios, flush=True)
    report = {"runs": results, "wall_s": round(time.monotonic() - t0, 1),
              "ran_ok": all(r["ran_ok"] for r in results),
              "targets_met": all(r["targets_met"] for r in results)}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ran_ok"] and (report["targets_met"] or not args.strict) else 1


if __name__ == "__main__":
    sys.exit(main())
