"""Fake cluster and server executables for the serving and job-script tests, and helpers to use them.

``vllm``, ``srun``, ``scontrol``, ``ray``, ``sbatch``, ``sacct`` (and ``pylib/sglang`` for ``python -m
sglang.launch_server``) stand in for the real programs; the fake servers are jmle_eval.testing.fakeserver on loopback
(see fake_engine.py), and the fake sbatch runs submitted jobs on this machine (see fake_sbatch.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil

FAKEBIN = Path(__file__).resolve().parent
REPO = FAKEBIN.parents[1]


def fake_env(record: Path, **extra: str) -> dict[str, str]:
    """Return environment variables that put the fakes first on PATH/PYTHONPATH and record to ``record``."""
    return {
        "PATH": f"{FAKEBIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(FAKEBIN / "pylib"), str(REPO)]),
        "JMLE_TEST_PYTHON": sys.executable,
        "FAKE_ENGINE_RECORD": str(record),
        **extra,
    }


def records(path: Path) -> list[dict[str, Any]]:
    """Return the JSON lines a fake executable appended to ``path`` (empty if none yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def alive(pid: int | None) -> bool:
    """Return whether a process with this pid runs (zombies count as gone)."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Return True once ``predicate()`` is true, False if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def session_processes(sid: int) -> list[psutil.Process]:
    """Return the live processes of session ``sid`` (zombies excluded)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getsid(process.pid) == sid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (OSError, psutil.Error):
            continue
    return found


def kill_recorded(record: Path) -> None:
    """SIGKILL every server and worker a fake engine recorded in ``record`` that still runs (test cleanup)."""
    for started in records(record):
        for pid in (started.get("worker_pid"), started.get("pid")):
            if alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
