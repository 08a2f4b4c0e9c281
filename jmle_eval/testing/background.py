"""Run a loopback aiohttp server: in a background thread (tests), or as a process until SIGTERM (CLIs, benches).

The fake chat server, the scripted agent model and the FHIR test server all need the
same two things: start on a port, answer while a test runs in the main thread and stop
cleanly after; or, run alone, tell a parent which port they bound and stop on a signal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

Start = Callable[[], Awaitable[tuple[web.AppRunner, int]]]


@contextmanager
def in_thread(start: Start, what: str) -> Iterator[tuple[int, asyncio.AbstractEventLoop]]:
    """Run ``start()`` (which returns the server's runner and port) on a new loop in a thread.

    Yields the port and the loop (to change the server's state from the test: ``loop.call_soon_threadsafe``).
    """
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
        yield box["port"], loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def until_stopped(start: Start, port_file: str | None = None, banner: str | None = None) -> None:
    """Start the server, write its port to ``port_file`` (atomically), serve until SIGTERM/SIGINT, clean up.

    ``banner`` (with ``{port}``) is printed once listening, for a person watching the process.
    """
    runner, port = await start()
    if port_file:
        with open(f"{port_file}.tmp", "w") as f:
            f.write(str(port))
        os.replace(f"{port_file}.tmp", port_file)
    if banner:
        print(banner.format(port=port), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
