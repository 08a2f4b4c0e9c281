"""Start-up stays lean: predict.py loads only what its run needs, and the shortcuts behave as what they replace.

The lean transport does without the ``openai`` SDK (about 0.3 s to import), so its headers,
base URL and preflight errors are checked against the installed SDK's here; Hydra's mode
probe is skipped only when nothing can set ``hydra.mode``. Timings live in ``bench/startup.py``.
"""

from __future__ import annotations

import asyncio
import re

import openai
import pytest

from jmle_eval import io, serving
from jmle_eval.cli import mode_may_be_set
from jmle_eval.config import compose
from jmle_eval.predict.client import ChatClient, sdk_base_url, sdk_headers
from jmle_eval.predict.replies import Fatal
from tests.conftest import run_python
from tests.reliability.conftest import DATASET, RUN, predict_overrides

HEAVY = {"openai", "pandas", "matplotlib", "datasets", "torch", "transformers"}


def _imported_packages(importtime_log: str) -> set[str]:
    """Return the top-level packages a ``python -X importtime`` run imported."""
    return {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\| +(\S+)$", importtime_log, re.M)}


@pytest.mark.parametrize("transport", ["lean", "sdk"])
def test_a_predict_run_imports_the_sdk_only_for_the_sdk_transport(fake_server, tmp_path, transport):
    fake_server.configure(served_name="smollm2-135m")
    overrides = predict_overrides(fake_server, tmp_path, "run.limit=2", f"provider.client={transport}")
    done = run_python(["-X", "importtime", "predict.py", *overrides])
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((tmp_path / DATASET / RUN).glob("*-*.json"))) == 2
    imported = _imported_packages(done.stderr)
    assert {"hydra", "aiohttp", "jmle_eval"} <= imported  # the log is read right
    heavy = {"openai"} if transport == "sdk" else set()
    assert imported & HEAVY == heavy


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000/v1", "http://LOCALHOST:80/v1/", "https://h/api/v1?x=1"])
def test_lean_headers_and_base_url_are_the_ones_the_sdk_sends(monkeypatch, base_url):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-1")
    monkeypatch.delenv("OPENAI_PROJECT_ID", raising=False)

    async def sdk() -> tuple[dict[str, str], str]:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=base_url)
        headers = {**client.default_headers, **client.auth_headers}  # as sent: Omit() values are left out
        return {k: v for k, v in headers.items() if isinstance(v, str)}, str(client.base_url).rstrip("/")

    headers, url = asyncio.run(sdk())
    assert headers["OpenAI-Organization"] == "org-1" and "OpenAI-Project" not in headers
    assert sdk_headers("sk-test") == headers
    assert sdk_base_url(base_url) == url


def test_a_refused_key_reads_as_the_sdk_reports_it(fake_server):
    fake_server.configure(api_key="right-key")

    async def both() -> tuple[str, Fatal]:
        sdk = openai.AsyncOpenAI(api_key="wrong-key", base_url=fake_server.base_url, max_retries=0)
        client = ChatClient(fake_server.base_url, "wrong-key", max_concurrency=1, timeout_s=2, max_attempts=1,
                            backoff_s=0, backoff_max_s=0)  # fmt: skip
        try:
            with pytest.raises(openai.AuthenticationError) as sdk_error:
                await sdk.models.list()
            with pytest.raises(Fatal) as lean_error:
                await client.models(2)
        finally:
            await client.aclose()
            await sdk.close()
        return sdk_error.value.message, lean_error.value

    expected, fatal = asyncio.run(both())
    assert fatal.status == 401 and fatal.message == expected == "Error code: 401 - Incorrect API key provided"


@pytest.mark.parametrize(
    ("argv", "may_be_set"),
    [
        ([], False),
        (["model=qwen3_32b", "image_mode=blind", "run.limit=3"], False),
        (["-m", "model.reasoning_effort=low,high"], False),
        (["hydra.mode=MULTIRUN"], True),
        (["+hydra.sweeper.params.x=1"], True),
        (["hydra/launcher=a100"], True),
        (["--config-dir", "/elsewhere"], True),
    ],
)
def test_hydra_mode_probe_is_kept_only_where_something_may_set_the_mode(argv, may_be_set):
    assert mode_may_be_set(argv) is may_be_set


def test_hydra_mode_set_on_the_command_line_still_makes_a_sweep(tmp_path):
    done = run_python(
        ["predict.py", "hydra.mode=MULTIRUN", "run.dry_run=true", "model=gpt_5_2,claude_opus_4_6",
         "provider=openrouter", f"paths.predictions={tmp_path}"],
        env={"OPENROUTER_API_KEY": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.findall(r"^dry run: (\S+) on jmle2026", done.stdout, re.M) == ["gpt_5_2", "claude_opus_4_6"]


def test_the_embedded_server_gets_every_core_unless_told_otherwise():
    argv = serving.build_command(compose([]))
    cores = str(io.cores())
    assert argv[argv.index("--n_threads") + 1] == cores and argv[argv.index("--n_threads_batch") + 1] == cores
    assert argv[argv.index("--logits_all") + 1] == "false" and argv[argv.index("--flash_attn") + 1] == "true"
    told = serving.build_command(compose(["server.extra_args=[--n_threads,1]"]))
    assert told[-2:] == ["--n_threads", "1"] and told.index("--n_threads") < len(told) - 2  # the last one wins
    assert "--n_threads" not in serving.build_command(compose(["provider=vllm", "model=qwen3_32b"]))


def test_importing_the_predict_entry_points_library_loads_no_sdk():
    code = "import sys, jmle_eval.predict.runner, jmle_eval.predict.session, jmle_eval.predict.client; " \
           "print(sorted({m.split('.')[0] for m in sys.modules} & " + repr(HEAVY) + "))"  # fmt: skip
    done = run_python(["-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
