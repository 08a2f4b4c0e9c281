"""``run.repeats=k``: k independent samples of every question, each stored exactly once.

A sample is an item of its own (:class:`Repeat`, file ``<question_id>.r<i>.json``),
so resume, shards, retries and the exactly-once guarantee of one-sample runs
hold for every sample; score reads the k files of a question together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jmle_eval.schema import Question

__all__ = ["Repeat", "question_of", "warn_greedy"]

log = logging.getLogger("jmle_eval.predict")


@dataclass(frozen=True, slots=True)
class Repeat:
    """Sample ``index`` of a question in a ``run.repeats`` run; its file is ``<question_id>.r<index>.json``."""

    question: Question
    index: int

    @property
    def id(self) -> str:
        """The id the sample's file is named by (``schema.record_id`` of its record)."""
        return f"{self.question.id}.r{self.index}"


def question_of(item: Question | Repeat) -> Question:
    """Return the question an item asks (a repeat's question, or the item itself)."""
    return item.question if isinstance(item, Repeat) else item


def warn_greedy(model: Mapping[str, Any], k: int) -> None:
    """Warn when k samples would all be greedy decodes of the same prompt (identical, so no variance measured)."""
    if (model.get("params") or {}).get("temperature") == 0:
        log.warning(
            "run.repeats=%d with model.params.temperature=0: greedy decoding gives the same reply k times, so the "
            "repeats measure nothing; set model.params.temperature (e.g. 0.7 or 1.0) for independent samples",
            k,
        )
