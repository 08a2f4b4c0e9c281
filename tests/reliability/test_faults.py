"""Fault injection on the loopback server: every question ends ok, or error with its cause, within the timeouts."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jmle_eval.config import compose
from jmle_eval.predict import runner
from tests.conftest import REPO
from tests.reliability.conftest import DATASET, RUN, SERVED, assert_refused, predict_overrides, read_run

TIMEOUT_S = 1  # provider.timeout_s of every run here: "hang" and "stall" must end at it
ATTEMPTS = 2
FAST = (f"provider.timeout_s={TIMEOUT_S}", f"provider.max_attempts={ATTEMPTS}")

# What a prediction file's error says for each fault the server can inject (the cause, recorded).
CAUSES = {
    "429": r"HTTP 429: slow down",
    "429-no-retry-after": r"HTTP 429: rate limited",
    "500": r"HTTP 500: injected 500",
    "502": r"HTTP 502: injected 502",
    "503": r"HTTP 503: slow down",
    "hang": rf"no reply within provider\.timeout_s={TIMEOUT_S} s",
    "stall": rf"no reply within provider\.timeout_s={TIMEOUT_S} s",
    "reset": r"connection error: \S",
    "truncated": r"malformed response body: '\{",
    "malformed": r"malformed response body: '<html>bad gateway",
    "empty-choices": r"response has no choices",
    "null-content": r"response has no answer text \(content None",
    "400": r"HTTP 400: injected 400",  # refused as sent: recorded at once, never retried
}
# The SDK transport's own read timeout may fire first on a hang; its message then says so.
SDK_TIMEOUT = rf"(no reply within provider\.timeout_s={TIMEOUT_S} s|connection error: .*timed out)"
TRANSIENT = [f for f in CAUSES if f != "400"]


def predict(server, tmp_path: Path, *extra: str) -> tuple[runner.Plan, runner.Outcome | None]:
    """Run the predict stage in-process against the fake server; return its plan and outcome."""
    server.configure(served_name=SERVED)
    return runner.run(compose(predict_overrides(server, tmp_path / "predictions", *FAST, *extra)))


@pytest.mark.parametrize("transport", ["lean", "sdk"])
def test_every_fault_on_every_attempt_ends_as_an_error_naming_its_cause_within_the_timeouts(
    fake_server, tmp_path, transport
):
    faults = {f"120A-{n}": fault for n, fault in enumerate(CAUSES, start=1)}
    fake_server.configure(faults=faults, hang_s=10)
    limit = len(faults) + 3  # three questions without a fault
    job, out = predict(
        fake_server, tmp_path, f"run.limit={limit}", f"provider.max_concurrency={limit}", f"provider.client={transport}"
    )
    records = read_run(job.run_dir)
    assert sorted(records) == sorted(q.id for q in job.todo) and len(records) == limit
    asked = fake_server.stats()["requests"]
    for qid, record in records.items():
        fault = faults.get(qid)
        if fault is None:
            assert (record["status"], record["attempts"], record["error"]) == ("ok", 1, None), record
            assert record["answer_text"].endswith("【回答】a")
            continue
        cause = SDK_TIMEOUT if transport == "sdk" and fault in ("hang", "stall") else CAUSES[fault]
        assert record["status"] == "error" and re.match(cause, record["error"]), (fault, record["error"])
        assert record["answer_text"] is None
        assert record["attempts"] == asked[qid] == (1 if fault == "400" else ATTEMPTS), (fault, record)
    assert out is not None and (out.ok, out.errors) == (3, len(faults))
    # Two timed-out attempts and one capped back-off: nothing waits past the configured timeouts.
    assert out.wall_s < ATTEMPTS * TIMEOUT_S + 0.3 + 2.0, out.wall_s


@pytest.mark.parametrize("fault", TRANSIENT)
def test_a_fault_on_the_first_attempt_is_retried_and_ends_ok(fake_server, tmp_path, fault):
    fake_server.configure(fault=fault, fault_rate=1.0, fault_attempts=1, retry_after=0, hang_s=10)
    job, out = predict(fake_server, tmp_path, "run.limit=3", "provider.max_concurrency=3")
    records = read_run(job.run_dir)
    assert len(records) == 3
    assert all(r["status"] == "ok" and r["attempts"] == 2 and r["error"] is None for r in records.values())
    assert all(r["answer_text"].endswith("【回答】a") for r in records.values())
    stats = fake_server.stats()
    assert stats["total"] == 6 and stats["statuses"] == {fault: 3, "ok": 3}
    assert out.wall_s < TIMEOUT_S + 0.3 + 2.0


@pytest.mark.parametrize(
    ("fault", "retry_after", "backoff_max_s", "at_least", "under"),
    [
        ("429", 1, 5, 1.0, 3.0),  # Retry-After: 1 is waited for, although backoff_s is 0.05
        ("503", 1, 5, 1.0, 3.0),
        ("429", 100, 0.3, 0.0, 2.0),  # a huge Retry-After is capped at provider.backoff_max_s
        ("429-no-retry-after", 100, 5, 0.0, 0.9),  # no header: the short back-off
    ],
)
def test_retry_after_is_honoured_up_to_backoff_max_s(
    fake_server, tmp_path, fault, retry_after, backoff_max_s, at_least, under
):
    fake_server.configure(fault=fault, fault_rate=1.0, fault_attempts=1, retry_after=retry_after)
    # Ten questions wait at once: the longest of their (jittered) waits bounds the run.
    job, out = predict(fake_server, tmp_path, "run.limit=10", f"provider.backoff_max_s={backoff_max_s}")
    records = read_run(job.run_dir).values()
    assert len(records) == 10 and all(r["status"] == "ok" and r["attempts"] == 2 for r in records)
    assert at_least <= out.wall_s < under, out.wall_s


def _run_timed(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``python <argv>`` from the repo root; return the finished process and its wall time in seconds."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def test_a_server_that_never_answers_cannot_keep_predict_running(fake_server, tmp_path):
    fake_server.configure(served_name=SERVED, fault="hang", fault_rate=1.0, fault_attempts=99, hang_s=120)
    argv = ["predict.py", *predict_overrides(fake_server, tmp_path, *FAST, "run.limit=6", "provider.max_concurrency=6")]
    done, elapsed = _run_timed(argv)
    assert done.returncode == 1, done.stderr  # every question ended in error: the exit code says so
    assert elapsed < 20, elapsed  # start-up + 2 timed-out attempts; the server would hang for 120 s
    records = read_run(tmp_path / DATASET / RUN)
    assert len(records) == 6 and all(r["status"] == "error" and r["attempts"] == 2 for r in records.values())
    assert all(re.match(CAUSES["hang"], r["error"]) for r in records.values())
    log = done.stdout + done.stderr  # the console log and the summary
    assert "6 question(s) ended with errors" in log and "run the same command again to retry them" in log


def test_a_port_that_accepts_but_never_replies_is_refused_after_connect_timeout(tmp_path):
    with socket.socket() as black_hole:  # the kernel completes connections; nothing ever reads or answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        url = f"http://127.0.0.1:{black_hole.getsockname()[1]}/v1"
        argv = [
            "predict.py",
            "provider=vllm",
            f"provider.base_url={url}",
            "provider.connect_timeout_s=1",
            f"paths.predictions={tmp_path}",
            "run.limit=2",
        ]
        done, elapsed = _run_timed(argv)
    assert_refused(done, "Cannot reach", url)
    assert elapsed < 15, elapsed
    assert not list(tmp_path.rglob("*"))
