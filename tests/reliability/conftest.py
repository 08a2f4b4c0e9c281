"""Helpers of the reliability suite: predict against the loopback server, strict run-folder reads, tree snapshots.

The fixtures ``fake_server`` and the helper ``run_python`` come from ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from jmle_eval.schema import Prediction

SERVED = "smollm2-135m"  # model=smollm2_135m's id: the fake server serves that name
DATASET = "jmle2026"
RUN = "smollm2_135m"  # the default run name of model=smollm2_135m


def predict_overrides(server: Any, predictions: Path, *extra: str) -> list[str]:
    """Return the overrides that point predict at the fake server, with fast retries, writing under ``predictions``."""
    return [
        "provider=vllm",
        f"provider.base_url={server.base_url}",
        "provider.backoff_s=0.05",
        "provider.backoff_max_s=0.2",
        "provider.connect_timeout_s=2",
        f"paths.predictions={predictions}",
        *extra,
    ]


def reset_server(server: Any, **update: Any) -> None:
    """Clear the server's request counters and apply ``update`` (over HTTP, as a client would)."""
    data = json.dumps({"reset": True, **update}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/_config", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def read_run(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Return every prediction file of a run by question id, failing on any file that is torn or misnamed."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(run_dir.glob("*.json")):
        if path.name == "run.json":
            continue
        record = json.loads(path.read_bytes())  # raises on a torn or empty file
        Prediction.model_validate(record)
        assert record["question_id"] == path.stem, path
        records[path.stem] = record
    return records


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Return every path under ``root`` with its bytes (None for a folder), so new empty folders count too."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def free_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str, own: bool = True) -> None:
    """Assert a clear refusal: non-zero exit, no traceback, the expected words on stderr.

    ``own``: the message is the project's (cli.guarded): exit code 2 and one paragraph starting
    ``error:``. Otherwise it is Hydra's own override error (printed before the task starts).
    """
    stderr = result.stderr
    assert result.returncode > 0, (result.returncode, stderr)
    assert "Traceback" not in stderr + result.stdout, stderr
    for words in expected:
        assert words in stderr, (words, stderr)
    if own:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
