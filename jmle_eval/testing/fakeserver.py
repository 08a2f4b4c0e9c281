"""A loopback OpenAI-compatible server with switchable faults, for tests and benchmarks.

It answers ``POST /v1/chat/completions`` after a fixed latency, lists one model
at ``/v1/models``, answers ``/health``, and can be told to misbehave the way
real servers do: 429 with or without ``Retry-After``, 5xx, hangs, malformed or
truncated bodies, a body that stalls half-way, dropped connections, empty
``choices``, ``content: null``, reasoning in ``reasoning_content`` or
``reasoning``, ``finish_reason: length``, hard 4xx errors, and error pages
that quote the request's headers (``echo_headers``), as some proxies do.

Faults are chosen per (question, attempt) from a seeded hash, so a run is
reproducible: ``fault_rate`` of the questions fail their first
``fault_attempts`` attempts, then succeed. ``POST /_config`` changes the
behaviour of a running server; ``GET /_stats`` returns request counts.

Run it alone:  ``python -m jmle_eval.testing.fakeserver --port 0 --latency 0.5 --port-file port.txt``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from typing import Any

from aiohttp import web

from jmle_eval.schema import ANSWER_MARKER
from jmle_eval.testing import faults
from jmle_eval.testing.background import until_stopped
from jmle_eval.testing.faults import FAULTS

__all__ = ["DEFAULTS", "FAULTS", "FakeServer", "main", "serve"]

# The question id in a prompt: predict's Japanese header, its English one, a judge rubric's line.
_QID = re.compile(r"【問題 ([0-9]{3}[A-I]-[0-9]+)】|^(?:Question|Case) ([A-Za-z0-9._-]+)[ \t]*$", re.MULTILINE)


def question_id(messages: Any) -> str:
    """Return the id of the question a request asks about (from its messages' text), or "?"."""
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        parts = content if isinstance(content, list) else [{"text": content}]
        for part in parts:
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str) and (m := _QID.search(text)):
                return m.group(1) or m.group(2)
    return "?"


DEFAULTS: dict[str, Any] = {
    "latency": 0.0,  # seconds before every answer
    "served_name": "fake-model",
    "answer": "a",  # letters after the answer marker; "gold" answers from answers map if given
    "answers": {},  # question id → answer text (e.g. the key, to get a perfect score)
    "marker": ANSWER_MARKER,
    "content": {},  # question id → the whole reply text (e.g. a judge's JSON), instead of marker + answer;
    #   a list: the reply to the request whose seed is i is item i (mod its length), for repeated samples
    "default_content": None,  # the whole reply text for every other question (None: marker + answer)
    "reasoning_field": "reasoning_content",  # or "reasoning", or "" for none
    "reasoning_text": "考え中…",
    "fault": None,  # one of FAULTS (or a list of them: a mix), applied to the chosen (question, attempt)s
    "fault_rate": 0.0,  # share of questions that get the fault
    "fault_attempts": 1,  # how many first attempts of those questions fail (large = always)
    "faults": {},  # explicit: question id → fault name (always, every attempt)
    "retry_after": 1,  # seconds, for 429/503
    "hang_s": 3600.0,  # how long "hang" and "stall" sleep
    "echo_headers": False,  # error bodies (HTTP errors, 401 for a wrong key, "malformed") quote the request headers
    "seed": 0,
    "api_key": None,  # if set, requests without "Bearer <api_key>" get 401
    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "reasoning_tokens": 5},
    # Odd replies, per question id: {"patch": {...} deep-merged into the normal reply, or "raw": "<body text>",
    # "status": 200, "headers": {...}, "attempts": N (only the first N attempts; default every one)}. The reply is
    # written with ASCII escapes, so a patch can hold what valid JSON allows but Unicode does not ("\ud83d").
    "replies": {},
}


class FakeServer:
    """The server state: configuration, counters and the aiohttp app."""

    def __init__(self, **config: Any) -> None:
        self.config = {**DEFAULTS, **config}
        self.requests: Counter[str] = Counter()  # question id → requests seen
        self.statuses: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []  # last request bodies (bounded)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.started = time.monotonic()

    def app(self) -> web.Application:
        """Return the aiohttp application."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/_stats", self.stats)
        app.router.add_post("/_config", self.configure)
        return app

    def _chosen(self, qid: str, attempt: int) -> str | None:
        explicit = self.config["faults"].get(qid)
        if explicit:
            return explicit
        fault = self.config["fault"]
        if not fault or attempt > int(self.config["fault_attempts"]):
            return None
        h = hashlib.sha256(f"{self.config['seed']}:{qid}".encode()).digest()
        share = int.from_bytes(h[:4], "big") / 2**32
        if share >= float(self.config["fault_rate"]):
            return None
        if isinstance(fault, list):  # a mix: each chosen question gets one of them, also from the hash
            return fault[int.from_bytes(h[4:8], "big") % len(fault)] if fault else None
        return fault

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """Answer one chat completion, or misbehave as configured."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._chat(request)
        finally:
            self.in_flight -= 1

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        if cfg["api_key"] and request.headers.get("Authorization") != f"Bearer {cfg['api_key']}":
            self.statuses["401"] += 1
            return self._unauthorised(request)
        try:
            body = json.loads(await request.read())
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "request body is not JSON"}}, status=400)
        qid = question_id(body.get("messages"))
        self.requests[qid] += 1
        if len(self.bodies) < 50:
            self.bodies.append(body)
        attempt = self.requests[qid]
        fault = self._chosen(qid, attempt)
        if cfg["latency"]:
            await asyncio.sleep(float(cfg["latency"]))
        self.statuses[fault or "ok"] += 1
        failed = await faults.failure(cfg, request, fault)
        if failed is not None:
            return failed
        odd = cfg["replies"].get(qid)
        if odd and attempt <= int(odd.get("attempts", 1 << 30)):
            self.statuses["odd"] += 1
            return faults.odd_reply(cfg, odd, qid, attempt, body)
        return await faults.answer(cfg, request, qid, attempt, body, fault)

    def _unauthorised(self, request: web.Request) -> web.Response:
        echo = faults.quoted_headers(request) if self.config["echo_headers"] else ""
        return web.json_response({"error": {"message": f"Incorrect API key provided{echo}"}}, status=401)

    async def models(self, request: web.Request) -> web.Response:
        """List the served model (401 without the right key, when one is configured)."""
        key = self.config["api_key"]
        if key and request.headers.get("Authorization") != f"Bearer {key}":
            return self._unauthorised(request)
        return web.json_response({"object": "list", "data": [{"id": self.config["served_name"], "object": "model"}]})

    async def health(self, request: web.Request) -> web.Response:
        """Say the server is up."""
        return web.Response(text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        """Return request counts per question and per outcome."""
        return web.json_response(
            {
                "requests": dict(self.requests),
                "total": sum(self.requests.values()),
                "statuses": dict(self.statuses),
                "peak_in_flight": self.peak_in_flight,
                "pid": os.getpid(),
            }
        )

    async def configure(self, request: web.Request) -> web.Response:
        """Update the configuration; ``{"reset": true}`` also clears the counters."""
        update = await request.json()
        if update.pop("reset", False):
            self.requests.clear()
            self.statuses.clear()
            self.bodies.clear()
            self.peak_in_flight = 0
        self.config.update(update)
        return web.json_response(self.config)


async def serve(server: FakeServer, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the server; return its runner and the bound port."""
    runner = web.AppRunner(server.app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    sockets = site._server.sockets if isinstance(site._server, asyncio.Server) else []
    return runner, sockets[0].getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    """Run the fake server until SIGTERM/SIGINT."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--served-name", default="fake-model")
    p.add_argument("--config", default="{}", help="JSON object merged into the defaults")
    p.add_argument("--startup-delay", type=float, default=0.0, help="sleep before listening (health-wait tests)")
    args = p.parse_args(argv)

    async def start() -> tuple[web.AppRunner, int]:
        if args.startup_delay:
            await asyncio.sleep(args.startup_delay)
        server = FakeServer(latency=args.latency, served_name=args.served_name, **json.loads(args.config))
        return await serve(server, args.host, args.port)

    banner = f"fakeserver listening on http://{args.host}:{{port}}/v1 (pid {os.getpid()})"
    asyncio.run(until_stopped(start, args.port_file, banner))
    sys.exit(0)


if __name__ == "__main__":
    main()
