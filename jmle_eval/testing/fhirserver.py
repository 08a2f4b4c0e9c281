"""A loopback FHIR R4 server in memory, answering searches the way MedAgentBench's HAPI FHIR server does.

``GET /fhir/<Type>?…`` returns a searchset Bundle with ``total``, ``entry`` and ``link`` (self, and
next while more remain): 20 results a page unless ``_count`` asks otherwise (capped at
``max_count``), in the store's order, which is not date order. Next pages are served at
``/fhir?_getpages=<id>&_getpagesoffset=<n>&_count=<n>``, as HAPI names them. Also
``GET /fhir/<Type>/<id>``, ``GET /fhir/metadata`` (health), and ``PUT /fhir/<Type>/<id>`` to add or
replace a resource from another process; tests change :attr:`FhirServer.store` directly. A bad
search gets HTTP 400 with an OperationOutcome. POSTs are refused: MedAgentBench's harness never
sends them.

Run it alone (synthetic patients for the tasks in ``$JMLE_EVAL_DATA_DIR/medagentbench``):
``python -m jmle_eval.testing.fhirserver --port 8080 --port-file port.txt``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from jmle_eval.agent.tasks import default_root, load_tasks
from jmle_eval.testing.background import in_thread, until_stopped
from jmle_eval.testing.fhirdata import build_store
from jmle_eval.testing.fhirstore import FhirStore, Resource, SearchError

__all__ = ["FhirServer", "main", "running", "serve"]

PAGE_SIZE = 20  # HAPI's default page size
MAX_COUNT = 500  # HAPI caps _count at a configurable maximum page size; graders must page either way
KEPT_SEARCHES = 5000  # older searches' next pages expire (HTTP 410), as HAPI's do
FHIR_JSON = "application/fhir+json"


def _outcome(status: int, message: str) -> web.Response:
    issue = {"severity": "error", "code": "processing", "diagnostics": message}
    body = {"resourceType": "OperationOutcome", "issue": [issue]}
    return web.Response(status=status, text=json.dumps(body), content_type=FHIR_JSON)


class FhirServer:
    """The server state: the store, saved searches (for their next pages), and request counts."""

    def __init__(self, store: FhirStore | None = None, page_size: int = PAGE_SIZE, max_count: int = MAX_COUNT) -> None:
        self.store = store or FhirStore()
        self.page_size, self.max_count = page_size, max_count
        self.searches: dict[str, tuple[str, list[Resource]]] = {}  # id → (self link, results)
        self.requests: list[str] = []  # path and query of every request, in order (bounded)
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        """Return the aiohttp application."""
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request; several slashes in a row count as one, as HAPI's servlet container reads them."""
        if len(self.requests) < 10_000:
            self.requests.append(request.path_qs)
        parts = [p for p in request.path.split("/") if p]
        if not parts or parts[0] != "fhir":
            return _outcome(404, f"Unknown path {request.path}; this server's base is /fhir/")
        base = f"{request.scheme}://{request.host}/fhir"
        if request.method == "PUT" and len(parts) == 3:
            return await self._put(request, parts[1], parts[2])
        if request.method != "GET":
            return _outcome(405, f"{request.method} is not supported by this test server")
        if len(parts) == 1:
            return self._page(request, base) if "_getpages" in request.query else _outcome(400, "No resource type")
        if parts[1] == "metadata":
            return self._json({"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"})
        if len(parts) == 3:
            found = self.store.get(parts[1], parts[2])
            return self._json(found) if found else _outcome(404, f"Resource {parts[1]}/{parts[2]} is not known")
        if len(parts) == 2:
            return self._search(request, base, parts[1])
        return _outcome(400, f"Unknown path {request.path}")

    async def _put(self, request: web.Request, kind: str, rid: str) -> web.Response:
        resource = await request.json()
        if not isinstance(resource, dict) or resource.get("resourceType") != kind or str(resource.get("id")) != rid:
            return _outcome(400, "The body must be a resource whose resourceType and id match the URL")
        self.store.put(resource)
        return self._json(resource)

    def _json(self, data: Any) -> web.Response:
        return web.Response(text=json.dumps(data), content_type=FHIR_JSON)

    def _search(self, request: web.Request, base: str, kind: str) -> web.Response:
        params = list(request.query.items())
        try:
            count = int(request.query.get("_count", self.page_size))
            found = self.store.search(kind, params)
        except SearchError as exc:
            return _outcome(400, str(exc))
        except ValueError:
            return _outcome(400, f"_count must be a whole number, not {request.query['_count']!r}")
        count = max(0, min(count, self.max_count))
        search_id = f"search-{next(self._ids)}"
        self.searches[search_id] = (str(request.url), found)
        if len(self.searches) > KEPT_SEARCHES:
            del self.searches[next(iter(self.searches))]
        if request.query.get("_summary") == "count":
            count = 0
        return self._bundle(base, search_id, 0, count)

    def _page(self, request: web.Request, base: str) -> web.Response:
        search = self.searches.get(request.query["_getpages"])
        try:
            offset, count = int(request.query.get("_getpagesoffset", 0)), int(request.query.get("_count", 0))
        except ValueError:
            return _outcome(400, "_getpagesoffset and _count must be whole numbers")
        if search is None:
            return _outcome(410, f"Search {request.query['_getpages']} has expired or never existed")
        return self._bundle(base, request.query["_getpages"], max(0, offset), max(0, min(count, self.max_count)))

    def _bundle(self, base: str, search_id: str, offset: int, count: int) -> web.Response:
        self_link, found = self.searches[search_id]
        page = found[offset : offset + count]
        links = [{"relation": "self", "url": self_link}]
        if count and offset + count < len(found):
            nxt = f"{base}?_getpages={search_id}&_getpagesoffset={offset + count}&_count={count}&_format=json"
            links.append({"relation": "next", "url": nxt})
        entries = [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in page
        ]
        bundle = {"resourceType": "Bundle", "id": search_id, "type": "searchset", "total": len(found), "link": links}
        return self._json({**bundle, "entry": entries} if entries else bundle)


async def serve(server: FhirServer, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the server; return its runner and the bound port."""
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    sockets = site._server.sockets if isinstance(site._server, asyncio.Server) else []
    return runner, sockets[0].getsockname()[1]


@contextmanager
def running(server: FhirServer, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the server on a free port in a background thread; yield its FHIR base URL (ending in "/")."""
    with in_thread(lambda: serve(server, host, 0), "FHIR test server") as (port, _):
        yield f"http://{host}:{port}/fhir/"


def main(argv: list[str] | None = None) -> None:
    """Run the server with synthetic patients until SIGTERM/SIGINT."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--no-tasks", action="store_true", help="made-up patients only (no MedAgentBench task file)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    tasks = [] if args.no_tasks else load_tasks(default_root())
    server = FhirServer(build_store(tasks, seed=args.seed))
    banner = f"fhirserver listening on http://{args.host}:{{port}}/fhir/ (pid {os.getpid()})"
    asyncio.run(until_stopped(lambda: serve(server, args.host, args.port), args.port_file, banner))
    sys.exit(0)


if __name__ == "__main__":
    main()
