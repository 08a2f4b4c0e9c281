"""The leaderboard tables (``leaderboard/<dataset>.{csv,json,md}``), built from run summaries only.

Two tables like JMLE2026-Bench's README (all questions, text-only questions),
plus a long per-exam table. Runs graded as an exam are ranked by points, then
accuracy, then name, and show points and each exam's sections and verdict; runs
graded by ``choice`` have no points and are ranked by accuracy, then name; runs
graded by ``judge`` are ranked by the judge's grade (``judge_*`` columns, after the
settings), then accuracy, then name. Runs with judgments gain the judge columns of
``judge_columns`` (a run without has none, so its rows are what they were).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jmle_eval.report import baselines, repeats
from jmle_eval.report.judge_columns import grade_of_record, judge_columns, record_columns
from jmle_eval.score.records import Accuracy, ExamResult, Points, RunSummary, Score


def settings_label(summary: RunSummary) -> str:
    """Return the run settings in a few words: ``blind, effort high, parse extracted``."""
    s, model = summary.settings, summary.model
    parts = [s.image_mode]
    if model.reasoning_effort:
        parts.append(f"effort {model.reasoning_effort}")
    if s.parse_mode != "lenient":
        parts.append(f"parse {s.parse_mode}")
    if s.question_set:
        parts.append(s.question_set)
    if summary.repeats:
        parts.append(f"majority of {summary.repeats.k} samples")
    return ", ".join(p for p in parts if p)


def _exam_columns(exam: ExamResult, prefix: str) -> dict[str, Any]:
    req, gen = exam.required, exam.general
    row = {
        f"{prefix}required_points": req.points,
        f"{prefix}required_max": req.candidate_max,
        f"{prefix}required_pct": req.pct,
        f"{prefix}general_points": gen.points,
        f"{prefix}general_max": gen.max,
        f"{prefix}verdict": exam.verdict,
        f"{prefix}kinki_picks": exam.kinki.picks,
        f"{prefix}missing": exam.missing + exam.not_asked,
    }
    if exam.stand_in is not None:
        row[f"{prefix}stand_in_verdict"] = exam.stand_in.verdict
    return row


def _base_row(summary: RunSummary, acc: Accuracy, score: Points | None, text_only: bool = False) -> dict[str, Any]:
    """Return the columns both leaderboards share: who, points and score (exam grader), accuracy + CI."""
    row: dict[str, Any] = {"run": summary.run, "model": summary.label, "settings": settings_label(summary)}
    row.update(record_columns(summary, text_only))
    if score is not None:
        row.update(points=score.points, points_max=score.max, score_pct=score.pct)
        if isinstance(score, Score):  # the text-only score has no CI
            row["score_ci_low"], row["score_ci_high"] = score.pct_ci95 or (None, None)
    row.update(correct=acc.correct, answered=acc.n, accuracy=acc.accuracy)
    row["accuracy_ci_low"], row["accuracy_ci_high"] = acc.ci95 or (None, None)
    return row


def row_all(summary: RunSummary) -> dict[str, Any]:
    """Return the summary's row of the all-questions leaderboard (flat, CSV-ready)."""
    tokens = summary.tokens
    row = _base_row(summary, summary.accuracy.all, summary.score)
    exams = summary.exams or {}
    for name, exam in exams.items():
        row.update(_exam_columns(exam, "" if len(exams) == 1 else f"{name}_"))
    row.update(
        parse_failures=summary.parse.failures,
        strict_rate=summary.parse.strict_rate,
        errors=summary.errors,
        prompt_tokens=tokens.prompt if tokens else None,
        completion_tokens=tokens.completion if tokens else None,
        reasoning_tokens=tokens.reasoning if tokens else None,
        cost_usd=summary.cost_usd,
    )
    row.update(judge_columns(summary))
    row.update(repeats.columns(summary))
    row.update(baselines.columns(summary))
    return row


def row_text_only(summary: RunSummary) -> dict[str, Any]:
    """Return the summary's row of the text-only leaderboard."""
    row = _base_row(summary, summary.accuracy.text_only, summary.score_text_only, text_only=True)
    row.update(parse_failures=summary.parse.failures, errors=summary.errors)
    return row


def exam_rows(summary: RunSummary) -> list[dict[str, Any]]:
    """Return one long-table row per exam of the run (``leaderboard/<dataset>.exams.csv``); none for ``choice``."""
    rows = []
    for name, exam in (summary.exams or {}).items():
        req, gen = exam.required, exam.general
        rows.append(
            {
                "run": summary.run,
                "model": summary.label,
                "exam": int(name),
                "year": exam.year,
                "required_points": req.points,
                "required_max": req.candidate_max,
                "required_threshold": req.threshold,
                "required_pass": req.passed,
                "general_points": gen.points,
                "general_max": gen.max,
                "general_threshold": gen.threshold,
                "general_pass": gen.passed,
                "verdict": exam.verdict,
                "stand_in_verdict": exam.stand_in.verdict if exam.stand_in else None,
                "kinki_picks": exam.kinki.picks,
                "kinki_max": exam.kinki.max,
                "missing": exam.missing,
                "not_asked": exam.not_asked,
            }
        )
    return rows


def rank(summaries: Sequence[RunSummary], text_only: bool = False) -> list[RunSummary]:
    """Return the summaries sorted by score (points; none for ``choice``), the judge's grade (grader judge;
    a run without one last), then accuracy, then run name."""

    def key(s: RunSummary) -> tuple[float, float, float, str]:
        score = s.score_text_only if text_only else s.score
        acc = s.accuracy.text_only if text_only else s.accuracy.all
        grade = grade_of_record(s, text_only)
        judged = grade.pct if grade and grade.pct is not None else -1.0
        return (-(score.points if score else 0), -judged, -(acc.accuracy or 0.0), s.run)

    return sorted(summaries, key=key)


def tables(summaries: Sequence[RunSummary]) -> dict[str, list[dict[str, Any]]]:
    """Return the leaderboard tables: ``all``, ``text_only`` and the long ``exams`` table."""
    ranked = rank(summaries)
    reference = baselines.reference_row(ranked)
    return {
        "all": [row_all(s) for s in ranked] + ([reference] if reference else []),
        "text_only": [row_text_only(s) for s in rank(summaries, text_only=True)],
        "exams": [r for s in ranked for r in exam_rows(s)],
    }
