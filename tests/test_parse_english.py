"""The answer parser on English replies (``Answer: C``): what models write, read; articles and hedges, never."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jmle_eval.score.parse import parse
from jmle_eval.score.parse_en import marker_language

MARKER = "Answer: "
FIVE, TEN = "abcde", "abcdefghij"
RULES = {"marker", "final_answer", "label", "answer_is", "boxed", "marker_variant", "bare", "last_line"}

# (reply, question type, option letters, expected answer or None, expected rule, strict)
CASES = [
    # the required line, and the marker as models bend it
    ("Answer: C", "single", FIVE, ("c",), "marker", True),
    ("Long reasoning about the case.\n\nAnswer: B", "single", FIVE, ("b",), "marker", True),
    ("Answer: A,C", "multi", FIVE, ("a", "c"), "marker", True),
    ("Answer: C, E", "multi", FIVE, ("c", "e"), "marker", True),
    ("Answer: c", "single", FIVE, ("c",), "marker", True),  # the marker exactly, the letter in one case
    ("answer: c", "single", FIVE, ("c",), "marker", False),  # the marker in another case: read, not strict
    ("ANSWER: C", "single", FIVE, ("c",), "marker", False),
    ("**Answer:** (C)", "single", FIVE, ("c",), "marker", False),
    ("Answer: (C) Pneumonia", "single", FIVE, ("c",), "marker", False),
    ("Answer: C. Pneumonia", "single", FIVE, ("c",), "marker", False),
    ("Answer: C) Pneumonia", "single", FIVE, ("c",), "marker", False),
    ("Answer: C - Pneumonia", "single", FIVE, ("c",), "marker", False),
    ("Answer: C Pneumonia", "single", FIVE, ("c",), "marker", False),
    ("Answer: **C**", "single", FIVE, ("c",), "marker", False),
    ("Answer: Option C", "single", FIVE, ("c",), "marker", False),
    ("Answer:\n\n(D)", "single", FIVE, ("d",), "marker", False),
    ("Answer: C and E", "multi", FIVE, ("c", "e"), "marker", False),
    ("Answer: C, D, and E", "multi", FIVE, ("c", "d", "e"), "marker", False),
    ("Answer: (C) and (E)", "multi", FIVE, ("c", "e"), "marker", False),
    ("Answer: E, C", "multi", FIVE, ("c", "e"), "marker", True),
    ("Answer: J", "single", TEN, ("j",), "marker", True),
    ("Answer: (H) Amyloidosis", "single", TEN, ("h",), "marker", False),
    ("Answer: A and I", "multi", TEN, ("a", "i"), "marker", False),
    # the last committed answer wins
    ("Answer: B\n\nWait, re-checking the potassium…\n\nAnswer: D", "single", FIVE, ("d",), "marker", True),
    ("The answer is B.\nOn reflection it is not.\nAnswer: D", "single", FIVE, ("d",), "marker", True),
    ("Answer: B\nHmm, no. The correct answer is (D).", "single", FIVE, ("d",), "answer_is", False),
    ("Answer: C\n\nWhy: the answer is not B because the lipase is high.", "single", FIVE, ("c",), "marker", True),
    ("Answer: C\n\nSo the correct answer is C.", "single", FIVE, ("c",), "marker", True),  # the required line says it
    ("<think>Answer: A</think>\nAnswer: B", "single", FIVE, ("b",), "marker", True),
    # other English forms, each named
    ("The answer is C.", "single", FIVE, ("c",), "answer_is", False),
    ("The correct answer is (B).", "single", FIVE, ("b",), "answer_is", False),
    ("Therefore, the answer is: **E**", "single", FIVE, ("e",), "answer_is", False),
    ("The answer is C because the lipase is high.", "single", FIVE, ("c",), "answer_is", False),
    ("The best option is C.", "single", FIVE, ("c",), "answer_is", False),
    ("The correct answers are B and D.", "multi", FIVE, ("b", "d"), "answer_is", False),
    ("The answer is a.", "single", FIVE, ("a",), "answer_is", False),
    ("Final answer: C", "single", FIVE, ("c",), "final_answer", False),
    ("Final Answer: **D**", "single", FIVE, ("d",), "final_answer", False),
    ("My final answer is (A).", "single", FIVE, ("a",), "final_answer", False),
    ("### Final Answer\nD", "single", FIVE, ("d",), "final_answer", False),
    ("Answers: C, E", "multi", FIVE, ("c", "e"), "label", False),
    ("**Answer**\n(C)", "single", FIVE, ("c",), "label", False),
    ("\\boxed{C}", "single", FIVE, ("c",), "boxed", False),
    ("\\boxed{\\text{C}}", "single", FIVE, ("c",), "boxed", False),
    ("So we get $\\boxed{\\textbf{B}}$.", "single", FIVE, ("b",), "boxed", False),
    ("\\boxed{C, E}", "multi", FIVE, ("c", "e"), "boxed", False),
    ("[Answer] C", "single", FIVE, ("c",), "marker_variant", False),
    ("【回答】c", "single", FIVE, ("c",), "marker_variant", False),
    ("C", "single", FIVE, ("c",), "bare", False),
    ("(A)", "single", FIVE, ("a",), "bare", False),
    ("Reasoning about the case.\n\nC.", "single", FIVE, ("c",), "last_line", False),
    ("The answer is 42.", "numeric", FIVE, ("42",), "answer_is", False),
    # never a guess: articles, pronouns, words that start with a letter, hedges, non-options
    ("A 45-year-old man presents with chest pain.", "single", FIVE, None, None, False),
    ("Reasoning.\nA 45-year-old man with chest pain", "single", FIVE, None, None, False),
    ("I think it could be A or B", "single", FIVE, None, None, False),
    ("I think it could be A or B", "single", TEN, None, None, False),
    ("This is a classic case of a disease.", "single", FIVE, None, None, False),
    ("Answer: F", "single", FIVE, None, None, False),
    ("Answer: the patient needs surgery", "single", FIVE, None, None, False),
    ("Answer: a 45-year-old man needs surgery", "single", FIVE, None, None, False),
    ("Answer: A patient like this needs surgery", "single", FIVE, None, None, False),
    ("Answer: I think it is C", "single", TEN, None, None, False),
    ("Answer: C or E", "single", FIVE, None, None, False),
    ("Answer: C, or maybe E", "single", FIVE, None, None, False),
    ("Answer: C/E", "multi", FIVE, None, None, False),
    ("Answer: B cells", "single", FIVE, None, None, False),
    ("Answer: C-reactive protein", "single", FIVE, None, None, False),
    ("Answer: B12 deficiency", "single", FIVE, None, None, False),
    ("The answer is e.g. obvious", "single", FIVE, None, None, False),
    ("The answer is a bit unclear.", "single", FIVE, None, None, False),
    ("The answer is not A.", "single", FIVE, None, None, False),
    ("The answer is C.\n\nAnswer: none of these", "single", FIVE, None, None, False),  # the last label is prose
    ("Before my final answer, I note that C is plausible.", "single", FIVE, None, None, False),
    ("\\boxed{x}", "single", FIVE, None, None, False),
    ("I am not sure.", "single", FIVE, None, None, False),
    ("", "single", FIVE, None, None, False),
]


@pytest.mark.parametrize(("reply", "qtype", "letters", "answer", "rule", "strict"), CASES)
def test_parser_reads_what_models_write_in_english(reply, qtype, letters, answer, rule, strict):
    got = parse(reply, qtype, letters, marker=MARKER)
    assert (got.answer, got.rule, got.strict) == (answer, rule, strict)


def test_the_marker_picks_the_language_and_an_explicit_language_overrides_it():
    assert marker_language("【回答】") == "ja" and marker_language("Answer: ") == "en"
    assert parse("The answer is e.", "single").rule == "label"  # a Japanese run keeps its rule names
    assert parse("The answer is e.", "single", language="en").rule == "answer_is"
    assert parse("Answer: C", "single", marker="Answer: ", language="ja").rule == "marker"


def test_a_japanese_run_reads_exactly_as_before():
    for reply in [
        "【回答】a、ace阻害薬を追加",
        "Answer: a 45-year-old",
        "最も可能性が高いのは b です。",
        "説明です。\n\nc",
    ]:
        assert parse(reply, "multi") == parse(reply, "multi", language="ja")
    assert parse("【回答】d急性喉頭蓋炎", "single").answer == ("d",)


_PROSE = [
    "A 45-year-old man presents with fever.",
    "I think it could be A or B.",
    "Option A is unlikely given the history.",
    "The answer is not obvious at first.",
    "Vitamin B12 and C-reactive protein are normal.",
    "B cells are involved, e.g. in lymphoma.",
    "Let us consider each option in turn.",
]


def _styles(gold: list[str]) -> list[str]:
    upper = [letter.upper() for letter in gold]
    last = ", and " if len(upper) > 2 else " and "  # "C and E", "C, D, and E"
    listed = upper[0] if len(upper) == 1 else ", ".join(upper[:-1]) + last + upper[-1]
    return [
        "Answer: " + ",".join(upper),  # the required line
        "Answer: " + ", ".join(upper),
        "**Answer:** " + " and ".join(f"({letter})" for letter in upper),
        "answer: " + ", ".join(gold),
        f"The correct answer is {listed}.",
        "Final Answer: **" + ", ".join(upper) + "**",
        "\\boxed{" + ",".join(upper) + "}",
        "\\boxed{\\text{" + ", ".join(upper) + "}}",
        "Answer: " + listed,
    ]


@st.composite
def _questions(draw: st.DrawFn) -> tuple[str, list[str]]:
    letters = "abcdefghij"[: draw(st.integers(2, 10))]
    gold = sorted(draw(st.lists(st.sampled_from(letters), min_size=1, max_size=len(letters), unique=True)))
    return letters, gold


@settings(max_examples=200, deadline=None)
@given(question=_questions(), reasoning=st.lists(st.sampled_from(_PROSE), max_size=5), style=st.integers(0, 8))
def test_a_final_answer_line_in_any_style_parses_to_exactly_its_letters(question, reasoning, style):
    letters, gold = question
    earlier = f"Answer: {'B' if gold != ['b'] else 'A'}\nWait, let me re-check.\n"  # a revised answer before it
    reply = earlier + "\n".join(reasoning) + "\n\n" + _styles(gold)[style]
    got = parse(reply, "multi" if len(gold) > 1 else "single", letters, marker=MARKER)
    assert got.answer == tuple(gold), reply
    assert got.strict == (style in (0, 1) or (style == 8 and len(gold) == 1)), reply


_WORDS = ["a", "A", "I", "i", "an", "the", "patient", "is", "answer", "option", "or", "and", "B", "cells", "K", "Z",
          "vitamin", "e.g.", "45-year-old", "C-reactive", "could", "be", ",", ".", "\n"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 10), words=st.lists(st.sampled_from(_WORDS), max_size=40))
def test_prose_never_parses_to_a_letter_outside_the_options(n, words):
    letters = "abcdefghij"[:n]
    got = parse(" ".join(words), "single", letters, marker=MARKER)
    assert got.answer is None or set(got.answer) <= set(letters)
    assert (got.answer is None) == (got.rule is None) and got.rule in RULES | {None}


_ARTICLE_PROSE = st.lists(st.sampled_from(["a", "A", "I", "patient", "man", "has", "fever", "chest", "pain"]))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 10),
    sentences=st.lists(_ARTICLE_PROSE.filter(lambda s: len(s) >= 2), min_size=1, max_size=5),
    lead=st.sampled_from(["", "The answer is ", "Answer: ", "Final answer: "]),
)
def test_articles_and_pronouns_in_prose_are_never_an_answer(n, sentences, lead):
    reply = "\n".join(lead + " ".join(words) + "." for words in sentences)
    assert parse(reply, "single", "abcdefghij"[:n], marker=MARKER).answer is None
