"""Secrets: an API key from the environment is sent, but never reaches a file, a log or the console."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO, run_python
from tests.reliability.conftest import DATASET, RUN, SERVED, predict_overrides, read_run, reset_server

SECRET = "sk-test-SECRET"
ENV = {"OPENAI_API_KEY": SECRET}
# Failing requests whose error bodies quote the request headers (Authorization included), as some proxies do.
FAULTS = {"120A-2": "500", "120A-3": "malformed", "120A-4": "400", "120A-5": "503", "120A-6": "truncated"}


def _predict(server, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = predict_overrides(
        server,
        root / "predictions",
        "provider.api_key_env=OPENAI_API_KEY",
        "run.limit=8",
        "provider.max_attempts=2",
        "provider.timeout_s=2",
        *extra,
    )
    return run_python(["predict.py", *argv], env=ENV, timeout=120)


def test_api_key_is_sent_but_never_written_to_predictions_scores_reports_or_logs(fake_server, tmp_path):
    fake_server.configure(served_name=SERVED, api_key=SECRET, echo_headers=True, faults=FAULTS, retry_after=0)
    outputs = [_predict(fake_server, tmp_path), _predict(fake_server, tmp_path, "run.name=sdk", "provider.client=sdk")]
    # 5 of 8 questions fail by design: a run where most questions end in error exits 1
    assert [p.returncode for p in outputs] == [1, 1], [p.stderr for p in outputs]
    for run in (RUN, "sdk"):  # the key was sent (the server refuses requests without it) and errors were kept
        records = read_run(tmp_path / "predictions" / DATASET / run)
        assert sum(r["status"] == "ok" for r in records.values()) == 8 - len(FAULTS)
        assert "Authorization: Bearer ***" in records["120A-2"]["error"]  # the echo arrived, masked
    reset_server(fake_server, api_key="sk-another-key")  # the key is now wrong: 401 quoting the headers
    refused = _predict(fake_server, tmp_path, "run.name=refused")
    assert refused.returncode == 2 and "HTTP 401" in refused.stderr, refused.stderr
    outputs.append(refused)
    outputs.append(run_python([str(REPO / "score.py"), "report=true", "plots=false"], cwd=tmp_path, env=ENV))
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"predict.log", "config.yaml", f"{RUN}.jsonl", "sdk.summary.json", f"{DATASET}.html"} <= names, names
    leaks = [str(p.relative_to(tmp_path)) for p in files if b"SECRET" in p.read_bytes()]
    leaks += [f"{p.args[1]} output" for p in outputs if "SECRET" in p.stdout + p.stderr]
    assert not leaks, leaks
