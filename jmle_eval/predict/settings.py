"""The run settings predict checks before anything else: numbers, flags, the run name, shard and output folder.

Every check raises one :class:`UserError` that names the setting and what it
accepts, so a wrong value fails in a second, before data is loaded or a server
is contacted.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jmle_eval.errors import UserError
from jmle_eval.io import blocking_file
from jmle_eval.resolvers import run_name_problem

PROGRESS_MODES = ("auto", True, False)


@dataclass(frozen=True)
class Settings:
    """The checked run settings of one predict invocation."""

    max_concurrency: int
    max_rejected: int
    outage_timeout_s: float
    log_every_s: float
    retry_errors: bool
    durable: bool
    fail_on_errors: bool
    progress: bool
    shard: tuple[int, int] | None
    ids: list[Any] | None
    limit: int | None
    dry_run: bool = False  # run.dry_run: report what would be asked and its cost, send nothing
    repeats: int = 1  # run.repeats: samples per question


def whole(value: Any, name: str, minimum: int, why: str) -> int:
    """Return ``value`` if it is a whole number >= ``minimum``; raise UserError naming the setting otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{name} must be a whole number >= {minimum} (got {value!r}): {why}.")
    return value


def _seconds(value: Any, name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise UserError(f"{name} must be a number of seconds >= {minimum:g} (got {value!r}).")
    return float(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false (got {value!r}).")
    return value


def check_run_name(name: Any) -> str:
    """Return ``name`` if it can be one folder under ``predictions/<dataset>/``; raise UserError otherwise."""
    text = str(name) if name is not None else ""
    why = run_name_problem(text)
    if why is not None:
        raise UserError(
            f"run.name={text!r} cannot be a run folder name: {why}. A run name is one folder under "
            "predictions/<dataset>/ — letters, digits and . _ = - (e.g. run.name=qwen3_32b-exp1); leave it unset "
            "for the default (the model name plus the overrides that change answers)."
        )
    return text


def check_output_folder(run_dir: Path) -> None:
    """Raise UserError when a component of ``run_dir`` exists but is not a folder (paths.predictions=<a file>)."""
    folder = blocking_file(run_dir)
    if folder is not None:
        raise UserError(
            f"{folder} is a file, not a folder, so the run folder {run_dir} cannot be made there. Point "
            "paths.predictions (or run.dir) at a folder, or move the file away."
        )


def parse_shard(spec: Any) -> tuple[int, int] | None:
    """Return ``(k, n)`` from ``"k/n"`` (0 <= k < n), or None for no sharding."""
    if spec is None or spec == "":
        return None
    parts = str(spec).split("/")
    try:
        k, n = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        k = n = None
    if k is None or n is None or n < 1 or not 0 <= k < n:
        raise UserError(
            f"run.shard={spec!r} is not 'k/n' with 0 <= k < n (e.g. run.shard=0/4 ... run.shard=3/4): "
            "shard k of n takes every n-th selected question starting at the k-th (0-based)."
        )
    return k, n


def _provider_timing(provider: Mapping[str, Any]) -> float:
    """Check the provider's attempts, timeouts and back-off; return its outage timeout in seconds."""
    whole(provider.get("max_attempts"), "provider.max_attempts", 1, "it counts the first try")
    _seconds(provider.get("timeout_s"), "provider.timeout_s", 0.001)
    _seconds(provider.get("backoff_s"), "provider.backoff_s")
    _seconds(provider.get("backoff_max_s"), "provider.backoff_max_s")
    _seconds(provider.get("connect_timeout_s", 30), "provider.connect_timeout_s")
    return _seconds(provider.get("outage_timeout_s", 600), "provider.outage_timeout_s")


def _check_endpoint(provider: Mapping[str, Any]) -> None:
    """Raise UserError when the provider names no usable client or server URL."""
    if (provider.get("client") or "lean") not in ("lean", "sdk"):
        raise UserError(f"provider.client={provider.get('client')!r} is not lean or sdk.")
    if not provider.get("base_url") and not provider.get("always_launch"):
        raise UserError(f"provider.base_url is empty for provider={provider['name']}; set it to the server's /v1 URL.")


def _flags(cfg: Mapping[str, Any]) -> dict[str, bool]:
    """Return every true/false setting by its config path, each checked to be a boolean."""
    provider, model, run = cfg["provider"], cfg["model"], cfg["run"]
    values = {
        "run.retry_errors": run.get("retry_errors", True),
        "run.fsync": run.get("fsync", True),
        "run.fail_on_errors": run.get("fail_on_errors", False),
        "run.dry_run": run.get("dry_run", False),
        "provider.check_model": provider.get("check_model", False),
        "provider.api_key_required": provider.get("api_key_required", False),
        "provider.always_launch": provider.get("always_launch", False),
        "model.vision": model.get("vision", False),
        "server.launch": (cfg.get("server") or {}).get("launch", False),
    }
    return {name: _flag(value, name) for name, value in values.items()}


def _progress(value: Any) -> bool:
    """Return whether to draw a progress bar: ``auto`` means when stderr is a terminal."""
    if value not in PROGRESS_MODES:
        raise UserError(f"run.progress={value!r} is not one of auto, true, false.")
    return sys.stderr.isatty() if value == "auto" else bool(value)


def read_settings(cfg: Mapping[str, Any]) -> Settings:
    """Return the checked run settings of a resolved config; raise UserError for the first bad one."""
    provider, model, run = cfg["provider"], cfg["model"], cfg["run"]
    own = model.get("max_concurrency") is not None  # 0 is a setting to refuse, not "unset"
    concurrency = model["max_concurrency"] if own else provider.get("max_concurrency")
    name = "model.max_concurrency" if own else "provider.max_concurrency"
    max_concurrency = whole(concurrency, name, 1, "it is how many requests are in flight at once")
    max_rejected = whole(run.get("max_rejected", 3), "run.max_rejected", 1, "questions refused before stopping")
    outage_timeout_s = _provider_timing(provider)
    flags = _flags(cfg)
    log_every_s = _seconds(run.get("log_every_s", 30), "run.log_every_s", 0.1)
    if run.get("limit") is not None:
        whole(run["limit"], "run.limit", 1, "it answers only the first N selected questions")
    ids = run.get("ids")
    progress = _progress(run.get("progress", "auto"))
    _check_endpoint(provider)
    check_run_name(run["name"])
    return Settings(
        max_concurrency=max_concurrency,
        max_rejected=max_rejected,
        outage_timeout_s=outage_timeout_s,
        log_every_s=log_every_s,
        retry_errors=flags["run.retry_errors"],
        durable=flags["run.fsync"],
        fail_on_errors=flags["run.fail_on_errors"],
        progress=progress,
        shard=parse_shard(run.get("shard")),
        ids=ids if ids is None or isinstance(ids, list) else [ids],
        limit=run.get("limit"),
        dry_run=flags["run.dry_run"],
        repeats=whole(run.get("repeats", 1), "run.repeats", 1, "it is how many times each question is asked"),
    )
