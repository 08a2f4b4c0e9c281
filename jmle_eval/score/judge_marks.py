"""One judge's grade of one question (a :class:`Mark`), a panel's combined grade, and what a scored line shows.

Pure functions on validated judgment records (``schema.Judgment``) and grading keys:

* ``choice`` (extract_choice): the letters the judge says the reply commits to, read with
  the parser's own helpers for the question's type and letters ("A, D" → a,d); "none" or
  anything unreadable means the judge decided nothing. Graded against the key like a parsed answer.
* ``verdict`` (match_answer): correct → 1, incorrect → 0.
* ``score`` (diagnosis_0_10): the score; its grade is score / 10.

Several judges of one rubric are combined per question (:func:`combine`): scores by their
mean, verdicts by majority (a tie counts as incorrect), letters by the answer most judges
read (a tie counts as no answer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jmle_eval.schema import ScoredItem
from jmle_eval.score.grade import Key, is_correct
from jmle_eval.score.judgments import JudgeRun
from jmle_eval.score.parse import normalise, read_answer

NO_ANSWER = frozenset({"", "none", "null", "n/a", "na", "no answer", "なし", "該当なし"})
"""What a judge writes when the reply commits to no option (after ``parse.normalise``)."""
RATIONALE_CAP = 1_000
"""Characters of a judge's rationale kept in a scored line (it is meant to be one or two sentences)."""


@dataclass(frozen=True, slots=True)
class Mark:
    """One question's grade by a judge (or a panel): what is compared, and the grade as 0–1."""

    label: str
    """The decision as text: the letters ("a,d", "none"), the verdict, or the score."""
    value: float
    """The grade: 1 right / 0 wrong, or score / 10."""
    answer: tuple[str, ...] | None = None
    """choice: the letters the judge read (None: it decided nothing)."""
    score: float | None = None
    """score: the 0–10 score (a panel's mean may be fractional)."""


def choice_answer(text: str, key: Key) -> tuple[str, ...] | None:
    """Return the answer a choice judge wrote ("C", "A, D", "b"), read for the question; None = no answer."""
    segment = normalise(text).strip()
    if segment in NO_ANSWER:
        return None
    return read_answer(segment, key.type, key.letters)


def mark_of(kind: str, judgment: dict[str, Any], key: Key) -> Mark:
    """Return the mark of one judgment's validated reply (``Judgment.judgment``) for its question."""
    if kind == "choice":
        answer = choice_answer(judgment["answer"], key)
        return Mark(",".join(answer) if answer else "none", float(is_correct(key, answer)), answer)
    if kind == "verdict":
        verdict = judgment["verdict"]
        return Mark(verdict, 1.0 if verdict == "correct" else 0.0)
    score = judgment["score"]
    return Mark(str(score), score / 10, score=float(score))


def marks_of(judge: JudgeRun, keys: dict[str, Key]) -> dict[str, Mark]:
    """Return the judge's marks by question id: its fresh judgments with a grade (status ok)."""
    return {
        qid: mark_of(judge.kind, record["judgment"], keys[qid])
        for qid, record in judge.judgments.items()
        if record["status"] == "ok"
    }


def combine(kind: str, marks: Sequence[Mark], key: Key) -> Mark:
    """Return a panel's mark of one question from its judges' marks (at least one)."""
    if kind == "score":
        mean = round(sum(m.score or 0.0 for m in marks) / len(marks), 4)
        return Mark(f"{mean:g}", mean / 10, score=mean)
    ranked = Counter(m.label for m in marks).most_common(2)
    tie = len(ranked) == 2 and ranked[0][1] == ranked[1][1]
    if kind == "verdict":
        return Mark("correct", 1.0) if ranked[0][0] == "correct" and not tie else Mark("incorrect", 0.0)
    if tie:
        return Mark("none", float(is_correct(key, None)))
    return next(m for m in marks if m.label == ranked[0][0])


def compared(kind: str, item: ScoredItem, mark: Mark) -> tuple[str, str] | None:
    """Return (parser, judge) decisions on a question both decided, or None (a score is never compared).

    The parser decided when it read an answer from a reply; a choice judge when it read letters.
    Letters are compared as labels; a verdict with the parser's right/wrong.
    """
    if kind == "score" or item.status != "ok" or item.predicted is None:
        return None
    if kind == "choice":
        return None if mark.answer is None else (",".join(item.predicted), mark.label)
    return ("correct" if item.correct else "incorrect", mark.label)


def line_entry(judge: JudgeRun, item: ScoredItem, mark: Mark | None) -> dict[str, Any] | None:
    """Return what a scored line records of one judge's judgment of its question, or None when there is none."""
    entry: dict[str, Any] = dict.fromkeys(
        ("grade", "correct", "score", "confidence", "extracted", "rationale", "agrees", "error")
    )
    entry.update(rubric=judge.rubric, kind=judge.kind)
    record = judge.judgments.get(item.question_id)
    if record is None:
        if item.question_id not in judge.stale:
            return None
        return {**entry, "status": "stale"}
    entry["status"] = record["status"]
    if mark is None:
        return {**entry, "error": record.get("error") or "the judge gave no grade"}
    reply = record["judgment"]
    both = compared(judge.kind, item, mark)
    entry.update(
        grade=mark.label,
        correct=None if judge.kind == "score" else mark.value == 1.0,
        score=reply.get("score"),
        confidence=reply.get("confidence"),
        extracted=reply.get("extracted_answer", reply.get("extracted_diagnosis", reply.get("answer"))),
        rationale=reply["rationale"][:RATIONALE_CAP],
        agrees=None if both is None else both[0] == both[1],
    )
    return entry
