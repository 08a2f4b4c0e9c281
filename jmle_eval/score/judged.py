"""What the judges make of a run: each judge, each rubric (a panel when several judges), the grade of record.

For every judge run (``judgments.JudgeRun``) and for every rubric (its judges combined per
question by ``judge_marks.combine``):

* the judge's grade over every counted question of the data set (each question 1/0 or
  score/10; a question without a fresh judgment counts 0: no answer, a request error, a
  judge error, a stale judgment, not judged yet), overall and text-only, with bootstrap CIs;
  for 0–10 scores also the share of 10s and of scores ≥ 7;
* beside the parser, over the answered questions (the population of ``accuracy``): the
  judge-assisted accuracy (choice only: the parser's grade, the judge's letters where the
  parser read none), the agreement on questions both decided (percent and Cohen's κ) and
  the list of disagreements;
* per judge: coverage (judged, errors, stale, not judged yet) and its own tokens and cost;
* per rubric with several judges: pairwise inter-judge agreement (percent, κ, and the
  quadratic-weighted κ for 0–10 scores) on the counted questions both judged.

With ``grader: judge`` the card's ``rubric`` is the grade of record (``JudgeSection.grade_of_record``);
a run with no judgments of it is still scored and reported, with a note and no judge grade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from jmle_eval.schema import ScoredItem
from jmle_eval.score import stats
from jmle_eval.score.exams import graded_pairs
from jmle_eval.score.grade import Key, is_correct
from jmle_eval.score.graders import grader_of
from jmle_eval.score.judge_marks import Mark, combine, compared, line_entry, marks_of
from jmle_eval.score.judge_records import (
    Agreement,
    Disagreement,
    JudgeGrade,
    JudgeModel,
    JudgePair,
    JudgeResult,
    JudgeSection,
    RubricResult,
    Share,
)
from jmle_eval.score.judgments import JudgeRun
from jmle_eval.score.parts import Accuracy
from jmle_eval.score.summary import UsageTally, as_text, record_cost, tally_accuracy, usage_parts

Pairs = list[tuple[Key, ScoredItem]]


@dataclass(frozen=True)
class Population:
    """The (key, scored line) pairs each measure is over."""

    counted: Pairs
    """Every counted question (points > 0): a judge's grade."""
    text_only: Pairs
    """The counted questions without clinical images."""
    answered: Pairs
    """The counted questions the run answered: the parser comparisons (as ``accuracy``)."""
    counted_ids: frozenset[str]


def population(keys: Sequence[Key], items: Sequence[ScoredItem]) -> Population:
    """Return the populations of a run's judge measures."""
    counted = [(k, i) for k, i in zip(keys, items, strict=True) if k.counted]
    return Population(
        counted=counted,
        text_only=[(k, i) for k, i in counted if not k.requires_image],
        answered=graded_pairs(keys, items),
        counted_ids=frozenset(k.question_id for k, _ in counted),
    )


def _share(count: int, n: int, bootstrap: Mapping[str, int]) -> Share:
    ci = stats.accuracy_ci(count, n, bootstrap["samples"], bootstrap["seed"])
    return Share(count=count, n=n, rate=round(count / n, 4) if n else None, ci95=ci)


def judge_grade(kind: str, marks: Mapping[str, Mark], pairs: Pairs, bootstrap: Mapping[str, int]) -> JudgeGrade:
    """Return the judge's grade over ``pairs``: the mean of each question's grade, a question without one 0."""
    got = [marks.get(k.question_id) for k, _ in pairs]
    values = [m.value if m else 0.0 for m in got]
    n = len(values)
    extra: dict[str, Any] = {}
    if kind == "score":
        ci = stats.mean_ci(values, bootstrap["samples"], bootstrap["seed"])
        scores = [(m.score or 0.0) if m else 0.0 for m in got]
        extra["exact"] = _share(sum(s >= 10 for s in scores), n, bootstrap)
        extra["at_least_7"] = _share(sum(s >= 7 for s in scores), n, bootstrap)
    else:
        extra["correct"] = round(sum(values))
        ci = stats.accuracy_ci(extra["correct"], n, bootstrap["samples"], bootstrap["seed"])
    return JudgeGrade(
        n=n,
        judged=sum(m is not None for m in got),
        pct=round(100 * sum(values) / n, 2) if n else None,
        pct_ci95=(round(100 * ci[0], 2), round(100 * ci[1], 2)) if ci else None,
        **extra,
    )


def assisted_accuracy(marks: Mapping[str, Mark], answered: Pairs, bootstrap: Mapping[str, int]) -> tuple[Accuracy, int]:
    """Return the parser's accuracy with the judge's letters used only where the parser read none, and how often."""
    correct = rescued = 0
    for key, item in answered:
        mark = marks.get(key.question_id)
        if item.status == "ok" and item.parse_rule is None and mark is not None and mark.answer is not None:
            rescued += 1
            correct += is_correct(key, mark.answer)
        else:
            correct += item.correct
    return tally_accuracy(correct, len(answered), bootstrap), rescued


def agreement(pairs: Sequence[tuple[str, str]]) -> Agreement:
    """Return percent agreement and Cohen's κ of (first rater, second rater) labels."""
    agree = sum(a == b for a, b in pairs)
    n = len(pairs)
    return Agreement(
        n=n,
        agree=agree,
        rate=round(agree / n, 4) if n else None,
        kappa=stats.cohen_kappa([a for a, _ in pairs], [b for _, b in pairs]),
    )


def metrics(kind: str, marks: Mapping[str, Mark], pop: Population, bootstrap: Mapping[str, int]) -> dict[str, Any]:
    """Return the ``JudgeMetrics`` fields of one judge's (or panel's) marks."""
    both = []
    for key, item in pop.answered:
        mark = marks.get(key.question_id)
        if mark is not None and (decided := compared(kind, item, mark)):
            both.append((key.question_id, decided))
    assisted, rescued = assisted_accuracy(marks, pop.answered, bootstrap) if kind == "choice" else (None, None)
    return {
        "grade": judge_grade(kind, marks, pop.counted, bootstrap),
        "grade_text_only": judge_grade(kind, marks, pop.text_only, bootstrap),
        "assisted_accuracy": assisted,
        "rescued": rescued,
        "agreement": None if kind == "score" else agreement([d for _, d in both]),
        "disagreements": [Disagreement(question_id=q, parser=p, judge=j) for q, (p, j) in sorted(both) if p != j],
    }


def inter_judge(kind: str, marks: Mapping[str, Mapping[str, Mark]], counted: frozenset[str]) -> list[JudgePair]:
    """Return the agreement of each pair of judges (sorted names) on the counted questions both graded."""
    pairs = []
    for a, b in combinations(sorted(marks), 2):
        common = sorted(q for q in marks[a].keys() & marks[b].keys() if q in counted)
        first, second = [marks[a][q] for q in common], [marks[b][q] for q in common]
        labels = agreement([(x.label, y.label) for x, y in zip(first, second, strict=True)])
        quadratic = None
        if kind == "score":
            quadratic = stats.quadratic_kappa([x.score or 0.0 for x in first], [y.score or 0.0 for y in second])
        pairs.append(JudgePair(a=a, b=b, **labels.model_dump(exclude={"kappa_quadratic"}), kappa_quadratic=quadratic))
    return pairs


METHODS = {
    "score": "mean of the {n} judges' scores per question (of the judges that graded it)",
    "verdict": "majority of the {n} judges' verdicts per question; a tie counts as incorrect",
    "choice": "the letters most of the {n} judges read per question; a tie counts as no answer",
}


def rubric_result(
    judges: Sequence[JudgeRun], marks: Mapping[str, Mapping[str, Mark]], keys: Mapping[str, Key], pop: Population,
    bootstrap: Mapping[str, int],
) -> RubricResult:  # fmt: skip
    """Return every judge of one rubric together: one judge as it is, several combined per question."""
    names = [j.name for j in judges]
    kind = judges[0].kind
    combined: Mapping[str, Mark] = marks[names[0]]
    if len(names) > 1:
        per_question: dict[str, list[Mark]] = {}
        for name in names:
            for qid, mark in marks[name].items():
                per_question.setdefault(qid, []).append(mark)
        combined = {qid: combine(kind, found, keys[qid]) for qid, found in sorted(per_question.items())}
    return RubricResult(
        rubric=judges[0].rubric,
        kind=kind,
        judges=names,
        method="one judge" if len(names) == 1 else METHODS[kind].format(n=len(names)),
        pairs=inter_judge(kind, {n: marks[n] for n in names}, pop.counted_ids),
        **metrics(kind, combined, pop, bootstrap),
    )


def judge_result(
    judge: JudgeRun, marks: Mapping[str, Mark], pop: Population, bootstrap: Mapping[str, int]
) -> JudgeResult:
    """Return one judge run's grade, comparisons, coverage and its own tokens and cost."""
    fresh = judge.judgments
    error_ids = sorted(q for q, r in fresh.items() if r["status"] == "error")
    price = judge.model.get("price")
    tally = UsageTally()
    for qid in sorted(fresh):
        usage = fresh[qid].get("usage") or {}
        tally.add(fresh[qid], usage, record_cost(fresh[qid], usage, price if isinstance(price, dict) else {}))
    usage = usage_parts(tally, len(fresh))
    model = judge.model
    return JudgeResult(
        run=judge.name,
        rubric=judge.rubric,
        rubric_version=as_text(judge.header["rubric"].get("version")),
        kind=judge.kind,
        model=JudgeModel(
            name=as_text(model.get("name")),
            id=as_text(model.get("id")),
            display_name=as_text(model.get("display_name")),
            reasoning_effort=model.get("reasoning_effort"),
        ),
        judged=len(fresh) - len(error_ids),
        errors=len(error_ids),
        error_ids=error_ids,
        stale=len(judge.stale),
        stale_ids=sorted(judge.stale),
        unjudged=sum(i.status == "ok" and k.question_id not in fresh for k, i in pop.answered),
        tokens=usage["tokens"],
        cost_usd=usage["cost_usd"],
        cost_source=usage["cost_source"],
        **metrics(judge.kind, marks, pop, bootstrap),
    )


def annotate(items: Sequence[ScoredItem], judges: Sequence[JudgeRun], marks: Mapping[str, Mapping[str, Mark]]) -> None:
    """Put each judge's judgment of a question on its scored line (``ScoredItem.judges``; left None without)."""
    for item in items:
        entries = {}
        for judge in judges:
            entry = line_entry(judge, item, marks[judge.name].get(item.question_id))
            if entry is not None:
                entries[judge.name] = entry
        if entries:
            item.judges = entries


def judge_section(
    keys: Sequence[Key], items: Sequence[ScoredItem], judges: Sequence[JudgeRun], card: Mapping[str, Any],
    bootstrap: Mapping[str, int], where: str,
) -> JudgeSection | None:  # fmt: skip
    """Return the run's judges section (and annotate its scored lines), or None without judges or a judge grader.

    ``where`` is the run's judgments folder, named in the note of a judge-graded run without judgments.
    """
    record = card.get("rubric") if grader_of(card) == "judge" else None
    if not judges and record is None:
        return None
    by_id = {k.question_id: k for k in keys}
    pop = population(keys, items)
    marks = {j.name: marks_of(j, by_id) for j in judges}
    groups: dict[tuple[str, str], list[JudgeRun]] = {}
    for judge in judges:
        groups.setdefault((judge.rubric, judge.kind), []).append(judge)
    rubrics = [rubric_result(groups[g], marks, by_id, pop, bootstrap) for g in sorted(groups)]
    results = [judge_result(j, marks[j.name], pop, bootstrap) for j in judges]
    annotate(items, judges, marks)
    note = None
    if record is not None and all(r.rubric != record for r in rubrics):
        found = ", ".join(r.rubric for r in rubrics) or "none"
        note = (
            f"no judgments of rubric '{record}' for this run in {where} (rubrics judged: {found}); "
            f"its judge grade is None until judge.py grades the run with rubric {record}."
        )
    costs = [r.cost_usd for r in results]
    known = bool(costs) and all(c is not None for c in costs)
    return JudgeSection(
        grade_of_record=record,
        note=note,
        rubrics=rubrics,
        judges=results,
        cost_usd=round(sum(c or 0.0 for c in costs), 6) if known else None,
    )
