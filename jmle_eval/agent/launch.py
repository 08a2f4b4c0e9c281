"""The FHIR server of an agent run: check that it answers, or start it (``fhir.launch=true``) and stop it after.

MedAgentBench's patients exist only in the docker image ``jyxsu6/medagentbench``
(HAPI FHIR JPA on port 8080), so a run either points ``fhir.base_url`` at a
running one or lets predict start it, like ``server.launch`` does for the model:
its own process group and log, a health wait on ``<base>metadata``, and a stop
(SIGTERM, then SIGKILL after ``fhir.stop_grace_s``) that leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jmle_eval.agent.fhir import DOCKER_HINT
from jmle_eval.errors import UserError
from jmle_eval.serving.process import ServerProcess

IMAGE = "jyxsu6/medagentbench"


def answers(base_url: str, timeout_s: float = 10.0) -> str | None:
    """Return None when ``<base>metadata`` answers HTTP 200, else what happened instead."""
    url = base_url.rstrip("/") + "/metadata"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", None) or exc)


def check(base_url: str) -> None:
    """Raise UserError, naming the docker command, when the FHIR server at ``base_url`` does not answer."""
    why = answers(base_url)
    if why is not None:
        raise UserError(
            f"The FHIR server at {base_url} does not answer ({why}); MedAgentBench's tasks read their patients "
            f"from it. Start it with `{DOCKER_HINT}` and wait until {base_url.rstrip('/')}/metadata answers (the "
            "image loads its patients first), or let predict start and stop it with fhir.launch=true, or set "
            "fhir.base_url to a running one."
        )


def _argv(fhir: Mapping[str, Any]) -> list[str]:
    command = fhir.get("command")
    if command:
        return [str(a) for a in (command if isinstance(command, list | tuple) else str(command).split())]
    port = urllib.parse.urlsplit(str(fhir["base_url"])).port or 8080
    return ["docker", "run", "--rm", "-p", f"{port}:8080", IMAGE]


def _wait(process: ServerProcess, base_url: str, timeout_s: float) -> None:
    """Return once the server answers; raise UserError (with its log's tail) if it exits or times out first."""
    deadline, last = time.monotonic() + timeout_s, "nothing answered yet"
    while True:
        code = process.exit_code()
        if code is not None:
            raise UserError(
                f"The FHIR server command {process.ended(code, 'before it answered')} Its log ({process.log}) "
                f"ends with:\n{process.tail()}"
            )
        why = answers(base_url, timeout_s=5.0)
        if why is None:
            return
        last = why
        if time.monotonic() >= deadline:
            raise UserError(
                f"The FHIR server did not answer at {base_url} within {timeout_s:g} s (fhir.health_timeout_s; "
                f"last: {last}). Raise fhir.health_timeout_s if it is still loading; its log ({process.log}) "
                f"ends with:\n{process.tail()}"
            )
        time.sleep(1.0)


@contextlib.contextmanager
def fhir_server(fhir: Mapping[str, Any], run_dir: Path) -> Iterator[str]:
    """Yield the FHIR base URL: a running server's after checking it answers, or one started for the run."""
    base_url = str(fhir["base_url"])
    if not fhir.get("launch"):
        check(base_url)
        yield base_url
        return
    argv = _argv(fhir)
    if shutil.which(argv[0]) is None:
        raise UserError(
            f"fhir.launch=true runs `{' '.join(argv)}`, but {argv[0]} is not installed here. Install docker, or "
            "set fhir.command to the command that starts MedAgentBench's FHIR server, or start it yourself."
        )
    log = Path(str(fhir.get("log") or run_dir / "logs" / f"fhir-{socket.gethostname()}-{os.getpid()}.log"))
    parts = urllib.parse.urlsplit(base_url)
    process = ServerProcess(
        argv=argv,
        env=dict(os.environ),
        log=log,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 8080,
        served_name="fhir",
        engine="FHIR (MedAgentBench)",
        stop_grace_s=float(fhir.get("stop_grace_s", 30)),
    )
    process.start()
    try:
        _wait(process, base_url, float(fhir.get("health_timeout_s", 900)))
        yield base_url
    finally:
        process.stop()
