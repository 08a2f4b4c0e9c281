"""Chat-completion requests to an OpenAI-compatible server: bounded, retried, adaptive, lean.

The default hot path (``transport="lean"``) posts pre-serialised JSON on an
aiohttp session (the transport of the ``openai`` SDK's ``DefaultAioHttpClient``),
with the base URL and headers the SDK's ``AsyncOpenAI`` would use
(:func:`sdk_base_url`, :func:`sdk_headers`), and reads the reply with one
``json.loads``: the SDK's ``post()``/``create()`` and even bare httpx2 spend
0.3-1 ms more CPU per request on option copies, URL and header merging, which at
256-1,024 requests in flight makes the client, not the server, the bottleneck
(``reference/client-performance.md``). The SDK itself (about 0.3 s to import) is
loaded only for ``transport="sdk"``, which sends every request through it.

Retries are ours, so that attempts, ``Retry-After`` and the adaptive in-flight
limit are visible and bounded: a question ends as a :class:`Reply` with status
``ok`` or ``error``; only answers that cannot succeed for any question (bad
key, unknown model or URL) raise :class:`Fatal`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import logging
import os
import platform
import random
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx2

from jmle_eval.io import mask
from jmle_eval.predict.limit import AdaptiveLimit
from jmle_eval.predict.outage import Outage, list_models
from jmle_eval.predict.replies import (
    FATAL_STATUSES,
    RATE_LIMIT_STATUSES,
    REJECTED_STATUSES,
    Fatal,
    Reply,
    error_message,
    parse_completion,
    retry_after_s,
)

if TYPE_CHECKING:
    import openai

log = logging.getLogger("jmle_eval.predict")
MAX_GIVEN_BACK = 10
"""Outages one question may live through without spending an attempt (a prompt that crashes the server each
time it is sent must still end, as an error)."""


TRANSPORTS = ("lean", "sdk")
Post = Callable[[bytes], Awaitable[tuple[int, Any, bytes]]]


def sdk_base_url(base_url: str) -> str:
    """Return ``base_url`` normalised as ``openai.AsyncOpenAI`` does (httpx2 URL, one trailing slash), without it."""
    url = httpx2.URL(base_url)
    path, separator, query = url.raw_path.partition(b"?")
    if not path.endswith(b"/"):
        url = url.copy_with(raw_path=path + b"/" + separator + query)
    return str(url).rstrip("/")


@functools.cache
def _sdk_platform() -> tuple[str, str]:
    """Return the SDK's X-Stainless-OS and -Arch values, as its ``get_platform`` and ``get_architecture`` give them."""
    system, name, machine = platform.system().lower(), platform.platform().lower(), platform.machine().lower()
    named = {"darwin": "MacOS", "windows": "Windows", "freebsd": "FreeBSD", "openbsd": "OpenBSD", "linux": "Linux"}
    os_name = named.get(system, f"Other:{name}" if name else "Unknown")
    if "iphone" in name or "ipad" in name:
        os_name = "iOS"
    elif "android" in name and system not in ("darwin", "windows"):
        os_name = "Android"
    arches = {"arm64": "arm64", "aarch64": "arm64", "arm": "arm", "x86_64": "x64"}
    arch = arches.get(machine) or ("x32" if sys.maxsize <= 2**32 else f"other:{machine}" if machine else "unknown")
    return os_name, arch


def sdk_headers(api_key: str) -> dict[str, str]:
    """Return the headers ``openai.AsyncOpenAI(api_key=…)`` sends on every request, without importing the SDK.

    tests/test_startup.py checks them against the installed SDK's.
    """
    version = importlib.metadata.version("openai")
    os_name, arch = _sdk_platform()
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": f"AsyncOpenAI/Python {version}",
        "X-Stainless-Lang": "python",
        "X-Stainless-Package-Version": version,
        "X-Stainless-OS": os_name,
        "X-Stainless-Arch": arch,
        "X-Stainless-Runtime": platform.python_implementation(),
        "X-Stainless-Runtime-Version": platform.python_version(),
        "X-Stainless-Async": "async:asyncio",
    }
    for header, env in (("OpenAI-Organization", "OPENAI_ORG_ID"), ("OpenAI-Project", "OPENAI_PROJECT_ID")):
        if (value := os.environ.get(env)) is not None:
            headers[header] = value
    return {**headers, "Authorization": f"Bearer {api_key}"} if api_key else headers


def _env_proxy(url: str) -> str | None:
    """Return the proxy the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) sets for ``url``, if any."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class ChatClient:
    """One OpenAI-compatible endpoint: bounded requests in flight, retries, an adaptive limit.

    ``transport="lean"`` (default) posts on an aiohttp session, the transport the
    SDK itself uses with ``DefaultAioHttpClient``, skipping its per-request option
    copies and request building; ``"sdk"`` sends every request through
    ``AsyncOpenAI.post`` instead (slower at high concurrency; for SDK-only auth).
    Create and use it inside one running event loop; close it with :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_concurrency: int,
        timeout_s: float,
        max_attempts: int,
        backoff_s: float,
        backoff_max_s: float,
        transport: str = "lean",
        secrets: Iterable[str] = (),
        outage_timeout_s: float = 600.0,
        server_died: Callable[[], str | None] | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        self.timeout_s = float(timeout_s)
        self.max_attempts = max(1, int(max_attempts))
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.transport = transport
        self.limit = AdaptiveLimit(max_concurrency)
        self._secrets = [s for s in secrets if s]
        self.sent = 0  # chat requests put on the wire (a failed run keeps its logs when any was)
        self.sdk = self._sdk(base_url, api_key, max_concurrency) if transport == "sdk" else None
        self.base_url = sdk_base_url(base_url)
        self.url = f"{self.base_url}/chat/completions"
        self._headers = sdk_headers(api_key)
        # Per-request work is kept out of the hot path: headers are session defaults, no cookie jar, and the
        # proxy from HTTP(S)_PROXY / NO_PROXY is looked up once (trust_env would do it in a thread per request).
        self._proxy = _env_proxy(self.url)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_concurrency, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(10.0, self.timeout_s)),
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.outage = Outage(
            self._reachable, base_url=self.base_url, timeout_s=outage_timeout_s, server_died=server_died
        )

    def _sdk(self, base_url: str, api_key: str, max_concurrency: int) -> openai.AsyncOpenAI:
        import openai

        http = openai.DefaultAioHttpClient(
            limits=httpx2.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            timeout=httpx2.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
        )
        return openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, http_client=http)

    def _clean(self, text: str) -> str:
        return mask(text, self._secrets)

    async def aclose(self) -> None:
        """Stop watching for the server and close the connection pools."""
        await self.outage.aclose()
        await self._session.close()
        if self.sdk is not None:
            await self.sdk.close()

    async def models(self, wait_s: float) -> list[str]:
        """Return the served model ids (:func:`~jmle_eval.predict.outage.list_models`)."""
        return await list_models(self._session, f"{self.base_url}/models", wait_s, proxy=self._proxy, clean=self._clean)

    async def _reachable(self) -> bool:
        """Return True if the server answers HTTP at all (any status): the connection is not the problem."""
        try:
            timeout = aiohttp.ClientTimeout(total=min(5.0, self.timeout_s))
            async with self._session.get(f"{self.base_url}/models", proxy=self._proxy, timeout=timeout) as resp:
                await resp.read()
            return True
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def _post_lean(self, body: bytes) -> tuple[int, Any, bytes]:
        async with self._session.post(self.url, data=body, proxy=self._proxy) as resp:
            return resp.status, resp.headers, await resp.read()

    async def _post_sdk(self, body: bytes) -> tuple[int, Any, bytes]:
        import openai

        assert self.sdk is not None
        try:
            resp = await self.sdk.post("/chat/completions", content=body, cast_to=httpx2.Response)
        except openai.APIStatusError as exc:
            return exc.status_code, exc.response.headers, exc.response.content
        except openai.APIConnectionError as exc:
            raise ConnectionError(str(exc.__cause__ or exc)) from exc
        return resp.status_code, resp.headers, resp.content

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            wait = min(retry_after, self.backoff_max_s)  # a server asking for minutes gets backoff_max_s
            return wait + random.uniform(0, 0.1 * max(wait, 0.1))
        ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # equal jitter: spread retries, keep a floor

    async def _attempt(self, post: Post, make_body: Callable[[], bytes]) -> _Attempt:
        """Send one request in a slot of the in-flight limit; return what came of it (Fatal propagates)."""
        epoch = await self.limit.acquire()
        try:
            return await self._send(post, make_body(), epoch)
        finally:
            self.limit.release()

    async def _send(self, post: Post, body: bytes, epoch: int) -> _Attempt:
        started = time.perf_counter()
        try:
            self.sent += 1
            async with asyncio.timeout(self.timeout_s):
                status, headers, content = await post(body)
        except TimeoutError:
            return _Attempt(error=f"no reply within provider.timeout_s={self.timeout_s:g} s")
        except (aiohttp.ClientError, httpx2.HTTPError, OSError) as exc:  # ConnectionError is an OSError
            return _Attempt(error=f"connection error: {self._clean(str(exc) or type(exc).__name__)}", connection=True)
        if status == 200:
            parsed = parse_completion(content)
            if isinstance(parsed, Reply):
                self.limit.succeeded()
                parsed.latency_s = round(time.perf_counter() - started, 3)
                parsed.http_status = status
                return _Attempt(reply=parsed)
            return _Attempt(error=self._clean(parsed), status=status)  # a proxy page may quote the headers
        message = self._clean(error_message(content))
        if status in FATAL_STATUSES:
            raise Fatal(status, message, self.url)
        if status in RATE_LIMIT_STATUSES:
            self.limit.rate_limited(epoch)
        return _Attempt(
            error=f"HTTP {status}: {message}",
            status=status,
            retry_after=retry_after_s(headers),
            final=status in REJECTED_STATUSES,
        )

    async def complete(self, make_body: Callable[[], bytes]) -> Reply:
        """Return the reply to one question, retrying transient failures up to ``max_attempts`` times.

        ``make_body`` is called once, when the first slot is granted, so that
        prompts (and base64 images) are built only for requests about to be sent.
        An attempt that failed because the server was away (see :mod:`outage`)
        is given back, at most :data:`MAX_GIVEN_BACK` times.
        """
        post = self._post_lean if self.transport == "lean" else self._post_sdk
        built: list[bytes] = []

        def body() -> bytes:
            if not built:
                built.append(make_body())
            return built[0]

        result = _Attempt(error="not sent")
        attempt = given_back = 0
        while attempt < self.max_attempts:
            await self.outage.gate()
            attempt += 1
            result = await self._attempt(post, body)
            if result.reply is not None:
                result.reply.attempts = attempt
                return result.reply
            if result.final:
                break
            if result.connection and given_back < MAX_GIVEN_BACK and await self.outage.server_is_down():
                attempt -= 1  # the server was away, not this question's fault: the attempt is given back
                given_back += 1
                continue
            if attempt < self.max_attempts:
                await asyncio.sleep(self._delay(attempt, result.retry_after))
        return Reply(status="error", attempts=attempt, error=result.error, http_status=result.status)


@dataclass(slots=True)
class _Attempt:
    """One request's outcome: a reply, or an error with what the retry loop needs to know."""

    reply: Reply | None = None
    error: str | None = None
    status: int | None = None
    retry_after: float | None = None
    final: bool = False  # refused as sent (400/413/422): no retry
    connection: bool = False  # failed to connect or lost the connection: maybe the server is away
