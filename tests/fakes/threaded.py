"""The part both loopback fakes share: an aiohttp server on its own event loop in a
background thread, so sync tests, async tests on any loop and subprocesses can all use it."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T", bound="ThreadedServer")


class ThreadedServer:
    """Subclasses implement ``_astart`` (bind, set ``_port``) and ``_astop``."""

    _thread_name = "fake-server"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    async def _astart(self) -> None:
        raise NotImplementedError

    async def _astop(self) -> None:
        raise NotImplementedError

    def start(self: T) -> T:
        """Serve; returns once listening."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, args=(loop,),
                                        name=self._thread_name, daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._astart(), loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving. In-flight requests are cancelled (clients see a disconnect)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(self._astop(), loop).result(timeout=10)
        finally:
            if loop.is_running():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()
            self._loop = None
            self._thread = None
            self._port = None

    def __enter__(self: T) -> T:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def serve_until_signalled(self, address: Callable[[], str]) -> int:
        """For ``python -m tests.fakes...``: start, print ``address()`` on the first line of
        stdout (a parent process reads it), serve until SIGTERM or SIGINT."""
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        try:
            print(address(), flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
        return 0

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
