"""Loopback fake of the Slack Web API speaking the real wire format.

The real ``slack_sdk`` clients work against it unchanged::

    with FakeSlack() as slack:
        slack.add_user("U1", name="alice")
        slack.add_channel("C1", name="general", members={"U1"})
        client = AsyncWebClient(token="xoxb-test-token", base_url=slack.api_url)
        ...
        assert slack.messages("C1")[-1]["text"] == "hi"

It runs an aiohttp server on ``127.0.0.1`` (random free port) in a background
thread with its own event loop, so it serves synchronous tests, async tests on
any loop and subprocesses alike (``python -m tests.fakes.slack_api`` serves one
standalone and prints ``api_url``; ``GET /_fake/state`` dumps its state).

Wire format, as slack_sdk 3.48 sends it (see ``slack_sdk/web/async_base_client.py``):

* ``POST {api_url}{method}``; ``api_url`` ends with ``/`` and the SDK joins it
  with ``urljoin``.  Some methods send a JSON body (chat.postMessage,
  chat.update, chat.postEphemeral, views.publish, assistant.threads.setStatus),
  most send ``params=`` - the async client puts those in the *query string*
  (empty form body), the sync ``WebClient`` puts them in a form-urlencoded
  body.  All three sources are merged; JSON-in-a-string fields (``blocks``,
  ``attachments``, ``files``, ``view``, ...) are decoded.
* The token arrives as ``Authorization: Bearer ...`` (or a ``token`` param).
  Missing -> ``not_authed``, wrong -> ``invalid_auth``.
* Errors are HTTP 200 with ``{"ok": false, "error": ...}``, like Slack; only rate
  limits (429 + ``Retry-After``, see below) and injected server errors differ.  Note
  ``AsyncRateLimitErrorRetryHandler`` sleeps ``Retry-After + random()`` seconds.
* files people share (``add_file``): served at their ``url_private_download`` on this
  server (``GET /files-pri/...``) only with the bot token as ``Authorization: Bearer``;
  without it, like Slack, a 200 HTML sign-in page instead of the file. ``refuse_file``
  makes the download answer 403/404 (or that sign-in page), ``stall_file`` makes it wait
  (headers sent, no body) for a while, ``delete_file`` deletes it (404 afterwards, ``file_not_found`` from
  files.info) and returns the ``file_deleted`` event Slack would send.  Every download is
  in ``file_downloads`` (file id, token).  ``files.info`` describes any file.
* files_upload_v2: ``files.getUploadURLExternal`` returns an ``upload_url`` on
  this server; the SDK POSTs the raw bytes there (no multipart) and expects
  200 ``text/plain`` (``OK - <size>``); ``files.completeUploadExternal`` gets
  ``files`` as a JSON string plus ``channel_id``/``thread_ts``/``initial_comment``.

Behaviour chosen to match Slack rather than to be convenient:

* private channel the bot is not in -> ``channel_not_found`` (Slack hides it);
  public channel -> ``not_in_channel``.  IMs never fail membership.
* ``channel`` may be an ID, ``#name`` or a user ID (chat.postMessage to ``U..``
  posts into the bot's DM with that user, and the response names the ``D..``).
* posting with ``thread_ts`` of a reply lands in the parent's thread.
* chat.update/chat.delete of a message the bot did not post ->
  ``cant_update_message`` / ``cant_delete_message``; deleting a parent that has
  replies leaves a ``tombstone``.
* conversations.replies returns the parent first on the *first* page only and
  ``limit`` counts it; cursors are opaque base64 strings.
* ``ts`` values follow the wall clock (strictly increasing, µs resolution), so
  ``oldest=time.time() - 3600`` style windows work; pass ``start_ts=`` for a
  deterministic sequence (``start_ts``, ``+0.0001``, ...).
* token types are not interchangeable: ``apps.connections.open`` wants the
  app-level token (``xapp-...``), every other method the bot token; the other
  one of the two -> ``not_allowed_token_type``, anything else -> ``invalid_auth``.

Rate limits, on by default (``FakeSlack(rate_limits=False)`` or ``set_rate_limits(False)``
turns them off), as https://docs.slack.dev/apis/web-api/rate-limits describes them: per
method per workspace, Tier 1/2/3/4 = 1/20/50/100 calls a minute.  The table (method ->
tier, each row citing its https://docs.slack.dev/reference/methods/<method> page) and the
limiter live in ``tests/fakes/rate_limits.py``:

* every method this fake serves is limited by a SLIDING 60 s window; a call admitted at
  ``t`` frees its place at ``t + 60``.  Special methods without a published number
  (auth.test, chat.getPermalink: 600/min; assistant.threads.setStatus: 60/min per
  channel) use figures chosen there; ``set_method_limit(method, per_minute=N)`` overrides
  any row for a test.
* chat.postMessage (https://docs.slack.dev/reference/methods/chat.postMessage, "Rate
  limiting": ~1 message per second per channel, short bursts tolerated, plus a workspace
  ceiling of "several hundred" a minute): a bucket of 5 per channel refilled 1/s
  (``set_post_rate``) and 300 a minute over the workspace.  chat.startStream is assumed to
  spend the same posting budget (undocumented: a stream opens a message in the channel).
* a refused call answers like Slack - HTTP 429, ``Retry-After: <whole seconds until there
  is room, >= 1>``, ``{"ok": false, "error": "ratelimited"}`` - and has no effect.  Only
  admitted calls count.  The SDK raises ``SlackApiError`` (status 429, headers) unless a
  retry handler is installed.
* the clock is injectable (``clock=``, default ``time.monotonic``) so limit tests need no
  sleeping.  Seeding helpers (``add_message`` ...), ``/_fake/*``, uploads and response_url
  posts are never limited; injected faults (``rate_limit_next`` ...) go first and do not
  spend the budget.
* ``limited_calls`` lists the limit-driven 429s (``LimitedCall``), ``rate_limit_stats()``
  counts them per method, channel and rule (injected 429s separately); every ``Call`` has
  ``at`` (monotonic) and ``wall`` (``time.time()``); ``GET /_fake/state`` shows the table.

Socket Mode, as ``slack_sdk.socket_mode.aiohttp.SocketModeClient`` (what Bolt's
``AsyncSocketModeHandler`` runs) speaks it:

* ``apps.connections.open`` (Bearer app token) -> ``{"ok": true, "url":
  "ws://127.0.0.1:PORT/socket/<ticket>"}``; tickets stay valid while the fake
  runs (the SDK reuses ``wss_uri`` when ``connect()`` is called again).
* on connect the server sends ``{"type": "hello", "num_connections",
  "debug_info", "connection_info": {"app_id"}}``, answers pings with pongs and
  records every JSON message the client sends (acks ``{"envelope_id",
  "payload"?}``) in ``socket_acks``.
* ``send_socket_event`` / ``send_socket_command`` / ``send_socket_interactive``
  push ``events_api`` / ``slash_commands`` / ``interactive`` envelopes to the
  newest live connection; ``send_socket_disconnect`` sends ``{"type":
  "disconnect"}`` (the SDK then opens a new connection and closes the old one);
  ``drop_sockets`` closes connections server-side (the SDK reconnects).
* ``stop()`` sends a close frame (1001 going away) to every connection and waits
  at most ``SOCKET_CLOSE_TIMEOUT`` for the clients' replies.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import copy
import json
import mimetypes
import random
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fakes.rate_limits import RateLimiter, Rule
from tests.fakes.threaded import ThreadedServer

__all__ = ["Call", "FakeFile", "FakeSlack", "LimitedCall", "SlackApiFault"]

JSON: TypeAlias = dict[str, Any]
_T = TypeVar("_T")

# Limits Slack enforces (https://docs.slack.dev/reference/block-kit/blocks,
# https://docs.slack.dev/reference/methods/chat.postMessage#truncating).
MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_MARKDOWN_TEXT = 12_000
MAX_ATTACHMENTS = 100
MAX_RESPONSE_URL_USES = 5

# Longest stop() waits for Socket Mode clients to answer the close frame.
SOCKET_CLOSE_TIMEOUT = 0.5

# Methods that take the app-level token (xapp-...) instead of the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

# Interactive payload types whose envelope lets the ack carry a response payload.
_INTERACTIVE_WITH_RESPONSE = frozenset({"view_submission", "block_suggestion", "dialog_suggestion"})

# Fields that travel as JSON inside a string when form/query encoded.
_JSON_STRING_FIELDS = frozenset(
    {"blocks", "attachments", "metadata", "view", "files", "loading_messages", "prompts", "chunks"}
)

_TZ_LABELS = {
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
    "UTC": "Coordinated Universal Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "JST": "Japan Standard Time",
}


#: What Slack serves at a file's URL to a request without the right token.
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


@dataclass(frozen=True)
class Call:
    """One Web API request as received (recorded on arrival, before latency/faults)."""

    method: str
    params: JSON
    token: str | None
    at: float  # time.monotonic()
    wall: float  # time.time()


@dataclass(frozen=True)
class LimitedCall:
    """A call refused with HTTP 429 because a rate limit had no room (not an injected fault)."""

    call: Call
    rule: Rule  # "method" window, "channel_posts" bucket or "workspace_posts" window
    retry_after: int  # the Retry-After header sent
    channel: str | None  # the conversation the call named (resolved to its ID), if any
    at: float  # the limiter's clock


@dataclass
class FakeFile:
    """A file created by files.getUploadURLExternal (content set by the upload POST)."""

    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    title: str | None = None
    content: bytes | None = None
    completed: bool = False
    shares: list[JSON] = field(default_factory=list)  # [{"channel": ..., "ts": ..., "thread_ts": ...}]
    # Files people share (add_file): their own type, owner and download behaviour.
    user: str | None = None
    mimetype: str | None = None
    filetype: str | None = None
    mode: str = "hosted"
    external: bool = False
    deleted: bool = False
    refuse_status: int | None = None  # the download answers this status instead
    stall_seconds: float = 0.0  # the download sends its headers, then waits this long


class SlackApiFault(Exception):
    """Raised by method handlers; becomes ``{"ok": false, "error": ..., **extra}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _Fault:
    kind: Literal["error", "ratelimit", "server"]
    error: str = ""
    extra: JSON = field(default_factory=dict)
    retry_after: int = 1
    status: int = 500


@dataclass
class _Channel:
    id: str
    name: str
    is_private: bool
    is_im: bool
    members: set[str]
    created: int
    is_archived: bool = False
    user: str | None = None  # the other party of an IM
    creator: str = ""  # conversations.info's `creator`


def _ts_to_us(ts: str) -> int:
    """'1700000000.000100' -> microseconds; raises ValueError on garbage."""
    s = str(ts).strip()
    sec, _, frac = s.partition(".")
    if not sec.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad ts {ts!r}")
    return int(sec) * 1_000_000 + int((frac + "000000")[:6])


def _us_to_ts(us: int) -> str:
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _truthy(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    return str(v).strip().lower() in {"1", "true", "yes", "on"}


def _encode_cursor(kind: str, value: str) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _decode_cursor(cursor: Any, kind: str) -> str | None:
    if cursor in (None, ""):
        return None
    try:
        k, _, v = base64.b64decode(str(cursor), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise SlackApiFault("invalid_cursor") from e
    if k != kind or not v:
        raise SlackApiFault("invalid_cursor")
    return v


def _index_cursor(cursor: Any) -> int:
    raw = _decode_cursor(cursor, "next_idx")
    if raw is None:
        return 0
    if not raw.isdigit():
        raise SlackApiFault("invalid_cursor")
    return int(raw)


def _limit(p: JSON, default: int = 100, maximum: int = 1000) -> int:
    raw = p.get("limit")
    if raw in (None, "", 0, "0"):
        return default
    try:
        n = int(raw)
    except (TypeError, ValueError) as e:
        raise SlackApiFault("invalid_limit") from e
    return max(1, min(n, maximum))


def _text_of(obj: Any) -> str:
    """Text of a text object ({"type": "mrkdwn", "text": ...}) or a plain string."""
    if isinstance(obj, dict):
        t = obj.get("text")
        return t if isinstance(t, str) else ""
    return obj if isinstance(obj, str) else ""


def _validate_blocks(blocks: Any) -> list[JSON]:
    """Apply Slack's documented block limits; returns the blocks or raises invalid_blocks."""
    if not isinstance(blocks, list):
        raise SlackApiFault("invalid_blocks_format")
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    markdown_total = 0
    for i, b in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            errors.append(f"must provide an object with a type [json-pointer:{where}]")
            continue
        kind = b["type"]
        if kind == "section":
            text = _text_of(b.get("text"))
            fields = b.get("fields")
            if len(text) > MAX_SECTION_TEXT:
                errors.append(
                    f"must be less than {MAX_SECTION_TEXT + 1} characters [json-pointer:{where}/text/text]"
                )
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
                    errors.append(
                        f"no more than {MAX_SECTION_FIELDS} items allowed [json-pointer:{where}/fields]"
                    )
                else:
                    for j, f in enumerate(fields):
                        if len(_text_of(f)) > MAX_SECTION_FIELD_TEXT:
                            errors.append(
                                f"must be less than {MAX_SECTION_FIELD_TEXT + 1} characters "
                                f"[json-pointer:{where}/fields/{j}/text]"
                            )
            if not text and not fields:
                errors.append(f"must provide either text or fields [json-pointer:{where}]")
        elif kind == "header":
            text_obj = b.get("text")
            if not isinstance(text_obj, dict) or text_obj.get("type") != "plain_text":
                errors.append(f"must be a plain_text object [json-pointer:{where}/text]")
            elif len(_text_of(text_obj)) > MAX_HEADER_TEXT:
                errors.append(
                    f"must be less than {MAX_HEADER_TEXT + 1} characters [json-pointer:{where}/text/text]"
                )
        elif kind == "markdown":
            md = b.get("text")
            if not isinstance(md, str):
                errors.append(f"must provide a string [json-pointer:{where}/text]")
                continue
            markdown_total += len(md)
            if len(md) > MAX_MARKDOWN_TEXT:
                errors.append(
                    f"must be less than {MAX_MARKDOWN_TEXT + 1} characters [json-pointer:{where}/text]"
                )
    if markdown_total > MAX_MARKDOWN_TEXT:
        errors.append(
            f"markdown blocks together must be less than {MAX_MARKDOWN_TEXT + 1} characters "
            "[json-pointer:/blocks]"
        )
    if errors:
        raise SlackApiFault(
            "invalid_blocks",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
        )
    return blocks


def _tz_info(tz: str) -> tuple[str, int]:
    """(tz_label, tz_offset seconds) for an IANA zone, now."""
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return ("Coordinated Universal Time", 0)
    abbrev = now.tzname() or tz
    offset = now.utcoffset()
    return (_TZ_LABELS.get(abbrev, abbrev), int(offset.total_seconds()) if offset else 0)


Handler: TypeAlias = Callable[[JSON], JSON]


class FakeSlack(ThreadedServer):
    """Fake Slack workspace + Web API. Thread-safe; see module docstring."""

    _thread_name = "FakeSlack"

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T1",
        user_tz: str = "Europe/Berlin",
        team_name: str = "Fake Team",
        bot_name: str = "qwqbot",
        app_id: str = "A1",
        start_ts: float | None = None,
        rate_limits: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.user_tz = user_tz
        self.team_name = team_name
        self.bot_name = bot_name
        self.app_id = app_id
        self.workspace_url = "https://fake.slack.com/"

        # Observable state (read freely; mutate through the methods).
        self.calls: list[Call] = []
        #: Web API method -> most calls of it in flight at once (answered or not yet)
        self.peak_in_flight: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self.responses: dict[str, list[JSON]] = collections.defaultdict(list)
        self.ephemerals: list[JSON] = []
        self.views: dict[str, JSON] = {}
        self.assistant_statuses: list[JSON] = []
        self.assistant_titles: list[JSON] = []
        self.assistant_prompts: list[JSON] = []
        self.files: dict[str, FakeFile] = {}
        # Socket Mode: envelopes sent to clients, and every JSON message (acks) they sent back.
        self.socket_envelopes: list[JSON] = []
        self.socket_acks: list[JSON] = []
        self.socket_pings = 0
        # Every call answered with HTTP 429: injected (rate_limit_next / rate_limit_share) or
        # refused by a rate limit (those are also in limited_calls, with the reason).
        self.rate_limited_calls: list[Call] = []
        self.limited_calls: list[LimitedCall] = []

        self._lock = threading.RLock()
        self._users: dict[str, JSON] = {}
        self._channels: dict[str, _Channel] = {}
        self._messages: dict[str, dict[str, JSON]] = {}
        self._faults: dict[str, collections.deque[_Fault]] = collections.defaultdict(collections.deque)
        self._down: dict[str, int] = {}  # method -> HTTP status served until server_up
        self._latency = 0.0
        self._random_limit: dict[str, float] = {}  # method -> share of calls answered 429
        self._random_retry_after = 1
        self._random = random.Random(0)
        self._limits_on = rate_limits
        self._limiter = RateLimiter(clock)
        self._last_ts_us = 0 if start_ts is None else round(start_ts * 1_000_000) - 100
        self._deterministic_ts = start_ts is not None
        self._file_seq = 0
        self._view_seq = 0
        self._response_seq = 0
        self._streaming: set[tuple[str, str]] = set()
        self._socket_tickets: set[str] = set()
        self._sockets: dict[int, web.WebSocketResponse] = {}  # connection seq -> live websocket
        self._socket_seq = 0
        self._event_seq = 0

        super().__init__()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

        self._dispatch: dict[str, Handler] = {
            "api.test": self._api_test,
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "conversations.open": self._conversations_open,
            "conversations.join": self._conversations_join,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setTitle": self._assistant_set_title,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_prompts,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
        }
        #: (file id, token sent) of every download of a file, in order
        self.file_downloads: list[tuple[str, str | None]] = []

        self.add_user(bot_user_id, name=bot_name, real_name=bot_name, display_name=bot_name, is_bot=True)

    # ------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def _files_url(self) -> str:
        return f"{self.base_url}/files-pri" if self._port is not None else "https://files.fake.slack.com/files-pri"

    @property
    def api_url(self) -> str:
        """What to pass as ``base_url`` to slack_sdk clients (trailing slash included)."""
        return f"{self.base_url}/api/"


    # ------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``predicate`` (on the caller's loop) until true; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.01)

    def wait_for_sync(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(0.01)

    def messages(self, channel: str, thread_ts: str | None = None) -> list[JSON]:
        """Current messages ordered by ts (copies, with thread metadata on parents).

        Without ``thread_ts``: every message in the channel, replies included
        (filter on ``m.get("thread_ts")`` if needed).  With it: the parent (if
        present) and its replies.
        """
        with self._lock:
            if channel not in self._channels:
                raise KeyError(f"unknown channel {channel!r}")
            index = self._thread_index(channel)
            msgs = self._messages[channel]
            if thread_ts is None:
                chosen = list(msgs.values())
            else:
                chosen = [m for m in msgs.values() if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]
            chosen.sort(key=lambda m: _ts_to_us(m["ts"]))
            return [self._present(m, index) for m in chosen]

    def file_content(self, file_id: str) -> bytes | None:
        with self._lock:
            return self.files[file_id].content

    def snapshot(self) -> JSON:
        """JSON-able dump of the observable state (also served at ``GET /_fake/state``)."""
        with self._lock:
            return {
                "calls": [asdict(c) for c in self.calls],
                "rate_limits": self.rate_limit_table(),
                "rate_limit_stats": self.rate_limit_stats(),
                "messages": {cid: self.messages(cid) for cid in self._channels},
                "ephemerals": copy.deepcopy(self.ephemerals),
                "responses": copy.deepcopy(dict(self.responses)),
                "views": copy.deepcopy(self.views),
                "assistant_statuses": copy.deepcopy(self.assistant_statuses),
                "socket_envelopes": copy.deepcopy(self.socket_envelopes),
                "socket_acks": copy.deepcopy(self.socket_acks),
                "files": {
                    fid: {**asdict(f), "content": None if f.content is None else f.content.decode("latin-1")}
                    for fid, f in self.files.items()
                },
            }

    # ------------------------------------------------------- workspace state

    def add_user(
        self,
        user_id: str,
        *,
        name: str,
        real_name: str | None = None,
        display_name: str | None = None,
        tz: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
    ) -> None:
        zone = tz or self.user_tz
        label, offset = _tz_info(zone)
        real = real_name if real_name is not None else name
        display = display_name if display_name is not None else ""
        profile: JSON = {
            "real_name": real,
            "real_name_normalized": real,
            "display_name": display,
            "display_name_normalized": display,
            "team": self.team_id,
        }
        if is_bot and user_id == self.bot_user_id:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = self.app_id
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "deleted": False,
                "real_name": real,
                "tz": zone,
                "tz_label": label,
                "tz_offset": offset,
                "profile": profile,
                "is_admin": is_admin,
                "is_owner": False,
                "is_primary_owner": False,
                "is_restricted": False,
                "is_ultra_restricted": False,
                "is_bot": is_bot,
                "is_app_user": False,
                "updated": int(time.time()),
            }

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str,
        is_private: bool = False,
        is_im: bool = False,
        members: set[str] | None = None,
        bot_is_member: bool = True,
        is_archived: bool = False,
        creator: str = "",
    ) -> None:
        """Create (or replace) a conversation. For an IM, ``members`` names the other user;
        ``creator`` is who conversations.info says created it."""
        mem = set(members or ())
        if bot_is_member or is_im:
            mem.add(self.bot_user_id)
        else:
            mem.discard(self.bot_user_id)
        other = next((m for m in sorted(mem) if m != self.bot_user_id), None) if is_im else None
        with self._lock:
            self._channels[channel_id] = _Channel(
                id=channel_id,
                name=name,
                is_private=is_private or is_im,
                is_im=is_im,
                members=mem,
                created=int(time.time()),
                is_archived=is_archived,
                user=other,
                creator=creator,
            )
            self._messages.setdefault(channel_id, {})

    def set_channel_creator(self, channel_id: str, user_id: str) -> None:
        with self._lock:
            self._channels[channel_id].creator = user_id

    def add_message(
        self,
        channel: str,
        *,
        user: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
        **extra: Any,
    ) -> str:
        """Seed a message (no limits applied); returns its ts. ``extra`` is merged into it."""
        with self._lock:
            if channel not in self._channels:
                raise KeyError(f"unknown channel {channel!r}; add_channel() first")
            if ts is None:
                ts = self._next_ts()
            else:
                self._last_ts_us = max(self._last_ts_us, _ts_to_us(ts))
            msg: JSON = {"type": "message", "user": user, "text": text, "ts": ts, "team": self.team_id}
            if bot_id is not None:
                msg["bot_id"] = bot_id
            if thread_ts is not None and thread_ts != ts:
                msg["thread_ts"] = thread_ts
                parent = self._messages[channel].get(thread_ts)
                if parent is not None:
                    msg["parent_user_id"] = parent.get("user")
            msg.update(extra)
            self._messages[channel][ts] = msg
            return ts

    def add_file(
        self,
        name: str,
        content: bytes,
        *,
        user: str,
        filetype: str | None = None,
        mimetype: str | None = None,
        mode: str = "hosted",
        external: bool = False,
        title: str | None = None,
    ) -> JSON:
        """A file a person uploads; returns its file object, as a ``file_share`` message
        carries it in ``files``. ``filetype``/``mimetype`` default to what the name says."""
        with self._lock:
            self._file_seq += 1
            fid = f"F{self._file_seq:08d}"
            self.files[fid] = FakeFile(
                id=fid, filename=name, length=len(content), title=title, content=content,
                completed=True, user=user, mimetype=mimetype, filetype=filetype, mode=mode,
                external=external,
            )
            return self._file_object(self.files[fid])

    def share_file(self, file_id: str, channel: str, ts: str, thread_ts: str | None = None) -> None:
        """Record that the file was shared in that message (its ``shares``)."""
        with self._lock:
            self.files[file_id].shares.append({"channel": channel, "ts": ts, "thread_ts": thread_ts})

    def refuse_file(self, file_id: str, status: int = 403) -> None:
        """Downloads of the file answer ``status`` (403: not shared with the bot, 404: gone;
        200: Slack's sign-in page, as served for a file the token may not read)."""
        with self._lock:
            self.files[file_id].refuse_status = status

    def stall_file(self, file_id: str, seconds: float) -> None:
        """Downloads of the file send their headers, then nothing for ``seconds``."""
        with self._lock:
            self.files[file_id].stall_seconds = seconds

    def delete_file(self, file_id: str) -> JSON:
        """Delete the file as its owner would; returns the ``file_deleted`` event."""
        with self._lock:
            f = self.files[file_id]
            f.deleted = True
            channels = sorted({s["channel"] for s in f.shares})
            for share in f.shares:
                msg = self._messages.get(share["channel"], {}).get(share["ts"])
                if msg is not None and msg.get("files"):
                    msg["files"] = [{"id": x["id"], "mode": "tombstone"} if x.get("id") == file_id else x
                                    for x in msg["files"]]
        return {"type": "file_deleted", "file_id": file_id, "channel_ids": channels,
                "event_ts": self._next_ts()}

    # ------------------------------------------------------- fault injection

    def fail_next(self, method: str, error: str, *, count: int = 1, **extra: Any) -> None:
        """The next ``count`` calls to ``method`` answer 200 ``{"ok": false, "error": error, **extra}``."""
        with self._lock:
            self._faults[method].extend(_Fault("error", error=error, extra=extra) for _ in range(count))

    def rate_limit_next(self, method: str, *, count: int = 1, retry_after: int = 1) -> None:
        """The next ``count`` calls answer HTTP 429 with ``Retry-After`` and error ``ratelimited``."""
        with self._lock:
            self._faults[method].extend(
                _Fault("ratelimit", error="ratelimited", retry_after=retry_after) for _ in range(count)
            )

    def rate_limit_share(
        self, methods: Iterable[str], share: float, *, retry_after: int = 1, seed: int = 0
    ) -> None:
        """From now on answer HTTP 429 (``Retry-After``, error ``ratelimited``) to a random
        ``share`` (0..1) of the calls to ``methods``, drawn from ``random.Random(seed)`` in
        arrival order; queued faults (``fail_next``, ...) go first. ``share`` 0 turns it off
        for those methods. ``rate_limited`` counts every 429 served."""
        if not 0.0 <= share <= 1.0:
            raise ValueError("share must be between 0 and 1")
        with self._lock:
            for method in methods:
                if share > 0:
                    self._random_limit[method] = share
                else:
                    self._random_limit.pop(method, None)
            self._random_retry_after = retry_after
            self._random = random.Random(seed)

    @property
    def rate_limited(self) -> int:
        """How many HTTP 429 answers were served (injected and limit-driven alike)."""
        with self._lock:
            return len(self.rate_limited_calls)

    # ----------------------------------------------------------- rate limits

    @property
    def rate_limits(self) -> bool:
        """Whether Slack's rate limits are enforced (see module docstring)."""
        with self._lock:
            return self._limits_on

    def set_rate_limits(self, enabled: bool) -> None:
        """Turn rate limits on or off; calls made while off are not counted when back on."""
        with self._lock:
            self._limits_on = enabled

    def set_method_limit(self, method: str, *, per_minute: int | None) -> None:
        """Override one method's calls per sliding minute (``None`` restores the documented
        figure).  For chat.postMessage this is the workspace-wide posting ceiling."""
        with self._lock:
            self._limiter.set_method_limit(method, per_minute)

    def set_post_rate(self, *, burst: int | None = None, per_second: float | None = None) -> None:
        """Override chat.postMessage's per-channel rule (bucket of ``burst``, refilled
        ``per_second``); ``None`` keeps the current value."""
        with self._lock:
            self._limiter.set_post_rate(burst=burst, per_second=per_second)

    def forget_rate_limits(self) -> None:
        """Empty every window and bucket, as if no call had been made (overrides stay)."""
        with self._lock:
            self._limiter.forget()

    def rate_limit_table(self) -> JSON:
        """Per method: tier, effective and documented per-minute figure, scope, source URL."""
        with self._lock:
            return {"enabled": self._limits_on, "methods": self._limiter.table()}

    def rate_limit_stats(self) -> JSON:
        """Counts of 429s: ``limited`` (by rate limits) split by method, channel and rule,
        and ``injected`` (rate_limit_next / rate_limit_share) apart."""
        with self._lock:
            limited = list(self.limited_calls)
            injected = len(self.rate_limited_calls) - len(limited)
        by_method = collections.Counter(lc.call.method for lc in limited)
        by_channel = collections.Counter(lc.channel for lc in limited if lc.channel is not None)
        by_rule = collections.Counter(lc.rule for lc in limited)
        return {
            "limited": len(limited),
            "injected": injected,
            "by_method": dict(by_method),
            "by_channel": dict(by_channel),
            "by_rule": dict(by_rule),
        }

    def server_error_next(self, method: str, *, count: int = 1, status: int = 500) -> None:
        with self._lock:
            self._faults[method].extend(
                _Fault("server", error="fatal_error", status=status) for _ in range(count)
            )

    def server_down(self, method: str, *, status: int = 500) -> None:
        """An outage of unknown length: every call to ``method`` answers HTTP ``status``
        with error ``fatal_error``, whatever its token, until ``server_up(method)``."""
        with self._lock:
            self._down[method] = status

    def server_up(self, method: str) -> None:
        with self._lock:
            self._down.pop(method, None)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._random_limit.clear()
            self._down.clear()

    def set_latency(self, seconds: float) -> None:
        """Delay every response (API, upload and response_url) by ``seconds``."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def response_url(self, key: str | None = None) -> str:
        """A slash-command style response_url; JSON posts to it land in ``responses[key]``."""
        with self._lock:
            if key is None:
                self._response_seq += 1
                key = f"r{self._response_seq}"
            self.responses.setdefault(key, [])
        return f"{self.base_url}/response/{key}"

    # ----------------------------------------------------------- socket mode

    @property
    def socket_connections(self) -> int:
        """Live Socket Mode connections (registered once ``hello`` has been sent)."""
        with self._lock:
            return sum(1 for ws in self._sockets.values() if not ws.closed)

    async def wait_socket(self, timeout: float = 5.0, *, count: int = 1) -> None:
        """Wait (on the caller's loop) until at least ``count`` clients are connected."""
        try:
            await self.wait_for(lambda: self.socket_connections >= count, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.socket_connections} Socket Mode connection(s) after {timeout}s, wanted {count}"
            ) from None

    def wait_socket_sync(self, timeout: float = 5.0, *, count: int = 1) -> None:
        try:
            self.wait_for_sync(lambda: self.socket_connections >= count, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.socket_connections} Socket Mode connection(s) after {timeout}s, wanted {count}"
            ) from None

    def send_socket_event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str | None = None,
    ) -> str:
        """Deliver ``event`` as an Events API ``event_callback`` over Socket Mode; returns the envelope_id.

        ``event`` is copied; ``event_ts`` defaults to its ``ts`` (or a fresh ts).
        ``retry_reason`` defaults to ``""`` for the first attempt, ``"timeout"`` after.
        Callable from any thread or loop; blocks until the frame is written.
        """
        body = copy.deepcopy(event)
        with self._lock:
            if "event_ts" not in body:
                body["event_ts"] = str(body["ts"]) if body.get("ts") else self._next_ts()
            if event_id is None:
                self._event_seq += 1
                event_id = f"Ev{self._event_seq:010d}"
        payload: JSON = {
            "token": "fake-verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.app_id,
            "event": body,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        if retry_reason is None:
            retry_reason = "timeout" if retry_attempt else ""
        return self._send_envelope(
            "events_api",
            payload,
            accepts_response_payload=False,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )

    def send_socket_command(self, form: JSON) -> str:
        """Deliver a slash command (the form fields as a dict) in a ``slash_commands`` envelope.

        Defaults filled in when absent: ``token``, ``team_id``, ``team_domain``,
        ``api_app_id``, ``is_enterprise_install``, ``response_url`` (a fresh
        :meth:`response_url`) and ``trigger_id``.  ``command`` is required.
        """
        if not str(form.get("command") or "").startswith("/"):
            raise ValueError("form needs a 'command' like '/qwq'")
        payload: JSON = {
            "token": "fake-verification-token",
            "team_id": self.team_id,
            "team_domain": "fake",
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "text": "",
            **copy.deepcopy(form),
        }
        payload.setdefault("response_url", self.response_url())
        payload.setdefault("trigger_id", self._trigger_id())
        return self._send_envelope("slash_commands", payload, accepts_response_payload=True)

    def send_socket_interactive(self, payload: JSON) -> str:
        """Deliver an interactivity payload (``block_actions``, ``view_submission``, ...).

        Defaults filled in when absent: ``token``, ``api_app_id``, ``team`` and
        ``trigger_id``; ``accepts_response_payload`` is true for
        view_submission / block_suggestion / dialog_suggestion, like Slack.
        """
        kind = payload.get("type")
        if not isinstance(kind, str) or not kind:
            raise ValueError("interactive payload needs a 'type' (block_actions, view_submission, ...)")
        body: JSON = {
            "token": "fake-verification-token",
            "api_app_id": self.app_id,
            "team": {"id": self.team_id, "domain": "fake"},
            "is_enterprise_install": False,
            **copy.deepcopy(payload),
        }
        body.setdefault("trigger_id", self._trigger_id())
        return self._send_envelope(
            "interactive", body, accepts_response_payload=kind in _INTERACTIVE_WITH_RESPONSE
        )

    def send_socket_disconnect(self, reason: str = "refresh_requested") -> int:
        """Send ``{"type": "disconnect", "reason": ...}`` to every live connection; returns how many."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack-socket"}}
        return self._on_loop(self._abroadcast(message))

    def drop_sockets(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        """Close every live connection server-side (close frame ``code``); returns how many."""
        return self._on_loop(self._adrop(code))

    def ack_for(self, envelope_id: str) -> JSON | None:
        """The first ack the client sent for ``envelope_id`` (a copy), or None."""
        with self._lock:
            ack = next((a for a in self.socket_acks if a.get("envelope_id") == envelope_id), None)
            return copy.deepcopy(ack)

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> JSON:
        """Wait (on the caller's loop) for the ack of ``envelope_id``; TimeoutError otherwise."""
        try:
            await self.wait_for(lambda: self.ack_for(envelope_id) is not None, timeout)
        except TimeoutError:
            raise TimeoutError(f"no ack for envelope {envelope_id} within {timeout}s") from None
        ack = self.ack_for(envelope_id)
        assert ack is not None
        return ack

    def wait_ack_sync(self, envelope_id: str, timeout: float = 5.0) -> JSON:
        try:
            self.wait_for_sync(lambda: self.ack_for(envelope_id) is not None, timeout)
        except TimeoutError:
            raise TimeoutError(f"no ack for envelope {envelope_id} within {timeout}s") from None
        ack = self.ack_for(envelope_id)
        assert ack is not None
        return ack

    def _trigger_id(self) -> str:
        with self._lock:
            self._event_seq += 1
            return f"{self._event_seq}.{self.team_id}.{uuid.uuid4().hex[:16]}"

    def _send_envelope(
        self,
        kind: str,
        payload: JSON,
        *,
        accepts_response_payload: bool,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> str:
        envelope: JSON = {
            "envelope_id": str(uuid.uuid4()),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason or ""
        self._on_loop(self._asend(envelope))
        return str(envelope["envelope_id"])

    def _on_loop(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the fake's loop and wait for its result (callable from any other thread)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            coro.close()
            raise RuntimeError("FakeSlack is not started")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("socket helpers cannot be called from FakeSlack's own thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)

    # ------------------------------------------------------------- internals

    def _next_ts(self) -> str:
        if self._deterministic_ts:
            us = self._last_ts_us + 100
        else:
            us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = us
        return _us_to_ts(us)

    def _thread_index(self, channel: str) -> dict[str, list[JSON]]:
        index: dict[str, list[JSON]] = collections.defaultdict(list)
        for m in self._messages[channel].values():
            parent = m.get("thread_ts")
            if parent is not None and parent != m["ts"]:
                index[parent].append(m)
        return index

    def _present(self, msg: JSON, index: dict[str, list[JSON]]) -> JSON:
        out = copy.deepcopy(msg)
        replies = index.get(msg["ts"])
        if replies and msg.get("thread_ts") in (None, msg["ts"]):
            replies = sorted(replies, key=lambda r: _ts_to_us(r["ts"]))
            users = list(dict.fromkeys(str(r.get("user")) for r in replies))
            out["thread_ts"] = msg["ts"]
            out["reply_count"] = len(replies)
            out["reply_users"] = users[:5]
            out["reply_users_count"] = len(users)
            out["latest_reply"] = replies[-1]["ts"]
            out["is_locked"] = False
            out["subscribed"] = False
        return out

    def _channel(self, ref: Any, *, allow_user: bool = False) -> _Channel:
        if not ref or not isinstance(ref, str):
            raise SlackApiFault("channel_not_found")
        ch = self._channels.get(ref)
        if ch is not None:
            return ch
        if ref.startswith("#"):
            for c in self._channels.values():
                if c.name == ref[1:] and not c.is_im:
                    return c
        if allow_user and ref in self._users and ref != self.bot_user_id:
            return self._im_with(ref)
        raise SlackApiFault("channel_not_found")

    def _channel_key(self, p: JSON) -> str | None:
        """The conversation ID a call names, for per-channel limits; resolves like _channel
        (``#name``, a user ID -> that DM) but creates nothing, so a refused call has no effect."""
        ref = p.get("channel", p.get("channel_id"))
        if not isinstance(ref, str) or not ref:
            return None
        if ref in self._channels:
            return ref
        if ref.startswith("#"):
            return next((c.id for c in self._channels.values() if c.name == ref[1:] and not c.is_im), ref)
        if ref in self._users and ref != self.bot_user_id:
            im = next((c.id for c in self._channels.values() if c.is_im and c.user == ref), None)
            return im or "D" + ref.lstrip("UW")
        return ref

    def _im_with(self, user_id: str) -> _Channel:
        for c in self._channels.values():
            if c.is_im and c.user == user_id:
                return c
        cid = "D" + user_id.lstrip("UW")
        self.add_channel(cid, name=cid, is_im=True, members={user_id})
        return self._channels[cid]

    def _visible(self, ch: _Channel) -> None:
        if ch.is_private and not ch.is_im and self.bot_user_id not in ch.members:
            raise SlackApiFault("channel_not_found")

    def _readable(self, ch: _Channel) -> None:
        self._visible(ch)
        if not ch.is_im and self.bot_user_id not in ch.members:
            raise SlackApiFault("not_in_channel")

    def _writable(self, ch: _Channel) -> None:
        self._readable(ch)
        if ch.is_archived:
            raise SlackApiFault("is_archived")

    def _message(self, ch: _Channel, ts: Any) -> JSON:
        msg = self._messages[ch.id].get(str(ts)) if ts else None
        if msg is None:
            raise SlackApiFault("message_not_found")
        return msg

    def _content(self, p: JSON, *, require: bool = True) -> JSON:
        """Validate text/blocks/attachments/markdown_text; returns the fields present."""
        out: JSON = {}
        text = p.get("text")
        markdown_text = p.get("markdown_text")
        if markdown_text is not None:
            if text or p.get("blocks"):
                raise SlackApiFault("markdown_text_conflict")
            if len(str(markdown_text)) > MAX_MARKDOWN_TEXT:
                raise SlackApiFault("msg_too_long")
            out["text"] = str(markdown_text)
        if text is not None:
            if len(str(text)) > MAX_TEXT:
                raise SlackApiFault("msg_too_long")
            out["text"] = str(text)
        if "blocks" in p:
            blocks = p["blocks"]
            if isinstance(blocks, str):
                if blocks.strip() in ("", "[]"):
                    blocks = []
                else:
                    raise SlackApiFault("invalid_blocks_format")
            out["blocks"] = _validate_blocks(blocks)
        if "attachments" in p:
            atts = p["attachments"]
            if isinstance(atts, str) and atts.strip() in ("", "[]"):
                atts = []
            if not isinstance(atts, list) or not all(isinstance(a, dict) for a in atts):
                raise SlackApiFault("invalid_attachments")
            if len(atts) > MAX_ATTACHMENTS:
                raise SlackApiFault("too_many_attachments")
            out["attachments"] = atts
        if require and not (out.get("text") or out.get("blocks") or out.get("attachments")):
            raise SlackApiFault("no_text")
        return out

    def _bot_message(self, ts: str, content: JSON) -> JSON:
        return {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": content.get("text", ""),
            "ts": ts,
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_name,
                "team_id": self.team_id,
                "deleted": False,
            },
            **{k: v for k, v in content.items() if k != "text"},
        }

    def _root_ts(self, ch: _Channel, thread_ts: Any) -> str | None:
        """Normalise a thread_ts: a reply's ts means its parent's thread."""
        if thread_ts in (None, ""):
            return None
        ts = str(thread_ts)
        try:
            _ts_to_us(ts)
        except ValueError as e:
            raise SlackApiFault("invalid_thread_ts") from e
        target = self._messages[ch.id].get(ts)
        if target is not None and target.get("thread_ts") not in (None, ts):
            return str(target["thread_ts"])
        return ts

    def _store_post(self, ch: _Channel, content: JSON, p: JSON, thread_ts: str | None) -> JSON:
        ts = self._next_ts()
        msg = self._bot_message(ts, content)
        if thread_ts is not None:
            msg["thread_ts"] = thread_ts
            parent = self._messages[ch.id].get(thread_ts)
            if parent is not None:
                msg["parent_user_id"] = parent.get("user")
            if _truthy(p.get("reply_broadcast", False)):
                msg["subtype"] = "thread_broadcast"
        if isinstance(p.get("metadata"), dict):
            msg["metadata"] = p["metadata"]
        for k in ("username", "icon_emoji", "icon_url"):
            if p.get(k):
                msg[k] = p[k]
        self._messages[ch.id][ts] = msg
        return msg

    def _window(self, p: JSON) -> Callable[[str], bool]:
        inclusive = _truthy(p.get("inclusive", False))
        try:
            oldest = _ts_to_us(p["oldest"]) if p.get("oldest") not in (None, "") else None
        except ValueError as e:
            raise SlackApiFault("invalid_ts_oldest") from e
        try:
            latest = _ts_to_us(p["latest"]) if p.get("latest") not in (None, "") else None
        except ValueError as e:
            raise SlackApiFault("invalid_ts_latest") from e

        def inside(ts: str) -> bool:
            us = _ts_to_us(ts)
            if oldest is not None and (us < oldest or (us == oldest and not inclusive)):
                return False
            return not (latest is not None and (us > latest or (us == latest and not inclusive)))

        return inside

    def _channel_object(self, ch: _Channel, *, num_members: bool = False) -> JSON:
        obj: JSON = {
            "id": ch.id,
            "created": ch.created,
            "is_archived": ch.is_archived,
            "is_org_shared": False,
            "context_team_id": self.team_id,
        }
        if ch.is_im:
            obj.update({"is_im": True, "user": ch.user, "is_open": True, "is_user_deleted": False})
        else:
            obj.update(
                {
                    "name": ch.name,
                    "name_normalized": ch.name,
                    "is_channel": True,
                    "is_group": False,
                    "is_im": False,
                    "is_mpim": False,
                    "is_private": ch.is_private,
                    "is_general": False,
                    "is_shared": False,
                    "is_ext_shared": False,
                    "is_member": self.bot_user_id in ch.members,
                    "creator": ch.creator,
                    "topic": {"value": "", "creator": "", "last_set": 0},
                    "purpose": {"value": "", "creator": "", "last_set": 0},
                }
            )
        if num_members:
            obj["num_members"] = len(ch.members)
        return obj

    def _permalink(self, ch: _Channel, msg: JSON) -> str:
        url = f"{self.workspace_url}archives/{ch.id}/p{msg['ts'].replace('.', '')}"
        parent = msg.get("thread_ts")
        if parent is not None and parent != msg["ts"]:
            url += f"?thread_ts={parent}&cid={ch.id}"
        return url

    def _file_object(self, f: FakeFile) -> JSON:
        if f.deleted:
            return {"id": f.id, "mode": "tombstone"}
        mimetype = f.mimetype or mimetypes.guess_type(f.filename)[0] or "application/octet-stream"
        ext = f.filetype or (f.filename.rsplit(".", 1)[-1].lower() if "." in f.filename else "binary")
        public: dict[str, list[JSON]] = {}
        private: dict[str, list[JSON]] = {}
        for share in f.shares:
            ch = self._channels.get(share["channel"])
            target = private if ch is None or ch.is_private else public
            entry: JSON = {"ts": share["ts"], "channel_name": ch.name if ch else "", "team_id": self.team_id}
            if share.get("thread_ts"):
                entry["thread_ts"] = share["thread_ts"]
            target.setdefault(share["channel"], []).append(entry)
        now = int(time.time())
        return {
            "id": f.id,
            "created": now,
            "timestamp": now,
            "name": f.filename,
            "title": f.title or f.filename,
            "mimetype": mimetype,
            "filetype": ext,
            "pretty_type": ext.upper(),
            "user": f.user or self.bot_user_id,
            "user_team": self.team_id,
            "size": len(f.content or b""),
            "mode": f.mode,
            "is_external": f.external,
            "is_public": bool(public),
            # Served by this fake (GET /files-pri/...), with the bot token only.
            "url_private": f"{self._files_url}/{self.team_id}-{f.id}/{quote(f.filename)}",
            "url_private_download": f"{self._files_url}/{self.team_id}-{f.id}/download/{quote(f.filename)}",
            "permalink": f"{self.workspace_url}files/{self.bot_user_id}/{f.id}/{f.filename}",
            "alt_txt": f.alt_txt,
            "channels": sorted(public),
            "groups": sorted(k for k in private if not k.startswith("D")),
            "ims": sorted(k for k in private if k.startswith("D")),
            "shares": {k: v for k, v in (("public", public), ("private", private)) if v},
        }

    # ---------------------------------------------------------- API methods

    def _api_test(self, p: JSON) -> JSON:
        return {"args": {k: v for k, v in p.items() if isinstance(v, str)}}

    def _apps_connections_open(self, p: JSON) -> JSON:
        ticket = uuid.uuid4().hex
        self._socket_tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.port}/socket/{ticket}"}

    def _auth_test(self, p: JSON) -> JSON:
        return {
            "url": self.workspace_url,
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"), allow_user=True)
        self._writable(ch)
        content = self._content(p)
        msg = self._store_post(ch, content, p, self._root_ts(ch, p.get("thread_ts")))
        return {"channel": ch.id, "ts": msg["ts"], "message": self._present(msg, {})}

    def _chat_update(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._visible(ch)
        msg = self._message(ch, p.get("ts"))
        if msg.get("user") != self.bot_user_id and msg.get("bot_id") != self.bot_id:
            raise SlackApiFault("cant_update_message")
        content = self._content(p, require=False)
        if not content and not p.get("file_ids"):
            raise SlackApiFault("no_text")
        for k in ("blocks", "attachments"):
            if k in content:
                if content[k]:
                    msg[k] = content[k]
                else:
                    msg.pop(k, None)
        if "text" in content:
            msg["text"] = content["text"]
        if isinstance(p.get("metadata"), dict):
            msg["metadata"] = p["metadata"]
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        out = self._present(msg, self._thread_index(ch.id))
        return {"channel": ch.id, "ts": msg["ts"], "text": msg.get("text", ""), "message": out}

    def _chat_delete(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._visible(ch)
        msg = self._message(ch, p.get("ts"))
        if msg.get("user") != self.bot_user_id and msg.get("bot_id") != self.bot_id:
            raise SlackApiFault("cant_delete_message")
        ts = msg["ts"]
        if self._thread_index(ch.id).get(ts):
            self._messages[ch.id][ts] = {
                "type": "message",
                "subtype": "tombstone",
                "text": "This message was deleted.",
                "user": "USLACKBOT",
                "hidden": True,
                "ts": ts,
                "thread_ts": ts,
            }
        else:
            del self._messages[ch.id][ts]
        self._streaming.discard((ch.id, ts))
        return {"channel": ch.id, "ts": ts}

    def _chat_post_ephemeral(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"), allow_user=True)
        self._writable(ch)
        user = p.get("user")
        if not user:
            raise SlackApiFault("user_not_found")
        content = self._content(p)
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": ch.id,
                "user": user,
                "ts": ts,
                "thread_ts": p.get("thread_ts"),
                **content,
            }
        )
        return {"message_ts": ts}

    def _chat_get_permalink(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._visible(ch)
        msg = self._message(ch, p.get("message_ts"))
        return {"channel": ch.id, "permalink": self._permalink(ch, msg)}

    @staticmethod
    def _stream_text(p: JSON) -> tuple[str, list[JSON]]:
        """Text appended by a stream call (``markdown_text`` + markdown_text chunks) and other chunks."""
        text = str(p.get("markdown_text") or "")
        others: list[JSON] = []
        chunks = p.get("chunks")
        if chunks is not None:
            if not isinstance(chunks, list) or not all(isinstance(c, dict) for c in chunks):
                raise SlackApiFault("invalid_chunks")
            for c in chunks:
                if c.get("type") == "markdown_text":
                    text += str(c.get("text") or "")
                else:
                    others.append(c)
        if len(text) > MAX_MARKDOWN_TEXT:
            raise SlackApiFault("msg_too_long")
        return text, others

    def _chat_start_stream(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._writable(ch)
        thread_ts = self._root_ts(ch, p.get("thread_ts"))
        if thread_ts is None:
            raise SlackApiFault("invalid_arguments", detail="thread_ts is required")
        if not ch.is_im and not (p.get("recipient_user_id") and p.get("recipient_team_id")):
            raise SlackApiFault(
                "invalid_arguments", detail="recipient_user_id and recipient_team_id required"
            )
        text, others = self._stream_text(p)
        msg = self._store_post(ch, {"text": text}, p, thread_ts)
        if others:
            msg["stream_chunks"] = others
        self._streaming.add((ch.id, msg["ts"]))
        return {"channel": ch.id, "ts": msg["ts"]}

    def _streaming_message(self, p: JSON) -> tuple[_Channel, JSON]:
        ch = self._channel(p.get("channel"))
        self._writable(ch)
        msg = self._message(ch, p.get("ts"))
        if (ch.id, msg["ts"]) not in self._streaming:
            raise SlackApiFault("message_not_in_streaming_state")
        return ch, msg

    def _append_to_stream(self, msg: JSON, p: JSON) -> None:
        text, others = self._stream_text(p)
        msg["text"] = msg.get("text", "") + text
        if others:
            msg.setdefault("stream_chunks", []).extend(others)

    def _chat_append_stream(self, p: JSON) -> JSON:
        ch, msg = self._streaming_message(p)
        self._append_to_stream(msg, p)
        return {"channel": ch.id, "ts": msg["ts"]}

    def _chat_stop_stream(self, p: JSON) -> JSON:
        ch, msg = self._streaming_message(p)
        blocks = _validate_blocks(p["blocks"]) if "blocks" in p else None
        self._append_to_stream(msg, p)
        if blocks:
            msg["blocks"] = blocks
        if isinstance(p.get("metadata"), dict):
            msg["metadata"] = p["metadata"]
        self._streaming.discard((ch.id, msg["ts"]))
        return {"channel": ch.id, "ts": msg["ts"], "message": self._present(msg, {})}

    def _conversations_replies(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._readable(ch)
        ts = p.get("ts")
        if not ts:
            raise SlackApiFault("thread_not_found")
        msgs = self._messages[ch.id]
        target = msgs.get(str(ts))
        if target is None:
            raise SlackApiFault("thread_not_found")
        root_ts = str(target.get("thread_ts") or target["ts"])
        index = self._thread_index(ch.id)
        inside = self._window(p)
        replies = sorted(
            (r for r in index.get(root_ts, []) if inside(r["ts"])), key=lambda r: _ts_to_us(r["ts"])
        )
        limit = _limit(p)
        after = _decode_cursor(p.get("cursor"), "next_ts")
        page: list[JSON] = []
        if after is None:
            root = msgs.get(root_ts)
            if root is not None:
                page.append(root)
            rest = replies
        else:
            rest = [r for r in replies if _ts_to_us(r["ts"]) >= _ts_to_us(after)]
        room = max(0, limit - len(page))
        page.extend(rest[:room])
        has_more = len(rest) > room
        out: JSON = {
            "messages": [self._present(m, index) for m in page],
            "has_more": has_more,
        }
        if has_more:
            out["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", rest[room]["ts"])}
        return out

    def _conversations_history(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._readable(ch)
        index = self._thread_index(ch.id)
        inside = self._window(p)
        visible = [
            m
            for m in self._messages[ch.id].values()
            if (m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast")
            and inside(m["ts"])
        ]
        visible.sort(key=lambda m: _ts_to_us(m["ts"]), reverse=True)
        limit = _limit(p)
        before = _decode_cursor(p.get("cursor"), "next_ts")
        if before is not None:
            visible = [m for m in visible if _ts_to_us(m["ts"]) <= _ts_to_us(before)]
        page = visible[:limit]
        has_more = len(visible) > limit
        out: JSON = {
            "messages": [self._present(m, index) for m in page],
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": {
                "next_cursor": _encode_cursor("next_ts", visible[limit]["ts"]) if has_more else ""
            },
        }
        return out

    def _conversations_info(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._visible(ch)
        return {"channel": self._channel_object(ch, num_members=_truthy(p.get("include_num_members", False)))}

    def _conversations_members(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._visible(ch)
        members = sorted(ch.members)
        start = _index_cursor(p.get("cursor"))
        limit = _limit(p)
        page = members[start : start + limit]
        more = start + limit < len(members)
        return {
            "members": page,
            "response_metadata": {
                "next_cursor": _encode_cursor("next_idx", str(start + limit)) if more else ""
            },
        }

    def _conversations_open(self, p: JSON) -> JSON:
        if p.get("channel"):
            ch = self._channel(p.get("channel"))
            self._visible(ch)
        else:
            users = [u for u in str(p.get("users") or "").split(",") if u]
            if len(users) != 1:
                raise SlackApiFault("not_implemented" if users else "users_list_not_supplied")
            if users[0] not in self._users:
                raise SlackApiFault("user_not_found")
            ch = self._im_with(users[0])
        return {
            "channel": {"id": ch.id} if not _truthy(p.get("return_im", False)) else self._channel_object(ch)
        }

    def _conversations_join(self, p: JSON) -> JSON:
        ch = self._channel(p.get("channel"))
        self._visible(ch)
        if ch.is_im:
            raise SlackApiFault("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise SlackApiFault("is_archived")
        ch.members.add(self.bot_user_id)
        return {"channel": self._channel_object(ch)}

    def _users_info(self, p: JSON) -> JSON:
        user = self._users.get(str(p.get("user") or ""))
        if user is None:
            raise SlackApiFault("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _users_list(self, p: JSON) -> JSON:
        ids = sorted(self._users)
        start = _index_cursor(p.get("cursor"))
        limit = _limit(p, default=1000)
        more = start + limit < len(ids)
        return {
            "members": [copy.deepcopy(self._users[i]) for i in ids[start : start + limit]],
            "cache_ts": int(time.time()),
            "response_metadata": {
                "next_cursor": _encode_cursor("next_idx", str(start + limit)) if more else ""
            },
        }

    def _reaction_target(self, p: JSON) -> tuple[JSON, str]:
        ch = self._channel(p.get("channel"))
        self._readable(ch)
        msg = self._message(ch, p.get("timestamp"))
        name = str(p.get("name") or "").strip(":")
        if not name:
            raise SlackApiFault("invalid_name")
        return msg, name

    def _reactions_add(self, p: JSON) -> JSON:
        msg, name = self._reaction_target(p)
        reactions: list[JSON] = msg.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        if self.bot_user_id in entry["users"]:
            raise SlackApiFault("already_reacted")
        entry["users"].append(self.bot_user_id)
        entry["count"] = len(entry["users"])
        return {}

    def _reactions_remove(self, p: JSON) -> JSON:
        msg, name = self._reaction_target(p)
        reactions: list[JSON] = msg.get("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None or self.bot_user_id not in entry["users"]:
            raise SlackApiFault("no_reaction")
        entry["users"].remove(self.bot_user_id)
        entry["count"] = len(entry["users"])
        if not entry["users"]:
            reactions.remove(entry)
        if not reactions:
            msg.pop("reactions", None)
        return {}

    def _assistant_thread(self, p: JSON) -> _Channel:
        ch = self._channel(p.get("channel_id"))
        self._readable(ch)
        if not p.get("thread_ts"):
            raise SlackApiFault("invalid_arguments", detail="thread_ts is required")
        return ch

    def _assistant_set_status(self, p: JSON) -> JSON:
        ch = self._assistant_thread(p)
        if "status" not in p:
            raise SlackApiFault("invalid_arguments", detail="status is required")
        loading = p.get("loading_messages")
        if loading is not None and (not isinstance(loading, list) or len(loading) > 10):
            raise SlackApiFault("invalid_arguments", detail="loading_messages: up to 10 strings")
        self.assistant_statuses.append(
            {
                "channel_id": ch.id,
                "thread_ts": str(p["thread_ts"]),
                "status": str(p.get("status") or ""),
                "loading_messages": loading,
            }
        )
        return {}

    def _assistant_set_title(self, p: JSON) -> JSON:
        ch = self._assistant_thread(p)
        self.assistant_titles.append(
            {"channel_id": ch.id, "thread_ts": p["thread_ts"], "title": p.get("title")}
        )
        return {}

    def _assistant_set_prompts(self, p: JSON) -> JSON:
        ch = self._assistant_thread(p)
        self.assistant_prompts.append(
            {
                "channel_id": ch.id,
                "thread_ts": p["thread_ts"],
                "title": p.get("title"),
                "prompts": p.get("prompts"),
            }
        )
        return {}

    def _views_publish(self, p: JSON) -> JSON:
        user_id = p.get("user_id")
        if not user_id or user_id not in self._users:
            raise SlackApiFault("user_not_found")
        view = p.get("view")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackApiFault("invalid_arguments", detail="view must be an object of type home")
        if "blocks" in view:
            _validate_blocks(view["blocks"])
        self._view_seq += 1
        stored = {
            **copy.deepcopy(view),
            "id": f"V{self._view_seq:08d}",
            "team_id": self.team_id,
            "hash": f"{int(time.time())}.{self._view_seq:08d}",
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }
        self.views[str(user_id)] = stored
        return {"view": copy.deepcopy(stored)}

    def _files_get_upload_url(self, p: JSON) -> JSON:
        filename = p.get("filename")
        if not filename:
            raise SlackApiFault("invalid_arguments", detail="filename is required")
        try:
            length = int(p.get("length", ""))
        except (TypeError, ValueError) as e:
            raise SlackApiFault("invalid_arguments", detail="length is required") from e
        self._file_seq += 1
        fid = f"F{self._file_seq:08d}"
        self.files[fid] = FakeFile(
            id=fid,
            filename=str(filename),
            length=length,
            alt_txt=p.get("alt_txt"),
            snippet_type=p.get("snippet_type"),
        )
        return {"upload_url": f"{self.base_url}/upload/v1/{fid}", "file_id": fid}

    def _files_complete_upload(self, p: JSON) -> JSON:
        entries = p.get("files")
        if not isinstance(entries, list) or not entries:
            raise SlackApiFault("invalid_arguments", detail="files must be a non-empty JSON array")
        found: list[FakeFile] = []
        for e in entries:
            f = self.files.get(str(e.get("id"))) if isinstance(e, dict) else None
            if f is None or f.content is None or f.completed:
                raise SlackApiFault("file_not_found")
            found.append(f)
        targets: list[_Channel] = []
        if p.get("channel_id"):
            targets.append(self._channel(p["channel_id"]))
        targets.extend(self._channel(c) for c in str(p.get("channels") or "").split(",") if c)
        for ch in targets:
            self._writable(ch)
        if p.get("thread_ts") and len(targets) != 1:
            raise SlackApiFault("invalid_arguments", detail="thread_ts needs exactly one channel")
        comment = p.get("initial_comment")
        if comment is not None and len(str(comment)) > MAX_TEXT:
            raise SlackApiFault("msg_too_long")
        for f, e in zip(found, entries, strict=True):
            f.completed = True
            f.title = e.get("title") or f.filename
        for ch in targets:
            thread_ts = self._root_ts(ch, p.get("thread_ts"))
            content: JSON = {"text": str(comment or "")}
            msg = self._store_post(ch, content, {}, thread_ts)
            msg["upload"] = True
            msg["display_as_bot"] = False
            for f in found:
                f.shares.append({"channel": ch.id, "ts": msg["ts"], "thread_ts": thread_ts})
            msg["files"] = [self._file_object(f) for f in found]
        return {"files": [self._file_object(f) for f in found]}

    def _files_info(self, p: JSON) -> JSON:
        f = self.files.get(str(p.get("file") or ""))
        if f is None or f.deleted:
            raise SlackApiFault("file_not_found")
        return {"file": self._file_object(f), "comments": [], "response_metadata": {"next_cursor": ""}}

    # ------------------------------------------------------------- plumbing

    async def _astart(self) -> None:
        app = web.Application(middlewares=[self._track], client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/_fake/state", self._handle_state)
        app.router.add_get("/files-pri/{key}/download/{name}", self._handle_file)
        app.router.add_get("/files-pri/{key}/{name}", self._handle_file)
        app.router.add_get("/socket/{ticket}", self._handle_socket)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(runner.addresses[0][1])

    async def _astop(self) -> None:
        with self._lock:
            sockets = list(self._sockets.values())
        if sockets:
            # close frames go out at once; each close() then waits (bounded by the
            # response's timeout=SOCKET_CLOSE_TIMEOUT) for the client's reply
            await asyncio.wait(
                [asyncio.ensure_future(self._close_socket(ws, WSCloseCode.GOING_AWAY)) for ws in sockets],
                timeout=SOCKET_CLOSE_TIMEOUT + 0.25,
            )
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _track(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        method = request.match_info.get("method")
        if method is not None:
            with self._lock:
                self._in_flight[method] = self._in_flight.get(method, 0) + 1
                self.peak_in_flight[method] = max(self.peak_in_flight.get(method, 0),
                                                  self._in_flight[method])
        try:
            return await handler(request)
        finally:
            if method is not None:
                with self._lock:
                    self._in_flight[method] -= 1
            if task is not None:
                self._tasks.discard(task)

    async def _delay(self) -> None:
        with self._lock:
            latency = self._latency
        if latency > 0:
            await asyncio.sleep(latency)

    @staticmethod
    async def _parse(request: web.Request) -> JSON:
        params: JSON = {k: v for k, v in request.query.items()}
        ctype = request.content_type
        if ctype == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise SlackApiFault("invalid_json") from e
                if not isinstance(body, dict):
                    raise SlackApiFault("invalid_json")
                params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for k, v in form.items():
                params[k] = v.file.read() if isinstance(v, web.FileField) else v
        for k in _JSON_STRING_FIELDS & params.keys():
            v = params[k]
            if isinstance(v, str) and v.strip()[:1] in ("[", "{"):
                # left as a string on failure: the handler reports the format error
                with contextlib.suppress(ValueError):
                    params[k] = json.loads(v)
        return params

    @staticmethod
    def _json(body: JSON, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await self._parse(request)
        except SlackApiFault as e:
            return self._json({"ok": False, "error": e.error})
        header = request.headers.get("Authorization", "")
        token: str | None = header[7:].strip() if header.startswith("Bearer ") else None
        body_token = params.pop("token", None)
        if token is None and isinstance(body_token, str) and body_token:
            token = body_token
        call = Call(method=method, params=params, token=token, at=time.monotonic(), wall=time.time())
        with self._lock:
            self.calls.append(call)
        await self._delay()
        with self._lock:
            if method in self._down:  # down before any check, as a real outage is
                return self._json({"ok": False, "error": "fatal_error"}, status=self._down[method])
            if token is None:
                return self._json({"ok": False, "error": "not_authed"})
            expected, other = (
                (self.app_token, self.bot_token)
                if method in _APP_TOKEN_METHODS
                else (self.bot_token, self.app_token)
            )
            if token != expected:
                error = "not_allowed_token_type" if token == other else "invalid_auth"
                return self._json({"ok": False, "error": error})
            queue = self._faults.get(method)
            fault = queue.popleft() if queue else None
            share = self._random_limit.get(method, 0.0)
            if fault is None and share > 0 and self._random.random() < share:
                fault = _Fault("ratelimit", error="ratelimited", retry_after=self._random_retry_after)
            if fault is not None:
                body: JSON = {"ok": False, "error": fault.error, **fault.extra}
                if fault.kind == "ratelimit":
                    self.rate_limited_calls.append(call)
                    return self._json(body, status=429, headers={"Retry-After": str(fault.retry_after)})
                if fault.kind == "server":
                    return self._json(body, status=fault.status)
                return self._json(body)
            handler = self._dispatch.get(method)
            if handler is None:
                return self._json({"ok": False, "error": "unknown_method"})
            if self._limits_on:
                channel = self._channel_key(params)
                refusal = self._limiter.check(method, channel)
                if refusal is not None:
                    self.rate_limited_calls.append(call)
                    self.limited_calls.append(
                        LimitedCall(call, refusal.rule, refusal.retry_after, channel, refusal.at)
                    )
                    return self._json(
                        {"ok": False, "error": "ratelimited"},
                        status=429,
                        headers={"Retry-After": str(refusal.retry_after)},
                    )
            try:
                result = handler(params)
            except SlackApiFault as e:
                return self._json({"ok": False, "error": e.error, **e.extra})
            return self._json({"ok": True, **result})

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        fid = request.match_info["file_id"]
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            data = part.file.read() if part is not None else b""
        else:
            data = await request.read()
        await self._delay()
        with self._lock:
            f = self.files.get(fid)
            if f is None or f.completed:
                return web.Response(status=404, text="file_not_found", content_type="text/plain")
            f.content = data
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        """A file's url_private(_download): the bytes for the bot token, Slack's sign-in page
        (200, HTML) for anyone else."""
        fid = request.match_info["key"].rsplit("-", 1)[-1]
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else None
        with self._lock:
            self.file_downloads.append((fid, token))
            f = self.files.get(fid)
            if token != self.bot_token:
                return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
            if f is None or f.deleted or f.content is None:
                return web.Response(status=404, text="Not Found", content_type="text/plain")
            if f.refuse_status == 200:
                return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
            if f.refuse_status is not None:
                return web.Response(status=f.refuse_status, text="Forbidden", content_type="text/plain")
            content, stall = f.content, f.stall_seconds
            ctype = f.mimetype or mimetypes.guess_type(f.filename)[0] or "application/octet-stream"
        response = web.StreamResponse(headers={"Content-Type": ctype, "Content-Length": str(len(content))})
        await response.prepare(request)
        if stall:
            await asyncio.sleep(stall)
        await response.write(content)
        await response.write_eof()
        return response

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        payload: Any
        if request.content_type == "application/json":
            try:
                payload = json.loads(await request.read() or b"null")
            except ValueError:
                return web.Response(status=400, text="invalid_payload", content_type="text/plain")
        else:
            form = await request.post()
            raw = form.get("payload")
            try:
                payload = json.loads(raw) if isinstance(raw, str) else dict(form)
            except ValueError:
                return web.Response(status=400, text="invalid_payload", content_type="text/plain")
        if not isinstance(payload, dict):
            return web.Response(status=400, text="invalid_payload", content_type="text/plain")
        await self._delay()
        with self._lock:
            posts = self.responses[key]
            if len(posts) >= MAX_RESPONSE_URL_USES:
                return web.Response(status=404, text="used_url", content_type="text/plain")
            posts.append(payload)
        return web.Response(text="ok", content_type="text/plain")

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        with self._lock:
            known = ticket in self._socket_tickets
        if not known:
            return web.Response(status=404, text="invalid_ticket", content_type="text/plain")
        ws = web.WebSocketResponse(autoping=False, timeout=SOCKET_CLOSE_TIMEOUT)
        await ws.prepare(request)
        with self._lock:
            self._socket_seq += 1
            seq = self._socket_seq
            live = 1 + sum(1 for w in self._sockets.values() if not w.closed)
        hello = {
            "type": "hello",
            "num_connections": live,
            "debug_info": {
                "host": "fake-slack-socket",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        try:
            await ws.send_str(json.dumps(hello))
            with self._lock:  # registered after hello: envelopes never overtake it
                self._sockets[seq] = ws
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._record_socket_message(msg.data)
                elif msg.type == WSMsgType.PING:
                    with self._lock:
                        self.socket_pings += 1
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            with self._lock:
                self._sockets.pop(seq, None)
        return ws

    def _record_socket_message(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = {"raw": raw}
        if not isinstance(message, dict):
            message = {"raw": message}
        with self._lock:
            self.socket_acks.append(message)

    def _live_sockets(self) -> list[web.WebSocketResponse]:
        with self._lock:
            return [ws for _, ws in sorted(self._sockets.items()) if not ws.closed]

    async def _asend(self, envelope: JSON) -> None:
        live = self._live_sockets()
        if not live:
            raise RuntimeError("no Socket Mode client is connected (await wait_socket() first)")
        with self._lock:
            self.socket_envelopes.append(copy.deepcopy(envelope))
        await live[-1].send_str(json.dumps(envelope))  # newest connection, as after a reconnect

    async def _abroadcast(self, message: JSON) -> int:
        live = self._live_sockets()
        for ws in live:
            await ws.send_str(json.dumps(message))
        return len(live)

    async def _adrop(self, code: int) -> int:
        live = self._live_sockets()
        if live:
            await asyncio.wait(
                [asyncio.ensure_future(self._close_socket(ws, code)) for ws in live],
                timeout=SOCKET_CLOSE_TIMEOUT + 0.25,
            )
        return len(live)

    @staticmethod
    async def _close_socket(ws: web.WebSocketResponse, code: int) -> None:
        with contextlib.suppress(Exception):
            await ws.close(code=code, message=b"fake slack closing")

    async def _handle_state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.snapshot(), dumps=lambda o: json.dumps(o, default=repr))


def _seed(slack: FakeSlack, spec: JSON) -> None:
    for u in spec.get("users", []):
        u = dict(u)
        slack.add_user(u.pop("id"), **u)
    for c in spec.get("channels", []):
        c = dict(c)
        if "members" in c:
            c["members"] = set(c["members"])
        slack.add_channel(c.pop("id"), **c)
    for m in spec.get("messages", []):
        m = dict(m)
        slack.add_message(m.pop("channel"), **m)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.slack_api",
        description="Serve a fake Slack Web API; prints api_url on the first stdout line. "
        "GET <base>/_fake/state dumps calls and messages.",
    )
    parser.add_argument(
        "--seed",
        help='JSON file {"users": [{"id", "name", ...}], "channels": [{"id", "name", "members": [...]}], '
        '"messages": [{"channel", "user", "text", ...}]}',
    )
    parser.add_argument("--token", default="xoxb-test-token")
    parser.add_argument("--app-token", default="xapp-test-token", help="app-level token for Socket Mode")
    parser.add_argument("--no-rate-limits", action="store_true", help="do not enforce Slack's rate limits")
    args = parser.parse_args(argv)

    slack = FakeSlack(bot_token=args.token, app_token=args.app_token, rate_limits=not args.no_rate_limits)
    if args.seed:
        with open(args.seed, encoding="utf-8") as fh:
            _seed(slack, json.load(fh))
    return slack.serve_until_signalled(lambda: slack.api_url)


if __name__ == "__main__":
    sys.exit(main())
