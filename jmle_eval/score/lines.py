"""Prediction records → scored lines: each question's status, parsed answer, verdict and usage.

The one place a reply becomes a graded line, for a one-sample run and for each
sample of a ``run.repeats`` run alike (:mod:`.repeats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jmle_eval.schema import ANSWER_MARKER, ItemStatus, ScoredItem
from jmle_eval.score.grade import Key, grade
from jmle_eval.score.parse import Parsed
from jmle_eval.score.parse_json import read_reply
from jmle_eval.score.summary import UsageTally, record_cost

__all__ = ["score_predictions", "scored_item"]


def _wants(key: Key, image_mode: str) -> bool:
    return not (image_mode == "skip" and key.requires_image)


def scored_item(
    key: Key, status: ItemStatus, record: Mapping[str, Any] | None, usage: Mapping[str, Any], parsed: Parsed | None
) -> ScoredItem:
    """Return the scored line of one question: its prediction's status, parsed answer, verdict and usage."""
    answer = parsed.answer if parsed else None
    verdict = grade(key, answer) if status in ("ok", "error") else None
    return ScoredItem(
        question_id=key.question_id,
        exam=key.exam,
        block=key.block,
        section=key.section,
        type=key.type,
        requires_image=key.requires_image,
        points_possible=key.points,
        status=status,
        predicted=list(answer) if answer else None,
        gold=[list(g) for g in key.gold],
        correct=bool(verdict and verdict.correct),
        points=verdict.points if verdict else 0,
        parse_rule=parsed.rule if parsed else None,
        strict=bool(parsed and parsed.strict),
        kinki_hits=list(verdict.kinki_hits) if verdict else [],
        finish_reason=record.get("finish_reason") if record else None,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        reasoning_tokens=int(usage.get("reasoning_tokens") or 0),
        error=(record.get("error") or None) if record and status == "error" else None,
    )


def score_predictions(
    keys: Sequence[Key], info: Mapping[str, Any], predictions: Mapping[str, Mapping[str, Any]]
) -> tuple[list[ScoredItem], UsageTally]:
    """Return one scored line per question (exam order) and the run's usage tally."""
    image_mode = info["image_mode"]
    mode = info.get("parse_mode") or "lenient"
    config = info.get("config") or {}
    marker = (config.get("prompt") or {}).get("answer_marker") or ANSWER_MARKER
    # the prompt's language picks the parser's rules; unknown (an imported run): the marker's script decides
    language = (config.get("prompt") or {}).get("language") or (config.get("dataset") or {}).get("language")
    form = {"answer_format": (config.get("prompt") or {}).get("answer_format") or "text", "mode": mode}
    price = ((info.get("model") or {}).get("price")) or {}
    tally = UsageTally()
    items = []
    for key in keys:
        record = predictions.get(key.question_id)
        status: ItemStatus = (
            "not_asked" if not _wants(key, image_mode) else "missing" if record is None else record["status"]
        )
        parsed = None
        usage: Mapping[str, Any] = {}
        if record is not None and status != "not_asked":
            usage = record.get("usage") or {}
            tally.add(record, usage, record_cost(record, usage, price))
            if status == "ok" and key.type != "free":  # free text has no parser: a judge grades it
                text = record.get("answer_text")
                parsed = read_reply(text, key.type, key.letters, **form, marker=marker, language=language)
        items.append(scored_item(key, status, record, usage, parsed))
    return items, tally
