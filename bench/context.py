"""Benchmark: context assembly and message storage against a large store.

Targets (from the issue): with 1,000,000 stored messages, assembling the context of a
2,000-message thread takes under 20 ms (p99), and storing an incoming message takes under 1 ms.
Token counts are exact (Qwen2.5's tokenizer, the default model's): each message's count is
computed when it is stored, and the table shows what that costs alone (``message_tokens``) and
how the assembled prompt's summed count compares with counting it whole.

Everything goes through the real code: ``open_store`` (WAL, migrations), ``Store.save_messages``
to fill it, ``Store.save_user`` for the people cache, ``ContextBuilder.for_thread`` (store read,
People, ``build_prompt``) with a Slack client that refuses every call, ``Store.save_message`` and
``Store.claim_event``. Nothing leaves the machine; the run is bounded and exits by itself.

Run:  .venv/bin/python bench/context.py [--messages 1000000] [--thread 2000] [--iterations 200]
          [--inserts 10000] [--events N] [--db PATH] [--json FILE] [--check] [--seed 1]

Percentiles are nearest-rank: pXX is the smallest sample with at least XX% of the samples at or
below it (for 200 samples, p99 is the 198th smallest, i.e. the third largest).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.config import load_settings
from qwqbot.conversation import Prompt
from qwqbot.slack.channels import Channels
from qwqbot.slack.context import ContextBuilder
from qwqbot.slack.people import People
from qwqbot.slack.server import freeze_startup_heap
from qwqbot.store import Store, open_store
from qwqbot.tokens import message_tokens

CONTEXT_TARGET_MS = 20.0  # p99 of assembling a 2,000-message thread's context
STORE_TARGET_MS = 1.0  # p99 of storing one incoming message (and of claiming one event)
SMALL_THREAD = 50  # the uncut case
WARMUPS = 5
BATCH = 50_000
N_CHANNELS = 500
N_USERS = 200
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_NAME = "qwqbot"
T0_US = 1_700_000_000 * 1_000_000  # the first message's time, in microseconds
SPAN_S = 365 * 24 * 3600  # the messages span about a year, whatever their number
PERCENTILE_METHOD = "nearest-rank"

_PROSE = (
    "the deploy failed again on staging after the migration ran twice and nobody noticed until "
    "the alerts fired at three in the morning can someone look at the dashboard before standup "
    "we should roll back the release or pin the dependency version until upstream ships a fix "
    "latency p99 went from forty to ninety milliseconds when the cache was cold the query plan "
    "uses the index but the join still scans every row of the audit table which is huge now "
    "thanks that works for me let us ship it tomorrow morning and watch the error budget closely "
    "what does the model say about this proof the lemma needs induction on the length of the list"
)
_WORDS = tuple(_PROSE.split())
_LINKS = (
    "<https://github.com/acme/api/pull/{n}|PR #{n}>",
    "<https://grafana.acme.dev/d/{n}/latency>",
    "<https://docs.python.org/3/library/sqlite3.html|sqlite3 docs>",
    "<https://acme.atlassian.net/browse/OPS-{n}|OPS-{n}>",
)
_EXTRAS = (" &amp; ", " :thumbsup: ", " `x &lt; y` ", " (see above) ", " <!here> ", " <#C0001|general> ")
_TZS = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "America/Los_Angeles",
        "Asia/Kolkata", "Australia/Sydney", "Europe/London")


# ----------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``samples`` (0 < p <= 100)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples_ns: Sequence[int], unit: str) -> dict[str, float]:
    """p50/p90/p99/max/mean of nanosecond samples in ``unit`` ("ms" or "us")."""
    scale = 1e6 if unit == "ms" else 1e3
    values = [s / scale for s in samples_ns]
    return {
        "p50": round(percentile(values, 50), 4),
        "p90": round(percentile(values, 90), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
        "mean": round(sum(values) / len(values), 4),
    }


# ----------------------------------------------------------------------------- synthetic data


def ts_of(t_us: int) -> str:
    return f"{t_us // 1_000_000}.{t_us % 1_000_000:06d}"


def _text(rng: random.Random, users: Sequence[str], low: int, high: int, *, mention: float,
          link: float, extra: float) -> str:
    """Slack-shaped text of about ``low``-``high`` characters: words, plus (with the given
    probabilities per message) a ``<@U...>`` mention, a link, an entity/emoji/channel token."""
    target = rng.randint(low, high)
    tokens: list[str] = []
    if rng.random() < mention:
        tokens.append(f"<@{rng.choice(users)}>")
        if rng.random() < 0.2:
            tokens.append(f"<@{rng.choice(users)}>")
    if rng.random() < link:
        tokens.append(rng.choice(_LINKS).format(n=rng.randint(1, 9999)))
    if rng.random() < extra:
        tokens.append(rng.choice(_EXTRAS).strip())
    words: list[str] = []
    size = sum(len(t) + 1 for t in tokens)
    while size < target:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    for token in tokens:
        words.insert(rng.randint(0, len(words)), token)
    return " ".join(words)


@dataclass
class Dataset:
    """What the build made: the ids the measurements need."""

    channels: list[str]
    users: list[str]
    big_channel: str = ""
    big_thread_ts: str = ""
    big_last_ts: str = ""
    big_size: int = 0
    small_channel: str = ""
    small_thread_ts: str = ""
    small_last_ts: str = ""
    small_size: int = 0
    asker: str = ""
    busy_channel: str = ""
    busy_thread_ts: str = ""
    last_t_us: int = 0
    user_texts: list[str] = field(default_factory=list)
    messages: int = 0
    threads: int = 0
    bot_messages: int = 0


@dataclass
class _Special:
    """A thread planted at chosen positions of the timeline: 5 people and the bot, alternating."""

    channel: str
    positions: list[int]
    people: list[str]
    thread_ts: str = ""
    last_ts: str = ""

    def author(self, k: int) -> str:
        """k-th message's author: people and the bot alternate, and the last one is a person's
        (the post being answered)."""
        if k % 2 == 1 and k != len(self.positions) - 1:
            return BOT_USER_ID
        return self.people[(k // 2) % len(self.people)]


def generate(n: int, thread: int, rng: random.Random, data: Dataset) -> Iterator[list[dict[str, Any]]]:
    """``n`` messages in time order, in batches of ``BATCH`` rows for ``save_messages``.

    ~500 channels of Zipf-like activity; most messages are replies in threads of 1-50 replies,
    interleaved in time with each other; about 5% of replies are the bot's. People's texts are
    50-400 characters (a quarter with a ``<@U...>`` mention, a tenth with a link), the bot's
    answers 300-1500 (QwQ answers run long; they are what fills the budget). Two planted
    threads: the big one (``thread`` messages, parent at the middle of the timeline, replies
    spread over the following stretch) and a small one of ``SMALL_THREAD`` messages earlier.
    """
    channels, users = data.channels, data.users
    cum = list(_cumulative([1 / (i + 1) ** 0.9 for i in range(len(channels))]))
    user_pool = [_text(rng, users, 50, 400, mention=0.25, link=0.1, extra=0.1) for _ in range(4096)]
    mention_pool = [f"<@{BOT_USER_ID}> {t}" for t in user_pool[:512]]
    bot_pool = [_text(rng, users, 300, 1500, mention=0.1, link=0.15, extra=0.1) for _ in range(1024)]
    data.user_texts = user_pool

    # Planted threads: the big one in the busiest channel, the small one in the second busiest.
    mid = n // 2
    big_spread = min(n - mid, thread * 25)
    small_start = n // 4
    small_spread = min(mid - small_start - 1, SMALL_THREAD * 25)
    people = users[:5]
    big = _Special(channels[0], [mid, *sorted(rng.sample(range(mid + 1, mid + big_spread), thread - 1))],
                   people)
    small = _Special(channels[1], [small_start, *sorted(
        rng.sample(range(small_start + 1, small_start + small_spread), SMALL_THREAD - 1))], people)
    planted: dict[int, tuple[_Special, int]] = {}
    for special in (big, small):
        for k, position in enumerate(special.positions):
            planted[position] = (special, k)

    step_us = max(1, SPAN_S * 1_000_000 // n)
    t_us = T0_US
    open_threads: dict[str, list[list[Any]]] = {c: [] for c in channels}  # [thread_ts, replies left]
    last_parent: dict[str, str] = {}
    batch: list[dict[str, Any]] = []
    picks: list[str] = []
    for i in range(n):
        t_us += rng.randint(1, 2 * step_us)
        ts = ts_of(t_us)
        hit = planted.get(i)
        if hit is not None:
            special, k = hit
            author = special.author(k)
            if k == 0:
                special.thread_ts = ts
            special.last_ts = ts
            is_bot = author == BOT_USER_ID
            if is_bot:
                text = rng.choice(bot_pool)
                data.bot_messages += 1
            else:
                text = rng.choice(mention_pool if rng.random() < 0.3 else user_pool)
            batch.append({"channel_id": special.channel, "ts": ts, "thread_ts": special.thread_ts,
                          "user_id": author, "text": text, "is_bot": int(is_bot),
                          "bot_id": BOT_ID if is_bot else None})
        else:
            if not picks:
                picks = rng.choices(channels, cum_weights=cum, k=BATCH)
            channel = picks.pop()
            threads = open_threads[channel]
            if threads and (len(threads) >= 30 or rng.random() < 0.8):
                j = rng.randrange(len(threads))
                entry = threads[j]
                thread_ts = entry[0]
                entry[1] -= 1
                if entry[1] <= 0:
                    threads[j] = threads[-1]
                    threads.pop()
                if rng.random() < 0.05:
                    batch.append({"channel_id": channel, "ts": ts, "thread_ts": thread_ts,
                                  "user_id": BOT_USER_ID, "text": rng.choice(bot_pool), "is_bot": 1,
                                  "bot_id": BOT_ID})
                    data.bot_messages += 1
                else:
                    batch.append({"channel_id": channel, "ts": ts, "thread_ts": thread_ts,
                                  "user_id": rng.choice(users), "text": rng.choice(user_pool)})
            else:
                replies = min(50, 1 + int(rng.expovariate(1 / 8))) if rng.random() < 0.85 else 0
                thread_ts = ts if replies else None
                if replies:
                    threads.append([ts, replies])
                    last_parent[channel] = ts
                    data.threads += 1
                batch.append({"channel_id": channel, "ts": ts, "thread_ts": thread_ts,
                              "user_id": rng.choice(users), "text": rng.choice(user_pool)})
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch

    data.messages = n
    data.last_t_us = t_us
    data.big_channel, data.big_thread_ts, data.big_last_ts = big.channel, big.thread_ts, big.last_ts
    data.big_size = len(big.positions)
    data.small_channel, data.small_thread_ts = small.channel, small.thread_ts
    data.small_last_ts, data.small_size = small.last_ts, len(small.positions)
    data.asker = big.author(len(big.positions) - 1)
    data.busy_channel = channels[0]
    data.busy_thread_ts = last_parent.get(channels[0]) or big.thread_ts


def _cumulative(weights: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def build(store: Store, n: int, thread: int, events: int, rng: random.Random) -> tuple[Dataset, float]:
    started = time.perf_counter()
    channels = [f"C{i:08X}" for i in range(N_CHANNELS)]
    users = [f"U{i:08X}" for i in range(N_USERS)]
    for i, user_id in enumerate(users):
        store.save_user(user_id=user_id, display_name=f"Person {i:03d}", real_name=f"Person Number {i}",
                        tz=_TZS[i % len(_TZS)], is_bot=0)
    store.save_user(user_id=BOT_USER_ID, display_name=BOT_NAME, real_name=BOT_NAME, tz=None, is_bot=1)
    data = Dataset(channels=channels, users=users)
    for batch in generate(n, thread, rng, data):
        store.save_messages(batch)
    _fill_events(store, events, rng)
    return data, time.perf_counter() - started


def _fill_events(store: Store, count: int, rng: random.Random) -> None:
    """Past deliveries, so claim_event inserts into a table of realistic size. The same INSERT as
    ``Store.claim_event``, batched per transaction (one commit per row would only slow the build)."""
    now = store.clock()
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        rows = [(f"Ev{rng.getrandbits(64):016X}", "message", "", "", now - rng.random() * SPAN_S)
                for _ in range(size)]
        with store.atomic():
            store.db.conn.executemany(
                "INSERT OR IGNORE INTO slack_events (event_id, event_type, channel_id, ts, received_at)"
                " VALUES (?, ?, ?, ?, ?)", rows)
        done += size


# ----------------------------------------------------------------------------- Slack stub


class OfflineSlack:
    """Stands in for AsyncWebClient: answers ``conversations.info`` only while ``open`` (the
    warm-up that fills ContextBuilder's place cache); every other call, and any call once closed,
    raises, so a timed run cannot touch the network."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.open = True
        self.calls: list[str] = []

    async def conversations_info(self, *, channel: str, **_: Any) -> dict[str, Any]:
        self.calls.append("conversations.info")
        if not self.open:
            raise AssertionError(f"conversations.info({channel}) during a timed run")
        return {"ok": True, "channel": {"id": channel, "name": self.names.get(channel, "general"),
                                        "is_private": False, "is_im": False, "is_mpim": False}}

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def refuse(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"Slack call {name} in the benchmark: the store should have answered")

        return refuse


# ----------------------------------------------------------------------------- measurements


async def time_context(builder: ContextBuilder, slack: OfflineSlack, *, channel: str, thread_ts: str,
                       last_ts: str, asker: str, size: int, iterations: int,
                       store: Store) -> dict[str, Any]:
    async def once() -> Prompt:
        return await builder.for_thread(channel, thread_ts, request_ts=last_ts, asker=asker)

    slack.open = True  # the first call may fill the place cache
    t = time.perf_counter_ns()
    prompt = await once()
    first_ns = time.perf_counter_ns() - t
    for _ in range(WARMUPS - 1):
        await once()
    slack.open = False
    calls_before = len(slack.calls)
    samples: list[int] = []
    for _ in range(iterations):
        t = time.perf_counter_ns()
        prompt = await once()
        samples.append(time.perf_counter_ns() - t)
    reads: list[int] = []
    for _ in range(iterations):
        t = time.perf_counter_ns()
        rows = store.thread_messages(channel, thread_ts)
        reads.append(time.perf_counter_ns() - t)
    counter = builder.counter
    return {
        "tokenizer": counter.name,
        # the prompt counted whole, message by message, against the sum of parts it was priced at
        "counted_whole_tokens": counter.prompt_tokens(prompt.messages),
        "thread_messages": size,
        "rows_read": len(rows),
        "included": prompt.included,
        "omitted": prompt.omitted,
        "estimated_tokens": prompt.estimated_tokens,
        "prompt_messages": len(prompt.messages),
        "iterations": iterations,
        "warmups": WARMUPS,
        "first_call_ms": round(first_ns / 1e6, 4),
        "ms": summary(samples, "ms"),
        "store_read_ms": summary(reads, "ms"),
        "slack_calls_while_timed": len(slack.calls) - calls_before,
    }


def time_inserts(store: Store, data: Dataset, runs: int, rng: random.Random) -> dict[str, Any]:
    t_us = data.last_t_us
    args = []
    for _ in range(runs):
        t_us += rng.randint(1, 5_000_000)
        args.append((ts_of(t_us), rng.choice(data.users), rng.choice(data.user_texts)))
    data.last_t_us = t_us
    before = len(store.thread_messages(data.busy_channel, data.busy_thread_ts))
    samples: list[int] = []
    for ts, user_id, text in args:
        t = time.perf_counter_ns()
        store.save_message(channel_id=data.busy_channel, ts=ts, thread_ts=data.busy_thread_ts,
                           user_id=user_id, text=text)
        samples.append(time.perf_counter_ns() - t)
    stored = len(store.thread_messages(data.busy_channel, data.busy_thread_ts)) - before
    return {"runs": runs, "stored": stored, "us": summary(samples, "us")}


def time_counts(data: Dataset, runs: int, rng: random.Random) -> dict[str, Any]:
    """The token count alone, as save_message computes it for each message it stores."""
    texts = [rng.choice(data.user_texts) for _ in range(runs)]
    samples: list[int] = []
    for text in texts:
        t = time.perf_counter_ns()
        message_tokens(text)
        samples.append(time.perf_counter_ns() - t)
    return {"runs": runs, "us": summary(samples, "us")}


def time_claims(store: Store, data: Dataset, runs: int, rng: random.Random) -> dict[str, Any]:
    ids = [f"Ev{rng.getrandbits(64):016X}" for _ in range(runs)]
    samples: list[int] = []
    claimed = 0
    for i, event_id in enumerate(ids):
        t = time.perf_counter_ns()
        ok = store.claim_event(event_id, event_type="message", channel_id=data.busy_channel,
                               ts=ts_of(data.last_t_us + i))
        samples.append(time.perf_counter_ns() - t)
        claimed += ok
    return {"runs": runs, "claimed": claimed, "us": summary(samples, "us")}


def file_sizes(path: Path) -> dict[str, int]:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        sizes["db" + suffix.replace("-", "_") + "_bytes"] = p.stat().st_size if p.exists() else 0
    return sizes


# ----------------------------------------------------------------------------- report


def table(result: dict[str, Any]) -> str:
    build, big, small = result["build"], result["context"], result["context_small"]
    save, claim, count = result["save_message"], result["claim_event"], result["message_tokens"]
    ctx_ok = big["ms"]["p99"] < CONTEXT_TARGET_MS
    save_ok = save["us"]["p99"] < STORE_TARGET_MS * 1000
    claim_ok = claim["us"]["p99"] < STORE_TARGET_MS * 1000
    mb = (build["db_bytes"] + build["db_wal_bytes"]) / 1e6
    n_big = big["thread_messages"]
    rows: list[tuple[str, str, str, str]] = [
        ("messages stored", f"{build['messages']:,}", "", ""),
        ("  channels / threads / users", f"{build['channels']} / {build['threads']:,} / {build['users']}",
         "", ""),
        ("  slack_events rows (pre-filled)", f"{build['events']:,}", "", ""),
        ("build time (save_messages)", f"{build['seconds']:.1f} s", "", ""),
        ("database size (db + wal)", f"{mb:.1f} MB", "", ""),
        (f"context, {n_big}-msg thread p50", f"{big['ms']['p50']:.2f} ms", "", ""),
        (f"context, {n_big}-msg thread p90", f"{big['ms']['p90']:.2f} ms", "", ""),
        (f"context, {n_big}-msg thread p99", f"{big['ms']['p99']:.2f} ms", f"< {CONTEXT_TARGET_MS:g} ms",
         "ok" if ctx_ok else "FAIL"),
        (f"context, {n_big}-msg thread max", f"{big['ms']['max']:.2f} ms", "", ""),
        ("  first call (before warm-up)", f"{big['first_call_ms']:.2f} ms", "", ""),
        ("  store.thread_messages alone p50 / p99",
         f"{big['store_read_ms']['p50']:.2f} / {big['store_read_ms']['p99']:.2f} ms", "", ""),
        ("  turns included / omitted", f"{big['included']:,} / {big['omitted']:,}",
         f"sum = {n_big:,}", "ok" if big["included"] + big["omitted"] == n_big else "FAIL"),
        (f"  prompt tokens ({big['tokenizer']}, summed parts)", f"{big['estimated_tokens']:,}",
         f"<= {result['config']['budget_tokens']:,}", ""),
        ("  the same prompt counted whole", f"{big['counted_whole_tokens']:,}",
         f"<= {big['estimated_tokens']:,}", ""),
        (f"context, {small['thread_messages']}-msg thread p50 / p99",
         f"{small['ms']['p50']:.2f} / {small['ms']['p99']:.2f} ms", "", ""),
        ("  turns included / omitted", f"{small['included']} / {small['omitted']}", "", ""),
        ("save_message p50", f"{save['us']['p50']:.1f} µs", "", ""),
        ("save_message p99", f"{save['us']['p99']:.1f} µs", f"< {STORE_TARGET_MS * 1000:g} µs",
         "ok" if save_ok else "FAIL"),
        ("save_message max", f"{save['us']['max']:.1f} µs", "", ""),
        ("  its token count alone p50 / p99", f"{count['us']['p50']:.1f} / {count['us']['p99']:.1f} µs",
         "", ""),
        ("claim_event p50", f"{claim['us']['p50']:.1f} µs", "", ""),
        ("claim_event p99", f"{claim['us']['p99']:.1f} µs", f"< {STORE_TARGET_MS * 1000:g} µs",
         "ok" if claim_ok else "FAIL"),
        ("claim_event max", f"{claim['us']['max']:.1f} µs", "", ""),
    ]
    header = ("metric", "value", "target", "status")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = (f"percentiles: {PERCENTILE_METHOD}; context: {big['iterations']} timed runs after {WARMUPS} "
            f"warm-ups; store: {save['runs']} runs each")
    return "\n".join([*lines, note])


async def run(args: argparse.Namespace, db_path: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    settings = load_settings({"QWQBOT_DB": str(db_path)}, env_file=None)
    store = open_store(db_path)
    try:
        events = args.messages if args.events is None else args.events
        data, seconds = build(store, args.messages, args.thread, events, rng)
        slack = OfflineSlack({c: f"channel-{i}" for i, c in enumerate(data.channels)})
        client = cast(AsyncWebClient, slack)
        builder = ContextBuilder(settings=settings, store=store, channels=Channels(client),
                                 people=People(store, client), bot_user_id=BOT_USER_ID, bot_id=BOT_ID,
                                 bot_name=BOT_NAME)
        freeze_startup_heap()  # as `qwqbot run` does once it has started
        big = await time_context(builder, slack, channel=data.big_channel, thread_ts=data.big_thread_ts,
                                 last_ts=data.big_last_ts, asker=data.asker, size=data.big_size,
                                 iterations=args.iterations, store=store)
        small = await time_context(builder, slack, channel=data.small_channel,
                                   thread_ts=data.small_thread_ts, last_ts=data.small_last_ts,
                                   asker=data.asker, size=data.small_size, iterations=args.iterations,
                                   store=store)
        save = time_inserts(store, data, args.inserts, rng)
        counts = time_counts(data, args.inserts, rng)
        claim = time_claims(store, data, args.inserts, rng)
        sizes = file_sizes(db_path)
        slack_calls = sorted(set(slack.calls))
    finally:
        store.close()
    result: dict[str, Any] = {
        "config": {
            "messages": args.messages, "thread": args.thread, "iterations": args.iterations,
            "inserts": args.inserts, "seed": args.seed, "db": str(db_path) if args.db else None,
            "context_tokens": settings.context_tokens, "max_tokens": settings.max_tokens,
            "budget_tokens": settings.context_tokens - settings.max_tokens,
            "percentile_method": PERCENTILE_METHOD, "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version,
        },
        "build": {"messages": data.messages, "channels": len(data.channels), "users": len(data.users),
                  "threads": data.threads, "bot_messages": data.bot_messages, "events": events,
                  "seconds": round(seconds, 2), **sizes},
        "context": big,
        "context_small": small,
        "save_message": save,
        "message_tokens": counts,
        "claim_event": claim,
        "slack_calls": slack_calls,
    }
    checks = {
        "context_p99": big["ms"]["p99"] < CONTEXT_TARGET_MS,
        "save_message_p99": save["us"]["p99"] < STORE_TARGET_MS * 1000,
        "claim_event_p99": claim["us"]["p99"] < STORE_TARGET_MS * 1000,
        "turns_accounted": big["included"] + big["omitted"] == data.big_size,
    }
    result["targets"] = {"context_p99_ms": CONTEXT_TARGET_MS, "store_p99_ms": STORE_TARGET_MS,
                         "checks": checks, "ok": all(checks.values())}
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages to store")
    parser.add_argument("--thread", type=int, default=2000, help="messages in the big thread")
    parser.add_argument("--iterations", type=int, default=200, help="timed context assemblies")
    parser.add_argument("--inserts", type=int, default=10_000, help="timed save_message/claim_event calls")
    parser.add_argument("--events", type=int, default=None,
                        help="past Slack deliveries pre-filled in slack_events (default: --messages)")
    parser.add_argument("--db", type=Path, default=None, help="database file (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON result here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.thread < 2 or args.iterations < 1 or args.inserts < 1 or (args.events or 0) < 0:
        parser.error("--thread must be >= 2, --iterations and --inserts >= 1")
    if args.messages < max(4 * args.thread, 40 * SMALL_THREAD):
        parser.error(f"--messages must be at least max(4 x --thread, {40 * SMALL_THREAD})")
    if args.db is not None and args.db.exists():
        parser.error(f"--db {args.db} exists: give a new path (the benchmark builds its own data)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qwqbot-bench-") as tmp:
        db_path = args.db if args.db is not None else Path(tmp) / "bench.db"
        result = asyncio.run(run(args, db_path))
    print(table(result))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 1 if args.check and not result["targets"]["ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
