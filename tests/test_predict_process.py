"""predict.py as real processes: kill -9 and resume, concurrent shards, SIGTERM, secrets, refusals, sweeps."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jmle_eval.predict import store
from tests.conftest import REPO, run_python

SERVED = "smollm2-135m"


def args(server, root: Path, *extra: str) -> list[str]:
    """Return predict.py's argv pointing at the fake server and a temporary predictions folder."""
    return [
        "predict.py",
        "provider=vllm",
        f"provider.base_url={server.base_url}",
        "provider.backoff_s=0.01",
        "provider.backoff_max_s=0.05",
        "provider.connect_timeout_s=2",
        f"paths.predictions={root}",
        *extra,
    ]


def start(server, root: Path, *extra: str, env: dict[str, str] | None = None, log: Path) -> subprocess.Popen:
    """Start predict.py in the background, output to ``log``."""
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, *args(server, root, *extra)],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=out,
        )


def answers(run_dir: Path) -> list[str]:
    """Return the question ids of the finished files, after checking each file is whole and named for its id."""
    ids = []
    for path in run_dir.glob("*.json"):
        if path.name == "run.json":
            continue
        record = json.loads(path.read_bytes())  # raises on a torn or empty file
        assert record["question_id"] == path.stem and record["status"] in ("ok", "error")
        ids.append(record["question_id"])
    return ids


def wait_for_files(run_dir: Path, count: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(list(run_dir.glob("1*.json"))) < count:
        assert proc.poll() is None, "predict ended before it could be interrupted"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)


def test_kill_9_repeatedly_then_resume_gives_every_answer_exactly_once(fake_server, tmp_path):
    fake_server.configure(served_name=SERVED, latency=0.05)
    run_dir = tmp_path / "jmle2026" / "smollm2_135m"
    extra = ("run.limit=120", "provider.max_concurrency=6")
    for kill in range(3):
        proc = start(fake_server, tmp_path, *extra, log=tmp_path / f"kill{kill}.log")
        wait_for_files(run_dir, 10 + 25 * kill, proc)
        time.sleep(0.05 * kill)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        assert len(answers(run_dir)) < 120
    done = run_python(args(fake_server, tmp_path, *extra), timeout=120)
    assert done.returncode == 0, done.stderr
    ids = answers(run_dir)
    assert len(ids) == len(set(ids)) == 120
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    assert store.totals(run_dir)["answered"] == 120
    asked = fake_server.stats()["requests"]
    assert len(asked) == 120 and sum(asked.values()) < 120 + 3 * 20  # only work in flight at a kill is repeated


def test_two_shards_writing_one_run_folder_give_the_union_without_duplicates(fake_server, tmp_path):
    fake_server.configure(served_name=SERVED, latency=0.02)
    procs = [
        start(fake_server, tmp_path, "run.limit=80", f"run.shard={k}/2", log=tmp_path / f"shard{k}.log")
        for k in range(2)
    ]
    assert [p.wait(120) for p in procs] == [0, 0], [(tmp_path / f"shard{k}.log").read_text() for k in range(2)]
    run_dir = tmp_path / "jmle2026" / "smollm2_135m"
    ids = answers(run_dir)
    assert len(ids) == len(set(ids)) == 80
    assert fake_server.stats()["total"] == 80 and max(fake_server.stats()["requests"].values()) == 1
    assert len(list((run_dir / "logs").iterdir())) == 2  # one log folder per process


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cancels_requests_in_flight_and_keeps_finished_answers(fake_server, tmp_path, signum, code):
    fake_server.configure(served_name=SERVED, latency=0.3)
    log = tmp_path / "term.log"
    proc = start(fake_server, tmp_path, "run.limit=80", "provider.max_concurrency=4", log=log)
    run_dir = tmp_path / "jmle2026" / "smollm2_135m"
    wait_for_files(run_dir, 6, proc)
    proc.send_signal(signum)
    started = time.monotonic()
    assert proc.wait(15) == code
    assert time.monotonic() - started < 5
    kept = answers(run_dir)
    assert 6 <= len(kept) < 80
    assert signum.name in log.read_text() and "run the same command again" in log.read_text()
    assert "Traceback" not in log.read_text()
    assert fake_server.stats()["total"] <= len(kept) + 4  # nothing was sent after the signal


def test_no_api_key_value_reaches_predictions_or_logs(fake_server, tmp_path):
    secret = "sk-live-7Qm2ZpX9wLr4"
    fake_server.configure(served_name=SERVED, api_key=secret)
    ok = run_python(args(fake_server, tmp_path, "run.limit=5"), env={"VLLM_API_KEY": secret})
    assert ok.returncode == 0, ok.stderr
    wrong = "sk-wrong-3Jd8QkV1nTa6"
    refused = run_python(args(fake_server, tmp_path / "other", "run.limit=5"), env={"VLLM_API_KEY": wrong})
    assert refused.returncode == 2 and "HTTP 401" in refused.stderr and "$VLLM_API_KEY" in refused.stderr
    assert "Traceback" not in refused.stderr
    for output in (ok.stdout, ok.stderr, refused.stdout, refused.stderr):
        assert secret not in output and wrong not in output
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "predict.log" for p in files) and any(p.parent.name == ".hydra" for p in files)
    for path in files:
        text = path.read_bytes()
        assert secret.encode() not in text and wrong.encode() not in text, path


def test_unreachable_server_is_named_after_a_bounded_wait_and_nothing_is_left(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = run_python(
        [
            "predict.py",
            "provider=vllm",
            f"provider.base_url=http://127.0.0.1:{port}/v1",
            "provider.connect_timeout_s=1",
            f"paths.predictions={tmp_path}",
            "run.limit=3",
        ]  # fmt: skip
    )
    assert result.returncode == 2 and f"http://127.0.0.1:{port}/v1" in result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - started < 30
    assert not list(tmp_path.rglob("*"))  # no run folder, no log folder


def test_user_mistakes_fail_in_one_paragraph_without_traceback(tmp_path):
    env = {"OPENROUTER_API_KEY": ""}
    cases = {
        ("model=gpt_5_2", "provider=openrouter"): "OPENROUTER_API_KEY",
        ("model=no_such_model",): "qwen3_32b",  # Hydra lists the available models
        ("provider=nowhere",): "openrouter",
        ("provider=vllm", "provider.max_concurrency=0"): "provider.max_concurrency",
    }
    for overrides, expected in cases.items():
        result = run_python(["predict.py", f"paths.predictions={tmp_path}", *overrides], env=env)
        assert result.returncode != 0 and expected in result.stderr, (overrides, result.stderr)
        assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*"))


def test_multirun_sweep_writes_one_run_per_effort_and_no_stray_folders(fake_server, tmp_path):
    fake_server.configure(served_name="openai/gpt-oss-120b")
    stray = [REPO / "outputs", REPO / "multirun"]
    before = [p.exists() for p in stray]
    result = run_python(
        [
            "predict.py",
            "-m",
            *args(fake_server, tmp_path, "model=gpt_oss_120b", "model.reasoning_effort=low,high", "run.limit=2")[1:],
        ]  # fmt: skip
    )
    assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in (tmp_path / "jmle2026").iterdir() if p.is_dir())
    assert runs == ["gpt_oss_120b-effort_high", "gpt_oss_120b-effort_low"]
    for effort in ("low", "high"):
        header = json.loads((tmp_path / "jmle2026" / f"gpt_oss_120b-effort_{effort}" / "run.json").read_text())
        assert header["fingerprint_inputs"]["model.reasoning_effort"] == effort
        assert header["model"]["display_name"] == f"gpt-oss-120b ({effort})"
    assert sorted(b["reasoning_effort"] for b in fake_server.server.bodies) == ["high", "high", "low", "low"]
    assert [p.exists() for p in stray] == before


def test_refused_resume_leaves_no_new_folder(fake_server, tmp_path):
    fake_server.configure(served_name=SERVED)
    assert run_python(args(fake_server, tmp_path, "run.limit=2")).returncode == 0
    logs = tmp_path / "jmle2026" / "smollm2_135m" / "logs"
    before = sorted(p.name for p in logs.iterdir())
    changed = ("run.limit=2", "run.name=smollm2_135m", "model.params.temperature=1")
    result = run_python(args(fake_server, tmp_path, *changed))
    assert result.returncode == 2 and "model.params.temperature: 0.0 != 1" in result.stderr
    assert sorted(p.name for p in logs.iterdir()) == before
