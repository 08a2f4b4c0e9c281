"""A run's summary as a typed record: ``scored/<dataset>/<run>.summary.json``, field for field.

The score stage builds a :class:`RunSummary` per run (``summary.py``) and writes
``dump_json(summary.model_dump(mode="json"))``; the leaderboard, the plots and every
report read runs only through it (an old summary file is read back with
``RunSummary.model_validate_json``). Field names and types are the file format: an
int stays an int, None stays null, and a key the file leaves out stays out.
(``schema.py`` holds the records every stage shares; these belong to score and report; the
shared leaves are in ``parts``, the judges section in ``judge_records``.)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from jmle_eval.score.judge_records import JudgeSection
from jmle_eval.score.parts import Accuracy, RepeatStats, SummaryPart, Tally, Tokens

RunValue = str | int | float | bool | None
"""A setting copied from run.json as it was written (a version or an effort may be a number)."""

Verdict = Literal["pass", "fail", "unknown", "incomplete"]
"""An exam verdict: ``unknown`` where a criterion is not published, ``incomplete`` where questions are unanswered."""


class AccuracySplit(SummaryPart):
    """Accuracy over all graded questions, the text-only ones and the ones with clinical images."""

    all: Accuracy
    text_only: Accuracy
    image: Accuracy


class Total(SummaryPart):
    """Points earned out of the standard maximum (excluded questions count nowhere)."""

    points: int
    max: int


class Points(Total):
    """Points with their percentage of the maximum (None when the maximum is 0)."""

    pct: float | None


class Score(Points):
    """The run's exam score with its 95 % bootstrap CI in percent."""

    pct_ci95: tuple[float, float] | None


class SectionResult(Points):
    """One exam section: points, the standard and the candidate's maximum (correct_only rule), pass mark, verdict."""

    candidate_max: int
    threshold: int | None = None
    passed: bool | None = None


class Kinki(SummaryPart):
    """Prohibited-choice picks (unofficial IgakuQA labels), shown beside the verdict, never a reason on their own."""

    picks: int
    questions: list[str]
    max: int | None
    over_max: bool | None
    note: str


class StandIn(SummaryPart):
    """The verdict against another exam's criteria (e.g. last year's), clearly not the official result."""

    label: str
    source: str | None
    required_threshold: int | None
    required_pass: bool | None
    general_threshold: int | None
    general_pass: bool | None
    verdict: Verdict


class ExamResult(SummaryPart):
    """One exam of a run graded by the exam's rules: sections, verdict, stand-in verdict, kinki, completeness."""

    year: int | None
    questions: int
    missing: int
    not_asked: int
    complete: bool
    required: SectionResult
    general: SectionResult
    total: Total
    verdict: Verdict
    criteria_source: str | None
    kinki: Kinki
    notes: list[str] = Field(default_factory=list)
    stand_in: StandIn | None = Field(default=None, description="absent from the file when the card names none")

    @model_serializer(mode="wrap")
    def _leave_out_absent_stand_in(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.stand_in is None:
            data.pop("stand_in", None)
        return data


class VsHuman(SummaryPart):
    """The model against examinee accuracy (IgakuQA metadata), on the graded questions where it is known."""

    n: int
    model_accuracy: float | None
    human_mean_accuracy: float
    human_mean_when_model_right: float | None
    human_mean_when_model_wrong: float | None
    point_biserial: float | None
    by_human_accuracy: dict[str, Tally]


class Readers(SummaryPart):
    """Human readers as a baseline (votes per option, e.g. the NEJM Image Challenge; ``score.readers``)."""

    cases: int = Field(description="counted questions with reader votes (the run's whole set)")
    mean_accuracy: float = Field(description="mean vote share of the right option: a random reader's accuracy")
    majority_accuracy: float = Field(description="share of cases where the readers' most-voted option is right")
    agreement_n: int = Field(description="answered questions with reader votes")
    agreement: int = Field(description="of those, the model chose the readers' most-voted option")
    agreement_rate: float | None


class QuestionCounts(SummaryPart):
    """How many questions the data set has, and what became of them in this run."""

    total: int
    excluded: int
    answered: int = Field(description="with a prediction file (status ok or error)")
    missing: int
    not_asked: int
    text_only_unanswered: int


class ParseStats(SummaryPart):
    """Parse results over the graded answers: failures, strict-format share, which rule read each answer."""

    mode: str
    failures: int
    failure_ids: list[str]
    strict: int | None
    strict_rate: float | None
    rules: dict[str, int]


class RunModel(SummaryPart):
    """Who answered: the model as run.json records it."""

    name: str | None
    id: str | None
    display_name: str | None
    vision: bool | None
    reasoning_effort: RunValue


class RunSettings(SummaryPart):
    """The run settings a reader needs beside the model."""

    image_mode: str | None
    parse_mode: str
    prompt_version: RunValue
    provider: RunValue
    question_set: str | None = Field(
        default=None, description="how the run's questions were chosen (subset, sample); absent: the whole set"
    )

    @model_serializer(mode="wrap")
    def _leave_out_whole_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.question_set is None:
            data.pop("question_set", None)
        return data


class Bootstrap(SummaryPart):
    """Resamples and seed of every bootstrap CI of the run."""

    samples: int
    seed: int


class RunSummary(SummaryPart):
    """One graded run: everything a reader needs without opening its scored lines.

    ``score``, ``score_text_only`` and ``exams`` belong to the ``exam`` grader (points, sections,
    pass/fail); a run graded by ``choice`` or ``judge`` has them None and is ranked by accuracy, or
    by the judge's grade (``judges.record``).
    """

    format: int
    run: str
    dataset: str
    dataset_version: str | None = Field(description="the version the run was asked on (run.json)")
    dataset_version_scored: str | None = Field(description="the card's version when scored (a key fix changes it)")
    model: RunModel
    settings: RunSettings
    source: dict[str, Any] | None = Field(description="where an imported run came from; None for our own runs")
    questions: QuestionCounts
    accuracy: AccuracySplit
    score: Score | None = None
    score_text_only: Points | None = None
    exams: dict[str, ExamResult] | None = Field(default=None, description="by exam number (as text)")
    readers: Readers | None = Field(default=None, description="human readers' baseline; absent without votes")
    by_attribute: dict[str, dict[str, Tally]] | None = Field(
        default=None, description="by each of the card's breakdowns (e.g. medical_task); absent when it names none"
    )
    by_block: dict[str, Tally]
    by_section: dict[str, Tally]
    by_type: dict[str, Tally]
    by_image: dict[str, Tally]
    by_category: dict[str, Tally]
    vs_human: VsHuman | None
    parse: ParseStats
    errors: int
    error_ids: list[str]
    tokens: Tokens | None
    cost_usd: float | None
    cost_source: Literal["price", "predictions"] | None
    latency_s: dict[str, float] | None = Field(description="p50, p90, p99 and mean; None when none was recorded")
    finish_reasons: dict[str, int]
    skipped_files: list[str]
    bootstrap: Bootstrap
    judges: JudgeSection | None = Field(
        default=None, description="LLM-judge results (judge_records); absent from the file for a run without"
    )
    repeats: RepeatStats | None = Field(
        default=None, description="run.repeats > 1: the k samples together (score.repeats); absent for one sample"
    )

    @model_serializer(mode="wrap")
    def _leave_out_absent_parts(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("judges", "by_attribute", "readers", "repeats"):  # runs without them keep their old bytes
            if getattr(self, name) is None:
                data.pop(name, None)
        return data

    @property
    def label(self) -> str:
        """Return the name a reader knows the run by: the model's display name, else the run name."""
        return self.model.display_name or self.run
