"""Graders: what a data set card's ``grader`` makes of a run's graded answers.

A benchmark is data + prompt + grader. Every grader reads answers the same way
(``parse``) and marks each one right or wrong against the key (``grade``: an exact
letter-set match, accepted alternatives, numbers as numbers); they differ in what a
run's result is:

* ``exam`` (the default; the JMLE): points per question, the sections, each exam's
  pass criteria and verdict, prohibited-choice picks — the summary's ``score``,
  ``score_text_only`` and ``exams``, and the leaderboard ranks by points.
* ``choice`` (benchmarks without exam rules): accuracy with its bootstrap CI and the
  breakdowns only; the exam parts are None and the leaderboard ranks by accuracy.
* ``judge`` (LLM-graded free text): the judgments of the card's ``rubric`` (``judge.py``'s
  output) are the grade (``judged``: a 0–10 score, a verdict or the letters a judge read);
  no exam parts, and the leaderboard ranks by the judge's grade. A run without judgments of
  that rubric is still scored and listed, with a note and no judge grade: its predictions
  are valid, it is the judging that is not done yet (run judge.py, then score again).
* ``agent`` (MedAgentBench): each task's episode is graded by its type's rules, reading the FHIR
  server where the type needs it (``jmle_eval.agent.graders``); success per type, query / action and
  overall, with their own summary and leaderboard (``jmle_eval.agent.scoring``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from jmle_eval.errors import UserError
from jmle_eval.schema import ScoredItem
from jmle_eval.score import stats
from jmle_eval.score.exams import exam_results
from jmle_eval.score.grade import Key
from jmle_eval.score.records import ExamResult, Points, Score

Grader = Literal["exam", "choice", "judge", "agent"]
GRADERS = ("exam", "choice", "judge", "agent")
"""What a card's ``grader`` may name."""
DEFAULT = "exam"


def grader_of(card: Mapping[str, Any]) -> Grader:
    """Return the grader the data set card names (``exam`` when it names none); raise UserError for any other.

    ``judge`` needs the card's ``rubric``: without it there is no grade of record to read.
    """
    name = card.get("grader", DEFAULT)
    where = f"conf/dataset/{card.get('name')}.yaml"
    if name == "judge":
        if not isinstance(card.get("rubric"), str) or not card["rubric"]:
            raise UserError(
                f"{where}: grader 'judge' needs the rubric whose judgments are the grade, e.g. rubric: match_answer "
                "in the card or dataset.rubric=match_answer on the command line (the rubrics: conf/rubric/)."
            )
        return "judge"
    if name == "choice":
        return "choice"
    if name == "agent":  # episodes graded per task type (jmle_eval.agent.scoring), not parsed answers
        return "agent"
    if name != "exam":
        raise UserError(f"{where}: grader {name!r} is not one of {', '.join(GRADERS)}.")
    return "exam"


def _points(keys: Sequence[Key], items: Sequence[ScoredItem], text_only: bool) -> Points:
    chosen = [(k, i) for k, i in zip(keys, items, strict=True) if k.counted and not (text_only and k.requires_image)]
    earned = sum(i.points for _, i in chosen)
    possible = sum(k.points for k, _ in chosen)
    return Points(points=earned, max=possible, pct=round(100 * earned / possible, 2) if possible else None)


def exam_parts(
    keys: Sequence[Key], items: Sequence[ScoredItem], card: Mapping[str, Any], bootstrap: Mapping[str, int]
) -> tuple[Score, Points, dict[str, ExamResult]]:
    """Return the ``exam`` grader's parts of a summary: the score (with its CI), the text-only score, each exam."""
    # The CI describes the same population as the score: every counted question, where an
    # unanswered one (missing, or left out by image_mode=skip) earns nothing.
    counted = [(k, i) for k, i in zip(keys, items, strict=True) if k.counted]
    ci = stats.score_ci(
        [k.points for k, _ in counted], [i.correct for _, i in counted], bootstrap["samples"], bootstrap["seed"]
    )
    total = _points(keys, items, text_only=False)
    score = Score(**total.model_dump(), pct_ci95=(round(100 * ci[0], 2), round(100 * ci[1], 2)) if ci else None)
    return score, _points(keys, items, text_only=True), exam_results(keys, items, card)
