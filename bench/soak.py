"""Soak benchmark: the real bot, for minutes, under mixed traffic and a schedule of faults.

    .venv/bin/python bench/soak.py [--minutes M] [--quick] [--rate N] [--model-seconds S]
        [--drain S] [--no-faults] [--seed N] [--json FILE] [--strict]

Why: bench/load.py measures one burst on a healthy workspace; what wears a bot down is hours
of ordinary traffic while things keep going wrong now and then - Slack refusing posts for a
few seconds, 429 bursts, a model server that rate-limits, never stops streaming or answers
an error page of megabytes, a database another process holds locked. This runs all of that
on a schedule and says whether every question still reached its asker, how memory grew and
how long the event loop was ever kept from running.

How: everything runs on 127.0.0.1, in this process. The fake Slack (``tests/fakes/slack_api.py``,
Slack's rate limits on) and the fake model server run in their own threads, as in
bench/load.py, whose helpers this reuses. The bot is the real ``qwqbot.slack.server.Bot`` in
HTTP mode on this process's main event loop (uvloop where installed, as ``qwqbot run``), with
its own defaults; a second thread sends it signed requests at ``--rate`` questions a minute
(default 30), each one of: a mention in a channel, a mention inside a thread people started, a
follow-up in a thread the bot answered (no mention), a DM, or ``/qwq QUESTION``. The model
streams a ``<think>`` block and an answer over ``--model-seconds`` (default 3) that ends with
"Soak answer N ends here." for question N, so an answer is told apart from every other.

Faults (``--no-faults`` for a baseline), every 100 s of the run from 10 s in (``--quick``: once):
chat.postMessage and chat.update answer HTTP 503 for 8 s; a 429 burst (4 on each of
chat.postMessage, chat.update and assistant.threads.setStatus, Retry-After 2); three model
429s; a model stream that never ends (``endless``); a model 500 with a 16 MB body
(``huge_error``); the bot's SQLite file write-locked for 5 s by a second connection
(``BEGIN IMMEDIATE``, held, rolled back).

Figures, per question, from when its request was sent (Slack's accepted calls, as the fake
recorded them):

* **answered**: a post or edit Slack accepted carries its "Soak answer N" sentence;
* **told an error**: otherwise, a message in its thread with a Retry button, a message only
  the asker sees (chat.postEphemeral), or for ``/qwq`` a post to its response_url;
* **lost**: neither, by the end of the traffic plus ``--drain`` seconds (default 90; the
  drain ends early once nothing is outstanding);
* **first visible sign**: the first of a thread status, a bot post in its thread (for
  ``/qwq``, the bot's post of the question), the answer or the error;
* **time to answer**: until the answered post or edit.

And for the run: peak RSS (VmHWM of this process: the bot *and* both fakes), the event loop's
worst stall (a task sleeps 10 ms in a loop on the bot's loop and records how late it wakes;
the fakes' threads share the GIL, so a few ms of it are theirs), with the fault that was
active then. Percentiles are nearest-rank. Exit status 0 when the run ran (the bot started
and stopped), 1 if not or, with ``--strict``, when a question was lost; 3 from the watchdog.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import re
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/soak.py`: bench/ and tests/ live there
    sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from qwqbot.cli import run_loop  # noqa: E402
from qwqbot.config import load_settings  # noqa: E402
from qwqbot.logs import log_handler  # noqa: E402
from qwqbot.slack.render import RETRY_ACTION_ID  # noqa: E402
from qwqbot.slack.server import Bot  # noqa: E402
from tests.fakes.model_server import Script, Stream, endless, error, huge_error  # noqa: E402
from tests.fakes.slack_api import Call  # noqa: E402

MB = 1_000_000
USERS = 12
CHANNELS = ("C0001", "C0002", "C0003")
KINDS = {"mention": 0.35, "thread_mention": 0.15, "follow_up": 0.2, "dm": 0.15, "command": 0.15}
TICK = 0.01  # the stall monitor's sleep
STALL_LISTED = 0.1  # stalls at least this long are kept (with when they happened)
FAULT_EVERY = 100.0
QUICK_SECONDS = 20.0
ANSWER_MARK = re.compile(r"Soak answer (\d+) ends here\.")
QUESTION_MARK = re.compile(r"question (\d+):")
SIGNS = frozenset({"chat.postMessage", "chat.startStream"})
EPHEMERAL = "chat.postEphemeral"


def question_text(i: int, kind: str) -> str:
    body = f"question {i}: what is six times seven?"
    if kind == "follow_up":
        return f"question {i}: and that doubled?"
    return body if kind in ("dm", "command") else f"<@{load.BOT_USER}> {body}"


# --------------------------------------------------------------------------------------
# The fakes, recording what the soak needs
# --------------------------------------------------------------------------------------


class SoakSlack(load.BenchSlack):
    """BenchSlack that also records when each response_url post came (``/qwq`` errors)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.response_posts: list[tuple[str, float]] = []  # (key, monotonic)

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        self.response_posts.append((request.match_info["key"], time.monotonic()))
        return await super()._handle_response_url(request)


class SoakModel(load.TimedModel):
    """The model's default script, with the answer of question N ending in its own sentence
    (N read from the prompt's last "question N:"); enqueued faults play as they are."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.default = load.model_script(seconds)

    async def _play(self, request: web.Request, req: dict[str, Any], script: Script) -> web.StreamResponse:
        if script is self.default and isinstance(script, Stream):
            found = QUESTION_MARK.findall(json.dumps(req.get("messages")))
            if found:
                script = replace(script, parts=(*script.parts, f" Soak answer {found[-1]} ends here."))
        return await super()._play(request, req, script)


# --------------------------------------------------------------------------------------
# What Slack showed, matched to the questions
# --------------------------------------------------------------------------------------


@dataclass
class Question:
    index: int
    kind: str
    channel: str
    user: str
    thread: tuple[str, str] | None  # (channel, thread ts); a command's is found once posted
    sent: float = math.nan
    key: str | None = None  # a command's response_url key
    status: int | None = None  # HTTP status of its (last) request
    sign: float | None = None
    answered: float | None = None
    told: float | None = None

    @property
    def resolved(self) -> bool:
        return self.answered is not None or self.told is not None


def retry_values(value: Any) -> bool:
    """Whether a block structure holds a Retry button."""
    if isinstance(value, dict):
        return value.get("action_id") == RETRY_ACTION_ID or any(
            retry_values(v) for v in value.values())
    return isinstance(value, list) and any(retry_values(v) for v in value)


class Tracker:
    """Reads the calls Slack accepted, incrementally, into per-thread events; a question's
    sign, answer and error are the first such events at or after it was sent."""

    def __init__(self, slack: SoakSlack) -> None:
        self.slack = slack
        self.calls: dict[int, Call] = {}
        self.thread_of: dict[tuple[str, str], tuple[str, str]] = {}
        self.signs: dict[tuple[str, str], list[float]] = {}
        self.retries: dict[tuple[str, str], list[float]] = {}
        self.answers: dict[int, float] = {}
        self.ephemerals: list[tuple[str, str, float]] = []  # (channel, user, at)
        self.parents: dict[int, tuple[str, str, float]] = {}  # command question -> its post
        self._seen = (0, 0)

    def poll(self) -> None:
        accepted_seen, calls_seen = self._seen
        accepted = list(self.slack.accepted[accepted_seen:])  # first: it names recorded calls
        calls = list(self.slack.calls[calls_seen:])
        self._seen = (accepted_seen + len(accepted), calls_seen + len(calls))
        self.calls.update((id(c.params), c) for c in calls)
        for record in accepted:
            call = self.calls.get(record.params_id)
            if call is not None and record.channel is not None:
                self._take(call, record)

    def _take(self, call: Call, record: load.Accepted) -> None:
        method, channel, params = record.method, str(record.channel), call.params
        if method == EPHEMERAL:
            self.ephemerals.append((channel, str(params.get("user")), call.at))
            return
        thread = (channel, record.thread_ts) if record.thread_ts else None
        if record.ts is not None:
            if method in SIGNS and thread is not None:
                self.thread_of[(channel, record.ts)] = thread
            thread = thread or self.thread_of.get((channel, record.ts))
        if method == "chat.postMessage" and thread is None and record.ts is not None:
            found = QUESTION_MARK.search(str(params.get("text") or ""))
            if found:  # the bot's post of a /qwq question: its thread is the answer's
                self.parents.setdefault(int(found[1]), (channel, record.ts, call.at))
            return
        if thread is None:
            return
        if (method == load.SET_STATUS and params.get("status")) or method in SIGNS:
            self.signs.setdefault(thread, []).append(call.at)
        if method in load.FINAL_CARRIERS:
            for text in load.strings_under(params.get("blocks")):
                for n in ANSWER_MARK.findall(text):
                    self.answers.setdefault(int(n), call.at)
            if retry_values(params.get("blocks")):
                self.retries.setdefault(thread, []).append(call.at)

    def resolve(self, q: Question) -> None:
        self.poll()
        if q.kind == "command" and q.thread is None and q.index in self.parents:
            channel, ts, at = self.parents[q.index]
            q.thread, q.sign = (channel, ts), at
        q.answered = self.answers.get(q.index)
        told = [at for ch, user, at in self.ephemerals
                if ch == q.channel and user == q.user and at >= q.sent]
        if q.thread is not None:
            told += [at for at in self.retries.get(q.thread, []) if at >= q.sent]
            if q.sign is None:
                q.sign = next((at for at in self.signs.get(q.thread, []) if at >= q.sent), None)
        if q.key is not None:
            told += [at for key, at in self.slack.response_posts if key == q.key]
        q.told = min(told) if told else None


# --------------------------------------------------------------------------------------
# Traffic and faults (their own thread and event loop, so the bot's loop is the bot's)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    seconds: float
    rate: float  # questions a minute
    model_seconds: float
    drain: float
    faults: bool
    seed: int
    quick: bool


@dataclass
class Fault:
    name: str
    at: float  # monotonic
    seconds: float = 0.0


@dataclass
class Run:
    """What the driver leaves behind."""

    questions: list[Question] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    started: float = math.nan
    traffic_end: float = math.nan
    drain_end: float = math.nan
    problems: list[str] = field(default_factory=list)


def hold_write_lock(db: Path, seconds: float) -> None:
    """What another process writing the bot's database does: take SQLite's write lock
    (https://www.sqlite.org/lang_transaction.html, BEGIN IMMEDIATE), hold it, roll back."""
    conn = sqlite3.connect(str(db), timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def fault_plan(plan: Plan) -> list[tuple[float, str]]:
    """(seconds into the run, fault) for the whole run: one round every FAULT_EVERY seconds
    from 10 s in, or one round from 1 s in for --quick; each round fits in 80 s."""
    if not plan.faults:
        return []
    rounds = [1.0] if plan.quick else [10.0 + k * FAULT_EVERY for k in range(
        max(1, math.ceil((plan.seconds - 10.0) / FAULT_EVERY)))]
    offsets = (0.0, 20.0, 30.0, 40.0, 50.0, 65.0)
    if plan.quick:
        offsets = (0.0, 9.0, 10.0, 11.0, 12.0, 13.0)
    names = ("slack_5xx", "slack_429", "model_429", "model_endless", "model_huge_error", "db_lock")
    return sorted((start + off, name) for start in rounds for off, name in zip(offsets, names, strict=True)
                  if start + off < plan.seconds)


class Driver:
    def __init__(self, plan: Plan, slack: SoakSlack, model: SoakModel, port: int, db: Path) -> None:
        self.plan = plan
        self.slack = slack
        self.model = model
        self.url = f"http://127.0.0.1:{port}/slack/events"
        self.db = db
        self.rng = random.Random(plan.seed)
        self.tracker = Tracker(slack)
        self.run = Run()
        self._events = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- faults ---------------------------------------------------------------------

    async def fault(self, name: str) -> None:
        record = Fault(name, time.monotonic())
        self.run.faults.append(record)
        if name == "slack_5xx":
            methods = ("chat.postMessage", "chat.update")
            for method in methods:
                self.slack.server_down(method, status=503)
            await asyncio.sleep(8.0)
            for method in methods:
                self.slack.server_up(method)
        elif name == "slack_429":
            for method in ("chat.postMessage", "chat.update", load.SET_STATUS):
                self.slack.rate_limit_next(method, count=4, retry_after=2)
        elif name == "model_429":
            self.model.enqueue(*[error(429, headers={"Retry-After": "1"})] * 3)
        elif name == "model_endless":
            self.model.enqueue(endless("x" * 64))
        elif name == "model_huge_error":
            self.model.enqueue(huge_error(500, 16 * MB))
        elif name == "db_lock":
            await asyncio.to_thread(hold_write_lock, self.db, 5.0)
        record.seconds = time.monotonic() - record.at

    # -- questions ------------------------------------------------------------------

    def event(self, event: dict[str, Any]) -> str:
        self._events += 1
        return json.dumps({
            "token": "legacy", "team_id": self.slack.team_id, "api_app_id": self.slack.app_id,
            "type": "event_callback", "event_id": f"EvSoak{self._events:07d}",
            "event_time": int(time.time()), "event": event})

    async def post(self, session: aiohttp.ClientSession, q: Question, body: str,
                   content_type: str = "application/json") -> None:
        try:
            async with session.post(self.url, data=body, headers={
                    "Content-Type": content_type, **load.sign(body)}) as response:
                await response.read()
                q.status = response.status
        except load.CLIENT_ERRORS as exc:
            self.run.problems.append(f"question {q.index}: {type(exc).__name__}")

    def kind(self) -> str:
        kind = self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        if kind == "follow_up" and not self.followable():
            return "mention"
        return kind

    def followable(self) -> list[Question]:
        """Questions answered in a thread where nothing is asked since: a person carries on."""
        latest: dict[tuple[str, str], Question] = {}
        for q in self.run.questions:
            if q.thread is not None:
                latest[q.thread] = q
        for q in latest.values():
            if q.answered is None:
                self.tracker.resolve(q)
        return [q for q in latest.values() if q.answered is not None and q.kind != "dm"]

    async def ask(self, session: aiohttp.ClientSession, i: int) -> None:
        kind = self.kind()
        user = f"U{self.rng.randrange(1, USERS + 1)}"
        channel = self.rng.choice(CHANNELS)
        text = question_text(i, kind)
        base: dict[str, Any] = {"type": "message", "user": user, "text": text}
        if kind == "follow_up":
            before = self.rng.choice(self.followable())
            assert before.thread is not None
            channel, user, thread_ts = before.channel, before.user, before.thread[1]
            base["user"] = user
        elif kind == "thread_mention":
            other = f"W{user[1:]}"  # someone else starts the thread
            thread_ts = self.slack.add_message(channel, user=other, text="Anyone around to help with a sum?")
        elif kind == "dm":
            channel, thread_ts = f"D{user[1:]}", ""
        else:
            thread_ts = ""
        q = Question(i, kind, channel, user, None)
        self.run.questions.append(q)
        if kind == "command":
            q.key = f"soak{i}"
            body = urlencode({
                "token": "legacy", "team_id": self.slack.team_id, "team_domain": "soak",
                "channel_id": channel, "channel_name": f"soak-{channel}", "user_id": user,
                "user_name": user.lower(), "command": "/qwq", "text": text, "api_app_id": "A1",
                "is_enterprise_install": "false", "response_url": self.slack.response_url(q.key),
                "trigger_id": f"trig.soak{i}"})
            q.sent = time.monotonic()
            await self.post(session, q, body, "application/x-www-form-urlencoded")
            return
        ts = self.slack.add_message(channel, user=user, text=text, thread_ts=thread_ts or None)
        q.thread = (channel, thread_ts or ts)
        event = {**base, "channel": channel, "ts": ts, "event_ts": ts,
                 "channel_type": "im" if kind == "dm" else "channel"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        q.sent = time.monotonic()
        if kind in ("mention", "thread_mention"):  # Slack sends both for a mention
            mention = {k: v for k, v in event.items() if k != "channel_type"}
            await self.post(session, q, self.event({**mention, "type": "app_mention"}))
        await self.post(session, q, self.event(event))

    # -- the run --------------------------------------------------------------------

    async def main(self) -> Run:
        run = self.run
        run.started = time.monotonic()
        for at, name in fault_plan(self.plan):
            task = asyncio.create_task(self._at(at, self.fault(name)))
            self._tasks.add(task)
        every = 60.0 / self.plan.rate
        count = max(1, math.floor(self.plan.seconds / every))
        async with load.new_session(32) as session:
            for i in range(count):
                await asyncio.sleep(max(0.0, run.started + i * every - time.monotonic()))
                await self.ask(session, i)
            await asyncio.sleep(max(0.0, run.started + self.plan.seconds - time.monotonic()))
        run.traffic_end = time.monotonic()
        while time.monotonic() < run.traffic_end + self.plan.drain:
            for q in run.questions:
                self.tracker.resolve(q)
            if all(q.resolved for q in run.questions):
                break
            await asyncio.sleep(0.5)
        for task in self._tasks:  # a fault still under way ends with the run
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        run.drain_end = time.monotonic()
        for q in run.questions:
            self.tracker.resolve(q)
        return run

    async def _at(self, offset: float, action: Awaitable[None]) -> None:
        await asyncio.sleep(max(0.0, self.run.started + offset - time.monotonic()))
        await action


# --------------------------------------------------------------------------------------
# The bot's side: its loop, its stalls, its memory
# --------------------------------------------------------------------------------------


class StallMonitor:
    """How late a 10 ms sleep wakes on the bot's loop: the longest any callback held it."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_at = math.nan
        self.samples = 0
        self.stalls: list[tuple[float, float]] = []  # (monotonic, seconds) of long ones

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(TICK)
            late = time.monotonic() - before - TICK
            self.samples += 1
            if late > self.worst:
                self.worst, self.worst_at = late, before
            if late >= STALL_LISTED:
                self.stalls.append((before, late))


def peak_rss_kb() -> int:
    """VmHWM of this process; ru_maxrss (kB on Linux) where /proc is missing."""
    return load.proc_status(os.getpid()).get("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def make_workspace(plan: Plan) -> tuple[SoakSlack, SoakModel]:
    slack = SoakSlack(bot_token=load.BOT_TOKEN, bot_user_id=load.BOT_USER)
    users = [f"U{i}" for i in range(1, USERS + 1)]
    for u in users:
        slack.add_user(u, name=f"user{u[1:]}", real_name=f"User {u[1:]}", display_name=f"User{u[1:]}")
        slack.add_user(f"W{u[1:]}", name=f"other{u[1:]}", real_name=f"Other {u[1:]}")
        slack.add_channel(f"D{u[1:]}", name=f"dm-{u}", is_im=True, members={u})
    for channel in CHANNELS:
        slack.add_channel(channel, name=f"soak-{channel}",
                          members={*users, *(f"W{u[1:]}" for u in users)})
    return slack, SoakModel(plan.model_seconds)


async def soak(plan: Plan, tmp: Path) -> dict[str, Any]:
    slack, model = make_workspace(plan)
    db = tmp / "soak.db"
    with slack, model:
        env = load.bot_env(load.RunConfig(load.CUSTOM, limits=True, max_concurrent=16), slack, model, db)
        bot = Bot(load_settings(env, env_file=None), mode="http", port=load.free_port())
        started = time.monotonic()
        await bot.start()
        # Watched from the first question to the last moment of the drain: start-up's one
        # full collection (freeze_startup_heap) and the shutdown are not the steady state.
        monitor = StallMonitor()
        stop = asyncio.Event()
        watching = asyncio.create_task(monitor.run(stop))
        driver = Driver(plan, slack, model, bot.port, db)
        run = await asyncio.to_thread(lambda: asyncio.run(driver.main()))
        stop.set()
        await watching
        statuses = dict(bot.store.db.execute(
            "SELECT status, COUNT(*) FROM answers GROUP BY status").fetchall())
        await bot.stop()
        rss_kb = peak_rss_kb()
        return figures(plan, run, monitor, rss_kb, statuses, slack, time.monotonic() - started)


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {"n": len(values), "p50": r(load.percentile(values, 50)),
            "p95": r(load.percentile(values, 95)), "max": r(max(values) if values else None)}


def outcome(q: Question, deadline: float) -> str:
    if q.answered is not None and q.answered <= deadline:
        return "answered"
    if q.told is not None and q.told <= deadline:
        return "told"
    return "lost"


def fault_at(faults: Sequence[Fault], at: float) -> str | None:
    """The fault under way at ``at`` (or that had just begun, within a second)."""
    for f in faults:
        if f.at - 1.0 <= at <= f.at + max(f.seconds, 1.0):
            return f.name
    return None


def figures(plan: Plan, run: Run, monitor: StallMonitor, rss_kb: int, statuses: dict[str, int],
            slack: SoakSlack, wall: float) -> dict[str, Any]:
    deadline = run.drain_end
    by_kind: dict[str, dict[str, int]] = {k: {"asked": 0, "answered": 0, "told": 0, "lost": 0} for k in KINDS}
    for q in run.questions:
        by_kind[q.kind]["asked"] += 1
        by_kind[q.kind][outcome(q, deadline)] += 1
    counts = {key: sum(k[key] for k in by_kind.values()) for key in ("asked", "answered", "told", "lost")}
    firsts = [min(t for t in (q.sign, q.answered, q.told) if t is not None) - q.sent
              for q in run.questions if outcome(q, deadline) != "lost"]
    answers = [q.answered - q.sent for q in run.questions
               if q.answered is not None and outcome(q, deadline) == "answered"]
    stalls = sorted(monitor.stalls, key=lambda s: -s[1])
    return {
        "config": {"minutes": round(plan.seconds / 60, 2), "quick": plan.quick, "rate_per_min": plan.rate,
                   "model_seconds": plan.model_seconds, "drain_s": plan.drain, "faults": plan.faults,
                   "seed": plan.seed, "cpus": os.cpu_count(), "mix": KINDS},
        "percentile_method": "nearest-rank",
        "questions": counts,
        "by_kind": by_kind,
        "lost_questions": [{"index": q.index, "kind": q.kind, "status": q.status}
                           for q in run.questions if outcome(q, deadline) == "lost"],
        "answer_rows": statuses,
        "first_sign_s": spread(firsts),
        "answer_s": spread(answers),
        "loop": {"worst_stall_ms": round(monitor.worst * 1000, 1),
                 "worst_at_s": None if math.isnan(monitor.worst_at - run.started)
                 else round(monitor.worst_at - run.started, 1),
                 "worst_during": fault_at(run.faults, monitor.worst_at),
                 "stalls_over_100ms": len(monitor.stalls),
                 "stalls_over_1s": sum(1 for _, s in monitor.stalls if s >= 1.0),
                 "longest": [{"at_s": round(at - run.started, 1), "ms": round(s * 1000),
                              "during": fault_at(run.faults, at)} for at, s in stalls[:5]],
                 "samples": monitor.samples},
        "peak_rss_mb": round(rss_kb * 1024 / MB, 1),
        "faults": [{"name": f.name, "at_s": round(f.at - run.started, 1), "seconds": round(f.seconds, 1)}
                   for f in run.faults],
        "slack_429s": slack.rate_limit_stats(),
        "drain_s": round(run.drain_end - run.traffic_end, 1),
        "wall_s": round(wall, 1),
        "problems": run.problems,
    }


def report(f: dict[str, Any]) -> str:
    c, q, loop = f["config"], f["questions"], f["loop"]

    def three(s: dict[str, Any]) -> str:
        return "none" if not s["n"] else f"{s['p50']:g} / {s['p95']:g} / {s['max']:g} s (n={s['n']})"

    faults = ", ".join(f"{x['name']}@{x['at_s']:g}s" for x in f["faults"]) or "none"
    longest = ", ".join(f"{s['ms']} ms at {s['at_s']:g} s ({s['during'] or 'no fault'})"
                        for s in loop["longest"]) or "none over 100 ms"
    kinds = ", ".join(f"{k} {v['answered']}/{v['told']}/{v['lost']} of {v['asked']}"
                      for k, v in f["by_kind"].items() if v["asked"])
    rows = [
        ("questions asked / answered / told an error / lost",
         f"{q['asked']} / {q['answered']} / {q['told']} / {q['lost']}"),
        ("by kind (answered/told/lost)", kinds),
        ("lost (index kind)", ", ".join(f"{x['index']} {x['kind']}" for x in f["lost_questions"][:12])
         or "none"),
        ("first visible sign p50 / p95 / max", three(f["first_sign_s"])),
        ("time to answer p50 / p95 / max", three(f["answer_s"])),
        ("event loop worst stall", f"{loop['worst_stall_ms']:g} ms at {loop['worst_at_s']} s "
                                   f"({loop['worst_during'] or 'no fault'})"),
        ("stalls over 100 ms / over 1 s", f"{loop['stalls_over_100ms']} / {loop['stalls_over_1s']}"),
        ("longest stalls", longest),
        ("peak RSS (bot and fakes, one process)", f"{f['peak_rss_mb']:g} MB"),
        ("answers stored, by status", ", ".join(f"{k} {v}" for k, v in sorted(f["answer_rows"].items()))),
        ("faults injected", faults),
        ("drain after the traffic", f"{f['drain_s']:g} s"),
    ]
    head = (f"### Soak: {c['minutes']:g} min{' (quick)' if c['quick'] else ''}, {c['rate_per_min']:g} "
            f"questions/min, {c['model_seconds']:g} s answers, faults {'on' if c['faults'] else 'off'}, "
            f"{c['cpus']} CPUs; run took {f['wall_s']:g} s\n")
    text = head + "\n" + load.markdown_table(("figure", "value"), rows)
    if f["problems"]:
        text += "\n\nproblems: " + "; ".join(f["problems"][:10])
    if f.get("bot_log_lines"):
        text += f"\n\nbot log: {f['bot_log_lines']} lines at WARNING or above; last ones:\n"
        text += "\n".join(f"    {line[:160]}" for line in f["bot_log_tail"])
    return text


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/soak.py", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long traffic runs (default 10)")
    p.add_argument("--quick", action="store_true",
                   help=f"a {QUICK_SECONDS:g} s smoke run: every fault once, 60 questions/min, 30 s drain")
    p.add_argument("--rate", type=float, help="questions a minute (default 30; --quick 60)")
    p.add_argument("--model-seconds", type=float, default=3.0, help="length of each model stream")
    p.add_argument("--drain", type=float, help="seconds allowed after the traffic (default 90; --quick 30)")
    p.add_argument("--no-faults", action="store_true", help="traffic only: a baseline")
    p.add_argument("--seed", type=int, default=0, help="seed of the traffic mix")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    p.add_argument("--strict", action="store_true", help="exit 1 when a question was lost")
    args = p.parse_args(argv)
    if args.minutes <= 0 or (args.rate is not None and args.rate <= 0) or args.model_seconds <= 0 or (
            args.drain is not None and args.drain < 0):
        p.error("--minutes, --rate and --model-seconds must be positive, --drain >= 0")
    return args


def plan_of(args: argparse.Namespace) -> Plan:
    return Plan(seconds=QUICK_SECONDS if args.quick else args.minutes * 60,
                rate=args.rate or (60.0 if args.quick else 30.0), model_seconds=args.model_seconds,
                drain=args.drain if args.drain is not None else (30.0 if args.quick else 90.0),
                faults=not args.no_faults, seed=args.seed, quick=args.quick)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_of(args)
    watchdog = load.Watchdog(plan.seconds + plan.drain + 120.0)
    watchdog.start()
    with tempfile.TemporaryDirectory(prefix="qwqbot-soak-") as tmp:
        log_path = Path(tmp) / "bot.log"
        root = logging.getLogger()
        with open(log_path, "w") as log_file:
            root.handlers[:] = [log_handler(log_file)]
            root.setLevel(logging.WARNING)
            print(f"soaking for {plan.seconds:g} s ...", file=sys.stderr, flush=True)
            result: dict[str, Any] = {}

            async def go() -> int:
                result.update(await soak(plan, Path(tmp)))
                return 0

            try:
                run_loop(go())
                ran_ok = True
            except Exception as exc:  # the run itself broke: say so, exit 1
                result.update(problems=[f"the run failed: {type(exc).__name__}: {exc}"])
                ran_ok = False
            finally:
                watchdog.cancel()
                root.handlers[:] = []
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    result["bot_log_lines"] = len(lines)
    result["bot_log_tail"] = lines[-5:]
    result["ran_ok"] = ran_ok and not result.get("problems")
    print(report(result) if ran_ok else "\n".join(result["problems"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if not ran_ok:
        return 1
    return 1 if args.strict and result["questions"]["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
