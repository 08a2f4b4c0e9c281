"""Crash safety: predict killed with SIGKILL at random moments, then resumed, keeps every answer exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO, run_python
from tests.reliability.conftest import DATASET, RUN, SERVED, predict_overrides, read_run

ROUNDS = 10
QUESTIONS = 300
IN_FLIGHT = 4
LATENCY_S = 0.1  # at most 40 answers a second: ten rounds of kills cannot finish the run (at most ~250)


def _temporaries(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp"))


def _wait_for_requests(server, above: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Wait until the server has seen more than ``above`` requests in all (this process is asking)."""
    deadline = time.monotonic() + timeout
    while server.stats()["total"] <= above:
        assert proc.poll() is None, "predict ended before it asked anything"
        assert time.monotonic() < deadline, "predict asked nothing"
        time.sleep(0.02)


def test_kill_9_at_random_moments_then_resume_keeps_every_answer_exactly_once(fake_server, tmp_path):
    fake_server.configure(served_name=SERVED, latency=LATENCY_S)
    rng = random.Random(20260308)
    argv = [
        "predict.py",
        *predict_overrides(fake_server, tmp_path, f"run.limit={QUESTIONS}", f"provider.max_concurrency={IN_FLIGHT}"),
    ]
    run_dir = tmp_path / DATASET / RUN
    header: bytes | None = None
    kept_before = 0
    progressed = 0  # rounds that added answers before their kill
    started = time.monotonic()
    for kill in range(ROUNDS):
        with open(tmp_path / f"round{kill}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=dict(os.environ), stdout=log, stderr=log)
        if kill % 5 == 4:  # now and then during start-up (imports, config, data set, run.json)
            time.sleep(rng.uniform(0.0, 1.0))
        else:  # mostly while requests are in flight
            _wait_for_requests(fake_server, fake_server.stats()["total"], proc)
            time.sleep(rng.uniform(0.15, 0.7))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL, f"round {kill}: predict was not killed"
        kept = read_run(run_dir) if run_dir.is_dir() else {}  # every file whole and named for its question
        assert all(r["status"] == "ok" for r in kept.values())
        assert kept_before <= len(kept) < QUESTIONS, f"round {kill}: answers lost or the run finished"
        progressed += len(kept) > kept_before
        kept_before = len(kept)
        if (run_dir / "run.json").is_file():  # written once, by the first process that got that far
            header = header or (run_dir / "run.json").read_bytes()
            assert (run_dir / "run.json").read_bytes() == header
    assert progressed >= ROUNDS // 2, f"only {progressed} of {ROUNDS} kills landed mid-run"
    done = run_python(argv, timeout=120)
    assert done.returncode == 0, done.stderr
    records = read_run(run_dir)
    fingerprint = json.loads((run_dir / "run.json").read_bytes())["fingerprint"]
    assert len(records) == QUESTIONS and all(r["status"] == "ok" for r in records.values())
    assert {r["fingerprint"] for r in records.values()} == {fingerprint}
    assert not _temporaries(run_dir), "temporary files of killed writers were left behind"
    asked = fake_server.stats()["requests"]
    assert set(asked) == set(records)  # the server saw every question
    # Only work in flight (or just answered, not yet renamed) at a kill is asked again.
    assert sum(asked.values()) <= QUESTIONS + ROUNDS * 2 * IN_FLIGHT, sum(asked.values())
    again = run_python(argv, timeout=60)
    assert again.returncode == 0 and fake_server.stats()["total"] == sum(asked.values())  # nothing left to ask
    assert time.monotonic() - started < 60
