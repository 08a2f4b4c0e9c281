"""Exam results: section points, per-candidate maximum, three-valued verdicts, stand-in, kinki, breakdowns."""

from __future__ import annotations

from jmle_eval.schema import ScoredItem
from jmle_eval.score.exams import breakdowns, exam_result, exam_results, graded_pairs, required_threshold
from jmle_eval.score.grade import Key, compile_key
from jmle_eval.score.lines import scored_item
from jmle_eval.score.parse import Parsed
from tests.test_grade import make_question

RULES = {
    "year": 2026,
    "pass": {"required_min": 8, "required_ratio": 0.8, "general_min": 3, "general_max": 4, "kinki_max": 0},
}


def exam(answers: dict[str, tuple[str, ...] | None], *, correct_only: str | None = None, kinki: str | None = None):
    """Return keys and scored items of a small exam: required B-1..B-4 (3 points), general A-1..A-4 (1 point)."""
    keys, items = [], []
    for block, section, points in (("B", "required", 3), ("A", "general", 1)):
        for n in range(1, 5):
            qid = f"120{block}-{n}"
            key = compile_key(
                make_question(
                    id=qid,
                    block=block,
                    number=n,
                    section=section,
                    points=points,
                    correct_only=qid == correct_only,
                    kinki=["e"] if qid == kinki else [],
                )
            )
            keys.append(key)
            items.append(line(key, answers[qid]) if qid in answers else line(key, None, "missing"))
    return keys, items


def line(key: Key, answer: tuple[str, ...] | None, status: str = "ok") -> ScoredItem:
    """Return the scored line the score stage writes for ``answer`` (read by the required-line rule)."""
    return scored_item(key, status, None, {}, Parsed(answer, "marker", True) if status == "ok" else None)


ALL = [f"120{b}-{n}" for b in "BA" for n in range(1, 5)]


def test_full_marks_pass_with_the_standard_maximum():
    keys, items = exam(dict.fromkeys(ALL, ("a",)))
    result = exam_result(keys, items, RULES)
    required = result.required
    assert (required.points, required.max, required.candidate_max, required.threshold) == (12, 12, 12, 8)
    assert required.passed is True and result.general.points == 4 and result.verdict == "pass"
    assert result.stand_in is None and "stand_in" not in result.model_dump()  # absent from the file, not null


def test_required_fail_fails_the_exam_even_with_unknown_general_criterion():
    keys, items = exam({**dict.fromkeys(ALL, ("a",)), "120B-1": ("b",), "120B-2": ("b",)})
    rules = {"pass": {**RULES["pass"], "general_min": None}}
    result = exam_result(keys, items, rules)
    assert result.required.passed is False and result.general.passed is None
    assert result.verdict == "fail"


def test_unknown_criteria_give_unknown_never_a_guess():
    keys, items = exam(dict.fromkeys(ALL, ("a",)))
    result = exam_result(keys, items, {"pass": {"required_min": None, "required_ratio": None, "general_min": None}})
    assert result.required.passed is None and result.verdict == "unknown"


def test_correct_only_question_counts_in_the_maximum_only_when_answered_correctly():
    wrong = {**dict.fromkeys(ALL, ("a",)), "120B-1": ("b",)}
    keys, items = exam(wrong, correct_only="120B-1")
    required = exam_result(keys, items, RULES).required
    # 9 of a candidate maximum of 9 (the missed correct-only question leaves the maximum): 80 % of 9 → 8
    assert (required.points, required.max, required.candidate_max) == (9, 12, 9)
    assert required.threshold == 8 and required.passed is True
    keys, items = exam(dict.fromkeys(ALL, ("a",)), correct_only="120B-1")
    assert exam_result(keys, items, RULES).required.candidate_max == 12


def test_required_threshold_uses_the_ratio_of_the_candidate_maximum():
    assert required_threshold(200, 200, {"required_min": 160, "required_ratio": 0.8}) == 160
    assert required_threshold(200, 197, {"required_min": 160, "required_ratio": 0.8}) == 158
    assert required_threshold(197, 197, {"required_min": None, "required_ratio": 0.8}) == 158
    assert required_threshold(200, 200, {"required_min": None, "required_ratio": 0.8}) == 160
    assert required_threshold(200, 200, {"required_min": None, "required_ratio": None}) is None


def test_missing_questions_make_the_exam_incomplete_but_keep_points_so_far():
    answers = dict.fromkeys(ALL[:-1], ("a",))
    keys, items = exam(answers)
    result = exam_result(keys, items, RULES)
    assert result.verdict == "incomplete" and result.missing == 1 and not result.complete
    assert result.required.points == 12 and result.general.points == 3


def test_kinki_picks_are_reported_but_do_not_decide_pass_or_fail():
    keys, items = exam({**dict.fromkeys(ALL, ("a",)), "120A-1": ("e",)}, kinki="120A-1")
    result = exam_result(keys, items, RULES)
    assert result.kinki.picks == 1 and result.kinki.over_max is True
    assert result.kinki.questions == ["120A-1"]
    assert result.verdict == "pass"


def test_stand_in_criteria_are_reported_separately_from_the_official_verdict():
    keys, items = exam(dict.fromkeys(ALL, ("a",)))
    rules = {
        "pass": {"required_min": None, "required_ratio": 0.8, "general_min": None},
        "stand_in_pass": {"required_min": 8, "general_min": 5, "label": "last year (stand-in)", "source": "s"},
    }
    result = exam_result(keys, items, rules)
    assert result.verdict == "unknown" and result.stand_in is not None
    assert result.stand_in.label == "last year (stand-in)"
    assert result.stand_in.general_threshold == 5 and result.stand_in.verdict == "fail"


def test_card_maximum_that_disagrees_with_the_data_is_noted():
    keys, items = exam(dict.fromkeys(ALL, ("a",)))
    result = exam_result(keys, items, {"pass": {**RULES["pass"], "general_max": 5}})
    assert result.notes and "general_max 5" in result.notes[0]


def test_exam_results_group_by_exam_number():
    keys, items = exam(dict.fromkeys(ALL, ("a",)))
    results = exam_results(keys, items, {"exams": {"120": RULES}})
    assert list(results) == ["120"] and results["120"].year == 2026


def test_breakdowns_count_only_answered_graded_questions():
    keys, items = exam({**dict.fromkeys(ALL[:-1], ("a",)), "120B-1": ("c",)})
    result = breakdowns(graded_pairs(keys, items))
    assert result["by_block"]["120B"].model_dump() == {"correct": 3, "n": 4, "accuracy": 0.75}
    assert result["by_block"]["120A"].n == 3  # 120A-4 has no file
    assert result["by_section"]["required"].n == 4
    assert result["vs_human"] is None


def test_model_against_examinee_accuracy_where_known():
    keys = [
        compile_key(make_question(id=f"120A-{n}", number=n, human_accuracy=h))
        for n, h in enumerate([95.0, 90.0, 40.0, 30.0], 1)
    ]
    items = [line(k, ("a",) if ok else ("b",)) for k, ok in zip(keys, [True, True, False, False], strict=True)]
    human = breakdowns(graded_pairs(keys, items))["vs_human"]
    assert human.n == 4 and human.model_accuracy == 0.5
    assert human.human_mean_when_model_right == 0.925 and human.human_mean_when_model_wrong == 0.35
    assert human.point_biserial is not None and human.point_biserial > 0.9
    assert human.by_human_accuracy[">=95%"].model_dump() == {"correct": 1, "n": 1, "accuracy": 1.0}
