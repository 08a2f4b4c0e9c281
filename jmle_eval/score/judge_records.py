"""The judges section of a run summary (``RunSummary.judges``), field for field.

Written only for a run with judgments under ``paths.judgments`` (or one whose data set is
graded by a judge): a run without them has no ``judges`` key, so its summary is what it
was before judges existed. ``judged.py`` builds it; the leaderboard and reports read it.

Two populations, each named where it is used: a judge's own grade (``JudgeGrade``) is over
every counted question of the data set, where a question without a fresh judgment (no
answer, a request error, a judge error, stale, not judged yet) counts 0, like an unanswered
question in the exam score; the parser comparisons (assisted accuracy, agreement) are over
the questions the run answered, the population of ``accuracy``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jmle_eval.score.parts import Accuracy, SummaryPart, Tokens

Kind = Literal["choice", "verdict", "score"]


class Share(SummaryPart):
    """How many of ``n`` questions meet a bar (a score of 10, a score ≥ 7), with its 95 % bootstrap CI."""

    count: int
    n: int
    rate: float | None = Field(description="count / n, 4 digits; None when n is 0")
    ci95: tuple[float, float] | None


class JudgeGrade(SummaryPart):
    """A judge's grade over the counted questions: each question 1/0 (right/wrong) or score/10, unjudged 0."""

    n: int = Field(description="counted questions: the denominator")
    judged: int = Field(description="of them, the questions with a grade from the judge")
    pct: float | None = Field(description="mean grade in percent (2 digits); None when n is 0")
    pct_ci95: tuple[float, float] | None = Field(description="95 % bootstrap CI of pct, in percent")
    correct: int | None = Field(default=None, description="choice and verdict: questions graded right")
    exact: Share | None = Field(default=None, description="score: questions scored 10/10")
    at_least_7: Share | None = Field(default=None, description="score: questions scored 7 or more")


class Agreement(SummaryPart):
    """Agreement on the questions both raters decided: percent agreement and Cohen's κ (None when undefined)."""

    n: int
    agree: int
    rate: float | None = Field(description="agree / n, 4 digits")
    kappa: float | None = Field(description="Cohen's κ on the labels (letters, verdicts or scores)")
    kappa_quadratic: float | None = Field(default=None, description="0–10 scores: quadratic-weighted κ")


class JudgePair(Agreement):
    """Two judges of one rubric compared on the questions both graded."""

    a: str
    b: str


class Disagreement(SummaryPart):
    """A question where the parser and the judge decided differently (letters, or right/wrong)."""

    question_id: str
    parser: str
    judge: str


class JudgeMetrics(SummaryPart):
    """What one judge (or a panel of judges of one rubric) makes of a run."""

    grade: JudgeGrade = Field(description="the judge's grade over every counted question")
    grade_text_only: JudgeGrade = Field(description="the same over the text-only counted questions")
    assisted_accuracy: Accuracy | None = Field(
        description="choice: the parser's grade, with the judge's letters where the parser read none "
        "(over the answered questions, like accuracy)"
    )
    rescued: int | None = Field(description="choice: parse failures the judge read an answer from")
    agreement: Agreement | None = Field(
        description="parser vs judge on the questions both decided: letters (choice), right/wrong (verdict)"
    )
    disagreements: list[Disagreement]


class JudgeModel(SummaryPart):
    """Who judged: the judge model as the judge run's run.json records it."""

    name: str | None
    id: str | None
    display_name: str | None
    reasoning_effort: str | int | float | None


class JudgeResult(JudgeMetrics):
    """One judge run (``judgments/<dataset>/<run>/<judge run>/``): its grade, its coverage and its cost."""

    run: str
    rubric: str
    rubric_version: str | None
    kind: Kind
    model: JudgeModel
    judged: int = Field(description="fresh judgments with a grade")
    errors: int = Field(description="fresh judgments where the judge gave no grade (status error)")
    error_ids: list[str]
    stale: int = Field(description="judgments of an older prediction file (predicted again since): not used")
    stale_ids: list[str]
    unjudged: int = Field(description="answered, counted questions with no fresh judgment (judge.py not run yet)")
    tokens: Tokens | None = Field(description="the judge's tokens over the fresh judgments, not the model's")
    cost_usd: float | None
    cost_source: Literal["price", "predictions"] | None


class RubricResult(JudgeMetrics):
    """Every judge of one rubric together: one judge as it is, several as a panel, with their agreement."""

    rubric: str
    kind: Kind
    judges: list[str] = Field(description="judge run names, sorted")
    method: str = Field(description="how the judges' grades are combined per question")
    pairs: list[JudgePair] = Field(description="inter-judge agreement, each pair of judges (none for one)")


class JudgeSection(SummaryPart):
    """The judgments of one run: per judge, per rubric, and (grader judge) which rubric is the grade of record."""

    grade_of_record: str | None = Field(
        description="grader judge: the rubric whose grade is the run's score; None when the parser grades"
    )
    note: str | None = Field(description="why a judge-graded run has no grade (no judgments of the rubric)")
    rubrics: list[RubricResult]
    judges: list[JudgeResult]
    cost_usd: float | None = Field(description="all judges together; None when a judge's cost is unknown")

    @property
    def record(self) -> RubricResult | None:
        """Return the result of the rubric that grades the run (grader judge), or None."""
        return next((r for r in self.rubrics if r.rubric == self.grade_of_record), None)
