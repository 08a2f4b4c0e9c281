"""The file of one MedAgentBench task (``predictions/medagentbench/<run>/<task id>.json``).

It is a prediction file (the fields every stage reads: status, usage summed over the
episode, latency, attempts, model, fingerprint) plus the whole transcript, so the
same store, writer, resume and validation serve agent runs. ``status`` is ``ok`` when
the episode ended by the protocol's own rules (FINISH, an invalid action, the round
limit: all graded), ``error`` when a model request failed (asked again on resume,
from the start).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from jmle_eval.schema import Prediction, record_problem

Outcome = Literal["finished", "invalid_action", "round_limit", "error"]


class EpisodeRecord(Prediction):
    """One task's file: the prediction fields, the task type, how the episode ended, and its transcript."""

    task_type: int = Field(ge=1, le=10)
    outcome: Outcome
    episode: dict[str, Any] = Field(
        description="agent.episode.Episode.to_dict(): every turn (model replies with usage, harness answers), "
        "the accepted POSTs in order, the FINISH text and its answers, rounds"
    )


def episode_problem(record: object, task_id: str | None = None) -> str | None:
    """Return why ``record`` is not a valid task file (of ``task_id``, if given), or None when it is."""
    return record_problem(EpisodeRecord, record, task_id)
