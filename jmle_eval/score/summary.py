"""A run's summary: everything a reader needs about one run without opening its scored lines.

Accuracy with bootstrap CIs (all, text-only, image), breakdowns, parse statistics,
errors, tokens, cost and latency for every grader; points and verdict per exam for
the ``exam`` grader (``graders``). Built from the scored lines, the keys and the usage
tally as a typed :class:`~jmle_eval.score.records.RunSummary`; the leaderboard and
every report read only summaries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jmle_eval.schema import ScoredItem, list_price_cost
from jmle_eval.score import stats
from jmle_eval.score.exams import breakdowns, graded_pairs
from jmle_eval.score.grade import Key
from jmle_eval.score.graders import exam_parts, grader_of
from jmle_eval.score.judge_records import JudgeSection
from jmle_eval.score.readers import readers
from jmle_eval.score.records import (
    Accuracy,
    AccuracySplit,
    Bootstrap,
    ParseStats,
    QuestionCounts,
    RunModel,
    RunSettings,
    RunSummary,
    Tokens,
)

FORMAT = 1
NO_EXAM = (None, None, None)
"""The exam parts (score, text-only score, exams) of a run graded without exam rules (``choice``)."""


@dataclass
class UsageTally:
    """Tokens, latency, cost and finish reasons summed over a run's prediction files."""

    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    latency: list[float] = field(default_factory=list)
    cost: float = 0.0
    cost_known: bool = True
    cost_from_price: bool = False
    finish: Counter[str] = field(default_factory=Counter)

    def add(self, record: Mapping[str, Any], usage: Mapping[str, Any], cost: float | None) -> None:
        """Count one prediction file (``cost`` None = unknown: the run's cost is then unknown too)."""
        self.prompt += int(usage.get("prompt_tokens") or 0)
        self.completion += int(usage.get("completion_tokens") or 0)
        self.reasoning += int(usage.get("reasoning_tokens") or 0)
        if record.get("latency_s") is not None:
            self.latency.append(float(record["latency_s"]))
        self.cost_known &= cost is not None
        self.cost_from_price |= record.get("cost_usd") is None and cost is not None
        self.cost += cost or 0.0
        self.finish[record.get("finish_reason") or "none"] += 1


def record_cost(record: Mapping[str, Any], usage: Mapping[str, Any], price: Mapping[str, Any]) -> float | None:
    """Return a reply's cost: the one its file records, else its list-price cost (None when unknown)."""
    if record.get("cost_usd") is not None:
        return float(record["cost_usd"])
    return list_price_cost(usage, price)


def accuracy(pairs: Sequence[tuple[Key, ScoredItem]], bootstrap: Mapping[str, int]) -> Accuracy:
    """Return the parser's accuracy over the (key, scored line) pairs with its bootstrap CI."""
    correct = sum(i.correct for _, i in pairs)
    return tally_accuracy(correct, len(pairs), bootstrap)


def tally_accuracy(correct: int, n: int, bootstrap: Mapping[str, int]) -> Accuracy:
    """Return ``correct / n`` as an Accuracy record with its bootstrap CI."""
    return Accuracy(
        correct=correct,
        n=n,
        accuracy=round(correct / n, 4) if n else None,
        ci95=stats.accuracy_ci(correct, n, bootstrap["samples"], bootstrap["seed"]),
    )


def usage_parts(tally: UsageTally, answered: int) -> dict[str, Any]:
    """Return tokens, cost (with its source), latency percentiles and finish reasons of a usage tally."""
    total = tally.prompt + tally.completion
    tokens = None
    if total:  # imported runs carry no usage: unknown, not zero
        per_question = round(tally.completion / answered, 1) if answered else None
        tokens = Tokens(
            prompt=tally.prompt,
            completion=tally.completion,
            reasoning=tally.reasoning,
            total=total,
            completion_per_question=per_question,
        )
    known = answered > 0 and tally.cost_known
    return {
        "tokens": tokens,
        "cost_usd": round(tally.cost, 6) if known else None,
        "cost_source": ("price" if tally.cost_from_price else "predictions") if known else None,
        "latency_s": stats.percentiles(tally.latency),
        "finish_reasons": dict(sorted(tally.finish.items())),
    }


def as_text(value: Any) -> str | None:
    """Return a run.json name as text (a hand-written number is shown, not a reason to fail the summary)."""
    return value if value is None or isinstance(value, str) else str(value)


def question_set(card: Mapping[str, Any]) -> str | None:
    """Return how a run's questions were chosen (``subset text, sample 50 (seed 42)``), or None for the whole set."""
    parts = []
    if card.get("subset") not in (None, "all"):
        parts.append(f"subset {card['subset']}")
    if card.get("include_no_context"):
        parts.append("with no-context cases")
    if card.get("sample") is not None:
        parts.append(f"sample {card['sample']} (seed {card.get('seed') or 0})")
    return ", ".join(parts) or None


def _run_parts(info: Mapping[str, Any], card: Mapping[str, Any]) -> dict[str, Any]:
    """Return who answered and with what settings, as run.json records them."""
    model = info.get("model") or {}
    return {
        "model": RunModel(
            name=as_text(model.get("name")),
            id=as_text(model.get("id")),
            display_name=as_text(model.get("display_name")),
            vision=model.get("vision"),
            reasoning_effort=model.get("reasoning_effort"),
        ),
        "settings": RunSettings(
            image_mode=info.get("image_mode"),
            parse_mode=info.get("parse_mode") or "lenient",
            prompt_version=info.get("prompt_version"),
            provider=info.get("provider"),
            question_set=question_set(card),
        ),
        "source": info.get("source"),
    }


def _questions(keys: Sequence[Key], items: Sequence[ScoredItem]) -> QuestionCounts:
    status = Counter(i.status for i in items)
    return QuestionCounts(
        total=len(items),
        excluded=sum(not k.counted for k in keys),
        answered=status["ok"] + status["error"],
        missing=status["missing"],
        not_asked=status["not_asked"],
        text_only_unanswered=sum(
            i.status in ("missing", "not_asked") for k, i in zip(keys, items, strict=True) if not k.requires_image
        ),
    )


def _parse(ok: Sequence[ScoredItem], mode: str) -> ParseStats:
    """Return parse statistics over the graded answers (excluded questions left out, like every other count)."""
    failures = sorted(i.question_id for i in ok if i.parse_rule is None)
    strict = sum(i.strict for i in ok)
    lenient = mode == "lenient"
    return ParseStats(
        mode=mode,
        failures=len(failures),
        failure_ids=failures,
        strict=strict if lenient else None,
        strict_rate=round(strict / len(ok), 4) if ok and lenient else None,
        rules=dict(sorted(Counter(i.parse_rule or "failed" for i in ok).items())),
    )


def run_summary(
    run: str,
    dataset: str,
    info: Mapping[str, Any],
    keys: Sequence[Key],
    items: Sequence[ScoredItem],
    tally: UsageTally,
    card: Mapping[str, Any],
    bootstrap: Mapping[str, int],
    bad_files: Sequence[str] = (),
    current_version: str | None = None,
    judges: JudgeSection | None = None,
) -> RunSummary:
    """Return the summary of one graded run (written as ``scored/<dataset>/<run>.summary.json``).

    ``dataset_version`` is the version the run was asked on (run.json); ``dataset_version_scored``
    the card's version now (a key fix changes it: the run is graded with the fixed key). The card's
    grader decides whether the exam parts (score, sections, pass/fail) are there.
    """
    pairs = graded_pairs(keys, items)
    questions = _questions(keys, items)
    error_ids = sorted(i.question_id for i in items if i.status == "error")
    score, score_text_only, exams = exam_parts(keys, items, card, bootstrap) if grader_of(card) == "exam" else NO_EXAM
    return RunSummary(
        format=FORMAT,
        run=run,
        dataset=dataset,
        dataset_version=as_text(info.get("dataset_version")),
        dataset_version_scored=current_version,
        **_run_parts(info, card),
        questions=questions,
        accuracy=AccuracySplit(
            all=accuracy(pairs, bootstrap),
            text_only=accuracy([p for p in pairs if not p[0].requires_image], bootstrap),
            image=accuracy([p for p in pairs if p[0].requires_image], bootstrap),
        ),
        score=score,
        score_text_only=score_text_only,
        exams=exams,
        **breakdowns(pairs, list(card.get("breakdowns") or [])),
        readers=readers(keys, pairs),
        parse=_parse([i for _, i in pairs if i.status == "ok"], info.get("parse_mode") or "lenient"),
        errors=len(error_ids),
        error_ids=error_ids,
        **usage_parts(tally, questions.answered),
        skipped_files=list(bad_files),
        bootstrap=Bootstrap(**bootstrap),
        judges=judges,
    )
