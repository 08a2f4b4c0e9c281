"""Stand-in for a vLLM or SGLang server in tests: records how it was started, then serves jmle_eval.testing.fakeserver.

    python tests/fakebin/fake_engine.py vllm serve <model> --port P --served-model-name N …

Behaviour comes from environment variables, so a test can pick it without changing the command:
  FAKE_ENGINE_RECORD  append one JSON line {engine, argv, pid, pgid, worker_pid, api_key_env, ray_gpus} to this file
  FAKE_ENGINE_MODE    ok (default) | crash (exit 3 at start) | hang (never listens) | wrong-name (lists another model)
                      | slow:<seconds> (listens only after that delay)
  FAKE_ENGINE_WORKER  none (default) | child (a worker process, as vLLM starts) | stubborn (a worker ignoring SIGTERM)
  FAKE_ENGINE_CONFIG  JSON object merged into the fake server's config (latency, answers, …)
Like SGLang, it prints its arguments at startup (API key included), so tests can check the log is scrubbed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for jmle_eval

from jmle_eval.testing import fakeserver

WORKER = """
import signal, sys, time
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(600)
"""


def option(argv: list[str], *names: str) -> str | None:
    """Return the value of the first of ``names`` in argv (``--name value`` or ``--name=value``)."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def ray_gpus() -> int | None:
    """Return the GPUs the fake Ray cluster ($FAKE_RAY_STATE) has now, or None outside Ray tests."""
    state = os.environ.get("FAKE_RAY_STATE")
    if not state or not os.path.exists(state):
        return None
    return sum(int(line) for line in Path(state).read_text().split())


def main() -> None:
    engine, argv = sys.argv[1], sys.argv[2:]
    mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
    worker_kind = os.environ.get("FAKE_ENGINE_WORKER", "none")
    worker = None
    if worker_kind != "none":
        worker = subprocess.Popen([sys.executable, "-c", WORKER, worker_kind])
    key = option(argv, "--api-key", "--api_key") or os.environ.get("VLLM_API_KEY")
    record = {
        "engine": engine,
        "argv": argv,
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "worker_pid": worker.pid if worker else None,
        "api_key_env": os.environ.get("VLLM_API_KEY"),
        "ray_gpus": ray_gpus(),
    }
    if os.environ.get("FAKE_ENGINE_RECORD"):
        with open(os.environ["FAKE_ENGINE_RECORD"], "a") as f:
            f.write(json.dumps(record) + "\n")
    print(f"server_args={argv}", flush=True)
    if mode == "crash":
        print("RuntimeError: CUDA out of memory (fake engine crash)", file=sys.stderr, flush=True)
        sys.exit(3)
    if mode == "hang":
        print("Loading safetensors checkpoint shards: 0% (fake engine never becomes ready)", flush=True)
        time.sleep(600)
        sys.exit(1)
    name = option(argv, "--served-model-name", "--model_alias") or "fake-model"
    if mode == "wrong-name":
        name = "some-other-model"
    config = json.loads(os.environ.get("FAKE_ENGINE_CONFIG") or "{}")
    if key:
        config["api_key"] = key
    args = ["--host", option(argv, "--host") or "127.0.0.1", "--port", option(argv, "--port") or "8000"]
    args += ["--served-name", name, "--latency", str(config.pop("latency", 0)), "--config", json.dumps(config)]
    if mode.startswith("slow:"):
        args += ["--startup-delay", mode.split(":", 1)[1]]
    fakeserver.main(args)


if __name__ == "__main__":
    main()
