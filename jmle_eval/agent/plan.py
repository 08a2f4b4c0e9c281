"""An agent run, fully decided before the first request: tasks, request body, FHIR server, run folder.

:class:`AgentPlan` is a :class:`~jmle_eval.predict.job.Job` like predict's and judge's,
so an agent run has their guarantees for free: one session, client, adaptive limit,
retries, outage handling, atomic writer and resume. What differs is that one item
(a task) is an episode of several requests: :meth:`AgentPlan.play` runs it, and its
file holds the whole transcript. A task whose episode ended in a failed request is
stored as an error and played again from the start on resume.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jmle_eval import datasets, providers
from jmle_eval.agent.episode import Episode, run_episode
from jmle_eval.agent.fhir import FhirClient
from jmle_eval.agent.records import EpisodeRecord, episode_problem
from jmle_eval.agent.tasks import TYPES, AgentTask, first_message, load_functions, load_tasks
from jmle_eval.errors import UserError
from jmle_eval.predict import store
from jmle_eval.predict.job import Job, prediction_record
from jmle_eval.predict.plan import api_key, model_inputs, request_template, run_header, take
from jmle_eval.predict.replies import Reply
from jmle_eval.predict.settings import check_output_folder, read_settings, whole

if TYPE_CHECKING:
    from jmle_eval.predict.client import ChatClient

__all__ = ["PROTOCOL_PARAMS", "AgentPlan", "agent_plan", "task_types"]

PROTOCOL_PARAMS = {"temperature": 0, "max_tokens": 2048}
"""The harness's sampling settings (upstream's agent: temperature 0, 2,048 tokens), used where the model card
sets none of its own: a reasoning model's card (more tokens) wins."""


@dataclass
class AgentPlan(Job):
    """One agent run: the tasks still to play, the functions shown to the agent, the FHIR server it reads."""

    functions: list[dict[str, Any]] = field(default_factory=list)
    fhir_base: str = "http://localhost:8080/fhir/"
    max_rounds: int = 8
    episodes: dict[str, Episode] = field(default_factory=dict)

    what = ("task", "played")

    def done_ids(self) -> set[str]:
        """Return the tasks whose file is a finished episode (an error is played again with retry_errors)."""
        return store.finished_ids(self.run_dir, retry_errors=self.settings.retry_errors, check=episode_problem)

    async def play(self, client: ChatClient, task: AgentTask) -> Reply:
        """Play one task's episode through ``client``; return its sum as a reply (the transcript is kept)."""

        async def complete(messages: list[dict[str, Any]]) -> Reply:
            body = json.dumps({**self.body_template, "messages": messages}, ensure_ascii=False).encode()
            return await client.complete(lambda: body)

        opening = first_message(task, self.functions, self.fhir_base)
        async with FhirClient(self.fhir_base) as fhir:
            episode = await run_episode(task, opening, complete, fhir.get, self.max_rounds)
        self.episodes[task.id] = episode
        last = next((t for t in reversed(episode.turns) if t.role == "assistant"), None)
        return Reply(
            status="error" if episode.outcome == "error" else "ok",
            answer_text=episode.finish_raw,
            finish_reason=last.finish_reason if last else None,
            usage=dict(episode.usage),
            latency_s=round(episode.latency_s, 3),
            attempts=episode.rounds,
            error=episode.error if episode.outcome == "error" else None,
            model=episode.model,
            cost_usd=episode.cost_usd,
        )

    def to_record(self, item: AgentTask, reply: Reply) -> EpisodeRecord:
        """Return the task's file: the prediction fields of the episode, its type, outcome and transcript."""
        episode = self.episodes.pop(item.id)
        fields = prediction_record(self, item.id, reply).model_dump(exclude_unset=True)
        outcome = episode.outcome if reply.status == "ok" or episode.outcome == "error" else "error"
        return EpisodeRecord.model_validate(
            {**fields, "task_type": item.type, "outcome": outcome, "episode": episode.to_dict()}
        )


def task_types(card: Mapping[str, Any]) -> set[int] | None:
    """Return the card's ``task_types`` (None: all ten); raise UserError naming the setting for a bad value."""
    value = card.get("task_types")
    if value is None:
        return None
    values = value if isinstance(value, list | tuple) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v not in TYPES for v in values):
        raise UserError(
            f"dataset.task_types={value!r} must be a list of task types 1–10, e.g. dataset.task_types=[1,3] "
            "(query types: 1, 2, 4, 6, 7; action types: 3, 5, 8, 9, 10); leave it null for all ten."
        )
    return set(values)


def _select(
    tasks: list[AgentTask], ids: list[Any] | None, limit: int | None, shard: tuple[int, int] | None
) -> list[AgentTask]:
    """Return this invocation's tasks: explicit ``run.ids`` → first ``run.limit`` → shard k/n (as predict does)."""
    if ids:
        known = {t.id for t in tasks}
        missing = [str(i) for i in ids if str(i) not in known]
        if missing:
            raise UserError(
                f"run.ids {missing} are not among the {len(tasks)} selected tasks (ids look like task3_12; "
                "check dataset.task_types)."
            )
        wanted = {str(i) for i in ids}
        tasks = [t for t in tasks if t.id in wanted]
    return take(tasks, limit, shard)


def _fingerprint_inputs(cfg: Mapping[str, Any], functions: list[dict[str, Any]], fhir_base: str) -> dict[str, Any]:
    """Return every setting that changes an episode, keyed by the config path a user would change."""
    card, model, provider = cfg["dataset"], cfg["model"], cfg["provider"]
    opening = first_message(AgentTask("task0_0", 1, "", "", None), functions, fhir_base)
    return {
        **model_inputs(model, provider),
        "agent.protocol_params": PROTOCOL_PARAMS,
        "agent.first_message_hash": hashlib.sha256(opening.encode()).hexdigest()[:12],
        "dataset.max_rounds": card.get("max_rounds", 8),
        "fhir.base_url": fhir_base,
        "dataset.name": card["name"],
        "dataset.version": datasets.dataset_version(card),
    }


def agent_plan(cfg: Mapping[str, Any], *, load: bool = True) -> AgentPlan:
    """Return the plan of an agent run for a resolved config; with ``load``, also the tasks still to play."""
    card, model, provider, run = cfg["dataset"], cfg["model"], cfg["provider"], cfg["run"]
    settings = read_settings(cfg)
    types = task_types(card)
    max_rounds = whole(card.get("max_rounds", 8), "dataset.max_rounds", 1, "model replies per episode")
    key, secrets = ("EMPTY", []) if settings.dry_run else api_key(provider)
    fhir_base = str(cfg["fhir"]["base_url"]).rstrip("/") + "/"
    folder = datasets.folder(card, cfg["paths"]["data"])
    functions = load_functions(folder)
    inputs = _fingerprint_inputs(cfg, functions, fhir_base)
    run_dir = Path(str(run["dir"]))
    check_output_folder(run_dir)
    header = run_header(cfg, inputs, "blind", secrets)
    store.check_header(run_dir, header)
    body = request_template(model, provider)
    for name, value in PROTOCOL_PARAMS.items():
        body.setdefault(name, value)
    plan = AgentPlan(
        run_name=str(run["name"]),
        run_dir=run_dir,
        model=dict(model),
        provider=dict(provider),
        served_id=inputs["model.id"],
        body_template=body,
        header=header,
        api_key=key,
        secrets=secrets,
        settings=settings,
        launch=providers.launches(cfg.get("server"), provider),
        functions=functions,
        fhir_base=fhir_base,
        max_rounds=max_rounds,
    )
    if load:
        tasks = load_tasks(folder, types)
        chosen = _select(tasks, settings.ids, settings.limit, settings.shard)
        done = plan.done_ids()
        plan.selected = len(chosen)
        plan.todo = [t for t in chosen if t.id not in done]
    return plan
