"""``python judge.py`` as a user runs it: kill -9 and resume, refusals, secrets, two judges, a launched server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jmle_eval import schema
from tests.conftest import REPO, run_python
from tests.fakebin import fake_env, kill_recorded, records
from tests.reliability.conftest import assert_refused, free_port, reset_server, snapshot
from tests.test_judge import CHOICE, JUDGE_RUN, RUN, SERVED, judge_overrides, make_predictions


def judged(folder: Path) -> dict[str, dict]:
    """Return the judgment files of a judge run folder, failing on any torn, invalid or misnamed file."""
    out = {}
    for path in folder.glob("*.json"):
        if path.name != "run.json":
            record = json.loads(path.read_bytes())
            assert schema.judgment_problem(record, path.stem) is None, (path, record)
            out[path.stem] = record
    return out


def judge_cli(server, root: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 120):
    return run_python(["judge.py", *judge_overrides(server, root, *extra)], env=env, timeout=timeout)


def test_kill_9_mid_run_then_resume_judges_every_prediction_exactly_once(fake_server, tmp_path):
    n = 40
    make_predictions(fake_server, tmp_path, n)
    reset_server(fake_server, served_name=SERVED, default_content=CHOICE, latency=0.05)
    folder = tmp_path / "judgments" / "jmle2026" / RUN / JUDGE_RUN
    argv = [sys.executable, "judge.py", *judge_overrides(fake_server, tmp_path, "provider.max_concurrency=2")]
    with open(tmp_path / "judge.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while len(list(folder.glob("120*.json"))) < 8:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "judge.log").read_text()
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    first = judged(folder)
    assert 8 <= len(first) < n
    asked_before = fake_server.stats()["total"]
    resumed = judge_cli(fake_server, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    final = judged(folder)
    assert len(final) == n and all(r["status"] == "ok" for r in final.values())
    assert {q: final[q]["created_at"] for q in first} == {q: r["created_at"] for q, r in first.items()}  # kept
    requests = fake_server.stats()["requests"]
    assert sum(requests.values()) - asked_before <= n - len(first) + 2  # at most the 2 in flight were asked twice
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["rubric=diagnosis_0_11"], ["rubric=diagnosis_0_11", "diagnosis_0_10"]),
        (["dataset=jmle2027"], ["dataset=jmle2027", "jmle2026"]),
        (["paths.predictions=nowhere"], ["There are no predictions to judge", "predict.py"]),
        (["runs=[nobody]"], ["nobody", "Available runs"]),
        (["provider=openai", "model=gpt_5_2"], ["OPENAI_API_KEY"]),
        (["provider.base_url=http://127.0.0.1:{port}/v1"], ["Cannot reach the model server"]),
        (["model.id=other-model"], ["serves", "other-model"]),
    ],
)
def test_user_mistakes_are_one_paragraph_exit_2_and_write_nothing(fake_server, tmp_path, extra, words):
    make_predictions(fake_server, tmp_path, 1)
    reset_server(fake_server, served_name=SERVED, default_content=CHOICE)
    extra = [e.format(port=free_port()) for e in extra]
    before = snapshot(tmp_path / "judgments")
    result = judge_cli(fake_server, tmp_path, *extra, env={"OPENAI_API_KEY": ""})
    assert_refused(result, *words)
    assert result.returncode == 2 and result.stderr.count("error:") == 1
    assert snapshot(tmp_path / "judgments") == before == {}
    assert fake_server.stats()["total"] == 0


def test_no_api_key_value_reaches_judgments_or_logs(fake_server, tmp_path):
    make_predictions(fake_server, tmp_path, 3)
    secret = "sk-judge-secret-0123456789"
    reset_server(fake_server, served_name=SERVED, default_content=CHOICE, api_key=secret)
    result = judge_cli(
        fake_server, tmp_path, "provider=openai", "provider.check_model=false", "model=gpt_5_2",
        f"provider.base_url={fake_server.base_url}", env={"OPENAI_API_KEY": secret},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    files = [p for p in (tmp_path / "judgments").rglob("*") if p.is_file()]
    assert len(judged(tmp_path / "judgments" / "jmle2026" / RUN / "extract_choice-gpt_5_2")) == 3
    assert any(p.name == "judge.log" for p in files)
    assert not [p for p in files if secret.encode() in p.read_bytes()]


def test_two_judges_in_one_sweep_write_one_judge_run_each(fake_server, tmp_path):
    make_predictions(fake_server, tmp_path, 2)
    reset_server(fake_server, served_name=SERVED, default_content=CHOICE)
    overrides = judge_overrides(fake_server, tmp_path, "model=smollm2_135m,qwen3_32b", "provider.check_model=false")
    result = run_python(["judge.py", "-m", *overrides])
    assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in (tmp_path / "judgments" / "jmle2026" / RUN).iterdir())
    assert runs == ["extract_choice-qwen3_32b", "extract_choice-smollm2_135m"]
    for name in runs:
        assert len(judged(tmp_path / "judgments" / "jmle2026" / RUN / name)) == 2


def test_judge_launches_and_stops_its_own_server(fake_server, tmp_path):
    make_predictions(fake_server, tmp_path, 2)
    engines = tmp_path / "engines.jsonl"
    env = fake_env(engines, FAKE_ENGINE_CONFIG=json.dumps({"default_content": CHOICE}))
    env.pop("VLLM_API_KEY", None)
    try:
        result = run_python(
            ["judge.py", f"paths.predictions={tmp_path / 'predictions'}", f"paths.judgments={tmp_path / 'judgments'}",
             "provider=vllm", "server.launch=true", "+model.serve.hf_id=org/fake-judge", "server.stop_grace_s=2",
             "server.health_timeout_s=30", "provider.check_model=false"],
            env={**env, "VLLM_API_KEY": ""},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        [started] = records(engines)
        assert len(judged(tmp_path / "judgments" / "jmle2026" / RUN / JUDGE_RUN)) == 2
        time.sleep(0.2)
        with pytest.raises(ProcessLookupError):
            os.kill(started["pid"], 0)  # stopped with the run
    finally:
        kill_recorded(engines)
