"""Load benchmark: the real bot (a subprocess, HTTP mode) under N simultaneous mentions.

    .venv/bin/python bench/load.py [--answers 200] [--model-seconds 5] [--rate-limit-share 0.0]
        [--budget 300] [--max-concurrent 256] [--channels 20] [--scenario all|normal|429]
        [--timeout 120] [--client httpx|aiohttp] [--seed 0] [--json FILE] [--strict]

Everything runs on 127.0.0.1. The fake Slack Web API and the fake model server run in this
process (each in its own thread, see ``tests/fakes``); the bot is started exactly as a
platform would start it (``python -m qwqbot run --mode http``), gets N signed
``app_mention`` events at once and answers them all; every Web API call it makes is
recorded by the fake with its arrival time (``time.monotonic()`` of this process).

Figures (percentiles are **nearest-rank**: the smallest value with at least p% of the
samples at or below it; for fewer than 100 samples p99 is therefore the maximum):

* ack latency: POST sent (connection set-up included) -> HTTP 200 from Bolt; next to it
  the "ack floor": the same number of simultaneous ``GET /healthz`` from a fresh client of
  the same kind just before (aiohttp answers those without Bolt or the store), i.e. what
  the client, loopback and HTTP server alone cost at that concurrency. httpx (the default,
  one shared AsyncClient) is expensive per request with hundreds of fresh connections at
  once; ``--client aiohttp`` measures with a cheaper one;
* first visible progress: POST sent -> the placeholder ``chat.postMessage`` in the
  mention's thread (the accepted one; a call answered 429 shows nothing);
* completion: POST sent -> the accepted ``chat.update`` of the placeholder that carries
  the answer (section blocks with the scripted answer text);
* total completion time: first POST sent -> last answer, against the model's stream length;
* chat.update calls per answer, the shortest gap between two progress edits of one
  message, the most chat.update calls in any sliding 60 s window (every call Slack would
  see, 429s and the SDK's retries of them included) against QWQBOT_UPDATE_BUDGET;
* peak RSS of the bot process (``VmHWM`` in ``/proc/PID/status``, read just before SIGTERM)
  and its CPU time (``/proc/PID/stat``), also during the ack burst, with this process's CPU
  time and event-loop lag then (the client and both fakes share one GIL here, so under load
  the fake's arrival times can lag the bot's sends a little).

``--scenario all`` (the default) runs ``normal`` (no 429s) and then ``429``, where the fake
answers HTTP 429 (Retry-After 1) to a random share of chat.postMessage and chat.update
calls (``--rate-limit-share``, 0.1 when not given). Each scenario is bounded by
``--timeout`` seconds: answers not in by then are reported missing, and the bot is stopped.

Exit status: 0 when every scenario ran and is correct (every answer arrived, the budget
held, the bot stopped with status 0); 1 otherwise; with ``--strict`` a missed timing target
is a failure too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/load.py`: the fakes live in tests/
    sys.path.insert(0, str(ROOT))

from tests.fakes.model_server import FakeModelServer, Stream, stream  # noqa: E402
from tests.fakes.slack_api import Call, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
BOT_USER = "UBOT"
USERS = 50
ANSWER_TEXT = "Benchmark answer 42."
CHUNK_EVERY = 0.25  # seconds between the model's chunks (shorter when the stream is short)
LIMITED_METHODS = ("chat.postMessage", "chat.update")
DEFAULT_429_SHARE = 0.1
SHUTDOWN_GRACE = 5.0  # QWQBOT_SHUTDOWN_GRACE for the bot: answers still running get this long
STOP_RESERVE = 20.0  # of each scenario's time, kept for stopping the bot
MB = 1_000_000

# Targets (the brief's figures).
ACK_P99_MS = 50.0
FIRST_PROGRESS_P99_MS = 500.0
COMPLETION_SLACK_S = 2.0  # "answers of 5 s all done within 7 s"
MIN_PROGRESS_GAP_S = 1.0
GAP_TOLERANCE_S = 0.05  # loopback/scheduling jitter between the bot's send and the fake's arrival
PEAK_RSS_MB = 200.0


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(body: str, ts: int | None = None) -> dict[str, str]:
    """Slack's request signature: ``v0=HMAC_SHA256(secret, "v0:{ts}:{body}")``."""
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


def summary(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v * scale, digits)

    return {"n": len(values), "p50": r(percentile(values, 50)), "p90": r(percentile(values, 90)),
            "p99": r(percentile(values, 99)), "max": r(max(values) if values else None)}


def max_in_window(times: Iterable[float], window: float = 60.0) -> int:
    """The most events in any half-open interval [t, t + window)."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


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


def listen_overflows() -> int | None:
    """TcpExt ListenOverflows of this network namespace (/proc/net/netstat): connections
    refused because a listen backlog was full; each costs its client a 1 s SYN retry."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split(), values.split(), strict=False))
            if "ListenOverflows" in row:
                return int(row["ListenOverflows"])
    return None


def model_script(seconds: float) -> Stream:
    """QwQ-style: reasoning inside <think>...</think>, then a short answer, with the chunks
    spread evenly over ``seconds`` (the fake sleeps ``chunk_delay`` before every chunk but
    the first and before the finish chunk: n chunks take n * chunk_delay)."""
    n = max(4, round(seconds / CHUNK_EVERY))
    reasoning = [f"Step {k}: checking the numbers once more. " for k in range(1, n - 2)]
    parts = ["<think>\n", *reasoning, "\n</think>\n\n", ANSWER_TEXT]
    return stream(parts, chunk_delay=seconds / len(parts))


# --------------------------------------------------------------------------------------
# One scenario
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    name: str
    answers: int
    model_seconds: float
    rate_limit_share: float
    budget: int
    max_concurrent: int
    channels: int
    timeout: float
    seed: int = 0
    client: str = "aiohttp"
    ramp: float = 1.0  # seconds over which the mentions arrive (0: all in the same instant)


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
    # filled in by the analysis
    placeholder: Call | None = None
    placeholder_ts: str | None = None
    answer: Call | None = None
    updates: list[Call] = field(default_factory=list)


@dataclass
class Outcome:
    """What a scenario left behind besides the fake's recorded calls."""

    started: float = math.nan  # first POST sent
    burst_wall_s: float | None = None  # first POST sent -> last ack
    burst_bot_cpu_s: float | None = None  # the bot's CPU time meanwhile
    burst_bench_cpu_s: float | None = None  # this process's (client + both fakes) meanwhile
    burst_listen_overflows: int | None = None
    burst_loop_lag_ms: float | None = None  # worst lateness of this process's event loop meanwhile
    floor: list[float] = field(default_factory=list)  # N x GET /healthz latencies, before the burst
    healthy: bool = False
    timed_out: bool = False
    rss_kb: dict[str, int] = field(default_factory=dict)
    bot_cpu_s: float | None = None
    bot_exit: int | None = None
    bot_log: str = ""
    problems: list[str] = field(default_factory=list)


def bot_env(cfg: Config, slack: FakeSlack, model: FakeModelServer, db: Path) -> dict[str, str]:
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
        "QWQBOT_UPDATE_BUDGET": str(cfg.budget),
        "QWQBOT_PROGRESS_INTERVAL": "1",
        "QWQBOT_LOG_LEVEL": "WARNING",
        "QWQBOT_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE),
    })
    return env


def make_mentions(cfg: Config, slack: FakeSlack) -> list[Mention]:
    mentions = []
    for i in range(cfg.answers):
        channel = f"C{i % cfg.channels + 1:04d}"
        user = f"U{i % USERS + 1}"
        text = f"<@{BOT_USER}> question {i}: what is six times seven?"
        ts = slack.add_message(channel, user=user, text=text)
        body = json.dumps({
            "token": "legacy", "team_id": slack.team_id, "api_app_id": slack.app_id,
            "type": "event_callback", "event_id": f"EvBench{i:06d}", "event_time": int(time.time()),
            "event": {"type": "app_mention", "channel": channel, "user": user, "text": text,
                      "ts": ts, "event_ts": ts},
        })
        mentions.append(Mention(i, channel, user, ts, body))
    return mentions


class HttpxClient:
    """The brief's client: one shared httpx.AsyncClient with room for every request at once."""

    def __init__(self, concurrency: int) -> None:
        room = concurrency + 16
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=room, max_keepalive_connections=room),
            timeout=httpx.Timeout(30.0))

    async def request(self, method: str, url: str, body: str | None = None,
                      headers: dict[str, str] | None = None) -> int:
        response = await self._client.request(method, url, content=body, headers=headers)
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpClient:
    """One shared aiohttp.ClientSession: a much cheaper client per request (see --client)."""

    def __init__(self, concurrency: int) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency + 16),
            timeout=aiohttp.ClientTimeout(total=30.0))

    async def request(self, method: str, url: str, body: str | None = None,
                      headers: dict[str, str] | None = None) -> int:
        async with self._session.request(method, url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def aclose(self) -> None:
        await self._session.close()


Client = HttpxClient | AiohttpClient
CLIENT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, TimeoutError, OSError)


def make_client(kind: str, concurrency: int) -> Client:
    return AiohttpClient(concurrency) if kind == "aiohttp" else HttpxClient(concurrency)


async def post_mention(client: Client, url: str, m: Mention) -> None:
    headers = {"Content-Type": "application/json", **sign(m.body)}
    m.sent = time.monotonic()
    try:
        status = await client.request("POST", url, m.body, headers)
    except CLIENT_ERRORS as exc:
        m.error = type(exc).__name__
        return
    m.acked = time.monotonic()
    m.status = status


async def http_floor(kind: str, url: str, n: int) -> list[float]:
    """Latencies of n simultaneous GET /healthz (answered by aiohttp, no Bolt, no store) from
    a fresh client of the same kind: what the client, the loopback and the bot's HTTP server
    alone cost at this concurrency, for reading the ack latencies against."""
    client = make_client(kind, n)

    async def one() -> float | None:
        sent = time.monotonic()
        try:
            status = await client.request("GET", url)
        except CLIENT_ERRORS:
            return None
        return time.monotonic() - sent if status == 200 else None

    try:
        results = await asyncio.gather(*(one() for _ in range(n)))
    finally:
        await client.aclose()
    return [r for r in results if r is not None]


def is_answer(call: Call) -> bool:
    blocks = call.params.get("blocks")
    return isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "section" and ANSWER_TEXT in json.dumps(b)
        for b in blocks)


def is_progress(call: Call) -> bool:
    blocks = call.params.get("blocks")
    return (isinstance(blocks, list) and len(blocks) == 1 and isinstance(blocks[0], dict)
            and blocks[0].get("type") == "context")


def match_calls(slack: FakeSlack, mentions: list[Mention]) -> None:
    """Attach each mention's placeholder post and chat.update calls (idempotent)."""
    limited = {id(c) for c in list(slack.rate_limited_calls)}
    by_thread = {(m.channel, m.ts): m for m in mentions}
    for call in slack.calls_to("chat.postMessage"):
        m = by_thread.get((str(call.params.get("channel")), str(call.params.get("thread_ts"))))
        if m is not None and m.placeholder is None and id(call) not in limited:
            m.placeholder = call
    for m in mentions:
        if m.placeholder is not None and m.placeholder_ts is None:
            bot_posts = [msg for msg in slack.messages(m.channel, m.ts) if msg.get("user") == BOT_USER]
            if bot_posts:
                m.placeholder_ts = str(bot_posts[0]["ts"])
    by_placeholder = {(m.channel, m.placeholder_ts): m for m in mentions if m.placeholder_ts}
    for m in mentions:
        m.updates = []
    for call in slack.calls_to("chat.update"):
        m = by_placeholder.get((str(call.params.get("channel")), str(call.params.get("ts"))))
        if m is None:
            continue
        m.updates.append(call)
        if m.answer is None and id(call) not in limited and is_answer(call):
            m.answer = call


async def loop_lag(out: list[float], tick: float = 0.005) -> None:
    """How late this process's loop wakes up: a measure of how much of an ack latency is
    the measuring client's own queueing (it shares the GIL with both fakes)."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(tick)
        out.append(time.monotonic() - before - tick)


async def wait_healthy(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"http://127.0.0.1:{port}/healthz")
                if r.status_code == 200:
                    return True
            await asyncio.sleep(0.1)
    return False


async def drive(cfg: Config, slack: FakeSlack, proc: subprocess.Popen[bytes], port: int,
                mentions: list[Mention], outcome: Outcome, deadline: float) -> None:
    outcome.healthy = await wait_healthy(proc, port, min(deadline, time.monotonic() + 30))
    if not outcome.healthy:
        outcome.problems.append("the bot did not become healthy")
        return
    if cfg.rate_limit_share > 0:
        slack.rate_limit_share(LIMITED_METHODS, cfg.rate_limit_share, retry_after=1, seed=cfg.seed)
    outcome.floor = await http_floor(cfg.client, f"http://127.0.0.1:{port}/healthz", cfg.answers)
    await asyncio.sleep(0.5)
    url = f"http://127.0.0.1:{port}/slack/events"
    client = make_client(cfg.client, cfg.answers)
    try:
        overflows, bot_cpu, bench_cpu = listen_overflows(), proc_cpu_seconds(proc.pid), time.process_time()
        lag: list[float] = []
        probe = asyncio.create_task(loop_lag(lag))
        outcome.started = time.monotonic()
        async def arrive(i: int, m: Mention) -> None:
            # Spread over cfg.ramp seconds: all N still overlap (each answer takes D >> ramp),
            # but they are not one single instant, which no one-process server acks in 50 ms.
            await asyncio.sleep(cfg.ramp * i / max(1, len(mentions)))
            await post_mention(client, url, m)

        await asyncio.gather(*(arrive(i, m) for i, m in enumerate(mentions)))
        outcome.burst_wall_s = time.monotonic() - outcome.started
        probe.cancel()
        outcome.burst_loop_lag_ms = max(lag, default=0.0) * 1000
        outcome.burst_bench_cpu_s = time.process_time() - bench_cpu
        bot_cpu_after, overflows_after = proc_cpu_seconds(proc.pid), listen_overflows()
        if bot_cpu is not None and bot_cpu_after is not None:
            outcome.burst_bot_cpu_s = bot_cpu_after - bot_cpu
        if overflows is not None and overflows_after is not None:
            outcome.burst_listen_overflows = overflows_after - overflows
    finally:
        await client.aclose()
    while True:
        match_calls(slack, mentions)
        if all(m.answer is not None for m in mentions):
            return
        if proc.poll() is not None:
            outcome.problems.append(f"the bot exited early with status {proc.returncode}")
            return
        if time.monotonic() >= deadline:
            outcome.timed_out = True
            return
        await asyncio.sleep(0.25)


def stop_bot(proc: subprocess.Popen[bytes], outcome: Outcome, timeout: float) -> None:
    if proc.poll() is None:
        outcome.rss_kb = proc_status(proc.pid)
        outcome.bot_cpu_s = proc_cpu_seconds(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            outcome.problems.append(f"the bot did not stop within {timeout:.0f} s of SIGTERM; killed")
            proc.kill()
            proc.wait(timeout=10)
            outcome.bot_exit = None
            return
    outcome.bot_exit = proc.returncode


def run_scenario(cfg: Config, watchdog: Watchdog) -> dict[str, Any]:
    t0 = time.monotonic()
    deadline = t0 + max(1.0, cfg.timeout - STOP_RESERVE)
    outcome = Outcome()
    with tempfile.TemporaryDirectory(prefix="qwqbot-bench-") as tmp:
        slack = FakeSlack(bot_token=BOT_TOKEN, bot_user_id=BOT_USER)
        model = FakeModelServer()
        model.default = model_script(cfg.model_seconds)
        users = {f"U{i}" for i in range(1, USERS + 1)}
        for u in sorted(users):
            slack.add_user(u, name=f"user{u[1:]}", real_name=f"User {u[1:]}", display_name=f"User{u[1:]}")
        for c in range(1, cfg.channels + 1):
            slack.add_channel(f"C{c:04d}", name=f"bench-{c}", members=set(users))
        mentions = make_mentions(cfg, slack)
        log_path = Path(tmp) / "bot.log"
        with slack, model, open(log_path, "wb") as log:
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "qwqbot", "run", "--mode", "http", "--port", str(port)],
                env=bot_env(cfg, slack, model, Path(tmp) / "bench.db"), cwd=tmp,
                stdout=log, stderr=subprocess.STDOUT)
            watchdog.track(proc)
            try:
                asyncio.run(drive(cfg, slack, proc, port, mentions, outcome, deadline))
            finally:
                stop_bot(proc, outcome, max(10.0, t0 + cfg.timeout - time.monotonic()))
                watchdog.untrack(proc)
            match_calls(slack, mentions)
            figures = analyse(cfg, slack, model, mentions, outcome)
        outcome.bot_log = log_path.read_text(errors="replace")
    warnings = [line for line in outcome.bot_log.splitlines() if line.strip()]
    figures["bot_log_lines"] = len(warnings)
    figures["bot_log_tail"] = warnings[-5:]
    figures["wall_s"] = round(time.monotonic() - t0, 2)
    return figures


def analyse(cfg: Config, slack: FakeSlack, model: FakeModelServer, mentions: list[Mention],
            outcome: Outcome) -> dict[str, Any]:
    acks = [m.acked - m.sent for m in mentions if m.acked is not None and m.status == 200]
    ack_errors = sum(1 for m in mentions if m.status != 200)
    first = [m.placeholder.at - m.sent for m in mentions if m.placeholder is not None]
    done = [m for m in mentions if m.answer is not None]
    completion = [m.answer.at - m.sent for m in done if m.answer is not None]
    stretch = [m.answer.at - m.placeholder.at for m in done
               if m.answer is not None and m.placeholder is not None]
    total = (max(m.answer.at for m in done if m.answer is not None) - outcome.started) if done else None

    limited = list(slack.rate_limited_calls)
    limited_ids = {id(c) for c in limited}
    updates = slack.calls_to("chat.update")
    accepted = [c for c in updates if id(c) not in limited_ids]
    per_answer = [len(m.updates) for m in mentions if m.placeholder_ts is not None]
    gaps: list[float] = []
    progress_edits = 0
    for m in mentions:
        times = sorted(c.at for c in m.updates if is_progress(c))
        progress_edits += len(times)
        gaps.extend(b - a for a, b in itertools.pairwise(times))
    by_method: dict[str, int] = {}
    for c in limited:
        by_method[c.method] = by_method.get(c.method, 0) + 1

    rss_mb = outcome.rss_kb["VmHWM"] * 1024 / MB if "VmHWM" in outcome.rss_kb else None
    figures: dict[str, Any] = {
        "scenario": cfg.name,
        "config": {"answers": cfg.answers, "model_seconds": cfg.model_seconds,
                   "rate_limit_share": cfg.rate_limit_share, "budget": cfg.budget,
                   "max_concurrent": cfg.max_concurrent, "channels": cfg.channels,
                   "timeout_s": cfg.timeout, "seed": cfg.seed, "progress_interval_s": 1.0,
                   "client": cfg.client,
                   "cpus": os.cpu_count()},
        "percentile_method": "nearest-rank",
        "answers": cfg.answers,
        "answers_completed": len(done),
        "missing": cfg.answers - len(done),
        "timed_out": outcome.timed_out,
        "ack_ms": {**summary(acks, 1000), "errors": ack_errors},
        "ack_floor_ms": summary(outcome.floor, 1000),
        "first_progress_ms": {**summary(first, 1000), "missing": cfg.answers - len(first)},
        "completion_s": summary(completion, 1, 2),
        "completion_within_target": sum(
            1 for c in completion if c <= cfg.model_seconds + COMPLETION_SLACK_S),
        "placeholder_to_answer_s": summary(stretch, 1, 2),
        "total_completion_s": None if total is None else round(total, 2),
        "model_requests": len(model.requests),
        "chat_update": {
            "calls": len(updates),
            "accepted": len(accepted),
            "per_answer_mean": round(sum(per_answer) / len(per_answer), 2) if per_answer else None,
            "per_answer_max": max(per_answer) if per_answer else None,
            "progress_edits": progress_edits,
            "min_progress_interval_s": round(min(gaps), 3) if gaps else None,
            "max_per_minute": max_in_window(c.at for c in updates),
            "max_per_minute_accepted": max_in_window(c.at for c in accepted),
            "budget": cfg.budget,
        },
        "chat_post_message_calls": len(slack.calls_to("chat.postMessage")),
        "rate_limited": len(limited),
        "rate_limited_by_method": by_method,
        "peak_rss_mb": None if rss_mb is None else round(rss_mb, 1),
        "bot_cpu_s": None if outcome.bot_cpu_s is None else round(outcome.bot_cpu_s, 2),
        "burst": {
            "wall_s": rnd(outcome.burst_wall_s, 3),
            "bot_cpu_s": rnd(outcome.burst_bot_cpu_s, 3),
            "bench_cpu_s": rnd(outcome.burst_bench_cpu_s, 3),
            "listen_overflows": outcome.burst_listen_overflows,
            "bench_loop_lag_max_ms": rnd(outcome.burst_loop_lag_ms, 1),
        },
        "bot_exit_code": outcome.bot_exit,
        "problems": outcome.problems,
    }
    figures["checks"] = checks(cfg, figures)
    figures["correct"] = all(c["ok"] for c in figures["checks"] if c["kind"] == "correctness")
    figures["targets_met"] = all(c["ok"] for c in figures["checks"] if c["kind"] != "info")
    return figures


def rnd(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def checks(cfg: Config, f: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows. ``kind``: correctness (must hold at any speed), target (the brief's
    timing/memory figures) or info. With 429s, the figures a 429 necessarily stretches (a
    placeholder or final edit answered 429 waits Retry-After + up to 1 s in slack_sdk) are
    shown but not judged ("(ok)" / "(miss)"): that scenario's target is that every answer
    still arrives."""
    out: list[dict[str, Any]] = []
    timed = "target" if cfg.rate_limit_share == 0 else "info"

    def add(metric: str, value: Any, target: str, ok: bool, kind: str = "target") -> None:
        out.append({"metric": metric, "value": value, "target": target, "ok": bool(ok), "kind": kind})

    def le(v: float | None, limit: float) -> bool:
        return v is not None and v <= limit

    def lt(v: float | None, limit: float) -> bool:
        return v is not None and v < limit

    def three(s: dict[str, Any], unit: str) -> str:
        return f"{s['p50']} / {s['p99']} / {s['max']} {unit}"

    add("answers delivered", f"{f['answers_completed']}/{f['answers']} (missing {f['missing']})",
        "all, none missing", f["missing"] == 0, "correctness")
    limit = cfg.model_seconds + COMPLETION_SLACK_S
    total = f["total_completion_s"]
    add("total completion time (first POST -> last answer)",
        "-" if total is None else f"{total:.2f} s", f"<= {limit:g} s (streams of {cfg.model_seconds:g} s)",
        le(total, limit) and f["missing"] == 0, timed)
    ack = f["ack_ms"]
    not_ok = f", {ack['errors']} not 200" if ack["errors"] else ""
    add("ack latency p50 / p99 / max", three(ack, "ms") + not_ok, f"p99 < {ACK_P99_MS:g} ms",
        lt(ack["p99"], ACK_P99_MS) and ack["errors"] == 0)
    add(f"ack floor: {f['ack_floor_ms']['n']} x GET /healthz p50 / p99 / max", three(f["ack_floor_ms"], "ms"),
        f"(info; same {f['config']['client']} client, no Bolt)", True, "info")
    fp = f["first_progress_ms"]
    add("first visible progress p50 / p99 / max", three(fp, "ms"), f"p99 < {FIRST_PROGRESS_P99_MS:g} ms",
        lt(fp["p99"], FIRST_PROGRESS_P99_MS) and fp["missing"] == 0, timed)
    cs = f["completion_s"]
    add("completion per answer p50 / p99 / max",
        three(cs, "s") + f" ({f['completion_within_target']} within {limit:g} s)", f"<= {limit:g} s",
        le(cs["max"], limit) and f["missing"] == 0, timed)
    add("placeholder -> answer p50 / p99 / max", three(f["placeholder_to_answer_s"], "s"),
        f"(info; the stream is {cfg.model_seconds:g} s)", True, "info")
    cu = f["chat_update"]
    add("chat.update per answer mean / max", f"{cu['per_answer_mean']} / {cu['per_answer_max']}",
        f"(info; {cu['progress_edits']} progress edits)", True, "info")
    gap = cu["min_progress_interval_s"]
    add("min gap between progress edits of one message",
        f"{gap:.3f} s" if gap is not None else "n/a (no message got 2 progress edits)",
        f">= {MIN_PROGRESS_GAP_S:g} s (-{GAP_TOLERANCE_S:g} jitter)",
        gap is None or gap >= MIN_PROGRESS_GAP_S - GAP_TOLERANCE_S, "correctness")
    add("chat.update max in any 60 s (all calls / accepted)",
        f"{cu['max_per_minute']} / {cu['max_per_minute_accepted']}", f"<= budget {cu['budget']}",
        cu["max_per_minute"] <= cu["budget"], "correctness")
    rss = f["peak_rss_mb"]
    add("bot peak RSS (VmHWM)", "-" if rss is None else f"{rss:.1f} MB", f"< {PEAK_RSS_MB:g} MB",
        lt(rss, PEAK_RSS_MB))
    b = f["burst"]
    add("ack burst: wall / bot CPU / bench CPU", f"{b['wall_s']} / {b['bot_cpu_s']} / {b['bench_cpu_s']} s",
        f"(info; {f['config']['cpus']} CPUs)", True, "info")
    add("ack burst: client loop lag max / listen overflows",
        f"{b['bench_loop_lag_max_ms']} ms / {b['listen_overflows']}", "(info)", True, "info")
    add("bot CPU time, whole run (user+sys)", "-" if f["bot_cpu_s"] is None else f"{f['bot_cpu_s']:.1f} s",
        "(info)", True, "info")
    if cfg.rate_limit_share > 0:
        by = ", ".join(f"{k} {v}" for k, v in sorted(f["rate_limited_by_method"].items()))
        add("HTTP 429s served", f"{f['rate_limited']} ({by or 'none'})",
            f"> 0 (share {cfg.rate_limit_share:g}), every answer still arrives",
            f["rate_limited"] > 0 and f["missing"] == 0, "correctness")
    add("bot exit status after SIGTERM", f["bot_exit_code"], "0", f["bot_exit_code"] == 0, "correctness")
    if f["problems"]:
        add("problems", "; ".join(f["problems"]), "none", False, "correctness")
    return out


def table(figures: dict[str, Any]) -> str:
    cfg = figures["config"]
    head = (f"scenario {figures['scenario']}: {cfg['answers']} mentions at once, {cfg['model_seconds']:g} s "
            f"model streams, 429 share {cfg['rate_limit_share']:g}, budget {cfg['budget']}/min, "
            f"max concurrent {cfg['max_concurrent']}, {cfg['channels']} channels, {cfg['cpus']} CPUs, "
            f"{cfg['client']} client "
            f"(wall {figures.get('wall_s', '?')} s; percentiles nearest-rank)")
    rows = [("metric", "value", "target", "ok")]
    for c in figures["checks"]:
        if c["kind"] != "info":
            mark = "ok" if c["ok"] else "FAIL"
        else:  # not judged: a pure figure, or a target a 429 stretches by design
            mark = "" if c["target"].startswith("(") else ("(ok)" if c["ok"] else "(miss)")
        rows.append((c["metric"], str(c["value"]), c["target"], mark))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [head, ""]
    for n, r in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if figures.get("bot_log_lines"):
        lines.append(f"bot log: {figures['bot_log_lines']} lines at WARNING or above; last ones:")
        lines.extend(f"  {line[:160]}" for line in figures["bot_log_tail"])
    return "\n".join(lines)


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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/load.py", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--answers", type=int, default=200, help="mentions posted at once (default 200)")
    p.add_argument("--model-seconds", type=float, default=5.0, help="length of each model stream (default 5)")
    p.add_argument("--rate-limit-share", type=float, default=None,
                   help="share of chat.postMessage/chat.update answered 429 (normal: 0; 429: 0.1)")
    p.add_argument("--budget", type=int, default=300, help="QWQBOT_UPDATE_BUDGET (default 300)")
    p.add_argument("--max-concurrent", type=int, default=256, help="QWQBOT_MAX_CONCURRENT (default 256)")
    p.add_argument("--channels", type=int, default=20, help="public channels to spread mentions over")
    p.add_argument("--scenario", choices=("all", "normal", "429"), default="all",
                   help="all (default): normal, then with 429s")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="hard limit per scenario in seconds (default 120); what finished is reported")
    p.add_argument("--seed", type=int, default=0, help="seed of the 429 draws")
    p.add_argument("--ramp", type=float, default=1.0,
                   help="seconds over which the mentions arrive (default 1; 0 = one instant)")
    p.add_argument("--client", choices=("httpx", "aiohttp"), default="aiohttp",
                   help="HTTP client posting the mentions (default aiohttp); httpx costs far more "
                   "per request at high concurrency, which shows in the 'ack floor' row")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE (and print it)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a timing target is missed too")
    args = p.parse_args(argv)
    if args.answers < 1 or args.channels < 1 or args.model_seconds <= 0 or args.timeout <= 0:
        p.error("--answers, --channels, --model-seconds and --timeout must be positive")
    if args.rate_limit_share is not None and not 0 <= args.rate_limit_share <= 1:
        p.error("--rate-limit-share must be between 0 and 1")
    if not 1 <= args.budget <= 1000 or not 1 <= args.max_concurrent <= 1000:
        p.error("--budget and --max-concurrent must be between 1 and 1000 (the bot's limits)")
    return args


def configs(args: argparse.Namespace) -> list[Config]:
    def make(name: str, share: float) -> Config:
        return Config(name=name, answers=args.answers, model_seconds=args.model_seconds,
                      rate_limit_share=share, budget=args.budget, max_concurrent=args.max_concurrent,
                      channels=args.channels, timeout=args.timeout, seed=args.seed, client=args.client,
                      ramp=args.ramp)

    given = args.rate_limit_share
    if args.scenario == "normal":
        return [make("normal", given or 0.0)]
    if args.scenario == "429":
        return [make("429", DEFAULT_429_SHARE if given is None else given)]
    return [make("normal", 0.0), make("429", given or DEFAULT_429_SHARE)]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = configs(args)
    watchdog = Watchdog(sum(c.timeout for c in plan) + 60)
    watchdog.start()
    results = []
    try:
        for n, cfg in enumerate(plan):
            figures = run_scenario(cfg, watchdog)
            results.append(figures)
            if n:
                print()
            print(table(figures), flush=True)
    finally:
        watchdog.cancel()
    report = {"scenarios": results, "correct": all(r["correct"] for r in results),
              "targets_met": all(r["targets_met"] for r in results)}
    if args.json:
        text = json.dumps(report, indent=2)
        Path(args.json).write_text(text + "\n")
        print()
        print(text)
    ok = report["correct"] and (report["targets_met"] or not args.strict)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
