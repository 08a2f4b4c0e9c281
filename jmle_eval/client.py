"""Chat-completion requests to an OpenAI-compatible server: bounded, retried, adaptive, lean.

The ``openai`` package is the client library: it resolves the base URL and the
auth and default headers, lists the served models, and can send every request
(``transport="sdk"``). The default hot path posts pre-serialised JSON on an
aiohttp session (the SDK's own ``DefaultAioHttpClient`` transport) and reads
the reply with one ``json.loads``: the SDK's ``post()``/``create()`` and even
bare httpx2 spend 0.3-1 ms more CPU per request on option copies, URL and header
merging, which at 256-1,024 requests in flight makes the client, not the
server, the bottleneck (``reference/client-performance.md``).

Retries are ours, so that attempts, ``Retry-After`` and the adaptive in-flight
limit are visible and bounded: a question ends as a :class:`Reply` with status
``ok`` or ``error``; only answers that cannot succeed for any question (bad
key, unknown model or URL) raise :class:`Fatal`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import json
import logging
import math
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx2
import openai

FATAL_STATUSES = frozenset({401, 403, 404})
"""The key, the permission or the model/URL is wrong: no question can succeed, so the run stops."""
REJECTED_STATUSES = frozenset({400, 413, 422})
"""The server refuses this request as sent: recorded as an error at once, never retried."""
log = logging.getLogger("jmle_eval.predict")
MAX_GIVEN_BACK = 10
"""Outages one question may live through without spending an attempt (a prompt that crashes the server each
time it is sent must still end, as an error)."""

RATE_LIMIT_STATUSES = frozenset({429, 503})
"""Slow down: honour Retry-After and cut the in-flight limit."""


@dataclass(slots=True)
class Reply:
    """The outcome of one question: the model's answer, or why there is none."""

    status: str  # ok | error
    answer_text: str | None = None
    reasoning_text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_s: float | None = None
    attempts: int = 0
    error: str | None = None
    model: str | None = None
    cost_usd: float | None = None  # as reported by the provider (OpenRouter usage accounting)
    http_status: int | None = None


class Fatal(Exception):
    """An HTTP answer that no question can get past (401, 403, 404): the run must stop."""

    def __init__(self, status: int, message: str, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}: {message}")
        self.status = status
        self.message = message
        self.url = url


class Unreachable(Exception):
    """The server stayed unreachable past ``outage_timeout_s``, or the server launched for the run died."""


class AdaptiveLimit:
    """A semaphore whose limit shrinks under sustained rate limiting and grows back on success.

    Additive increase, multiplicative decrease, as TCP does, but a cut needs
    *sustained* limiting: at least ``max(2, threshold × limit)`` of the last
    ``limit`` replies were 429/503. A provider's occasional 429 (1 % of replies,
    say) is retried after its Retry-After and leaves the limit alone; a hard rate
    cap (every other reply a 429) halves it within one round. ``acquire`` returns
    the limit's epoch; a rate limit seen by a request sent in an older epoch does
    not cut again, so one burst of 429s halves the limit once. After a cut the
    limit grows by one per ``limit // 8`` successes (about 12 % per round).
    """

    def __init__(self, limit: int, threshold: float = 0.05) -> None:
        self.max = self.limit = self.lowest = max(1, int(limit))
        self.threshold = threshold
        self.in_flight = 0
        self.epoch = 0
        self.cuts = 0
        self._credit = 0
        self._recent: collections.deque[bool] = collections.deque(maxlen=self.max)  # True = rate limited
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> int:
        """Wait for a free slot; return the current epoch."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return self.epoch
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was granted just before the cancel
            elif waiter in self._waiters:  # _wake may already have dropped the cancelled waiter
                self._waiters.remove(waiter)
            raise
        return self.epoch

    def release(self) -> None:
        """Give a slot back and wake waiters while there is room."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def rate_limited(self, epoch: int) -> None:
        """Record a 429/503; halve the limit if rate limiting is sustained (once per epoch)."""
        self._recent.append(True)
        if epoch != self.epoch:
            return
        window = list(self._recent)[-self.limit :]
        if sum(window) < max(2, math.ceil(self.threshold * self.limit)):
            return
        self.epoch += 1
        self.cuts += 1
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._credit = 0
        self._recent.clear()  # the next cut needs fresh evidence

    def succeeded(self) -> None:
        """Record a success; below the maximum, allow one more in flight per ``limit // 8`` successes."""
        self._recent.append(False)
        if self.limit >= self.max:
            return
        self._credit += 1
        if self._credit >= max(1, self.limit // 8):
            self._credit = 0
            self.limit += 1
            self._wake()


def retry_after_s(headers: Any) -> float | None:
    """Return the server's requested wait in seconds (``retry-after-ms`` or ``Retry-After``), if it is readable."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            wait = float(raw_ms) / 1000
        except ValueError:
            wait = math.nan
        if math.isfinite(wait):
            return max(0.0, wait)
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        wait = float(raw)
    except ValueError:
        try:  # an HTTP date; anything else ("soon") is ignored and the usual back-off applies
            wait = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, wait) if math.isfinite(wait) else None


def _error_message(content: bytes) -> str:
    try:
        body = json.loads(content)
    except ValueError:
        return content[:300].decode("utf-8", "replace").strip() or "(empty body)"
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        return str(err.get("message") or err)[:500]
    return str(err)[:500]


class Unusable(ValueError):
    """A 200 reply the client cannot use (no answer, a field of the wrong type): retried, then recorded."""


def _text(content: Any) -> str | None:
    if isinstance(content, list):  # content parts: text parts are joined, others (images, refusals) skipped
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type", "text") == "text" and "text" in part:
                if not isinstance(part["text"], str):
                    raise Unusable(f"a content part's text is not a string ({part['text']!r:.60})")
                parts.append(part["text"])
        return "".join(parts) or None
    return content if isinstance(content, str) else None


def _tokens(value: Any, name: str) -> int:
    """Return a usage count; whole numbers, also written as float or digit string, are accepted."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise Unusable(f"usage.{name} is not a token count ({value!r:.60})")


def _usage(raw: Any) -> dict[str, int]:
    if raw is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}
    if not isinstance(raw, dict):
        raise Unusable(f"usage is not an object ({raw!r:.60})")
    details = raw.get("completion_tokens_details")
    nested = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return {
        "prompt_tokens": _tokens(raw.get("prompt_tokens"), "prompt_tokens"),
        "completion_tokens": _tokens(raw.get("completion_tokens"), "completion_tokens"),
        "reasoning_tokens": _tokens(nested if nested is not None else raw.get("reasoning_tokens"), "reasoning_tokens"),
    }


def _reply(data: dict[str, Any], content: bytes) -> Reply | str:
    choices = data.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        if data.get("error"):
            return f"error in response body: {_error_message(content)}"
        return "response has no choices"
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    answer = _text(message.get("content"))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    finish = choice.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise Unusable(f"finish_reason is not a string ({finish!r:.60})")
    if not answer and finish != "length":  # cut off by the token limit is a model outcome; empty is not
        return f"response has no answer text (content {message.get('content')!r:.80}, finish_reason {finish!r})"
    raw_usage = data.get("usage")
    cost = raw_usage.get("cost") if isinstance(raw_usage, dict) else None
    # a cost that is not a finite non-negative number is unknown, not a reason to drop the answer
    valid_cost = isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0
    return Reply(
        status="ok",
        answer_text=answer,
        reasoning_text=reasoning if isinstance(reasoning, str) else None,
        finish_reason=finish,
        usage=_usage(raw_usage),
        model=data.get("model") if isinstance(data.get("model"), str) else None,
        cost_usd=float(cost) if valid_cost else None,
    )


def parse_completion(content: bytes) -> Reply | str:
    """Return the Reply in a chat-completion body, or a string saying why the body is unusable.

    Never raises: whatever a server sends, the question gets a reason it can be
    retried for and recorded with.
    """
    try:
        data = json.loads(content)
    except ValueError:
        return f"malformed response body: {content[:120].decode('utf-8', 'replace')!r}"
    except RecursionError:
        return "malformed response body: nested too deeply"
    if not isinstance(data, dict):
        return "response body is not a JSON object"
    try:
        return _reply(data, content)
    except Unusable as exc:
        return f"unusable response: {exc}"
    except Exception as exc:
        return f"unusable response: {type(exc).__name__}: {exc}"


TRANSPORTS = ("lean", "sdk")


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
        self.outage_timeout_s = float(outage_timeout_s)
        self.outages: list[float] = []  # seconds each outage lasted
        self._server_died = server_died
        self._up = asyncio.Event()
        self._up.set()
        self._check: asyncio.Task[bool] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._failure: str | None = None
        http = openai.DefaultAioHttpClient(
            limits=httpx2.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            timeout=httpx2.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
        )
        self.sdk = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, http_client=http)
        self.base_url = str(self.sdk.base_url).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        headers = {**self.sdk.default_headers, **self.sdk.auth_headers}
        self._headers = {k: v for k, v in headers.items() if isinstance(v, str)}
        # Per-request work is kept out of the hot path: headers are session defaults, no cookie jar, and the
        # proxy from HTTP(S)_PROXY / NO_PROXY is looked up once (trust_env would do it in a thread per request).
        self._proxy = _env_proxy(self.url)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_concurrency, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(10.0, self.timeout_s)),
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def aclose(self) -> None:
        """Stop watching for the server and close both connection pools."""
        for task in (self._check, self._watch):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._session.close()
        await self.sdk.close()

    async def models(self, wait_s: float) -> list[str]:
        """Return the served model ids, retrying connection failures for up to ``wait_s`` seconds.

        Raises Fatal when the server rejects the key, and ConnectionError naming
        the URL when nothing answers in time.
        """
        deadline = time.monotonic() + max(0.0, wait_s)
        sdk = self.sdk.with_options(timeout=max(1.0, min(10.0, wait_s)))
        while True:
            try:
                page = await sdk.models.list()
                return [str(m.id) for m in page.data]
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise Fatal(exc.status_code, self._clean(exc.message), f"{self.base_url}/models") from None
            except openai.APIStatusError:
                return []  # reachable; some servers do not list models
            except (openai.APIConnectionError, ValueError, TypeError) as exc:
                if time.monotonic() + 1.0 > deadline:
                    reason = self._clean(str(exc.__cause__ or exc) or type(exc).__name__)
                    raise ConnectionError(
                        f"no answer from {self.base_url}/models within {wait_s:g} s ({reason})"
                    ) from exc
                await asyncio.sleep(1.0)

    async def _reachable(self) -> bool:
        """Return True if the server answers HTTP at all (any status): the connection is not the problem."""
        try:
            timeout = aiohttp.ClientTimeout(total=min(5.0, self.timeout_s))
            async with self._session.get(f"{self.base_url}/models", proxy=self._proxy, timeout=timeout) as resp:
                await resp.read()
            return True
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def _server_is_down(self) -> bool:
        """After a connection failure: return True if the server, not the question, is at fault.

        Concurrent failures share one probe. When the server is down, dispatch
        pauses (:meth:`_gate`) and one watcher probes it with back-off until it
        answers again or ``outage_timeout_s`` passes.
        """
        if not self._up.is_set():
            return True
        died = self._server_died() if self._server_died else None
        if died is None:
            if self._check is None or self._check.done():
                self._check = asyncio.create_task(self._reachable())
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
                self.base_url, self.outage_timeout_s,
            )  # fmt: skip
        delay = 0.25
        while died is None:
            left = self.outage_timeout_s - (time.monotonic() - started)
            if left <= 0:
                self._failure = (
                    f"The server at {self.base_url} has been unreachable for {self.outage_timeout_s:g} s "
                    "(provider.outage_timeout_s)"
                )
                break
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)
            died = self._server_died() if self._server_died else None
            if died is None and await self._reachable():
                self.outages.append(round(time.monotonic() - started, 1))
                log.warning("the server at %s answers again after %.1f s: resuming", self.base_url, self.outages[-1])
                break
        if died is not None:
            self._failure = died
        self._up.set()

    async def _gate(self) -> None:
        """Wait while the server is down; raise Unreachable once it is given up on."""
        if not self._up.is_set():
            await self._up.wait()
        if self._failure is not None:
            raise Unreachable(self._failure)

    async def _post_lean(self, body: bytes) -> tuple[int, Any, bytes]:
        async with self._session.post(self.url, data=body, proxy=self._proxy) as resp:
            return resp.status, resp.headers, await resp.read()

    async def _post_sdk(self, body: bytes) -> tuple[int, Any, bytes]:
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

    async def complete(self, make_body: Callable[[], bytes]) -> Reply:
        """Return the reply to one question, retrying transient failures up to ``max_attempts`` times.

        ``make_body`` is called once, when the first slot is granted, so that
        prompts (and base64 images) are built only for requests about to be sent.
        """
        post = self._post_lean if self.transport == "lean" else self._post_sdk
        body: bytes | None = None
        error = "not sent"
        status: int | None = None
        attempt = given_back = 0
        while attempt < self.max_attempts:
            await self._gate()
            attempt += 1
            epoch = await self.limit.acquire()
            retry_after: float | None = None
            unreachable = False
            started = time.perf_counter()
            try:
                if body is None:
                    body = make_body()
                self.sent += 1
                async with asyncio.timeout(self.timeout_s):
                    status, headers, content = await post(body)
                if status == 200:
                    parsed = parse_completion(content)
                    if isinstance(parsed, Reply):
                        self.limit.succeeded()
                        parsed.latency_s = round(time.perf_counter() - started, 3)
                        parsed.attempts = attempt
                        parsed.http_status = status
                        return parsed
                    error = self._clean(parsed)  # a proxy page may quote the request headers
                else:
                    message = self._clean(_error_message(content))
                    if status in FATAL_STATUSES:
                        raise Fatal(status, message, self.url)
                    if status in REJECTED_STATUSES:
                        return Reply(
                            status="error", attempts=attempt, error=f"HTTP {status}: {message}", http_status=status
                        )
                    if status in RATE_LIMIT_STATUSES:
                        self.limit.rate_limited(epoch)
                    retry_after = retry_after_s(headers)
                    error = f"HTTP {status}: {message}"
            except TimeoutError:
                error = f"no reply within provider.timeout_s={self.timeout_s:g} s"
                status = None
            except (aiohttp.ClientError, httpx2.HTTPError, OSError) as exc:  # ConnectionError is an OSError
                error = f"connection error: {self._clean(str(exc) or type(exc).__name__)}"
                status = None
                unreachable = True
            finally:
                self.limit.release()
            if unreachable and given_back < MAX_GIVEN_BACK and await self._server_is_down():
                attempt -= 1  # the server was away, not this question's fault: the attempt is given back
                given_back += 1
                continue
            if attempt < self.max_attempts:
                await asyncio.sleep(self._delay(attempt, retry_after))
        return Reply(status="error", attempts=self.max_attempts, error=error, http_status=status)
