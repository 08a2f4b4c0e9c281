"""Answer vs answer key → correct or not, points, prohibited-choice picks.

The exam's rules, as data on each question: an exact set match for multi-select
questions (choosing the wrong number of letters is wrong), any accepted alternative
counts, numbers compare as numbers (``0.4`` equals ``0.40``, ``0.404`` does not),
``all_credited`` questions are correct for everyone, and ``points == 0`` questions
are excluded from every denominator (``counted`` is False).

:func:`compile_keys` turns questions into small immutable :class:`Key` records once
per data set, so the hot loop (:func:`grade`) does no validation and no parsing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from jmle_eval.schema import Question, QuestionType, Section
from jmle_eval.score.parse import DEFAULT_LETTERS


@dataclass(frozen=True, slots=True)
class Key:
    """Everything grading and the exam results need to know about one question."""

    question_id: str
    exam: int | None  # None: a benchmark without exam structure (English multiple choice)
    block: str | None
    number: int | None
    section: Section | None
    type: QuestionType
    select: int
    letters: str
    accepted: tuple[frozenset[str], ...]
    numbers: tuple[Decimal, ...]
    points: int
    all_credited: bool
    correct_only: bool
    kinki: frozenset[str]
    requires_image: bool
    human_accuracy: float | None
    category: str | None
    gold: tuple[tuple[str, ...], ...]
    attributes: tuple[tuple[str, str], ...] = ()
    """The question's breakdown fields (e.g. medical_task, subject), sorted by name."""

    @property
    def counted(self) -> bool:
        """Return whether the question counts at all (``points > 0``)."""
        return self.points > 0


@dataclass(frozen=True, slots=True)
class Grade:
    """The verdict on one answer."""

    correct: bool
    points: int
    kinki_hits: tuple[str, ...] = ()


def to_decimal(value: str) -> Decimal | None:
    """Return ``value`` (``"1,130"``, ``"0.40"``) as a Decimal, or None if it is not a number."""
    try:
        number = Decimal(value.replace(",", "").strip())
    except (InvalidOperation, AttributeError):
        return None
    return number if number.is_finite() else None


def compile_key(question: Question) -> Key:
    """Return the grading key of one question."""
    numeric = question.type == "numeric"
    numbers = tuple(n for a in question.accepted_answers if (n := to_decimal(a[0])) is not None) if numeric else ()
    letters = "".join(letter for letter, _ in question.choices) or DEFAULT_LETTERS
    return Key(
        question_id=question.id,
        exam=question.exam,
        block=question.block,
        number=question.number,
        section=question.section,
        type=question.type,
        select=question.select,
        letters=letters.lower(),
        accepted=() if numeric else tuple(frozenset(a) for a in question.accepted_answers),
        numbers=numbers,
        points=question.points,
        all_credited=question.all_credited,
        correct_only=question.correct_only,
        kinki=frozenset(question.kinki),
        requires_image=question.requires_image,
        human_accuracy=question.human_accuracy,
        category=question.category,
        gold=tuple(tuple(a) for a in question.accepted_answers),
        attributes=tuple(sorted((getattr(question, "attributes", None) or {}).items())),
    )


def compile_keys(questions: Iterable[Question]) -> dict[str, Key]:
    """Return the grading keys by question id, in exam order."""
    return {q.id: compile_key(q) for q in questions}


def is_correct(key: Key, answer: tuple[str, ...] | None) -> bool:
    """Return whether ``answer`` (parsed; None = no answer) earns the question's points."""
    if key.all_credited:
        return True
    if answer is None:
        return False
    if key.type == "numeric":
        if len(answer) != 1:
            return False
        value = to_decimal(answer[0])
        return value is not None and value in key.numbers
    return frozenset(answer) in key.accepted


def grade(key: Key, answer: tuple[str, ...] | None) -> Grade:
    """Return the verdict on ``answer``: correct, points earned, prohibited choices picked."""
    correct = is_correct(key, answer)
    hits = tuple(sorted(key.kinki.intersection(answer))) if key.kinki and answer else ()
    return Grade(correct, key.points if correct else 0, hits)
