"""Grading rules: exact sets, alternatives, numbers as numbers, credited and excluded questions, kinki."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jmle_eval.schema import Question
from jmle_eval.score.grade import compile_key, compile_keys, grade, is_correct, to_decimal
from tests.score_fixtures import questions


def make_question(**fields) -> Question:
    """Return a synthetic question; fields override the defaults."""
    base = {
        "id": "120A-1",
        "dataset": "synthetic",
        "exam": 120,
        "year": 2026,
        "block": "A",
        "number": 1,
        "section": "general",
        "type": "single",
        "select": 1,
        "stem": "stem",
        "choices": [(x, x.upper()) for x in "abcde"],
        "accepted_answers": [["a"]],
        "points": 1,
    }
    return Question(**{**base, **fields})


MULTI = make_question(type="multi", select=2, accepted_answers=[["a", "c"]], points=3)
NUMERIC = make_question(type="numeric", choices=[], accepted_answers=[["0.40"]])
ALTERNATIVES = make_question(accepted_answers=[["a"], ["d"]], points=3)


@pytest.mark.parametrize(
    ("question", "answer", "correct"),
    [
        (MULTI, ("a", "c"), True),
        (MULTI, ("a",), False),  # too few letters
        (MULTI, ("a", "c", "e"), False),  # too many letters
        (MULTI, ("a", "b"), False),
        (ALTERNATIVES, ("a",), True),
        (ALTERNATIVES, ("d",), True),
        (ALTERNATIVES, ("a", "d"), False),  # both alternatives at once is not an answer
        (ALTERNATIVES, ("b",), False),
        (NUMERIC, ("0.4",), True),
        (NUMERIC, ("0.40",), True),
        (NUMERIC, ("0.400",), True),
        (NUMERIC, ("0.404",), False),
        (NUMERIC, ("0.41",), False),
        (NUMERIC, ("abc",), False),
        (NUMERIC, None, False),
        (MULTI, None, False),
    ],
)
def test_answers_are_graded_like_the_exam(question, answer, correct):
    key = compile_key(question)
    verdict = grade(key, answer)
    assert verdict.correct is correct
    assert verdict.points == (question.points if correct else 0)


def test_thousands_separators_and_signs_compare_as_numbers():
    key = compile_key(make_question(type="numeric", choices=[], accepted_answers=[["1130"]]))
    assert is_correct(key, ("1130",)) and is_correct(key, ("1,130",)) and is_correct(key, ("1130.0",))
    assert to_decimal("1,130") == Decimal(1130)
    assert to_decimal("nan") is None and to_decimal("x") is None


def test_all_credited_question_is_correct_even_without_an_answer():
    key = compile_key(make_question(all_credited=True, accepted_answers=[["e"]]))
    assert grade(key, None).correct and grade(key, ("b",)).points == 1


def test_excluded_question_is_not_counted_and_earns_nothing():
    key = compile_key(make_question(points=0))
    assert not key.counted
    assert grade(key, ("a",)).points == 0


def test_kinki_picks_are_the_predicted_letters_listed_as_prohibited():
    key = compile_key(make_question(kinki=["b", "d"]))
    assert grade(key, ("b",)).kinki_hits == ("b",)
    assert grade(key, ("a",)).kinki_hits == ()
    assert compile_key(MULTI).kinki == frozenset()
    assert grade(compile_key(make_question(type="multi", select=2, kinki=["d"])), ("c", "d")).kinki_hits == ("d",)


def test_letters_of_the_key_follow_the_question_choices():
    key = compile_key(make_question(choices=[(x, x) for x in "abcdefgh"]))
    assert key.letters == "abcdefgh"
    assert compile_key(NUMERIC).letters == "abcde"


def test_data_set_keys_reproduce_the_official_exam_rules():
    keys = compile_keys(questions("igakuqa"))
    assert is_correct(keys["112B-30"], ("a",)) and is_correct(keys["112B-30"], ("d",))
    assert keys["116A-71"].all_credited and is_correct(keys["116A-71"], None)
    assert sum(not k.counted for k in keys.values()) == 11
    assert is_correct(keys["113F-84"], ("7.2",)) and is_correct(keys["113F-84"], ("7.20",))
    assert not is_correct(keys["113F-84"], ("7.21",))
