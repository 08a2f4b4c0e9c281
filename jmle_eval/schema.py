"""Shared record types of the pipeline: questions, predictions, scored items.

Every stage reads and writes these, so this module is the one place where the
on-disk formats are defined. Pydantic validates them at the edges (loaders,
prediction files); inside the pipeline they are plain typed objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Section = Literal["required", "general"]
"""必修 (required) or 一般・臨床 (general and clinical), as the exam defines them."""

QuestionType = Literal["single", "multi", "numeric", "free"]
"""One letter, several letters (``select`` says how many), a number, or free text graded by a judge (a diagnosis)."""

Status = Literal["ok", "error"]

ItemStatus = Literal["ok", "error", "missing", "not_asked"]
"""A scored line's status: a prediction file exists (ok, error), none yet (missing), or not asked (image_mode=skip)."""

ImageMode = Literal["skip", "blind", "vision"]
"""How a run poses questions with clinical images: left out, text only, or with the images."""
IMAGE_MODES: tuple[ImageMode, ...] = ("skip", "blind", "vision")

ANSWER_MARKER = "【回答】"
"""The default required final-answer line (``prompt.answer_marker``); a run records the one it used."""


def list_price_cost(usage: Mapping[str, Any], price: Mapping[str, Any]) -> float | None:
    """Return the list-price cost in USD of a reply's token usage, or None when a price is not known."""
    if price.get("input") is None or price.get("output") is None:
        return None
    prompt, completion = usage.get("prompt_tokens", 0) or 0, usage.get("completion_tokens", 0) or 0
    return (prompt * float(price["input"]) + completion * float(price["output"])) / 1e6


class Question(BaseModel):
    """One question, normalised across all sources: of an exam (JMLE) or of a set without exams (English).

    A question of a set without exams has no exam, year, block, number or section (all None), one
    point, and its source's breakdown fields in ``attributes``. Letters are lower case everywhere.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$",
        description="normalised id, e.g. '120A-1', 'test-00000', 'MM-179'; a safe file name (letters, digits, . _ -)",
    )
    dataset: str
    # The exam structure: every JMLE question has all five; a set without exams (English multiple choice) none.
    exam: int | None = Field(default=None, ge=100, le=200, description="exam number, e.g. 120 (第120回)")
    year: int | None = None
    block: str | None = Field(default=None, pattern=r"^[A-I]$")
    number: int | None = Field(default=None, ge=1)
    section: Section | None = None
    type: QuestionType
    select: int = Field(ge=1, description="how many letters to choose (1 for numeric and free)")
    stem: str
    choices: list[tuple[str, str]] = Field(default_factory=list)
    accepted_answers: list[list[str]] = Field(
        min_length=1,
        description="each inner list is one accepted answer: letters (sorted), one number string, or one reference "
        "text (free: the reference diagnosis)",
    )
    all_credited: bool = Field(
        default=False, description="every candidate gets the points (e.g. 116A71 in IgakuQA's grader)"
    )
    correct_only: bool = Field(
        default=False,
        description="正解者のみ採点: counts in the maximum only for candidates who answer it correctly",
    )
    points: int = Field(ge=0, description="0 = excluded from grading (採点除外)")
    images: list[str] = Field(default_factory=list, description="image file paths")
    requires_image: bool = False
    case_id: str | None = Field(default=None, description="serial group id for questions sharing a case")
    case_text: str | None = None
    kinki: list[str] = Field(default_factory=list, description="prohibited choices (unofficial labels)")
    human_accuracy: float | None = Field(default=None, description="examinee accuracy in %, where known")
    category: str | None = None
    notes: list[str] = Field(default_factory=list, description="data fixes applied by the loader")
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="the source's breakdown fields, e.g. medical_task, body_system, subject (the card's breakdowns)",
    )

    @property
    def gold(self) -> list[str]:
        """The first accepted answer, for display."""
        return self.accepted_answers[0]


class Usage(BaseModel):
    """Token usage of one answered question: whole, non-negative counts (booleans and text refused)."""

    model_config = ConfigDict(strict=True)

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)


class Prediction(BaseModel):
    """One prediction file: the model's reply to one question, or why there is none.

    The one definition of a valid prediction file: predict validates every record
    before writing it, resume asks again any question whose file fails it, and
    score skips (and reports) such files, so the stages never disagree. Strict: a
    count is a whole number, a time or cost a finite non-negative number, a text a
    string; unknown keys are kept (importers add their own).
    """

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    question_id: str = Field(min_length=1)
    status: Status
    answer_text: str | None = None
    reasoning_text: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = Field(default_factory=Usage)
    latency_s: float | None = Field(default=None, ge=0)
    attempts: int = Field(default=0, ge=0)
    error: str | None = None
    model: str | None = None
    fingerprint: str | None = None
    created_at: str | None = None
    cost_usd: float | None = Field(default=None, ge=0)
    text_repaired: list[str] = Field(
        default_factory=list, description="fields whose text the server sent with invalid characters (replaced)"
    )
    repeat: int | None = Field(
        default=None, ge=0, description="run.repeats > 1: which sample of the question (file <question_id>.r<i>.json)"
    )


def record_id(record: Mapping[str, Any]) -> str:
    """Return the id a record's file is named by: its question id, with ``.r<i>`` for repeat i of a repeats run."""
    repeat = record.get("repeat")
    return str(record["question_id"]) if repeat is None else f"{record['question_id']}.r{repeat}"


def prediction_problem(record: object, question_id: str | None = None) -> str | None:
    """Return why ``record`` is not a valid prediction file (of ``question_id``, if given), or None when it is."""
    return record_problem(Prediction, record, question_id)


RubricKind = Literal["choice", "verdict", "score"]
"""What a judge rubric asks for: the option letter(s) a reply commits to, correct/incorrect, or a 0–10 score."""


class _JudgeReply(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    rationale: str = Field(description="one or two sentences: why this grade")


class ChoiceJudgment(_JudgeReply):
    """``extract_choice``: the option letter(s) the reply finally commits to, e.g. "C" or "A, D"; "none" if none."""

    answer: str


class VerdictJudgment(_JudgeReply):
    """``match_answer``: is the reply's final answer equivalent to the reference answer."""

    extracted_answer: str = Field(description="the reply's final answer, as stated")
    verdict: Literal["correct", "incorrect"]
    confidence: int = Field(ge=0, le=100, description="the judge's confidence in its verdict, in %")


class ScoreJudgment(_JudgeReply):
    """``diagnosis_0_10``: how close the reply's diagnosis is to the reference diagnosis, 0 (wrong) to 10 (exact)."""

    extracted_diagnosis: str
    score: int = Field(ge=0, le=10)


JUDGE_REPLIES: dict[str, type[_JudgeReply]] = {
    "choice": ChoiceJudgment,
    "verdict": VerdictJudgment,
    "score": ScoreJudgment,
}
"""The reply model of each rubric kind; its JSON schema is what the judge is asked to follow."""


class Judgment(Prediction):
    """One judgment file (``judgments/<dataset>/<prediction run>/<judge run>/<question_id>.json``).

    A prediction file of the judge model (the same store, the same checks), plus
    the rubric, the sha256 of the prediction file it judged (a re-predicted
    question is judged again), and the judge's reply as validated data — present
    exactly when the status is ok: an unreadable reply is an error, never a grade.
    """

    rubric: str = Field(min_length=1)
    kind: RubricKind
    prediction_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    judgment: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _judgment_matches_status(self) -> Judgment:
        if self.status == "ok":
            if self.judgment is None:
                raise ValueError("a judgment with status ok has no 'judgment'")
            JUDGE_REPLIES[self.kind].model_validate(self.judgment)
        elif self.judgment is not None:
            raise ValueError("a judgment with status error has a 'judgment'")
        return self


def record_problem(model: type[BaseModel], record: object, question_id: str | None) -> str | None:
    """Return why ``record`` is not a valid file of ``model`` (named for ``question_id``, if given), or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    try:
        model.model_validate(record)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return f"{where}: {first['msg']} (got {first.get('input')!r:.60})"
    if question_id is not None and record_id(record) != question_id:
        return f"question_id {record_id(record)!r} does not match the file name"
    return None


def judgment_problem(record: object, question_id: str | None = None) -> str | None:
    """Return why ``record`` is not a valid judgment file (of ``question_id``, if given), or None when it is."""
    return record_problem(Judgment, record, question_id)


class ScoredItem(BaseModel):
    """One line of ``scored/<dataset>/<run>.jsonl`` (every question of the data set, in exam order)."""

    question_id: str
    exam: int | None = Field(description="None: a benchmark without exam structure")
    block: str | None
    section: Section | None
    type: QuestionType
    requires_image: bool
    points_possible: int = Field(description="the question's points; 0 = excluded from every denominator")
    status: ItemStatus = Field(
        description="ok | error (a prediction file exists) | missing (no file yet) | not_asked (image_mode=skip)"
    )
    predicted: list[str] | None = Field(description="parsed answer; None = parse failure or no answer")
    gold: list[list[str]]
    correct: bool
    points: int
    parse_rule: str | None = Field(description="which parser rule read the answer (marker = the required line)")
    strict: bool = Field(description="the required answer line was used exactly")
    kinki_hits: list[str] = Field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    error: str | None = Field(default=None, description="the prediction's error message (status error)")
    judges: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description="by judge run: its judgment of this question (rubric, kind, status ok|error|stale, grade, "
        "correct, score, confidence, extracted, rationale, agrees: with the parser, None when not both decided, "
        "error); left out of the line where the question has no judgment",
    )
    repeats: dict[str, Any] | None = Field(
        default=None,
        description="run.repeats > 1: every sample's answer and verdict (answers, correct, by repeat) and the share "
        "of samples giving the line's answer, the majority (agreement); left out of a one-sample run's lines",
    )
