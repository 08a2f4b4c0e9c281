"""conf/hydra/launcher/a100.yaml: a Hydra multirun sweep becomes one SLURM array job, one server per point.

The real hydra-submitit-launcher submits to a fake ``sbatch`` that runs the array tasks on this machine (fake
``srun``/``sacct``), each task runs predict with ``server.launch=true``, which starts a fake vLLM on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jmle_eval.config import compose
from tests.conftest import REPO
from tests.fakebin import alive, fake_env, kill_recorded, records


def test_a100_launcher_profile_asks_slurm_for_four_a100s_and_a_pre_timeout_signal():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    compose([])  # registers the resolvers
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["hydra/launcher=a100"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.gres == "gpu:a100:4" and launcher.nodes == 1 and launcher.signal_delay_s >= 60
    assert "predictions" not in str(launcher.submitit_folder)  # SLURM files never land among the runs


@pytest.mark.slow
def test_multirun_sweep_becomes_one_array_job_with_a_server_per_point(tmp_path):
    record, slurm = tmp_path / "engines.jsonl", tmp_path / "slurm.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "VLLM_"))},
        **fake_env(record),
        "FAKE_SLURM_RECORD": str(slurm),
    }
    command = [
        sys.executable, "predict.py", "-m", "hydra/launcher=a100",
        "model=gpt_oss_120b", "provider=vllm", "server.launch=true", "model.reasoning_effort=low,medium,high",
        f"paths.predictions={tmp_path / 'predictions'}", "run.limit=2",
        f"hydra.launcher.submitit_folder={tmp_path / 'submitit'}/%j",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    finally:
        kill_recorded(record)
    assert done.returncode == 0, done.stdout + done.stderr

    submissions = [json.loads(line[len("sbatch ") :]) for line in slurm.read_text().splitlines() if "sbatch " in line]
    assert len(submissions) == 1, "one array job for the whole sweep"
    options = submissions[0]["options"]
    assert "#SBATCH --array=0-2%3" in options and "#SBATCH --gres=gpu:a100:4" in options

    servers = records(record)
    assert len(servers) == 3 and len({s["pid"] for s in servers}) == 3, "each point launches its own server"
    assert all(s["argv"][s["argv"].index("--tensor-parallel-size") + 1] == "4" for s in servers)
    assert not any(alive(s["pid"]) for s in servers)

    runs = sorted((tmp_path / "predictions" / "jmle2026").glob("gpt_oss_120b-*"))
    assert [r.name for r in runs] == [f"gpt_oss_120b-effort_{e}" for e in ("high", "low", "medium")]
    for run in runs:
        assert len([p for p in run.glob("*.json") if p.name != "run.json"]) == 2
        effort = json.loads((run / "run.json").read_text())["model"]["reasoning_effort"]
        assert run.name.endswith(effort)
