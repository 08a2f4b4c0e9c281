"""Everything predict decides before the first request: settings, questions, request body, run header.

:func:`plan` turns a resolved config (plain dicts) into a :class:`Plan`, and
raises one clear :class:`UserError` for anything a user can get wrong: a bad
number, a shard spec, a missing API key, a run folder made with other
settings. It contacts no server, so a bad command fails in a second.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jmle_eval import datasets, prompts, store
from jmle_eval.datasets import text
from jmle_eval.errors import UserError
from jmle_eval.schema import Question

PROGRESS_MODES = ("auto", True, False)


@dataclass
class Plan:
    """One predict invocation, fully decided: which questions, what request, where the files go."""

    run_name: str
    run_dir: Path
    model: dict[str, Any]
    provider: dict[str, Any]
    served_id: str
    image_mode: prompts.ImageMode
    prompt_version: str
    answer_marker: str
    body_template: dict[str, Any]
    header: dict[str, Any]
    api_key: str
    secrets: list[str]
    max_concurrency: int
    max_rejected: int
    durable: bool
    progress: str | bool
    log_every_s: float
    launch: bool
    shard: tuple[int, int] | None = None
    outage_timeout_s: float = 600.0
    fail_on_errors: bool = False
    retry_errors: bool = True
    selected: int = 0
    todo: list[Question] | None = None

    def refresh_todo(self) -> None:
        """Drop from ``todo`` the questions answered since the plan was made (by a process that just ended)."""
        if self.todo:
            done = store.finished_ids(self.run_dir, retry_errors=self.retry_errors)
            self.todo = [q for q in self.todo if q.id not in done]

    def cost(self, usage: Mapping[str, int]) -> float | None:
        """Return the list-price cost in USD of one reply's usage, or None when the price is not known."""
        price = self.model.get("price") or {}
        if price.get("input") is None or price.get("output") is None:
            return None
        prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        return (prompt * float(price["input"]) + completion * float(price["output"])) / 1e6


def _whole(value: Any, name: str, minimum: int, why: str) -> int:
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


_BAD_NAME_CHARS = frozenset('/\\\0:*?"<>|')


def check_run_name(name: Any) -> str:
    """Return ``name`` if it can be one folder under ``predictions/<dataset>/``; raise UserError otherwise."""
    text = str(name) if name is not None else ""
    bad = sorted({c for c in text if c in _BAD_NAME_CHARS or not c.isprintable()})
    if not text.strip() or text.startswith(".") or bad or len(text.encode()) > 200:
        why = (
            "it is empty" if not text.strip()
            else "it starts with '.' (hidden, or a path like '..')" if text.startswith(".")
            else f"it contains {', '.join(repr(c) for c in bad)}" if bad
            else "it is longer than 200 bytes"
        )  # fmt: skip
        raise UserError(
            f"run.name={text!r} cannot be a run folder name: {why}. A run name is one folder under "
            "predictions/<dataset>/ — letters, digits and . _ = - (e.g. run.name=qwen3_32b-exp1); leave it unset "
            "for the default (the model name plus the overrides that change answers)."
        )
    return text


def _check_output_folder(run_dir: Path) -> None:
    """Raise UserError when a component of ``run_dir`` exists but is not a folder (paths.predictions=<a file>)."""
    for folder in (run_dir, *run_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise UserError(
                f"{folder} is a file, not a folder, so the run folder {run_dir} cannot be made there. Point "
                "paths.predictions (or run.dir) at a folder, or move the file away."
            )
        if folder.is_dir():
            return


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


def select(
    questions: list[Question],
    image_mode: prompts.ImageMode,
    *,
    ids: list[str] | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
) -> list[Question]:
    """Return the questions of this invocation: image mode → explicit ids → first ``limit`` → shard k/n."""
    chosen = [q for q in questions if prompts.wants(q, image_mode)]
    if ids:
        try:
            wanted = [text.normalise_id(str(i).upper()) for i in ids]
        except (ValueError, AttributeError) as exc:
            raise UserError(f"run.ids has an id that is not like '120A-1': {exc}") from None
        known = {q.id for q in chosen}
        missing = [i for i in wanted if i not in known]
        if missing:
            raise UserError(
                f"run.ids {missing} are not among the {len(chosen)} selected questions (check the data set, "
                f"dataset.years/blocks and image_mode={image_mode})."
            )
        keep = set(wanted)
        chosen = [q for q in chosen if q.id in keep]
    if limit is not None:
        chosen = chosen[:limit]
    if shard is not None:
        k, n = shard
        chosen = [q for i, q in enumerate(chosen) if i % n == k]
    return chosen


def served_id(model: Mapping[str, Any], provider: Mapping[str, Any]) -> str:
    """Return the model name the provider's server expects."""
    return str((model.get("provider_ids") or {}).get(provider["name"]) or model["id"])


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _set_path(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = body
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"provider.reasoning_effort_path={path!r} runs into a non-object at '{part}'.")
    node[leaf] = value


def extra_body(model: Mapping[str, Any], provider: Mapping[str, Any]) -> dict[str, Any]:
    """Return model.extra_body merged with the model's extra body for this provider."""
    per_provider = (model.get("provider_extra_body") or {}).get(provider["name"]) or {}
    return _merge(_merge({}, model.get("extra_body") or {}), per_provider)


def request_template(model: Mapping[str, Any], provider: Mapping[str, Any]) -> dict[str, Any]:
    """Return the request body without messages: id, params (nulls dropped), extras, reasoning effort."""
    body: dict[str, Any] = {"model": served_id(model, provider)}
    body.update({k: v for k, v in (model.get("params") or {}).items() if v is not None})
    _merge(body, provider.get("request_extra") or {})
    _merge(body, extra_body(model, provider))
    effort = model.get("reasoning_effort")
    if effort is not None:
        _set_path(body, str(provider.get("reasoning_effort_path") or "reasoning_effort"), effort)
    return body


def fingerprint_inputs(
    model: Mapping[str, Any],
    provider: Mapping[str, Any],
    prompt: Mapping[str, Any],
    image_mode: str,
    card: Mapping[str, Any],
) -> dict[str, Any]:
    """Return every setting that changes answers, keyed by the config path a user would change."""
    effort = model.get("reasoning_effort")
    inputs = {
        "model.id": served_id(model, provider),
        "model.params": {k: v for k, v in (model.get("params") or {}).items() if v is not None},
        "model.extra_body": extra_body(model, provider),
        "model.reasoning_effort": effort,
        "provider.reasoning_effort_path": provider.get("reasoning_effort_path") if effort is not None else None,
        "prompt.version": prompt["version"],
        "prompt.template_hash": prompts.template_hash(prompt["version"]),
        "prompt.answer_marker": prompt["answer_marker"],
        "image_mode": image_mode,
        "dataset.name": card["name"],
        "dataset.version": datasets.dataset_version(card),
    }
    if provider.get("request_extra"):  # left out when empty, so that runs made before it keep their fingerprint
        inputs["provider.request_extra"] = dict(provider["request_extra"])
    return inputs


def api_key(provider: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Return the key to send and the secret values to mask (the key, when it came from the environment)."""
    env = provider.get("api_key_env")
    value = os.environ.get(str(env), "") if env else ""
    if value:
        return value, [value]
    if provider.get("api_key_required"):
        raise UserError(
            f"provider={provider['name']} needs an API key: set the environment variable {env} "
            f"(export {env}=...) and run again. Keys are read only from the environment, never from config files."
        )
    return "EMPTY", []  # local servers started without --api-key accept any key


def _settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    provider, model, run = cfg["provider"], cfg["model"], cfg["run"]
    own = model.get("max_concurrency") is not None  # 0 is a setting to refuse, not "unset"
    concurrency = model["max_concurrency"] if own else provider.get("max_concurrency")
    name = "model.max_concurrency" if own else "provider.max_concurrency"
    out = {
        "max_concurrency": _whole(concurrency, name, 1, "it is how many requests are in flight at once"),
        "max_rejected": _whole(run.get("max_rejected", 3), "run.max_rejected", 1, "questions refused before stopping"),
    }
    _whole(provider.get("max_attempts"), "provider.max_attempts", 1, "it counts the first try")
    _seconds(provider.get("timeout_s"), "provider.timeout_s", 0.001)
    _seconds(provider.get("backoff_s"), "provider.backoff_s")
    _seconds(provider.get("backoff_max_s"), "provider.backoff_max_s")
    _seconds(provider.get("connect_timeout_s", 30), "provider.connect_timeout_s")
    out["outage_timeout_s"] = _seconds(provider.get("outage_timeout_s", 600), "provider.outage_timeout_s")
    for name, value in (
        ("run.retry_errors", run.get("retry_errors", True)),
        ("run.fsync", run.get("fsync", True)),
        ("run.fail_on_errors", run.get("fail_on_errors", False)),
        ("provider.check_model", provider.get("check_model", False)),
        ("provider.api_key_required", provider.get("api_key_required", False)),
        ("provider.always_launch", provider.get("always_launch", False)),
        ("model.vision", model.get("vision", False)),
        ("server.launch", (cfg.get("server") or {}).get("launch", False)),
    ):
        out[name] = _flag(value, name)
    out["log_every_s"] = _seconds(run.get("log_every_s", 30), "run.log_every_s", 0.1)
    if run.get("limit") is not None:
        _whole(run["limit"], "run.limit", 1, "it answers only the first N selected questions")
    ids = run.get("ids")
    if ids is not None and not isinstance(ids, list):
        ids = [ids]
    out["ids"] = ids
    if run.get("progress", "auto") not in PROGRESS_MODES:
        raise UserError(f"run.progress={run.get('progress')!r} is not one of auto, true, false.")
    if (provider.get("client") or "lean") not in ("lean", "sdk"):
        raise UserError(f"provider.client={provider.get('client')!r} is not lean or sdk.")
    if not provider.get("base_url") and not provider.get("always_launch"):
        raise UserError(f"provider.base_url is empty for provider={provider['name']}; set it to the server's /v1 URL.")
    return out


def plan(cfg: Mapping[str, Any], *, load: bool = True) -> Plan:
    """Return the plan for a resolved config; with ``load``, also the questions still to ask."""
    provider, model, run, card = cfg["provider"], cfg["model"], cfg["run"], cfg["dataset"]
    settings = _settings(cfg)
    check_run_name(run["name"])
    shard = parse_shard(run.get("shard"))
    key, secrets = api_key(provider)
    image_mode = prompts.resolve_image_mode(str(cfg["image_mode"]), bool(model.get("vision")))
    inputs = fingerprint_inputs(model, provider, cfg["prompt"], image_mode, card)
    run_dir = Path(str(run["dir"]))
    _check_output_folder(run_dir)
    price = model.get("price") or {}
    header = {
        "format": store.FORMAT,
        "run": str(run["name"]),
        "dataset": card["name"],
        "dataset_version": inputs["dataset.version"],
        "fingerprint": store.fingerprint(inputs),
        "fingerprint_inputs": inputs,
        "model": {
            "name": model["name"],
            "id": inputs["model.id"],
            "display_name": model.get("display_name") or model["name"],
            "vision": bool(model.get("vision")),
            "reasoning_effort": model.get("reasoning_effort"),
            "price": {"input": price.get("input"), "output": price.get("output"), "source": price.get("source")},
        },
        "provider": provider["name"],
        "image_mode": image_mode,
        "prompt_version": cfg["prompt"]["version"],
        "parse_mode": "lenient",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": store.scrub(dict(cfg), secrets),
    }
    store.check_header(run_dir, header)  # refuse a mismatch before loading anything or contacting a server
    result = Plan(
        run_name=str(run["name"]),
        run_dir=run_dir,
        model=dict(model),
        provider=dict(provider),
        served_id=inputs["model.id"],
        image_mode=image_mode,
        prompt_version=cfg["prompt"]["version"],
        answer_marker=cfg["prompt"]["answer_marker"],
        body_template=request_template(model, provider),
        header=header,
        api_key=key,
        secrets=secrets,
        max_concurrency=settings["max_concurrency"],
        max_rejected=settings["max_rejected"],
        durable=settings["run.fsync"],
        progress=run.get("progress", "auto") if run.get("progress", "auto") != "auto" else sys.stderr.isatty(),
        log_every_s=settings["log_every_s"],
        launch=settings["server.launch"] or settings["provider.always_launch"],
        shard=shard,
        outage_timeout_s=settings["outage_timeout_s"],
        fail_on_errors=settings["run.fail_on_errors"],
        retry_errors=settings["run.retry_errors"],
    )
    if load:
        questions = datasets.load(card, data_dir=cfg["paths"]["data"])
        chosen = select(questions, image_mode, ids=settings["ids"], limit=run.get("limit"), shard=shard)
        done = store.finished_ids(run_dir, retry_errors=result.retry_errors)
        result.selected = len(chosen)
        result.todo = [q for q in chosen if q.id not in done]
    return result
