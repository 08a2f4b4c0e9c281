"""Human-readable views of the results: the leaderboard in Markdown, and the console summary.

Runs graded as an exam show points, sections and pass/fail; runs graded by
``choice`` show accuracy only; runs graded by ``judge`` show the judge's score first
(``score.graders``). Runs with judgments get a "Judges" table beside the parser's results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jmle_eval.report import repeats
from jmle_eval.report.judge_columns import grade_of_record, inter_judge_kappa, judge_names
from jmle_eval.report.leaderboard import rank, settings_label
from jmle_eval.score.judge_records import JudgeGrade, JudgeSection, RubricResult
from jmle_eval.score.records import Accuracy, ExamResult, Points, RunSummary, StandIn


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def _ci(ci: Sequence[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"


def _count(n: int | float | None) -> str:
    if n is None:
        return "—"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n:,}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _partial(summary: RunSummary, text_only: bool = False) -> str:
    """Return `` (partial: 98 not answered)`` when the run did not answer every question (of the table), else ''."""
    q = summary.questions
    gap = q.text_only_unanswered if text_only else q.missing + q.not_asked
    return f" (partial: {gap} not answered)" if gap else ""


def score_cell(score: Points, summary: RunSummary, text_only: bool = False) -> str:
    """Return ``488/500 (97.6%)``, flagged when the run did not answer every question (of the table)."""
    return f"{score.points}/{score.max} ({_pct(score.pct)})" + _partial(summary, text_only)


def accuracy_cell(acc: Accuracy) -> str:
    """Return ``388/400 = 97.0% [95.3–98.5]`` (accuracy with its 95 % CI)."""
    if not acc.n or acc.accuracy is None:
        return "—"
    return f"{acc.correct}/{acc.n} = {_pct(100 * acc.accuracy)}{_ci(acc.ci95)}"


def judge_cell(grade: JudgeGrade | None) -> str:
    """Return ``67.0% [62.3–71.5]`` (a 0–10 rubric adds its 10s and ≥ 7s), flagged ``(judged 350/400)``
    when not every counted question has a grade."""
    if grade is None or grade.pct is None:
        return "—"
    ci = "" if not grade.pct_ci95 else f" [{grade.pct_ci95[0]:.1f}–{grade.pct_ci95[1]:.1f}]"
    shares = ""
    if grade.exact is not None and grade.at_least_7 is not None:  # a 0–10 rubric
        shares = f"; 10/10: {grade.exact.count}/{grade.n}, ≥7: {grade.at_least_7.count}/{grade.n}"
    return f"{_pct(grade.pct)}{ci}{shares}" + (f" (judged {grade.judged}/{grade.n})" if grade.judged < grade.n else "")


def _judge_cells(s: RunSummary, text_only: bool = False) -> list[str]:
    """Return the judge score and judge cells of a run graded by a judge."""
    record = s.judges.record if s.judges else None
    names = judge_names(s.judges, record.judges) if s.judges and record else "none yet"
    return [judge_cell(grade_of_record(s, text_only)), names]


def exam_cell(exam: ExamResult) -> str:
    """Return ``161/200, 221/299: pass (kinki 0)`` for one exam."""
    req, gen = exam.required, exam.general
    sections = f"{req.points}/{req.candidate_max}, {gen.points}/{gen.max}"
    return f"{sections}: {exam.verdict} (kinki {exam.kinki.picks})"


def _exam_cells(s: RunSummary, exams: Sequence[str], stand_in: StandIn | None) -> list[Any]:
    """Return the run's exam cells: sections and verdict of the one exam, or one cell per exam."""
    results = s.exams or {}
    if len(exams) != 1:
        return [exam_cell(results[x]) if x in results else "—" for x in exams]
    e = results[exams[0]]
    cells: list[Any] = [f"{e.required.points}/{e.required.candidate_max} ({_pct(e.required.pct)})"]
    cells += [f"{e.general.points}/{e.general.max}", e.verdict]
    if stand_in:
        cells.append(e.stand_in.verdict if e.stand_in else "—")
    return cells


def _all_table(ranked: Sequence[RunSummary], exams: Sequence[str], stand_in: StandIn | None) -> str:
    """Return the all-questions table; without exams (``choice``) it has no score, section or verdict columns."""
    judged = any(s.judges and s.judges.grade_of_record for s in ranked)
    header = ["#", "Model", "Settings"] + (["Judge score (95% CI)", "Judge"] if judged else [])
    header += (["Score"] if exams else []) + ["Accuracy (95% CI)"]
    if len(exams) == 1:
        header += ["Required", "General", "Pass/fail"] + ([f"vs {stand_in.label}"] if stand_in else [])
    else:
        header += [f"{e}th (req, gen: verdict)" for e in exams]
    header += (["Kinki"] if exams else []) + ["Parse fail", "Strict", "Errors", "Tokens", "Cost"]
    rows = []
    for n, s in enumerate(ranked, 1):
        row: list[Any] = [n, s.label, settings_label(s)] + (_judge_cells(s) if judged else [])
        row += [score_cell(s.score, s)] if exams and s.score else []
        row += [accuracy_cell(s.accuracy.all) + ("" if exams else _partial(s))]  # no score cell to flag a gap
        row += _exam_cells(s, exams, stand_in) if exams else []
        row += [sum(e.kinki.picks for e in (s.exams or {}).values())] if exams else []
        strict = s.parse.strict_rate
        row += [
            s.parse.failures,
            _pct(None if strict is None else 100 * strict, 0),
            s.errors,
            _count(s.tokens.total if s.tokens else None),
            "—" if s.cost_usd is None else f"${s.cost_usd:.2f}",
        ]
        rows.append(row)
    return _table(header, rows)


def _text_table(ranked_text: Sequence[RunSummary], exam: bool) -> str:
    judged = any(s.judges and s.judges.grade_of_record for s in ranked_text)
    header = ["#", "Model", "Settings"] + (["Judge score (95% CI)", "Judge"] if judged else [])
    header += (["Score"] if exam else []) + ["Accuracy (95% CI)", "Parse fail", "Errors"]
    rows = []
    for n, s in enumerate(ranked_text, 1):
        row: list[Any] = [n, s.label, settings_label(s)] + (_judge_cells(s, text_only=True) if judged else [])
        row += [score_cell(s.score_text_only, s, text_only=True)] if exam and s.score_text_only else []
        accuracy = accuracy_cell(s.accuracy.text_only) + ("" if exam else _partial(s, text_only=True))
        rows.append(row + [accuracy, s.parse.failures, s.errors])
    return _table(header, rows)


def _notes(dataset: str, exam: bool, stand_in: StandIn | None, judged: bool = False) -> list[str]:
    strict = "Strict = share of answers given in the required format exactly."
    if not exam:
        ranked = "" if judged else "; runs are ranked by accuracy"
        return [
            "Accuracy = questions answered with exactly the right set of letters, over the questions the run "
            f"answered, with a 95 % bootstrap CI{ranked}. {strict}"
        ]
    notes = [
        "Score = points over the exam maximum (excluded questions count nowhere); accuracy over the questions "
        "the run answered, with a 95 % bootstrap CI. Pass/fail uses each exam's published criteria from "
        f"`conf/dataset/{dataset}.yaml`; `unknown` where a criterion is not published, `incomplete` where the run "
        "did not answer every question. Kinki = unofficial prohibited-choice picks (IgakuQA labels), not a "
        f"pass/fail reason on their own. {strict}"
    ]
    if stand_in:
        notes += ["", f"The `vs {stand_in.label}` column is a stand-in, not the official result ({stand_in.source})."]
    return notes


def markdown(
    dataset: str, card: Mapping[str, Any], ranked: Sequence[RunSummary], ranked_text: Sequence[RunSummary]
) -> str:
    """Return ``leaderboard/<dataset>.md``: the all-questions and the text-only tables, with notes."""
    exams = sorted({e for s in ranked for e in s.exams or {}})
    single = len(exams) == 1
    stand_in = next(((s.exams or {})[exams[0]].stand_in for s in ranked if single), None)
    n_text = max((s.accuracy.text_only.n for s in ranked_text), default=0)
    record = next((s.judges.grade_of_record for s in ranked if s.judges and s.judges.grade_of_record), None)
    notes = _notes(dataset, bool(exams), stand_in, judged=bool(record))
    lines = [f"# Leaderboard: {card.get('title') or dataset}", "", *notes]
    if record:
        lines += [
            "",
            f"Judge score = the grade of rubric `{record}` (see Judges below), the ranked score: the parser's "
            "accuracy is shown beside it. Runs are ranked by the judge score (a run not judged yet last).",
        ]
    lines += ["", f"## All questions ({len(ranked)} runs)", "", _all_table(ranked, exams, stand_in)]
    lines += ["", f"## Text-only questions ({n_text} answered)", "", _text_table(ranked_text, bool(exams))]
    if any(s.judges for s in ranked):
        lines += ["", "## Judges", "", *JUDGE_NOTES, "", _judges_table(ranked)]
    if any(s.repeats for s in ranked):
        lines += ["", "## Repeated samples", "", *repeats.NOTES, "", _table(repeats.HEADER, repeats.rows(ranked))]
    return "\n".join(lines) + "\n"


JUDGE_NOTES = [
    "Judge grade = the judges' mean grade per question over every counted question (right = 100 %, a 0–10 score "
    "= score × 10 %); a question without a fresh judgment (no answer, an error, a stale judgment, not judged yet) "
    "counts 0. Several judges of one rubric: the mean score, or the majority verdict (a tie counts as incorrect), "
    "or the letters most judges read (a tie counts as none). Assisted = the parser's accuracy with the judge's "
    "letters used only where the parser read none. Agreement and κ (Cohen's) compare parser and judge on the "
    "answered questions both decided (letters, or right/wrong for a verdict); inter-judge κ is the mean pairwise "
    "κ (quadratic-weighted for 0–10 scores). Stale = judgments of an answer predicted again since (not used). "
    "Judge cost is the judges' own, apart from the model's."
]


def _judge_row(s: RunSummary, section: JudgeSection, r: RubricResult) -> list[Any]:
    agree, kappa = r.agreement, inter_judge_kappa(r)
    mine = [j for j in section.judges if j.run in r.judges]
    cost = None if any(j.cost_usd is None for j in mine) else sum(j.cost_usd or 0.0 for j in mine)
    return [
        s.label,
        r.rubric + (" (the grade)" if r.rubric == section.grade_of_record else ""),
        judge_names(section, r.judges),
        judge_cell(r.grade),
        accuracy_cell(r.assisted_accuracy) if r.assisted_accuracy else "—",
        _pct(None if agree is None or agree.rate is None else 100 * agree.rate),
        "—" if agree is None or agree.kappa is None else f"{agree.kappa:.3f}",
        len(r.disagreements) if agree else "—",
        "—" if kappa is None else f"{kappa:.3f}",
        sum(j.stale for j in mine),
        "—" if cost is None else f"${cost:.2f}",
    ]


def _judges_table(ranked: Sequence[RunSummary]) -> str:
    """Return one row per run and rubric judged: grade, assisted accuracy, agreement, κ, stale, cost."""
    header = ["Model", "Rubric", "Judges", "Judge grade (95% CI)", "Assisted (95% CI)", "Agreement", "κ"]
    header += ["Disagreements", "Inter-judge κ", "Stale", "Judge cost"]
    rows = [_judge_row(s, s.judges, r) for s in ranked if s.judges for r in s.judges.rubrics]
    return _table(header, rows)


def _verdicts(s: RunSummary) -> str:
    return ", ".join(
        f"{n}: {e.verdict}" + (f" (stand-in: {e.stand_in.verdict})" if e.stand_in else "")
        for n, e in (s.exams or {}).items()
    )


def print_results(results: Mapping[str, Sequence[RunSummary]]) -> None:
    """Print one compact table per data set to stdout (score and verdict only for runs graded as an exam,
    the judge score first for runs graded by a judge)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    for dataset, summaries in results.items():
        exam = any(s.exams is not None for s in summaries)
        table = Table(title=f"{dataset}: {len(summaries)} run(s) scored", title_justify="left")
        judged = any(s.judges and s.judges.grade_of_record for s in summaries)
        columns = ["run"] + (["judge score (95% CI)", "judge"] if judged else [])
        columns += ["score", "accuracy (95% CI)", "verdict"] if exam else ["accuracy (95% CI)"]
        for column in (*columns, "parse fail", "errors"):
            table.add_column(column)
        for s in rank(summaries):
            cells = _judge_cells(s) if judged else []
            cells += [score_cell(s.score, s) if s.score else "—"] if exam else []
            cells += [accuracy_cell(s.accuracy.all)] + ([_verdicts(s)] if exam else [])
            table.add_row(s.run, *cells, str(s.parse.failures), str(s.errors))
        console.print(table)
