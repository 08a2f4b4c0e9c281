"""A small async reader of a FHIR server: one GET for an agent's request, and every page of a search.

The episode sends the agent's GETs through :meth:`FhirClient.get`; graders read the reference values
with :meth:`FhirClient.search_all`, which follows ``link[relation=next]``: HAPI FHIR returns 20 results
a page by default, in no date order, so the last page may hold the latest value.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp

from jmle_eval.errors import UserError

DOCKER_HINT = "docker run -p 8080:8080 jyxsu6/medagentbench"
MAX_PAGES = 1000  # a bound for a server whose next links never end


class FhirUnavailable(UserError):
    """The FHIR server cannot be reached or does not answer a search: a setup problem, not a model's fault."""


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class FhirClient:
    """Reads one FHIR server; ``base`` ends with "/" so that ``f"{base}Patient"`` is a resource URL."""

    def __init__(self, base: str, *, timeout_s: float = 30.0) -> None:
        self.base = base.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def unreachable(self, why: object) -> FhirUnavailable:
        """Return the error that says the server is down and how to start MedAgentBench's."""
        return FhirUnavailable(
            f"The FHIR server at {self.base} cannot be used ({why}). Start MedAgentBench's server with "
            f"`{DOCKER_HINT}` and wait until {self.base}metadata answers, or set the FHIR base URL to a "
            "running one."
        )

    async def get(self, url: str) -> tuple[int, str]:
        """Return (HTTP status, body text) of a GET; status 0 with a reason when the URL is not sent.

        Only URLs on the server's own origin are sent (an agent's reply must not reach other hosts);
        a server that cannot be reached raises :class:`FhirUnavailable`.
        """
        if _origin(url) != _origin(self.base) or any(c.isspace() for c in url):
            return 0, f"the URL is not on the FHIR server {self.base} (or holds whitespace): {url[:200]!r}"
        try:
            async with self._http().get(url) as response:
                return response.status, await response.text(errors="replace")
        except (aiohttp.InvalidURL, ValueError) as exc:
            return 0, f"the URL cannot be sent ({exc})"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self.unreachable(f"{type(exc).__name__}: {exc}") from exc

    async def get_json(self, url: str) -> dict[str, Any]:
        """Return the JSON object at ``url``; any other answer raises :class:`FhirUnavailable`."""
        status, body = await self.get(url)
        if status != 200:
            raise FhirUnavailable(
                f"The FHIR server at {self.base} answered HTTP {status} to {url} ({body[:300]}). Check that the "
                f"FHIR base URL points at MedAgentBench's server (`{DOCKER_HINT}`)."
            )
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise self.unreachable(f"the answer to {url} is not JSON") from exc
        if not isinstance(data, dict):
            raise self.unreachable(f"the answer to {url} is not a JSON object")
        return data

    async def search_all(self, resource: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Return every resource a search finds, reading each ``next`` page, in the server's order."""
        query = urllib.parse.urlencode({**params, "_format": "json"})
        url: str | None = f"{self.base}{resource}?{query}"
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        while url and url not in seen and len(seen) < MAX_PAGES:
            seen.add(url)
            bundle = await self.get_json(url)
            found.extend(e["resource"] for e in bundle.get("entry") or [] if isinstance(e, dict) and "resource" in e)
            url = next((link.get("url") for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
        return found

    async def ready(self) -> bool:
        """Return True when ``<base>metadata`` answers 200 (the server is up and loaded)."""
        try:
            status, _ = await self.get(f"{self.base}metadata")
        except FhirUnavailable:
            return False
        return status == 200
