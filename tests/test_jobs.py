"""jobs/*.sh run under bash with SLURM variables and fake srun/scontrol/ray/vllm/sglang, against loopback servers.

Each test runs a real job script, which runs the real predict.py, which launches a fake engine (a real HTTP
server on 127.0.0.1) through serving.py. Checked: predictions appear, the right parallel flags reach the
server, the array index reaches run.shard, and nothing is left running after the script exits or is signalled.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from jmle_eval.config import compose, load_questions
from tests.conftest import REPO
from tests.fakebin import alive, fake_env, kill_recorded, records, session_processes, wait_until

JOBS = REPO / "jobs"
SCRIPTS = sorted(p for p in JOBS.glob("*.sh") if p.name != "common.sh")  # common.sh is sourced by them


@dataclass
class Job:
    """A job script run: its process, output, and where its fakes recorded what they saw."""

    process: subprocess.Popen[str]
    tmp: Path
    engine_record: Path
    slurm_record: Path

    @property
    def predictions(self) -> Path:
        return self.tmp / "predictions"

    def answered(self) -> list[str]:
        """Return the question ids with a prediction file in any run folder, sorted."""
        return sorted(p.stem for p in self.predictions.glob("*/*/*.json") if p.name != "run.json")

    def servers(self) -> list[dict]:
        return records(self.engine_record)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Return (exit code, output) once the script ends; kill its session if it overruns."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            out, _ = self.process.communicate()
            pytest.fail(f"job did not finish in {timeout} s:\n{out}")
        return self.process.returncode, out

    def leftovers(self) -> list[str]:
        """Return what still runs from this job: its session's processes and every recorded server/worker."""
        left = [" ".join(p.cmdline()) for p in session_processes(self.process.pid) if p.pid != os.getpid()]
        for started in self.servers():
            left += [f"server pid {pid}" for pid in (started["pid"], started["worker_pid"]) if alive(pid)]
        return left


@pytest.fixture
def job_runner(tmp_path) -> Iterator:
    """Yield a function that starts a job script in its own session; kill whatever a failed test left behind."""
    started: list[Job] = []

    def start(script: str, *overrides: str, **env: str) -> Job:
        engine_record, slurm_record = tmp_path / "engines.jsonl", tmp_path / "slurm.log"
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "VLLM_", "SGLANG_"))},
            **fake_env(engine_record),
            "FAKE_SLURM_RECORD": str(slurm_record),
            "FAKE_RAY_STATE": str(tmp_path / "ray-state"),
            "TMPDIR": str(tmp_path),
            "SLURM_JOB_ID": "4242",
            "SLURM_SUBMIT_DIR": str(REPO),
            "SLURM_JOB_NODELIST": "gpu1",
            "SLURM_JOB_NUM_NODES": "1",
            "JMLE_POLL_S": "0.1",
            "JMLE_STOP_GRACE_S": "20",
            **env,
        }
        args = [f"paths.predictions={tmp_path / 'predictions'}", "server.health_timeout_s=30", *overrides]
        process = subprocess.Popen(
            ["bash", str(JOBS / script), *args],
            cwd=tmp_path,  # sbatch runs the script from a spool copy: it must find the repo by itself
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        job = Job(process, tmp_path, engine_record, slurm_record)
        started.append(job)
        return job

    yield start
    for job in started:
        if job.process.poll() is None:
            os.killpg(job.process.pid, signal.SIGKILL)
            job.process.wait()
        kill_recorded(job.engine_record)
        for process in session_processes(job.process.pid):
            process.kill()


def flag(argv: list[str], name: str) -> str | None:
    """Return the value after ``name`` in argv, or None if absent."""
    return argv[argv.index(name) + 1] if name in argv else None


def test_shellcheck_passes_on_every_shell_script():
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).with_name("shellcheck"))
    done = subprocess.run(
        [shellcheck, "-x", *map(str, SCRIPTS), str(JOBS / "common.sh"), *map(str, (REPO / "tools").glob("*.sh"))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.name for p in SCRIPTS} >= {"a100_tp4.sh", "a100_dp4.sh", "a100_shard.sh", "ray_multinode.sh"}
    assert (REPO / "tools" / "install_llama_cpp.sh").is_file()


@pytest.mark.parametrize("script", [p.name for p in SCRIPTS])
def test_every_job_script_asks_slurm_for_a100s_a_pre_timeout_signal_and_a_log(script):
    header = [line for line in (JOBS / script).read_text().splitlines() if line.startswith("#SBATCH")]
    options = dict(line.removeprefix("#SBATCH ").partition("=")[::2] for line in header)
    assert "a100" in options["--gres"] and options["--output"].startswith("jobs/logs/")
    assert options["--signal"].startswith("B:USR1@")
    assert {"--time", "--cpus-per-task", "--mem", "--nodes"} <= set(options)
    assert "set -euo pipefail" in (JOBS / script).read_text()


def test_tp4_job_serves_with_tensor_parallel_4_and_writes_predictions(job_runner):
    job = job_runner("a100_tp4.sh", "model=qwen3_32b", "provider=vllm", "run.limit=3")
    code, out = job.finish()
    assert code == 0, out
    (server,) = job.servers()
    assert server["argv"][:2] == ["serve", "Qwen/Qwen3-32B"]
    assert flag(server["argv"], "--tensor-parallel-size") == "4"
    assert flag(server["argv"], "--reasoning-parser") == "qwen3"
    assert len(job.answered()) == 3
    assert job.leftovers() == []
    assert not list(job.tmp.glob("jmle-job.*")), "the job's temporary state must be removed"


def test_dp4_job_serves_four_sglang_replicas(job_runner):
    job = job_runner("a100_dp4.sh", "model=gpt_oss_20b", "provider=sglang", "run.limit=2")
    code, out = job.finish()
    assert code == 0, out
    (server,) = job.servers()
    assert server["engine"] == "sglang"
    assert flag(server["argv"], "--dp-size") == "4" and "--tp-size" not in server["argv"]
    assert "--async-scheduling" not in server["argv"]  # a vLLM-only flag of this model must not reach SGLang
    assert len(job.answered()) == 2
    assert job.leftovers() == []


def test_shard_job_answers_the_array_tasks_share(job_runner):
    job = job_runner(
        "a100_shard.sh",
        "model=gpt_oss_120b",
        "provider=vllm",
        "run.limit=8",
        SLURM_ARRAY_TASK_ID="2",
        SLURM_ARRAY_TASK_COUNT="4",
        SLURM_ARRAY_TASK_MIN="0",
        SLURM_ARRAY_TASK_MAX="3",
    )
    code, out = job.finish()
    assert code == 0, out
    assert "run.shard=2/4" in out
    first_eight = [q.id for q in load_questions(compose(["model=gpt_oss_120b", "provider=vllm"]))][:8]
    assert job.answered() == sorted(first_eight[2::4])
    (server,) = job.servers()
    assert flag(server["argv"], "--tensor-parallel-size") == "4"  # the model's own serve.tp
    assert job.leftovers() == []


def test_shard_job_outside_an_array_or_past_the_shard_count_is_refused(job_runner):
    code, out = job_runner("a100_shard.sh", "model=gpt_oss_120b", "provider=vllm").finish()
    assert code == 2 and "--array=0-3" in out
    job = job_runner("a100_shard.sh", "provider=vllm", SLURM_ARRAY_TASK_ID="5", SLURM_ARRAY_TASK_COUNT="4")
    code, out = job.finish()
    assert code == 2 and "JMLE_SHARDS" in out
    assert job.servers() == []


def test_ray_job_joins_every_gpu_before_serving_across_nodes(job_runner):
    job = job_runner(
        "ray_multinode.sh",
        "model=qwen3_5_397b",
        "provider=vllm",
        "run.limit=2",
        SLURM_JOB_NODELIST="gpu[1-2]",
        SLURM_JOB_NUM_NODES="2",
        SLURM_GPUS_ON_NODE="8",
        JMLE_RAY_HEAD_IP="127.0.0.1",
        FAKE_RAY_DELAY="1",  # the worker joins late: predict must wait for it
    )
    code, out = job.finish()
    assert code == 0, out
    steps = [line for line in job.slurm_record.read_text().splitlines() if line.startswith("srun ")]
    assert len(steps) == 2
    assert "--nodelist=gpu1" in steps[0] and "--head" in steps[0] and "--num-gpus=8" in steps[0]
    assert "--nodelist=gpu2" in steps[1] and "--address=127.0.0.1:6379" in steps[1]
    (server,) = job.servers()
    assert server["ray_gpus"] == 16, "the server started before every GPU had joined"
    assert flag(server["argv"], "--tensor-parallel-size") == "8"
    assert flag(server["argv"], "--pipeline-parallel-size") == "2"
    assert flag(server["argv"], "--distributed-executor-backend") == "ray"
    assert len(job.answered()) == 2
    assert job.leftovers() == []  # the Ray head and worker steps were stopped too


def test_bad_override_fails_before_any_server_starts(job_runner):
    job = job_runner("a100_tp4.sh", "model=no_such_model", "provider=vllm")
    code, out = job.finish()
    assert code == 2 and "no_such_model" in out
    assert job.servers() == [] and job.leftovers() == []


def _wait_for_requests_in_flight(job: Job) -> None:
    """Wait until the job's server exists and its run folder has been opened (questions are being asked)."""
    opened = wait_until(
        lambda: bool(list(job.predictions.glob("*/*/run.json"))) or job.process.poll() is not None, timeout=30
    )
    assert opened and job.process.poll() is None, job.finish(5)[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signalled_job_stops_everything_and_a_resubmission_resumes(job_runner, signum):
    slow = json.dumps({"latency": 30})  # every request outlives the signal
    job = job_runner("a100_tp4.sh", "model=qwen3_32b", "provider=vllm", "run.limit=4", FAKE_ENGINE_CONFIG=slow)
    _wait_for_requests_in_flight(job)
    job.process.send_signal(signum)  # scancel / preemption (TERM), or SLURM's pre-timeout signal (USR1)
    code, out = job.finish(timeout=30)
    assert code == 128 + signum, out
    assert "submit the same command again to resume" in out
    assert job.leftovers() == []
    assert job.answered() == []

    again = job_runner("a100_tp4.sh", "model=qwen3_32b", "provider=vllm", "run.limit=4")
    code, out = again.finish()
    assert code == 0, out
    assert len(again.answered()) == 4 and again.leftovers() == []


def test_job_kills_the_server_group_of_a_predict_that_was_sigkilled(job_runner):
    slow = json.dumps({"latency": 30})
    job = job_runner(
        "a100_tp4.sh", "model=qwen3_32b", "provider=vllm", "run.limit=2", FAKE_ENGINE_CONFIG=slow,
        FAKE_ENGINE_WORKER="child",
    )  # fmt: skip
    _wait_for_requests_in_flight(job)
    (predict,) = [p for p in psutil.Process(job.process.pid).children() if "predict.py" in " ".join(p.cmdline())]
    (server,) = job.servers()
    predict.kill()  # no finally, no atexit in predict: the job script's cleanup must stop the server group
    code, out = job.finish(timeout=30)
    assert code == 137, out
    assert f"stopping leftover server process groups: -{server['pgid']}" in out
    assert job.leftovers() == []
