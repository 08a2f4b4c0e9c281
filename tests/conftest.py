"""Shared fixtures: data location, a real loopback OpenAI-compatible server, CLI runner."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jmle_eval.testing.background import in_thread
from jmle_eval.testing.fakeserver import FakeServer, serve

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# Tests never download: the loaders read the read-only copies unless CI says otherwise. A relative
# path (as in README's test command) is made absolute, since some tests run commands in other folders.
DATA_DIR = Path(os.environ.get("JMLE_EVAL_DATA_DIR") or SHARED / "datasets").resolve()
os.environ["JMLE_EVAL_DATA_DIR"] = str(DATA_DIR)
REFERENCE_RESULTS = SHARED / "reference_results"


@dataclass
class RunningFakeServer:
    """Handle on a fake server running in a background thread."""

    server: FakeServer
    port: int
    loop: asyncio.AbstractEventLoop

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def configure(self, **update: Any) -> None:
        """Change the server's behaviour (see ``jmle_eval.testing.fakeserver.DEFAULTS``)."""
        self.loop.call_soon_threadsafe(self.server.config.update, update)

    def stats(self) -> dict[str, Any]:
        """Return the server's request counters (over HTTP, as a client would see them)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stats", timeout=10) as resp:
            return json.loads(resp.read())


@pytest.fixture
def fake_server() -> Iterator[RunningFakeServer]:
    """Start a fake OpenAI-compatible server on 127.0.0.1 (a free port) for one test."""
    server = FakeServer()
    with in_thread(lambda: serve(server, "127.0.0.1", 0), "fake server") as (port, loop):
        yield RunningFakeServer(server, port, loop)


def run_python(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` from the repo root and return the finished process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
