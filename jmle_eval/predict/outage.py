"""Whether the server is there: the preflight's model list, and outages during a run.

:func:`list_models` answers the preflight, retrying until the server is up. A request
that fails at the connection level asks :meth:`Outage.server_is_down`; concurrent
failures share one probe. While the server is down, :meth:`Outage.gate` holds every
request back (so no question spends an attempt on it) and one watcher probes until
the server answers or ``timeout_s`` passes; a launched server that died is given up
on at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from jmle_eval.predict.replies import Fatal

log = logging.getLogger("jmle_eval.predict")


async def list_models(
    session: aiohttp.ClientSession, url: str, wait_s: float, *, proxy: str | None, clean: Callable[[str], str]
) -> list[str]:
    """Return the model ids the server lists at ``url``, retrying failures for up to ``wait_s`` seconds.

    Raises Fatal when the server rejects the key (401/403, with the message the openai SDK gives), and
    ConnectionError naming the URL when nothing answers in time. Another status: [] (some servers list none).
    """
    deadline = time.monotonic() + max(0.0, wait_s)
    timeout = aiohttp.ClientTimeout(total=max(1.0, min(10.0, wait_s)))
    while True:
        try:
            async with session.get(url, proxy=proxy, timeout=timeout) as resp:
                status, text = resp.status, (await resp.read()).decode("utf-8", "replace")
            if status in (401, 403):
                raise Fatal(status, clean(_status_message(status, text)), url)
            if not 200 <= status < 300:
                return []
            return [str(m["id"]) for m in json.loads(text)["data"]]
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, TypeError, KeyError) as exc:
            if time.monotonic() + 1.0 > deadline:
                reason = str(exc) or ("Request timed out." if isinstance(exc, TimeoutError) else type(exc).__name__)
                raise ConnectionError(f"no answer from {url} within {wait_s:g} s ({clean(reason)})") from exc
            await asyncio.sleep(1.0)


def _status_message(status: int, text: str) -> str:
    """Return the openai SDK's ``APIStatusError.message``: the code, and the body's error message if it has one."""
    try:
        body = json.loads(text.strip())
    except ValueError:
        return f"Error code: {status}"
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f"Error code: {status} - {message}" if isinstance(message, str) and message else f"Error code: {status}"


class Unreachable(Exception):
    """The server stayed unreachable past the outage timeout, or the server launched for the run died."""


class Outage:
    """Shared outage state of one endpoint."""

    def __init__(
        self,
        probe: Callable[[], Coroutine[Any, Any, bool]],
        *,
        base_url: str,
        timeout_s: float,
        server_died: Callable[[], str | None] | None = None,
    ) -> None:
        self._probe = probe
        self.base_url = base_url
        self.timeout_s = float(timeout_s)
        self._server_died = server_died
        self._up = asyncio.Event()
        self._up.set()
        self._check: asyncio.Task[bool] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._failure: str | None = None

    async def aclose(self) -> None:
        """Stop probing."""
        for task in (self._check, self._watch):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _died(self) -> str | None:
        """Return why the server launched for this run is gone, or None (alive, or not launched by us)."""
        return self._server_died() if self._server_died else None

    async def server_is_down(self) -> bool:
        """After a connection failure: return True if the server, not the question, is at fault.

        Concurrent failures share one probe. When the server is down, dispatch
        pauses (:meth:`gate`) and one watcher probes it with back-off until it
        answers again or ``outage_timeout_s`` passes.
        """
        if not self._up.is_set():
            return True
        died = self._died()
        if died is None:
            if self._check is None or self._check.done():
                self._check = asyncio.create_task(self._probe())
            if await asyncio.shield(self._check):
                return False
        if self._up.is_set():  # the first request to notice starts the watcher
            self._up.clear()
            self._watch = asyncio.create_task(self._wait_for_server(died))
        return True

    async def _wait_for_server(self, died: str | None) -> None:
        started = time.monotonic()
        if died is None:
            log.warning(
                "the server at %s is unreachable: requests paused, probing it for up to provider.outage_timeout_s=%g s",
                self.base_url, self.timeout_s,
            )  # fmt: skip
        delay = 0.25
        while died is None:
            left = self.timeout_s - (time.monotonic() - started)
            if left <= 0:
                self._failure = (
                    f"The server at {self.base_url} has been unreachable for {self.timeout_s:g} s "
                    "(provider.outage_timeout_s)"
                )
                break
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)
            died = self._died()
            if died is None and await self._probe():
                took = time.monotonic() - started
                log.warning("the server at %s answers again after %.1f s: resuming", self.base_url, took)
                break
        if died is not None:
            self._failure = died
        self._up.set()

    async def gate(self) -> None:
        """Wait while the server is down; raise Unreachable once it is given up on."""
        if not self._up.is_set():
            await self._up.wait()
        if self._failure is not None:
            raise Unreachable(self._failure)
