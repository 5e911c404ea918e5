"""`qwqbot run`: start-up checks, Socket Mode or HTTP mode, graceful shutdown on SIGTERM.

In HTTP mode every request is checked here before anything reads it: a timestamp header that
is a number, a valid signature (https://docs.slack.dev/authentication/verifying-requests-from-slack/),
a body that is a JSON object or form data, and, for anything but an event, a signature not seen
before. A request that fails costs one short log line (its size and sender, never its body) and
a 4xx; a replay is answered 200 and does nothing. Events are deduplicated by their id instead
(app.py): Slack resends those on purpose.

Start-up does not wait for Slack before listening: the HTTP server is up first and
``/healthz`` says "not ready" (503, and why) while ``auth.test`` is retried through a Slack
outage (startup.py), so a platform's health check sees a live process instead of restarting
it in a loop. Until the bot is ready, an event gets 503 (Slack delivers it again later:
https://docs.slack.dev/apis/events-api/#retries); ``url_verification`` is answered, since it
needs only the signing secret and the person saving the Request URL is waiting for it; a
slash command, which Slack never resends, gets a short note that only its sender sees
(https://docs.slack.dev/interactivity/implementing-slash-commands/#responding_to_commands)
rather than an error.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import build_normalized_headers, extract_content_type, parse_body
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.config import Settings
from qwqbot.errors import QwqbotError
from qwqbot.model.client import ModelClient
from qwqbot.slack.app import build_app, make_client, make_raw_client
from qwqbot.slack.http_limits import body_deadline, runner_limits
from qwqbot.slack.identity import authenticate
from qwqbot.slack.services import Services, build_services
from qwqbot.slack.startup import Backoff, error_of, retrying, startup_client
from qwqbot.store import open_store

log = logging.getLogger(__name__)

#: How often the database file is checked for being deleted or replaced under the bot.
DB_WATCH_SECONDS = 30
Mode = Literal["socket", "http"]

#: X-Slack-Request-Timestamp is Unix seconds; anything else is refused before int() sees it
#: (which raises on letters and spends time on thousands of digits).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Slack's SSL check of a slash command URL is a tiny form post that needs only a 200
# (https://docs.slack.dev/interactivity/implementing-slash-commands/); Bolt answers it before
# verifying, and so do we.
_SSL_CHECK_MAX = 1024
STARTING_NOTE = ("qwqbot is still starting up (it is waiting for Slack to answer it) and "
                 "could not take this command. Please try again in a minute.")


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, the app, caches) out of the garbage
    collector's view. Full collections then scan only what answers allocate: measured on
    context assembly, p99 13 ms instead of 26 ms (bench/context.py)."""
    gc.collect()
    gc.freeze()


@dataclass(frozen=True, slots=True)
class _Signed:
    """A request that passed the checks: signed, fresh, and a JSON object or form data."""

    text: str
    body: dict[str, Any]
    headers: dict[str, Sequence[str]]
    query: str
    signature: str
    timestamp: str
    source: str  # the sender's address, for log lines
    size: int  # bytes, for log lines


class Bot:
    """The running bot: built by ``start``, taken down by ``stop``. Tests drive it directly."""

    def __init__(self, settings: Settings, *, mode: Mode, port: int,
                 scheduler_now: Callable[[], datetime] | None = None,
                 backoff: Backoff | None = None) -> None:
        settings.require(*settings.needed_to_run(mode))
        self.settings = settings
        self.mode = mode
        self.port = port
        self._scheduler_now = scheduler_now
        #: the waits between start-up tries while Slack is down (startup.py)
        self.backoff = backoff or Backoff()
        #: why the bot cannot take requests yet; None once it can
        self.not_ready: str | None = "starting"
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None

    async def start(self) -> None:
        settings = self.settings
        self.store = open_store(settings.db_path)
        # One session for every Web API call: connections are reused instead of a new TCP
        # connection (and session) per request, which matters with many answers at once.
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        self.client = make_client(settings, self.http)
        self.model = ModelClient.from_settings(settings)
        try:
            if self.mode == "http":
                await self._start_http()
            await self._start()
        except BaseException:  # a refused token, or cancelled (SIGTERM) while waiting for Slack
            services: Services | None = getattr(self, "services", None)
            if services is not None:
                services.jobs.shutdown(wait=False)
                await services.scheduler.shutdown()
            if self._runner is not None:
                await self._runner.cleanup()
            await self.model.aclose()
            await self.http.close()
            self.store.close()
            raise

    async def _start(self) -> None:
        settings = self.settings
        startup = startup_client(self.client)
        self.not_ready = "waiting for Slack auth.test"
        self.identity = await authenticate(startup, settings.slack_api_url,
                                           backoff=self.backoff, waiting=self._waiting)
        self.services: Services = build_services(
            settings, store=self.store, client=self.client,
            raw_client=make_raw_client(settings, self.http), model=self.model,
            identity=self.identity, now=self._scheduler_now)
        self.not_ready = "starting"
        self.answerer = self.services.answerer
        self.scheduler = self.services.scheduler
        self.app = build_app(self.services)
        recovered = await self.answerer.recover()
        if recovered:
            log.warning("%d answers were left unfinished by the last run; marked interrupted",
                        recovered)
        jobs = self.services.jobs
        jobs.start()
        await self.scheduler.start()
        # Started: from now on no write may hold the loop (store/journal.py).
        self.store.stop_waiting()
        # Retention: stored messages older than QWQBOT_RETENTION_DAYS go, daily and now.
        # The database file, watched: Socket Mode has no /healthz to notice it deleted.
        jobs.add_job(self._watch_db, "interval", seconds=DB_WATCH_SECONDS, id="db-watch")
        jobs.add_job(self._prune_job, "interval", hours=24, id="retention",
                     next_run_time=datetime.now(UTC))
        freeze_startup_heap()
        if self.mode == "http":
            log.info("qwqbot running as @%s in HTTP mode on port %d (POST /slack/events)",
                     self.identity.name, self.port)
        else:
            await self._connect_socket(startup)
            log.info("qwqbot running as @%s in Socket Mode", self.identity.name)
        self.not_ready = None

    def _waiting(self, reason: str) -> None:
        self.not_ready = reason

    async def _connect_socket(self, startup: AsyncWebClient) -> None:
        assert self.settings.slack_app_token is not None
        app_token = self.settings.slack_app_token.get()
        self._socket = AsyncSocketModeHandler(self.app, app_token)
        # The SDK's connect logs a bad app token and retries forever: ask for a connection
        # URL first (waiting out a Slack that is down, like auth.test) so a wrong token stops
        # the start with a clear line. The URL is handed to the client, whose connect() uses
        # ``wss_uri`` when set (slack_sdk/socket_mode/aiohttp/__init__.py), so
        # apps.connections.open is called once, not once here and again there.
        try:
            opened = await retrying(lambda: startup.apps_connections_open(app_token=app_token),
                                    what="apps.connections.open", backoff=self.backoff,
                                    waiting=self._waiting)
        except SlackApiError as exc:
            raise QwqbotError(
                f"Slack rejected SLACK_APP_TOKEN ({error_of(exc) or 'no error code'}).",
                hint="Create an app-level token (xapp-...) with connections:write under "
                "Basic Information, and check Socket Mode is enabled.") from exc
        self._socket.client.wss_uri = str(opened["url"])
        await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def _start_http(self) -> None:
        assert self.settings.slack_signing_secret is not None
        self._verifier = SignatureVerifier(self.settings.slack_signing_secret.get())
        self._dispatches: set[asyncio.Task[Any]] = set()
        # Time limits for slow and idle clients: see http_limits.
        web_app = web.Application(middlewares=[body_deadline])
        web_app.router.add_post("/slack/events", self._handle_slack)
        web_app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(web_app, access_log=None, **runner_limits())
        await self._runner.setup()
        await web.TCPSite(self._runner, host="0.0.0.0", port=self.port).start()
        log.info("qwqbot listening in HTTP mode on port %d (POST /slack/events); ready once "
                 "Slack answers auth.test", self.port)

    async def _handle_slack(self, request: web.Request) -> web.Response:
        """Bolt's own aiohttp adapter, behind the checks the module docstring lists."""
        signed = await self._signed(request)
        if isinstance(signed, web.Response):
            return signed
        kind = str(signed.body.get("type") or ("command" if "command" in signed.body else ""))
        if self.not_ready is not None:
            return _while_starting(kind, signed.body)
        if kind == "event_callback":
            if not self.answerer.accepting:
                # Shutting down: a 503 makes Slack deliver it again, to the instance replacing us.
                return web.Response(status=503, text="shutting down; please retry")
            # Events need nothing but the 200 (Slack retries after 3 s without it), so it is
            # sent before Bolt runs: a burst of events is acknowledged at the cost of a
            # signature check and a parse each, and processed right after.
            task = asyncio.create_task(self._dispatch(signed))
            self._dispatches.add(task)
            task.add_done_callback(self._dispatches.discard)
            return web.Response(status=200)
        if kind != "url_verification" and not self.store.claim_request(
                signed.signature, kind=kind, channel_id=_channel_of(signed.body),
                ts=signed.timestamp):
            log.warning("refused a replayed %s request to /slack/events from %s (%d bytes): "
                        "its signature was used before", kind or "Slack", signed.source,
                        signed.size)
            return web.Response(status=200)
        return await to_aiohttp_response(await self._dispatch(signed))

    async def _signed(self, request: web.Request) -> _Signed | web.Response:
        """The request, once it has passed every check; else the refusal to send."""
        raw = await request.read()
        source = request.remote or "an unknown address"
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        if timestamp is not None and not _TIMESTAMP.fullmatch(timestamp):
            return _refused(400, "its timestamp header is not a number", raw, source)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _refused(400, "its body is not UTF-8", raw, source)
        signature = request.headers.get("X-Slack-Signature")
        if not self._verifier.is_valid(text, timestamp, signature):
            if _is_ssl_check(text):
                return web.Response(status=200)
            return _refused(401, "no valid signature", raw, source)
        assert timestamp is not None and signature is not None  # is_valid needs both
        # Parsed exactly as Bolt will parse it, so what is checked is what Bolt gets.
        headers = build_normalized_headers(dict(request.headers.items()))
        try:
            body = parse_body(text, extract_content_type(headers))
        except (ValueError, RecursionError):  # not JSON or form data; nested past Python's limit
            return _refused(400, "its body is not JSON or form data", raw, source)
        if not isinstance(body, dict):
            return _refused(400, "its body is not a JSON object", raw, source)
        return _Signed(text=text, body=body, headers=headers, query=request.query_string,
                       signature=signature, timestamp=timestamp, source=source, size=len(raw))

    async def _dispatch(self, signed: _Signed) -> BoltResponse:
        # What slack_bolt.adapter.aiohttp.to_bolt_request builds, from the body already read.
        return await self.app.async_dispatch(AsyncBoltRequest(
            body=signed.text, query=signed.query, headers=dict(signed.headers)))

    def health(self) -> dict[str, Any]:
        """``GET /healthz``'s JSON; ``ok`` decides its status (200, else 503), so a check
        added here joins ``ok``. Not ready (still starting, Slack unreachable): ``reason``
        says why."""
        if self.not_ready is not None:
            return {"ok": False, "ready": False, "reason": self.not_ready, "in_flight": 0}
        db = self.store.health()
        # A deleted database file is the one state a restart mends (the bot writes to a file
        # no one can open again); a locked or full one mends itself, so it is only reported.
        return {"ok": db["db"] != "missing", "ready": True, "in_flight": self.answerer.in_flight,
                **db}

    async def _healthz(self, _: web.Request) -> web.Response:
        body = self.health()
        return web.json_response(body, status=200 if body["ok"] else 503)

    async def _watch_db(self) -> None:
        self.store.health()  # logs, once, a file deleted or replaced under the bot

    async def _prune_job(self) -> None:
        # A coroutine, so APScheduler runs it on the loop that owns the SQLite connection
        # (plain functions go to its thread pool).
        self.prune()

    def prune(self) -> dict[str, int]:
        cutoff = self.store.clock() - self.settings.retention_days * 86400
        counts = self.services.controls.prune(older_than=cutoff)
        if any(counts.values()):
            log.info("retention: removed %d messages and the text of %d answers older than "
                     "%d days", counts["messages"], counts["answers"], self.settings.retention_days)
        return counts

    async def stop(self) -> None:
        """Graceful: no new questions, answers in flight get the grace period, then the rest
        are marked interrupted (with a Retry button) and everything closes."""
        log.info("shutting down: no new questions; %d answers in flight",
                 self.answerer.in_flight)
        self.answerer.accepting = False
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
        self.services.jobs.shutdown(wait=False)
        await self.scheduler.shutdown()
        await self.answerer.shutdown(self.settings.shutdown_grace)
        if self._runner is not None:
            await self._runner.cleanup()
            if self._dispatches:
                await asyncio.gather(*self._dispatches, return_exceptions=True)
        await self.model.aclose()
        await self.http.close()
        self.store.close()
        log.info("stopped")


def _while_starting(kind: str, body: dict[str, Any]) -> web.Response:
    """The answer to a signed request that comes before the bot is ready (module docstring)."""
    if kind == "url_verification":
        # https://docs.slack.dev/reference/events/url_verification: echo the challenge.
        return web.json_response({"challenge": str(body.get("challenge") or "")})
    if kind == "command":
        return web.json_response({"response_type": "ephemeral", "text": STARTING_NOTE})
    return web.Response(status=503, text="starting; please retry")


def _refused(status: int, why: str, raw: bytes, source: str) -> web.Response:
    """The answer to a request that fails a check, and its one log line: never the body."""
    log.warning("refused a request to /slack/events from %s (%d bytes): %s", source, len(raw), why)
    return web.Response(status=status, text="invalid request")


def _is_ssl_check(text: str) -> bool:
    return len(text) <= _SSL_CHECK_MAX and parse_qs(text).get("ssl_check") == ["1"]


def _channel_of(body: dict[str, Any]) -> str:
    """The channel a command or an interaction came from, for the record of its signature."""
    channel = body.get("channel_id") or body.get("channel")
    if isinstance(channel, dict):
        channel = channel.get("id")
    return channel if isinstance(channel, str) else ""


async def serve(settings: Settings, *, mode: Mode, port: int) -> int:
    bot = Bot(settings, mode=mode, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Start-up can wait long for Slack: a SIGTERM meanwhile ends it (start cleans up after
    # itself when cancelled) instead of waiting for it.
    starting = asyncio.create_task(bot.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        log.info("stopped before Slack answered")
        return 0
    stopping.cancel()
    starting.result()  # a token Slack refused: the QwqbotError it raised
    await stop.wait()
    await bot.stop()
    return 0
