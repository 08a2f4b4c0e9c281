"""``predict.py dataset=medagentbench``: episodes through the predict session, one transcript file per task.

A loopback scripted model (``testing.agentmodel``) plays right and wrong episodes against the
in-memory FHIR server (``testing.fhirserver``), through real ``predict.py`` processes.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from jmle_eval.agent.records import EpisodeRecord
from jmle_eval.agent.tasks import default_root, load_tasks
from jmle_eval.serving.process import free_port
from jmle_eval.testing.agentmodel import AgentModel
from jmle_eval.testing.agentmodel import running as model_running
from jmle_eval.testing.fhirdata import build_store
from jmle_eval.testing.fhirserver import FhirServer
from jmle_eval.testing.fhirserver import running as fhir_running
from tests.conftest import REPO, run_python

SERVED = "smollm2-135m"  # model=smollm2_135m's id
BEHAVIOUR = {"task1_1": "wrong", "task2_1": "invalid", "task4_1": "round_limit", "task5_1": "error"}


@pytest.fixture(scope="module")
def tasks():
    return load_tasks(default_root())


@pytest.fixture(scope="module")
def fhir(tasks):
    with fhir_running(FhirServer(build_store(tasks))) as url:
        yield url


def _overrides(model_url: str, fhir_url: str, root: Path, *extra: str) -> list[str]:
    return [
        "dataset=medagentbench",
        "provider=vllm",
        f"provider.base_url={model_url}",
        "provider.backoff_s=0.01",
        "provider.backoff_max_s=0.05",
        "provider.max_attempts=2",
        f"fhir.base_url={fhir_url}",
        f"paths.predictions={root / 'predictions'}",
        *extra,
    ]


def _files(run_dir: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_bytes()) for p in run_dir.glob("task*.json")}


def test_a_full_run_leaves_one_transcript_per_task_and_a_resume_replays_only_the_failed(tasks, fhir, tmp_path):
    model = AgentModel(tasks, SERVED, BEHAVIOUR)
    with model_running(model) as url:
        done = run_python(["predict.py", *_overrides(url, fhir, tmp_path)], timeout=300)
        assert done.returncode == 0, done.stderr
        run_dir = tmp_path / "predictions" / "medagentbench" / "smollm2_135m"
        files = _files(run_dir)
        assert sorted(files) == sorted(t.id for t in tasks)  # one transcript per task, all 300
        for record in files.values():
            EpisodeRecord.model_validate(record)
        outcomes = {tid: files[tid]["outcome"] for tid in BEHAVIOUR}
        assert outcomes == {
            "task1_1": "finished",
            "task2_1": "invalid_action",
            "task4_1": "round_limit",
            "task5_1": "error",
        }
        assert files["task5_1"]["status"] == "error" and "model request failed" in files["task5_1"]["error"]
        limit = files["task4_1"]["episode"]
        assert limit["rounds"] == 8 and len(limit["turns"]) == 1 + 2 * 8  # the opening, then reply and feedback
        right = files["task5_3"]["episode"]  # a GET, its FHIR JSON as the next turn, maybe a POST, then FINISH
        assert right["turns"][1]["content"].startswith(f"GET {fhir}Observation?patient=")
        assert '"resourceType": "Bundle"' in right["turns"][2]["content"].replace('":"', '": "')
        assert right["turns"][1]["usage"] == {"prompt_tokens": 100, "completion_tokens": 10, "reasoning_tokens": 2}
        assert files["task5_3"]["usage"]["completion_tokens"] == 10 * right["rounds"]
        body = json.loads((run_dir / "run.json").read_bytes())
        assert (
            body["fingerprint_inputs"]["fhir.base_url"] == fhir
            and body["fingerprint_inputs"]["dataset.max_rounds"] == 8
        )

        before = model.requests
        again = run_python(["predict.py", *_overrides(url, fhir, tmp_path)], timeout=120)
        assert again.returncode == 1  # the one task asked ended in error again: most of what was asked
        assert model.requests - before == 2  # task5_1 only, from the start: its first request, twice (2 attempts)

    paths = [f"paths.{p}={tmp_path / p}" for p in ("predictions", "scored", "leaderboard")]
    scored = run_python(["score.py", "dataset=medagentbench", f"fhir.base_url={fhir}", *paths], timeout=300)
    assert scored.returncode == 0, scored.stderr
    with open(tmp_path / "leaderboard" / "medagentbench.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["correct"], row["tasks"]) == ("296", "300")  # the four misbehaving tasks fail, the rest are right
    assert (row["T1"], row["T2"], row["T3"], row["T4"], row["T5"]) == ("0.9667", "0.9667", "1.0", "0.9667", "0.9667")
    assert (row["invalid_action"], row["round_limit"], row["errors"]) == ("1", "1", "1")
    assert (tmp_path / "leaderboard" / "medagentbench.png").stat().st_size > 0  # the heat map by task type
    assert "296/300" in scored.stdout or "98.7" in scored.stdout


def test_task_types_select_and_the_agent_is_shown_the_fhir_base(tasks, fhir, tmp_path):
    with model_running(AgentModel(tasks, SERVED)) as url:
        done = run_python(["predict.py", *_overrides(url, fhir, tmp_path, "dataset.task_types=[3,8]")], timeout=120)
        assert done.returncode == 0, done.stderr
    files = _files(tmp_path / "predictions" / "medagentbench" / "smollm2_135m")
    assert len(files) == 60 and {r["task_type"] for r in files.values()} == {3, 8}
    opening = files["task3_1"]["episode"]["turns"][0]["content"]
    assert f"Use {fhir} as the api_base" in opening and "Question: " in opening
    assert files["task3_1"]["episode"]["posts"][0]["url"] == f"{fhir}Observation"


def test_an_unreachable_fhir_server_is_one_paragraph_naming_the_docker_image(tasks, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/fhir/"
    with model_running(AgentModel(tasks, SERVED)) as url:
        done = run_python(["predict.py", *_overrides(url, dead, tmp_path, "run.limit=2")], timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "docker run -p 8080:8080 jyxsu6/medagentbench" in done.stderr and "fhir.launch=true" in done.stderr
    assert not list((tmp_path / "predictions" / "medagentbench").glob("*/task*.json"))


def test_fhir_launch_starts_the_server_for_the_run_and_stops_it(tasks, tmp_path):
    port = free_port()
    command = f"[{sys.executable},-m,jmle_eval.testing.fhirserver,--port,{port}]"
    extra = ["fhir.launch=true", f"fhir.command={command}", "dataset.task_types=[2]", "run.limit=3"]
    with model_running(AgentModel(tasks, SERVED)) as url:
        done = run_python(["predict.py", *_overrides(url, f"http://127.0.0.1:{port}/fhir/", tmp_path, *extra)])
    assert done.returncode == 0, done.stderr
    files = _files(tmp_path / "predictions" / "medagentbench" / "smollm2_135m")
    assert [files[t]["outcome"] for t in sorted(files)] == ["finished"] * 3
    running = [p for p in psutil.process_iter(["cmdline"]) if f"--port {port}" in " ".join(p.info["cmdline"] or [])]
    assert running == [], "the launched FHIR server must be stopped"


def test_kill_9_mid_run_then_resume_plays_every_unfinished_episode_once_more(tasks, fhir, tmp_path):
    model = AgentModel(tasks, SERVED, latency_s=0.05)
    with model_running(model) as url:
        one_at_a_time = ["dataset.task_types=[4]", "provider.max_concurrency=2"]  # episodes end one by one
        args = [sys.executable, "predict.py", *_overrides(url, fhir, tmp_path, *one_at_a_time)]
        env = {**os.environ, "JMLE_EVAL_DATA_DIR": os.environ.get("JMLE_EVAL_DATA_DIR", "../shared/datasets")}
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run_dir = tmp_path / "predictions" / "medagentbench" / "smollm2_135m"
        deadline = time.monotonic() + 60
        while len(list(run_dir.glob("task*.json"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        kept = _files(run_dir)
        assert 5 <= len(kept) < 30  # killed mid-run: some finished, some not
        done = run_python(args[1:], timeout=120)
        assert done.returncode == 0, done.stderr
    files = _files(run_dir)
    assert len(files) == 30 and all(r["outcome"] == "finished" for r in files.values())
    assert all(files[t] == kept[t] for t in kept)  # a finished transcript is never played again


def test_a_dry_run_needs_no_fhir_server_and_writes_nothing(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/fhir/"
    extra = ["run.dry_run=true", "dataset.task_types=[1,2]", "model=gpt_5_2"]  # a price; no server, no key
    done = run_python(["predict.py", *_overrides("http://127.0.0.1:9/v1", dead, tmp_path, *extra)])
    assert done.returncode == 0, done.stderr
    assert "tasks             60 to play, 60 selected, 0 done; up to 8 model replies each" in done.stdout
    assert "opening prompts" in done.stdout and "input cost (USD)  at least $" in done.stdout
    assert not (tmp_path / "predictions").exists()
