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
