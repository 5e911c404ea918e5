"""Reading the files of a thread from Slack: download with the bot token, extract, store.

Runs inside an answer's task, after Slack has its acknowledgement (the intake only records
the files of a post), and never blocks the event loop: downloads are streamed with httpx,
PDFs are parsed in a worker thread (``qwqbot.files.extract``). Each file is read once: its
text (or the reason there is none) is stored with the message, and later answers in the
thread read it from the store.

Slack's rules (https://docs.slack.dev/messaging/working-with-files#authenticating): a
file's ``url_private_download`` needs the bot token as ``Authorization: Bearer`` and the
``files:read`` scope. Without a token Slack may answer with its sign-in page (HTML, status
200) instead of the file, so an HTML answer for a file that is not HTML is a refusal. The
token is sent only to Slack's own hosts (``*.slack.com``) or to the configured Web API host
(a proxy, the tests' fake): a file object pointing anywhere else does not get it.

Caps, each a module constant (figures in the README's "Files" section): ``TEXT_BYTES``
read of a text file (the rest would not fit any prompt: the file counts as shortened),
``PDF_BYTES`` for a PDF (larger ones are not downloaded), ``DOWNLOAD_SECONDS`` for one
download, ``FILES_PER_ANSWER`` files read for one answer, ``MAX_ATTEMPTS`` tries of a file
whose download failed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.files import caps
from qwqbot.files.extract import BINARY_HINT as BINARY
from qwqbot.files.extract import extract_async
from qwqbot.files.kinds import Kind, classify
from qwqbot.files.refs import file_ref
from qwqbot.store import Store

log = logging.getLogger(__name__)

#: Bytes read of a text file, and the largest PDF downloaded (why: ``qwqbot.files.caps``).
TEXT_BYTES = caps.TEXT_BYTES
PDF_BYTES = caps.PDF_BYTES
#: Seconds one download may take, connection included.
DOWNLOAD_SECONDS = 20.0
CONNECT_SECONDS = 5.0
#: Files read for one answer, newest first (the question's own come first).
FILES_PER_ANSWER = 10
#: Downloads of one file that failed (or timed out) before it is given up.
MAX_ATTEMPTS = 2
#: Downloads at once for one answer.
CONCURRENCY = 3

EXTERNAL = "it is stored outside Slack (an external file), which the bot cannot open"
NOT_SHARED = "Slack would not let the bot download it: it is not shared with the bot"
SIGN_IN_PAGE = "Slack answered with its sign-in page: the file is not shared with the bot"
GONE = "Slack no longer has the file (deleted?)"
NO_LINK = "Slack gave no download link for it"
FOREIGN_LINK = "its download link is not on Slack, so the bot did not send its token there"
NO_SCOPE = "the bot lacks Slack's files:read permission (see the README)"


@dataclass
class _NotRead(Exception):
    reason: str
    retry: bool = False  # a passing failure: a later answer may try again


def token_may_go_to(url: str, api_url: str) -> bool:
    """Whether the bot token may be sent with a request to ``url``: Slack's own https hosts,
    or the host of the configured Web API URL (``SLACK_API_URL``: a proxy, a test fake)."""
    parts, api = urlsplit(url), urlsplit(api_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")):
        return True
    return (parts.scheme, parts.netloc) == (api.scheme, api.netloc) and bool(parts.netloc)


class FileReader:
    """Reads the unread files of a thread into the store. ``client``: for files.info (files
    whose details Slack withheld, or that changed); ``token``: the bot token, for downloads."""

    def __init__(self, *, store: Store, client: AsyncWebClient, token: str, api_url: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.store = store
        self.client = client
        self._token = token
        self.api_url = api_url
        self._transport = transport
        #: reads in flight, by (channel, ts, file id): two answers in one thread at once
        #: share one download instead of making two
        self._reading: dict[tuple[str, str, str], asyncio.Future[None]] = {}

    async def read_thread(self, channel: str, thread_ts: str, up_to_ts: str) -> int:
        """Read the thread's files that are not read yet, up to the post ``up_to_ts``; how
        many were tried. Failures are stored as reasons, never raised."""
        rows = self.store.files_to_read(channel, thread_ts, up_to_ts,
                                        max_attempts=MAX_ATTEMPTS, limit=FILES_PER_ANSWER)
        if not rows:
            return 0
        gate = asyncio.Semaphore(CONCURRENCY)
        timeout = httpx.Timeout(DOWNLOAD_SECONDS, connect=CONNECT_SECONDS)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True, max_redirects=3,
                                     transport=self._transport) as http:

            async def one(row: dict[str, Any]) -> None:
                key = (row["channel_id"], row["ts"], row["file_id"])
                running = self._reading.get(key)
                if running is not None:
                    await asyncio.shield(running)
                    return
                self._reading[key] = done = asyncio.get_running_loop().create_future()
                try:
                    async with gate:
                        await self._read(http, row)
                finally:
                    del self._reading[key]
                    done.set_result(None)

            await asyncio.gather(*(one(row) for row in rows))
        return len(rows)

    async def _read(self, http: httpx.AsyncClient, row: dict[str, Any]) -> None:
        key = (row["channel_id"], row["ts"], row["file_id"])
        kind: Kind = "unknown"
        try:
            if row["status"] == "check":
                row = await self._refreshed(row)
            kind = classify(name=row["name"] or "", filetype=row["filetype"] or "",
                            mimetype=row["mimetype"] or "", mode=row["mode"] or "")
            if kind in ("image", "media"):
                # Nothing to download: the model reads text only.
                self.store.record_file_read(*key, status="unread", kind=kind)
                return
            data, complete = await self._fetch(http, row, kind)
            extracted = await extract_async(data, kind, complete=complete)
            if extracted.text is None:
                raise _NotRead(extracted.reason or BINARY)
            if kind == "unknown":
                kind = "text"
            self.store.record_file_read(*key, status="read", kind=kind, text=extracted.text,
                                        partial=extracted.partial)
            log.info("read file %s of %s/%s: %s, %d characters", row["file_id"],
                     row["channel_id"], row["ts"], kind, len(extracted.text))
        except _NotRead as exc:
            log.info("file %s of %s/%s not read: %s", row["file_id"], row["channel_id"],
                     row["ts"], exc.reason)
            self.store.record_file_read(*key, status="failed" if exc.retry else "unread",
                                        kind=kind, reason=exc.reason)

    async def _refreshed(self, row: dict[str, Any]) -> dict[str, Any]:
        """The file's details from files.info (https://docs.slack.dev/reference/methods/files.info)."""
        try:
            response = await self.client.files_info(file=row["file_id"])
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in ("file_not_found", "file_deleted"):
                raise _NotRead(GONE) from None
            if error == "missing_scope":
                raise _NotRead(NO_SCOPE) from None
            raise _NotRead(f"Slack would not describe it ({error or 'error'})", retry=True) from None
        except SlackClientError as exc:
            raise _NotRead(f"Slack could not be asked about it ({type(exc).__name__})",
                           retry=True) from None
        ref = file_ref(response.get("file") or {})
        if ref is None:
            raise _NotRead(GONE)
        self.store.refresh_file(row["channel_id"], row["ts"], row["file_id"], ref)
        return {**row, "name": ref.name, "filetype": ref.filetype, "mimetype": ref.mimetype,
                "mode": ref.mode, "size": ref.size, "url": ref.url, "external": int(ref.external)}

    async def _fetch(self, http: httpx.AsyncClient, row: dict[str, Any],
                     kind: Kind) -> tuple[bytes, bool]:
        """The file's bytes (all, or the first ``TEXT_BYTES`` of a text) and whether that is
        the whole file."""
        if row["external"] or row["mode"] == "external":
            raise _NotRead(EXTERNAL)
        if kind == "binary":
            raise _NotRead(BINARY)
        size = row["size"]
        if kind == "pdf" and isinstance(size, int) and size > PDF_BYTES:
            raise _NotRead(caps.too_large(size, PDF_BYTES))
        url = row["url"] or ""
        if not url:
            raise _NotRead(NO_LINK)
        if not token_may_go_to(url, self.api_url):
            raise _NotRead(FOREIGN_LINK)
        cap = PDF_BYTES if kind == "pdf" else TEXT_BYTES
        html = kind == "post" or (row["filetype"] or "").lower() in ("html", "htm") or (
            row["name"] or "").lower().endswith((".html", ".htm"))
        try:
            async with asyncio.timeout(DOWNLOAD_SECONDS):
                return await self._download(http, url, kind, cap, html=html)
        except TimeoutError:
            raise _NotRead(f"the download took longer than {DOWNLOAD_SECONDS:g} s",
                           retry=True) from None
        except httpx.TimeoutException:
            raise _NotRead("the download timed out", retry=True) from None
        except httpx.HTTPError as exc:
            raise _NotRead(f"the download failed ({type(exc).__name__})", retry=True) from None

    async def _download(self, http: httpx.AsyncClient, url: str, kind: Kind, cap: int, *,
                        html: bool) -> tuple[bytes, bool]:
        """``html``: the file itself is HTML, so an HTML answer is no sign-in page."""
        headers = {"Authorization": f"Bearer {self._token}"}
        async with http.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status in (401, 403):
                raise _NotRead(NOT_SHARED)
            if status in (404, 410):
                raise _NotRead(GONE)
            if status == 429 or status >= 500:
                raise _NotRead(f"Slack could not hand it over just then (HTTP {status})",
                               retry=True)
            if status != 200:
                raise _NotRead(f"Slack answered the download with HTTP {status}")
            ctype = response.headers.get("content-type", "").lower()
            if ctype.startswith("text/html") and not html:
                raise _NotRead(SIGN_IN_PAGE)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    if kind == "pdf":
                        raise _NotRead(caps.too_large(size, cap))
                    # A text's beginning is worth reading: the rest would not fit anyway.
                    return b"".join(chunks)[:cap], False
            return b"".join(chunks), True
