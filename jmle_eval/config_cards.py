"""The schema of the model and provider cards (``conf/model/``, ``conf/provider/``), part of :mod:`config_schema`.

Kept apart so that the root schema stays readable; :mod:`jmle_eval.config_schema` re-exports every name.
``model.params`` values are typed ``Any`` on purpose (see there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


@dataclass
class Params:
    """Sampling settings sent in the request body; null = not sent. Other request fields: ``model.extra_body``."""

    temperature: Any = None
    top_p: Any = None
    top_k: Any = None
    min_p: Any = None
    max_tokens: Any = None
    max_completion_tokens: Any = None
    seed: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    repetition_penalty: Any = None
    stop: Any = None


NUMBER_PARAMS = ("temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty")
WHOLE_PARAMS = ("top_k", "max_tokens", "max_completion_tokens", "seed")


@dataclass
class Price:
    """USD per million tokens; null = not public, free, or reported per reply by the provider."""

    input: float | None = None
    output: float | None = None
    source: str | None = None


@dataclass
class EngineSettings:
    """The serve settings a model card states (``model.serve``) and a run may override (``server.*``)."""

    tp: int = 1
    dp: int = 1
    pp: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    reasoning_parser: str | None = None
    chat_template: str | None = None
    tool_call_parser: str | None = None
    extra_args: Any = None  # a list, or one list per engine {vllm: [...]}; null: none


@dataclass
class Serve(EngineSettings):
    """How the model is served when predict launches it (``server.*`` reads these).

    Always a block, never null: a command line can then give any model one (``+model.serve.hf_id=<repo>``).
    """

    engine: str | None = None  # vllm | sglang | llama_cpp
    hf_id: str | None = None  # Hugging Face repo the engine loads
    weights: str | None = None  # llama.cpp: package-relative path of a GGUF file


@dataclass
class Model:
    """One model: ``conf/model/<name>.yaml``."""

    name: str = MISSING
    id: str = MISSING  # the served model name
    provider_ids: dict[str, str] = field(default_factory=dict)  # per-provider ids where they differ
    display_name: str | None = None
    notice: str | None = None  # printed after a quickstart run
    vision: bool = False
    reasoning_effort: str | None = None  # low | medium | high where the model supports it
    answer_format: str = "text"  # the prompt.answer_format this model runs with unless told otherwise
    max_concurrency: int | None = None  # null: provider.max_concurrency
    params: Params = field(default_factory=Params)
    extra_body: dict[str, Any] = field(default_factory=dict)  # merged into the request body as-is
    provider_extra_body: dict[str, Any] = field(default_factory=dict)  # per provider, merged after extra_body
    price: Price = field(default_factory=Price)
    serve: Serve = field(default_factory=Serve)  # no hf_id or weights: API only, nothing to launch


@dataclass
class Provider:
    """One OpenAI-compatible endpoint: ``conf/provider/<name>.yaml``. Defaults suit a self-hosted server."""

    name: str = MISSING
    engine: str | None = None  # the server server.launch starts; null: predict does not launch one
    always_launch: bool = False
    base_url: str | None = None
    api_key_env: str | None = None  # the key is read from this environment variable, never from a file
    api_key_required: bool = False  # true: refuse to start without ${api_key_env} set
    check_model: bool = True  # preflight: the server must list model.id among its models
    connect_timeout_s: float = 30.0  # preflight: how long to wait for the server to answer at all
    outage_timeout_s: float = 600.0  # unreachable mid-run: pause, probe, resume; give up (exit 3) after this
    client: str = "lean"  # lean: JSON on aiohttp (fast) | sdk: every request via openai's AsyncOpenAI.post
    max_concurrency: int = 64
    timeout_s: float = 1800.0  # per request (one attempt)
    max_attempts: int = 4  # attempts per question, the first one included
    backoff_s: float = 1.0  # first retry waits ~this long, doubling each time (with jitter)
    backoff_max_s: float = 30.0  # longest wait between attempts; also caps a server's Retry-After
    reasoning_effort_path: str = "reasoning_effort"  # where model.reasoning_effort goes in the request body
    structured_output: str = "json_schema"  # judge replies: json_schema | json_object (llama-cpp-python) | none
    request_extra: dict[str, Any] = field(default_factory=dict)  # merged into every request body
