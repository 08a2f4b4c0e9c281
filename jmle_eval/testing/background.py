"""Run a loopback aiohttp server on its own event loop in a background thread, for tests and demos.

The fake chat server, the scripted agent model and the FHIR test server all need the
same thing: start on a free port, answer while the test runs in the main thread, and
stop cleanly after.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

Start = Callable[[], Awaitable[tuple[web.AppRunner, int]]]


@contextmanager
def in_thread(start: Start, what: str) -> Iterator[int]:
    """Run ``start()`` (which returns the server's runner and port) on a new loop in a thread; yield the port."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        box["runner"], box["port"] = loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(box["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError(f"the {what} did not start")
    try:
        yield box["port"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
