"""Exam results of one run: section points, maxima, pass/fail, prohibited choices, breakdowns.

Pass criteria are data (``conf/dataset/<name>.yaml`` → ``exams.<n>.pass``); a null
criterion gives "unknown", never a guess. Verdicts are three-valued: a section
that is known to fail fails the exam even when the other criterion is unknown.

Required section (必修): pass = points ≥ ``required_min`` when the candidate's
maximum is the standard one, else ≥ ceil(``required_ratio`` × the candidate's own
maximum) — a ``correct_only`` question (正解者のみ採点) adds its points to the
maximum only for a candidate who answered it correctly (MHLW rule).
Prohibited-choice picks use IgakuQA's unofficial ``kinki`` labels: reported beside
the verdict with the card's ``kinki_max``, never a pass/fail reason on their own.

Input rows are scored lines (``schema.ScoredItem``) aligned with keys.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from jmle_eval.errors import UserError
from jmle_eval.schema import ScoredItem
from jmle_eval.score.grade import Key
from jmle_eval.score.records import ExamResult, Kinki, SectionResult, StandIn, Tally, Total, Verdict, VsHuman

ANSWERED = ("ok", "error")
"""Statuses of questions that have a prediction file (they count in accuracy)."""

SECTIONS = ("required", "general")
HUMAN_BINS = ((0.0, 50.0, "<50%"), (50.0, 80.0, "50-80%"), (80.0, 95.0, "80-95%"), (95.0, 100.01, ">=95%"))
KINKI_NOTE = "unofficial IgakuQA labels; not a pass/fail reason on their own"

Pairs = Sequence[tuple[Key, ScoredItem]]


def _ratio(num: float, den: float, digits: int = 4) -> float | None:
    return round(num / den, digits) if den else None


def _section(pairs: Pairs) -> SectionResult:
    points = standard = candidate = 0
    for key, item in pairs:
        if not key.counted:
            continue
        points += item.points
        standard += key.points
        if not key.correct_only or item.correct:
            candidate += key.points
    return SectionResult(points=points, max=standard, candidate_max=candidate, pct=_ratio(100 * points, candidate, 2))


def required_threshold(maximum: int, candidate_max: int, rules: Mapping[str, Any]) -> int | None:
    """Return the required-section pass mark for a candidate with this maximum, or None if unknown."""
    minimum, ratio = rules.get("required_min"), rules.get("required_ratio")
    if minimum is not None and candidate_max == maximum:
        return int(minimum)
    if ratio is not None:
        return math.ceil(float(ratio) * candidate_max - 1e-9)
    return None


def _verdict(complete: bool, checks: Sequence[bool | None]) -> Verdict:
    if not complete:
        return "incomplete"
    if any(c is False for c in checks):
        return "fail"
    if all(c is True for c in checks):
        return "pass"
    return "unknown"


class Checks(NamedTuple):
    """Both sections against one set of criteria: pass marks (None = unknown) and whether each is reached."""

    required_threshold: int | None
    required_pass: bool | None
    general_threshold: int | None
    general_pass: bool | None

    def verdict(self, complete: bool) -> Verdict:
        """Return the exam verdict these checks give."""
        return _verdict(complete, (self.required_pass, self.general_pass))


def check(required: SectionResult, general: SectionResult, rules: Mapping[str, Any]) -> Checks:
    """Return both sections checked against ``rules`` (``required_min``, ``required_ratio``, ``general_min``)."""
    req_mark = required_threshold(required.max, required.candidate_max, rules)
    gen_min = rules.get("general_min")
    gen_mark = None if gen_min is None else int(gen_min)
    return Checks(
        req_mark,
        None if req_mark is None else required.points >= req_mark,
        gen_mark,
        None if gen_mark is None else general.points >= gen_mark,
    )


def _stand_in(
    required: SectionResult, general: SectionResult, rules: Mapping[str, Any], complete: bool
) -> StandIn | None:
    stand_in = rules.get("stand_in_pass")
    if not stand_in:
        return None
    criteria = rules.get("pass") or {}
    merged = {**criteria, **{k: v for k, v in stand_in.items() if k in ("required_min", "general_min")}}
    checks = check(required, general, merged)
    return StandIn(
        label=stand_in.get("label", "stand-in criteria"),
        source=stand_in.get("source"),
        **checks._asdict(),
        verdict=checks.verdict(complete),
    )


def _kinki(items: Sequence[ScoredItem], kinki_max: Any) -> Kinki:
    picks = sorted(i.question_id for i in items if i.kinki_hits)
    return Kinki(
        picks=sum(len(i.kinki_hits) for i in items),
        questions=picks,
        max=kinki_max,
        over_max=None if kinki_max is None else len(picks) > int(kinki_max),
        note=KINKI_NOTE,
    )


def exam_result(keys: Sequence[Key], items: Sequence[ScoredItem], rules: Mapping[str, Any]) -> ExamResult:
    """Return one exam's result: sections, verdict, stand-in verdict, kinki picks, completeness."""
    pairs = list(zip(keys, items, strict=True))
    required, general = (_section([p for p in pairs if p[0].section == s]) for s in SECTIONS)
    missing = sum(i.status == "missing" for i in items)
    not_asked = sum(i.status == "not_asked" for i in items)
    complete = missing == 0 and not_asked == 0
    criteria = rules.get("pass") or {}
    checks = check(required, general, criteria)
    required.threshold, required.passed = checks.required_threshold, checks.required_pass
    general.threshold, general.passed = checks.general_threshold, checks.general_pass
    notes = []
    if criteria.get("general_max") is not None and int(criteria["general_max"]) != general.max:
        notes.append(f"card says general_max {criteria['general_max']}, the data's points sum to {general.max}")
    return ExamResult(
        year=rules.get("year"),
        questions=len(keys),
        missing=missing,
        not_asked=not_asked,
        complete=complete,
        required=required,
        general=general,
        total=Total(points=required.points + general.points, max=required.max + general.max),
        verdict=checks.verdict(complete),
        criteria_source=criteria.get("source"),
        kinki=_kinki(items, criteria.get("kinki_max")),
        notes=notes,
        stand_in=_stand_in(required, general, rules, complete),
    )


def exam_results(keys: Sequence[Key], items: Sequence[ScoredItem], card: Mapping[str, Any]) -> dict[str, ExamResult]:
    """Return the result of every exam in the data set, keyed by exam number (as a string)."""
    groups: dict[int, tuple[list[Key], list[ScoredItem]]] = defaultdict(lambda: ([], []))
    for key, item in zip(keys, items, strict=True):
        if key.exam is None:
            raise UserError(
                f"conf/dataset/{card.get('name')}.yaml says grader: exam, but question {key.question_id} belongs to "
                "no exam (a benchmark without exam rules). Set grader: choice for this data set."
            )
        groups[key.exam][0].append(key)
        groups[key.exam][1].append(item)
    exams = card.get("exams") or {}
    return {str(n): exam_result(*groups[n], exams.get(str(n)) or exams.get(n) or {}) for n in sorted(groups)}


def _tally(pairs: Pairs, label: Callable[[Key], str | None]) -> dict[str, Tally]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, item in pairs:
        name = label(key)
        if name is not None:
            counts[name][0] += item.correct
            counts[name][1] += 1
    return {name: Tally(correct=c, n=n, accuracy=_ratio(c, n)) for name, (c, n) in sorted(counts.items())}


def graded_pairs(keys: Sequence[Key], items: Sequence[ScoredItem]) -> list[tuple[Key, ScoredItem]]:
    """Return the (key, item) pairs that count in accuracy: answered (file present), not excluded."""
    return [
        (k, i) for k, i in zip(keys, items, strict=True) if k.counted and i.status in ANSWERED and k.type != "free"
    ]  # a free-text answer has no parsed grade: only a judge grades it


def _attribute(name: str, key: Key) -> str | None:
    return dict(key.attributes).get(name)


def breakdowns(pairs: Pairs, attributes: Sequence[str] = ()) -> dict[str, Any]:
    """Return accuracy by block, section, question type, image need, category and human difficulty.

    ``pairs`` are the graded (key, item) pairs (:func:`graded_pairs`); ``attributes`` are the
    card's ``breakdowns`` (question fields such as medical_task), each a ``by_attribute`` entry.
    """
    extra = {}
    if attributes:
        by = {name: _tally(pairs, functools.partial(_attribute, name)) for name in attributes}
        extra["by_attribute"] = by
    return {
        **extra,
        "by_block": _tally(pairs, lambda k: None if k.block is None else f"{k.exam or ''}{k.block}"),
        "by_section": _tally(pairs, lambda k: k.section),
        "by_type": _tally(pairs, lambda k: k.type),
        "by_image": _tally(pairs, lambda k: "image" if k.requires_image else "text_only"),
        "by_category": _tally(pairs, lambda k: k.category),
        "vs_human": vs_human(pairs),
    }


def vs_human(pairs: Pairs) -> VsHuman | None:
    """Return the model against examinee accuracy (IgakuQA metadata), or None where unknown."""
    known = [(k.human_accuracy, i.correct) for k, i in pairs if k.human_accuracy is not None]
    if not known:
        return None
    from jmle_eval.score.stats import point_biserial

    right = [h for h, ok in known if ok]
    wrong = [h for h, ok in known if not ok]
    bins = {}
    for low, high, name in HUMAN_BINS:
        inside = [ok for h, ok in known if low <= h < high]
        bins[name] = Tally(correct=sum(inside), n=len(inside), accuracy=_ratio(sum(inside), len(inside)))
    return VsHuman(
        n=len(known),
        model_accuracy=_ratio(len(right), len(known)),
        human_mean_accuracy=round(sum(h for h, _ in known) / len(known) / 100, 4),
        human_mean_when_model_right=_ratio(sum(right), 100 * len(right)) if right else None,
        human_mean_when_model_wrong=_ratio(sum(wrong), 100 * len(wrong)) if wrong else None,
        point_biserial=point_biserial([ok for _, ok in known], [h for h, _ in known]),
        by_human_accuracy=bins,
    )
