"""The judge columns of the leaderboard rows, from a run summary's judges section.

* Grader ``judge`` (right after the settings, in both tables): ``judge_rubric``, ``judge_model``
  (the judges' display names, `` + ``-joined), ``judge_score_pct`` with ``judge_score_ci_low`` /
  ``_high`` (the ranked score, in percent), ``judge_judged`` of ``judge_n`` counted questions, and
  for 0–10 rubrics ``judge_exact_rate`` and ``judge_at_least_7_rate``.
* Every run with judgments, per rubric (``<rubric>_…``, at the end of the all-questions row):
  ``_judge`` and ``_score_pct`` (the judges and their grade; left out for the rubric of record,
  which has them above), ``_assisted_accuracy`` with its CI and ``_rescued`` (choice),
  ``_agreement`` and ``_kappa`` with the parser and ``_disagreements`` (choice, verdict),
  ``_inter_judge_kappa`` (several judges: the mean pairwise κ, quadratic-weighted for scores),
  ``_stale``; then ``judge_cost_usd`` (every judge, apart from the model's ``cost_usd``).
"""

from __future__ import annotations

from typing import Any

from jmle_eval.score.judge_records import JudgeGrade, JudgeSection, RubricResult
from jmle_eval.score.records import RunSummary


def judge_names(section: JudgeSection, runs: list[str]) -> str:
    """Return the judges of ``runs`` by their model's display name (else the judge run name), `` + ``-joined."""
    names = {j.run: j.model.display_name or j.model.name or j.run for j in section.judges}
    return " + ".join(names.get(run, run) for run in runs)


def grade_of_record(summary: RunSummary, text_only: bool = False) -> JudgeGrade | None:
    """Return the grade of a run graded by a judge (all or text-only questions), or None."""
    record = summary.judges.record if summary.judges else None
    if record is None:
        return None
    return record.grade_text_only if text_only else record.grade


def record_columns(summary: RunSummary, text_only: bool = False) -> dict[str, Any]:
    """Return the grade-of-record columns of a run graded by a judge (none for another grader)."""
    section = summary.judges
    if section is None or section.grade_of_record is None:
        return {}
    record = section.record
    grade = grade_of_record(summary, text_only)
    low, high = (grade.pct_ci95 if grade else None) or (None, None)
    row: dict[str, Any] = {
        "judge_rubric": section.grade_of_record,
        "judge_model": judge_names(section, record.judges) if record else None,
        "judge_score_pct": grade.pct if grade else None,
        "judge_score_ci_low": low,
        "judge_score_ci_high": high,
        "judge_judged": grade.judged if grade else 0,
        "judge_n": grade.n if grade else None,
    }
    if grade is not None and grade.exact is not None and grade.at_least_7 is not None:
        row.update(judge_exact_rate=grade.exact.rate, judge_at_least_7_rate=grade.at_least_7.rate)
    return row


def inter_judge_kappa(result: RubricResult) -> float | None:
    """Return the mean pairwise κ of a rubric's judges (quadratic-weighted for scores), or None."""
    kappas = [p.kappa_quadratic if result.kind == "score" else p.kappa for p in result.pairs]
    known = [k for k in kappas if k is not None]
    return round(sum(known) / len(known), 4) if known else None


def _rubric_columns(section: JudgeSection, result: RubricResult) -> dict[str, Any]:
    p = result.rubric
    row: dict[str, Any] = {}
    if p != section.grade_of_record:
        row.update({f"{p}_judge": judge_names(section, result.judges), f"{p}_score_pct": result.grade.pct})
    if result.assisted_accuracy is not None:
        acc = result.assisted_accuracy
        row[f"{p}_assisted_accuracy"] = acc.accuracy
        row[f"{p}_assisted_ci_low"], row[f"{p}_assisted_ci_high"] = acc.ci95 or (None, None)
        row[f"{p}_rescued"] = result.rescued
    if result.agreement is not None:
        row[f"{p}_agreement"] = result.agreement.rate
        row[f"{p}_kappa"] = result.agreement.kappa
        row[f"{p}_disagreements"] = len(result.disagreements)
    if result.pairs:
        row[f"{p}_inter_judge_kappa"] = inter_judge_kappa(result)
    row[f"{p}_stale"] = sum(j.stale for j in section.judges if j.run in result.judges)
    return row


def judge_columns(summary: RunSummary) -> dict[str, Any]:
    """Return the per-rubric judge columns and the judges' cost of a run with judgments (none without)."""
    section = summary.judges
    if section is None:
        return {}
    row: dict[str, Any] = {}
    for result in section.rubrics:
        row.update(_rubric_columns(section, result))
    row["judge_cost_usd"] = section.cost_usd
    return row
