"""What a session asks and stores, whatever the stage: the shared base of predict's and judge's plans.

A :class:`Job` is one run folder and the items still to do in it. The session
(:mod:`.session`) and the request loop (:mod:`.ask`) need only this: the server
settings, the run header, and per item its request body, its file record, and
whether a reply can be read. :class:`~jmle_eval.predict.plan.Plan` (a question →
a prediction) and ``jmle_eval.judge.plan.JudgePlan`` (a prediction → a judgment)
fill those in, so both stages share one client, one store and one set of
guarantees (exactly once, resumable, a clear error for every way a run stops).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from jmle_eval.predict import store
from jmle_eval.predict.settings import Settings
from jmle_eval.schema import Prediction, Usage, list_price_cost, prediction_problem

if TYPE_CHECKING:
    from jmle_eval.predict.replies import Reply

__all__ = ["Item", "Job", "now", "prediction_record"]

log = logging.getLogger("jmle_eval.predict")


class Item(Protocol):
    """One thing to ask: its id names its file (``<id>.json``)."""

    @property
    def id(self) -> str: ...


def now() -> str:
    """Return the current UTC time as an ISO string with milliseconds (the ``created_at`` of a file)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Job:
    """One invocation's run folder and what is still to ask in it; subclasses say how to ask and store an item."""

    run_name: str
    run_dir: Path
    model: dict[str, Any]
    provider: dict[str, Any]
    served_id: str
    body_template: dict[str, Any]
    header: dict[str, Any]
    api_key: str
    secrets: list[str]
    settings: Settings
    launch: bool
    selected: int = 0
    todo: list[Any] | None = None

    what = ("question", "answered")
    """What an item is and what a finished one is called, for log lines."""

    reread_attempts = 1
    """How many replies an item may get before an unreadable one is recorded as an error (1: never re-asked)."""

    def done_ids(self) -> set[str]:
        """Return the ids whose file says they need not be asked again."""
        return store.finished_ids(self.run_dir, retry_errors=self.settings.retry_errors)

    def refresh_todo(self) -> None:
        """Drop from ``todo`` the items finished since the plan was made (by a process that just ended)."""
        if self.todo:
            done = self.done_ids()
            self.todo = [item for item in self.todo if item.id not in done]

    def cost(self, usage: Mapping[str, int]) -> float | None:
        """Return the list-price cost in USD of one reply's usage, or None when the price is not known."""
        return list_price_cost(usage, self.model.get("price") or {})

    def request(self, item: Any) -> bytes:
        """Return the JSON request body for one item (built only when its request is about to be sent)."""
        raise NotImplementedError

    def unreadable(self, item: Any, reply: Reply) -> str | None:
        """Return why an ok reply cannot be used (it is asked again), or None; predict reads every reply."""
        return None

    def to_record(self, item: Any, reply: Reply) -> Prediction:
        """Return the file record of one item's reply."""
        return prediction_record(self, item.id, reply)


def prediction_record(job: Job, question_id: str, reply: Reply, repeat: int | None = None) -> Prediction:
    """Return the prediction file of one reply; a reply that is not a valid prediction becomes an error to retry.

    ``repeat`` is the sample index in a ``run.repeats`` run (left out of the file otherwise).
    """
    usage = reply.usage or {}
    fields: dict[str, Any] = {
        "question_id": question_id,
        "status": reply.status,
        "answer_text": reply.answer_text,
        "reasoning_text": reply.reasoning_text,
        "finish_reason": reply.finish_reason,
        "usage": {key: usage.get(key, 0) for key in ("prompt_tokens", "completion_tokens", "reasoning_tokens")},
        "latency_s": reply.latency_s,
        "attempts": reply.attempts,
        "error": reply.error,
        "model": reply.model or job.served_id,
        "fingerprint": job.header["fingerprint"],
        "created_at": now(),
    }
    if repeat is not None:
        fields["repeat"] = repeat
    cost = reply.cost_usd if reply.cost_usd is not None else job.cost(usage)
    if cost is not None:
        fields["cost_usd"] = round(cost, 8)
    try:
        return Prediction.model_validate(fields)
    except ValidationError:  # never store what score would skip: keep the question, as an error to retry
        problem = prediction_problem(fields, question_id)
    log.warning("%s: the reply cannot be stored (%s); recorded as an error", question_id, problem)
    stored = Prediction(
        question_id=question_id,
        status="error",
        usage=Usage(),  # no counts set: written as {}
        latency_s=None,
        attempts=reply.attempts,
        error=f"reply not storable: {problem}",
        model=fields["model"],
        fingerprint=fields["fingerprint"],
        created_at=fields["created_at"],
    )
    if repeat is not None:  # set only here, so that a one-sample run's file has no "repeat" key
        stored.repeat = repeat
    return stored
