"""Slow and idle HTTP clients are cut (qwqbot/slack/http_limits.py) while Slack's deliveries
keep getting through: raw loopback sockets that trickle their headers or body, or sit idle
after a request, against the real bot in HTTP mode."""

from __future__ import annotations

import asyncio

from qwqbot.slack import http_limits
from tests.fakes.model_server import think_stream
from tests.slack.harness import BOT

SLOW_CLIENTS = 200
# Leeway for bounded waits: how far past a limit the server may take to act.
MARGIN = 5.0


class Trickler:
    """A client that sends ``head`` and then one byte a second, never finishing, and notes
    when the server closes the connection on it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = b""
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, port: int, head: bytes) -> Trickler:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        await writer.drain()
        return cls(reader, writer)

    async def run(self, limit: float) -> None:
        """Trickle for at most ``limit`` seconds, reading whatever the server sends."""
        watch = asyncio.create_task(self._watch())
        try:
            for _ in range(int(limit)):
                if self.closed.is_set():
                    break
                await asyncio.sleep(1)
                try:
                    self.writer.write(b"a")
                    await self.writer.drain()
                except (ConnectionError, OSError):
                    break
            await asyncio.wait_for(self.closed.wait(), timeout=MARGIN)
        except TimeoutError:
            pass
        finally:
            watch.cancel()
            self.writer.close()

    async def _watch(self) -> None:
        try:
            while chunk := await self.reader.read(4096):
                self.received += chunk
        except (ConnectionError, OSError):
            pass
        self.closed.set()


async def ask(harness, text: str) -> str:
    harness.model.enqueue(think_stream("r", "Still here."))
    ts: str = await harness.post("C1", "U1", f"<@{BOT}> {text}")
    return ts


async def answered(harness, ts: str) -> None:
    row = await harness.finished("C1", ts)
    assert row["status"] == "done"
    assert "Still here." in str(harness.bot_replies("C1", ts))
    db = harness.store.db
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def idle_after_one_request(port: int) -> Trickler:
    """A keep-alive connection that made one complete request and then sends nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=MARGIN)
    assert head.startswith(b"HTTP/1.1 "), head
    assert b"connection: close" not in head.lower()  # kept alive, so the idle limit is what cuts it
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    await asyncio.wait_for(reader.readexactly(length), timeout=MARGIN)
    return Trickler(reader, writer)


async def test_header_tricklers_and_idle_connections_are_cut_while_slack_gets_through(harness):
    limit = http_limits.KEEPALIVE_TIMEOUT
    slow = [await Trickler.open(harness.port, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            for _ in range(SLOW_CLIENTS)]
    idle = await idle_after_one_request(harness.port)
    trickling = [asyncio.create_task(t.run(limit + MARGIN)) for t in slow]
    # The idle one sends nothing: run() with no time to trickle just waits for the close.
    idling = asyncio.create_task(idle.run(0))

    ts = await ask(harness, "are you there while they trickle?")
    # Acknowledged while every slow client still holds its connection.
    assert not any(t.closed.is_set() for t in slow)
    await answered(harness, ts)

    await asyncio.gather(*trickling, idling)
    assert all(t.closed.is_set() for t in slow), sum(not t.closed.is_set() for t in slow)
    assert all(t.received == b"" for t in slow)  # closed, not answered
    assert idle.closed.is_set()
    await answered(harness, await ask(harness, "and after?"))


async def test_a_trickling_body_gets_408_and_is_closed(harness):
    limit = http_limits.BODY_TIMEOUT
    head = (b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{\"type\":")
    slow = await Trickler.open(harness.port, head)
    trickling = asyncio.create_task(slow.run(limit + MARGIN))

    ts = await ask(harness, "are you there while a body trickles?")
    assert not slow.closed.is_set()
    await answered(harness, ts)

    await trickling
    assert slow.closed.is_set()
    assert slow.received.startswith(b"HTTP/1.1 408 "), slow.received[:100]
