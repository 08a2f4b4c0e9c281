"""Fake `sbatch SCRIPT` for tests: answers "Submitted batch job <id>" and then runs the script here, as SLURM
would on a node: each array task (#SBATCH --array=a-b) in turn, with the SLURM variables a job sees.

The tasks run in a detached process that first waits for submitit to file its task pickles under the job id.
Each submission is recorded to $FAKE_SLURM_RECORD as `sbatch {"job_id": …, "options": [#SBATCH lines]}`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path


def run_tasks(script: Path, job_id: str, tasks: list[int]) -> None:
    """Run each array task of ``script`` (after its submitit pickle exists), one after another."""
    from submitit.core.utils import JobPaths

    match = re.search(r"submitit\.core\._submit (\S+)", script.read_text())
    folder = shlex.split(match.group(1))[0] if match else None
    for task in tasks:
        task_job = f"{job_id}_{task}"
        if folder:
            pickle = JobPaths(folder, job_id=task_job).submitted_pickle
            deadline = time.monotonic() + 30
            while not pickle.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        env = {
            **os.environ,
            "SLURM_JOB_ID": str(int(job_id) + 1 + task),
            "SLURM_ARRAY_JOB_ID": job_id,
            "SLURM_ARRAY_TASK_ID": str(task),
            "SLURM_ARRAY_TASK_COUNT": str(len(tasks)),
            "SLURM_NTASKS": "1",
            "SLURM_JOB_NUM_NODES": "1",
            "SLURM_NODEID": "0",
            "SLURM_PROCID": "0",
            "SLURM_LOCALID": "0",
            "SLURM_JOB_NODELIST": "gpu1",
            "SLURMD_NODENAME": "gpu1",
            "SLURM_SUBMIT_DIR": os.getcwd(),
        }
        subprocess.run(["bash", str(script)], env=env, check=False)


def main() -> None:
    if sys.argv[1] == "--run":
        run_tasks(Path(sys.argv[2]), sys.argv[3], [int(t) for t in sys.argv[4:]])
        return
    script = Path(sys.argv[-1])
    options = [line for line in script.read_text().splitlines() if line.startswith("#SBATCH")]
    array = next((re.match(r"#SBATCH --array=(\d+)-(\d+)", line) for line in options if "--array=" in line), None)
    tasks = list(range(int(array.group(1)), int(array.group(2)) + 1)) if array else [0]
    job_id = str(100000 + os.getpid() % 800000)
    with open(os.environ.get("FAKE_SLURM_RECORD", os.devnull), "a") as record:
        record.write(f"sbatch {json.dumps({'job_id': job_id, 'options': options})}\n")
    subprocess.Popen(
        [sys.executable, __file__, "--run", str(script.resolve()), job_id, *map(str, tasks)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    print(f"Submitted batch job {job_id}")


if __name__ == "__main__":
    main()
