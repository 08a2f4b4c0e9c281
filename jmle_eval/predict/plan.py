"""Everything predict decides before the first request: settings, questions, request body, run header.

:func:`plan` turns a resolved config (plain dicts) into a :class:`Plan`, and
raises one clear :class:`UserError` for anything a user can get wrong: a bad
number, a shard spec, a missing API key, a run folder made with other
settings. It contacts no server, so a bad command fails in a second.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from jmle_eval import datasets, io, providers
from jmle_eval.datasets import text
from jmle_eval.datasets.images import check_images
from jmle_eval.errors import UserError
from jmle_eval.predict import answer_json, prompts, store
from jmle_eval.predict.job import Job, prediction_record
from jmle_eval.predict.repeats import Repeat, question_of, warn_greedy
from jmle_eval.predict.settings import check_output_folder, check_run_name, parse_shard, read_settings
from jmle_eval.schema import ANSWER_MARKER, ImageMode, Prediction, Question

if TYPE_CHECKING:
    from jmle_eval.predict.replies import Reply

T = TypeVar("T")

__all__ = ["Plan", "api_key", "check_run_name", "parse_shard", "plan", "request_template", "select", "take"]


@dataclass
class Plan(Job):
    """One predict invocation, fully decided: which questions, what request, where the files go."""

    image_mode: ImageMode = "blind"
    prompt_version: str = "v1"
    prompt_language: str = prompts.DEFAULT_LANGUAGE
    answer_marker: str = ANSWER_MARKER
    answer_format: str = "text"
    structured_output: str = "json_schema"  # how this server takes a JSON schema (json format only)

    def request(self, item: Question | Repeat) -> bytes:
        """Return the request body for one question: the template plus the question's messages.

        Repeat i of a run with ``model.params.seed=s`` sends seed s + i, so the samples differ where the
        server honours seeds and each one can be drawn again.
        """
        question = question_of(item)
        messages = prompts.build_messages(
            question, self.image_mode, self.prompt_version, self.answer_marker, self.prompt_language, self.answer_format
        )
        body = {**self.body_template, "messages": messages}
        if isinstance(item, Repeat) and isinstance(body.get("seed"), int):
            body["seed"] += item.index
        if self.answer_format == "json":
            upper = prompts.upper_letters(self.prompt_version, self.prompt_language)
            if fmt := answer_json.response_format(question, self.structured_output, upper):
                body["response_format"] = fmt
        return json.dumps(body, ensure_ascii=False).encode()

    def to_record(self, item: Question | Repeat, reply: Reply) -> Prediction:
        """Return the file record of one reply; a repeat's names its question and sample index."""
        if isinstance(item, Repeat):
            return prediction_record(self, item.question.id, reply, item.index)
        return prediction_record(self, item.id, reply)


def select(
    questions: list[Question],
    image_mode: ImageMode,
    *,
    ids: list[str] | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
) -> list[Question]:
    """Return the questions of this invocation: image mode → explicit ids → first ``limit`` → shard k/n."""
    chosen = [q for q in questions if prompts.wants(q, image_mode)]
    if ids:
        known = {q.id for q in chosen}
        wanted = [_question_id(str(i), known) for i in ids]
        missing = [i for i in wanted if i not in known]
        if missing:
            raise UserError(
                f"run.ids {missing} are not among the {len(chosen)} selected questions (check the data set, "
                f"dataset.years/blocks and image_mode={image_mode})."
            )
        keep = set(wanted)
        chosen = [q for q in chosen if q.id in keep]
    return take(chosen, limit, shard)


def take(items: list[T], limit: int | None, shard: tuple[int, int] | None) -> list[T]:
    """Return the first ``limit`` items, then shard k of n of them (every n-th from the k-th)."""
    if limit is not None:
        items = items[:limit]
    if shard is not None:
        k, n = shard
        items = [item for i, item in enumerate(items) if i % n == k]
    return items


def _question_id(given: str, known: set[str]) -> str:
    """Return a run.ids entry as a question id: as written, else in the JMLE form (``120a1`` → ``120A-1``)."""
    if given in known:
        return given
    try:
        return text.normalise_id(given.upper())
    except (ValueError, AttributeError):
        return given  # reported among the ids that are not selected


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
    body: dict[str, Any] = {"model": providers.served_id(model, provider)}
    body.update({k: v for k, v in (model.get("params") or {}).items() if v is not None})
    _merge(body, provider.get("request_extra") or {})
    _merge(body, extra_body(model, provider))
    effort = model.get("reasoning_effort")
    if effort is not None:
        _set_path(body, str(provider.get("reasoning_effort_path") or "reasoning_effort"), effort)
    return body


def model_inputs(model: Mapping[str, Any], provider: Mapping[str, Any]) -> dict[str, Any]:
    """Return the model and provider settings that change a model's replies, keyed by their config path."""
    effort = model.get("reasoning_effort")
    inputs = {
        "model.id": providers.served_id(model, provider),
        "model.params": {k: v for k, v in (model.get("params") or {}).items() if v is not None},
        "model.extra_body": extra_body(model, provider),
        "model.reasoning_effort": effort,
        "provider.reasoning_effort_path": provider.get("reasoning_effort_path") if effort is not None else None,
    }
    if provider.get("request_extra"):  # left out when empty, so that runs made before it existed keep their fingerprint
        inputs["provider.request_extra"] = dict(provider["request_extra"])
    return inputs


def fingerprint_inputs(
    model: Mapping[str, Any],
    provider: Mapping[str, Any],
    prompt: Mapping[str, Any],
    image_mode: str,
    card: Mapping[str, Any],
    language: str = prompts.DEFAULT_LANGUAGE,
) -> dict[str, Any]:
    """Return every setting that changes answers, keyed by the config path a user would change."""
    inputs = model_inputs(model, provider)
    answer_format = prompt.get("answer_format") or "text"
    inputs.update(
        {
            "prompt.version": prompt["version"],
            "prompt.template_hash": prompts.template_hash(prompt["version"], language, answer_format),
            "prompt.answer_marker": prompt["answer_marker"],
            "image_mode": image_mode,
            "dataset.name": card["name"],
            "dataset.version": datasets.dataset_version(card),
        }
    )
    if language != prompts.DEFAULT_LANGUAGE:  # the template hash differs anyway; this names the cause in a diff
        inputs["prompt.language"] = language
    if answer_format != "text":  # left out for text, so that runs made before json existed keep their fingerprint
        inputs["prompt.answer_format"] = answer_format
        inputs["provider.structured_output"] = provider.get("structured_output", "json_schema")
    return inputs


def model_summary(model: Mapping[str, Any], served_id: str) -> dict[str, Any]:
    """Return the ``model`` block of a run header: names, vision, reasoning effort and list price."""
    price = model.get("price") or {}
    return {
        "name": model["name"],
        "id": served_id,
        "display_name": model.get("display_name") or model["name"],
        "vision": bool(model.get("vision")),
        "reasoning_effort": model.get("reasoning_effort"),
        "price": {"input": price.get("input"), "output": price.get("output"), "source": price.get("source")},
    }


def api_key(provider: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Return the key to send and the secret values to mask (the key, when it came from the environment)."""
    env = provider.get("api_key_env")
    value = providers.env_api_key(provider)
    if value:
        return value, [value]
    if provider.get("api_key_required"):
        raise UserError(
            f"provider={provider['name']} needs an API key: set the environment variable {env} "
            f"(export {env}=...) and run again. Keys are read only from the environment, never from config files."
        )
    return "EMPTY", []  # local servers started without --api-key accept any key


def run_header(cfg: Mapping[str, Any], inputs: dict[str, Any], image_mode: str, secrets: list[str]) -> dict[str, Any]:
    """Return the run header (``run.json``): what was asked and how, with the fingerprint of its answer inputs."""
    header = {
        "format": store.FORMAT,
        "run": str(cfg["run"]["name"]),
        "dataset": cfg["dataset"]["name"],
        "dataset_version": inputs["dataset.version"],
        "fingerprint": store.fingerprint(inputs),
        "fingerprint_inputs": inputs,
        "model": model_summary(cfg["model"], inputs["model.id"]),
        "provider": cfg["provider"]["name"],
        "image_mode": image_mode,
        "prompt_version": cfg["prompt"]["version"],
        "parse_mode": "lenient",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": io.scrub(dict(cfg), secrets),
    }
    if "run.repeats" in inputs:  # score reads k here: each question's files are <id>.r0 … r<k-1>
        header["repeats"] = inputs["run.repeats"]
    return header


def plan(cfg: Mapping[str, Any], *, load: bool = True) -> Plan:
    """Return the plan for a resolved config; with ``load``, also the questions still to ask."""
    language = prompts.language_of(cfg["prompt"], cfg["dataset"])
    marker = prompts.answer_marker(cfg["prompt"], language)  # null: the template's; recorded resolved in run.json
    cfg = {**cfg, "prompt": {**cfg["prompt"], "answer_marker": marker}}
    provider, model, run = cfg["provider"], cfg["model"], cfg["run"]
    settings = read_settings(cfg)
    answer_format = answer_json.check_format(
        cfg["prompt"].get("answer_format") or "text", provider.get("structured_output", "json_schema")
    )
    key, secrets = ("EMPTY", []) if settings.dry_run else api_key(provider)  # a dry run sends nothing
    image_mode = prompts.resolve_image_mode(str(cfg["image_mode"]), bool(model.get("vision")))
    inputs = fingerprint_inputs(model, provider, cfg["prompt"], image_mode, cfg["dataset"], language)
    if settings.repeats > 1:  # k samples per question: files <id>.r<i>.json, never mixed with a one-sample run
        inputs["run.repeats"] = settings.repeats
        warn_greedy(model, settings.repeats)
    run_dir = Path(str(run["dir"]))
    check_output_folder(run_dir)
    header = run_header(cfg, inputs, image_mode, secrets)
    store.check_header(run_dir, header)  # refuse a mismatch before loading anything or contacting a server
    result = Plan(
        run_name=str(run["name"]),
        run_dir=run_dir,
        model=dict(model),
        provider=dict(provider),
        served_id=inputs["model.id"],
        image_mode=image_mode,
        prompt_version=cfg["prompt"]["version"],
        prompt_language=language,
        answer_marker=cfg["prompt"]["answer_marker"],
        answer_format=answer_format,
        structured_output=str(provider.get("structured_output", "json_schema")),
        body_template=request_template(model, provider),
        header=header,
        api_key=key,
        secrets=secrets,
        settings=settings,
        launch=providers.launches(cfg.get("server"), provider),
    )
    if load:
        questions = datasets.load(cfg["dataset"], data_dir=cfg["paths"]["data"])
        chosen = select(questions, image_mode, ids=settings.ids, limit=settings.limit, shard=settings.shard)
        if not settings.dry_run:  # a dry run fetches no image: one not fetched yet is counted all the same
            if image_mode == "vision" and (cfg["dataset"].get("source") or {}).get("images"):
                chosen = datasets.fetch_images(cfg["dataset"], chosen, cfg["paths"]["data"])  # NEJM: cached
            check_images(chosen, image_mode)  # vision needs every image file (MedXpertQA's are not shipped)
        done = store.finished_ids(run_dir, retry_errors=settings.retry_errors)
        k = settings.repeats  # the k samples of a question are asked one after another (a server's prefix cache)
        items: list[Any] = chosen if k == 1 else [Repeat(q, i) for q in chosen for i in range(k)]
        result.selected = len(items)
        result.todo = [item for item in items if item.id not in done]
    return result
