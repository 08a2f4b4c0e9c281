"""The leaf records every part of a run summary shares: a tally, an accuracy with its CI, token usage.

They live apart from ``records`` so that the run summary (``records.RunSummary``) and its
judges section (``judge_records``) can both use them without importing each other.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SummaryPart(BaseModel):
    """A part of a run summary: every field is known (a misspelt one is an error, never a silent extra)."""

    model_config = ConfigDict(extra="forbid")


class Tally(SummaryPart):
    """Questions right of those graded, in one group (a block, a section, a question type…)."""

    correct: int
    n: int
    accuracy: float | None = Field(description="correct / n, 4 digits; None when n is 0")


class Accuracy(Tally):
    """Accuracy over the graded questions with its 95 % bootstrap CI (None when n is 0)."""

    ci95: tuple[float, float] | None


class Tokens(SummaryPart):
    """Token usage of the answered questions (the summary has None where no usage was recorded)."""

    prompt: int
    completion: int
    reasoning: int
    total: int
    completion_per_question: float | None


class RepeatStats(SummaryPart):
    """What the k samples of a ``run.repeats`` run say together (``score.repeats`` says how each is computed)."""

    k: int
    questions: int  # questions graded (answered at least once): the population of every share below
    complete: int  # questions with all k samples answered
    accuracy_by_repeat: list[float | None]
    mean: float | None
    sd: float | None
    ci95: tuple[float, float] | None
    majority: float | None
    consistency: float | None
    pass_at_k: float | None
    score_pct_by_repeat: list[float | None] | None = None  # exam grader: points earned / possible, per sample
    score_pct_mean: float | None = None
    score_pct_sd: float | None = None
    passes: dict[str, int] | None = None  # exam grader: by exam, the samples whose verdict is pass (of k)
