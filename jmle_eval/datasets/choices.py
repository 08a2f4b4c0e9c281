"""Multiple-choice fields of English sets: options, answers and ids in the forms sources write them.

Pure functions shared by the MedXpertQA reader (``english.py``) and the reader of a researcher's own
file (``custom.py``). They raise :class:`RowError` with what is wrong with one record; the reader adds
the file and line. Letters are stored lower case (``a`` … ``z``), as the JMLE sets store them; the
English prompt template shows them as ``(A)`` … ``(Z)``.
"""

from __future__ import annotations

import ast
import json
import re
import string
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

SAFE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
"""A question id is a file name of every stage (``predictions/<dataset>/<run>/<id>.json``)."""
MAX_OPTIONS = 26
ANSWER_CHOICES = "Answer Choices:"

Choices = list[tuple[str, str]]


class RowError(ValueError):
    """One record of a source is not a usable question; the message says why (without file and line)."""


def literal(value: Any) -> Any:
    """Return ``value``, or the list or dict it spells when it is text (JSON, or a Python literal as upstream)."""
    if not isinstance(value, str) or not value.strip().startswith(("[", "{")):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise RowError(f"{value[:60]!r} is neither JSON nor a Python literal") from exc


def check_id(qid: Any) -> str:
    """Return ``qid`` as text when it is a safe file name (letters, digits, ``. _ -``); raise RowError if not."""
    text = str(qid).strip() if isinstance(qid, str | int) and not isinstance(qid, bool) else ""
    if not SAFE_ID.match(text):
        raise RowError(
            f"id {qid!r} is not a safe file name (letters, digits, '.', '_' and '-' only, not starting with '.'); "
            "every question is stored in a file named after its id"
        )
    return text


def _lettered(texts: list[Any]) -> Choices:
    return [(string.ascii_lowercase[i], str(t).strip()) for i, t in enumerate(texts)]


def options(value: Any) -> Choices:
    """Return ``[(letter, text)]`` of a list of texts (a, b, …), a dict letter → text or ``[{letter, content}]``."""
    value = literal(value)
    if isinstance(value, Mapping):
        pairs = [(str(k).strip().lower(), str(v).strip()) for k, v in value.items()]
    elif isinstance(value, list) and value and all(isinstance(o, Mapping) for o in value):
        if not all("letter" in o and "content" in o for o in value):
            raise RowError("each option must have 'letter' and 'content'")
        pairs = [(str(o["letter"]).strip().lower(), str(o["content"]).strip()) for o in value]
    elif isinstance(value, list):
        if len(value) > MAX_OPTIONS:
            raise RowError(f"{len(value)} options, more than the {MAX_OPTIONS} letters a-z")
        pairs = _lettered(value)
    else:
        raise RowError(f"options must be a list or a letter → text mapping (got {str(value)[:60]!r})")
    return _checked(pairs)


def _checked(pairs: Choices) -> Choices:
    if len(pairs) > MAX_OPTIONS:
        raise RowError(f"{len(pairs)} options, more than the {MAX_OPTIONS} letters a-z")
    if len(pairs) < 2:
        raise RowError(f"{len(pairs)} option(s); a multiple-choice question needs at least 2")
    letters = [letter for letter, _ in pairs]
    if any(len(x) != 1 or x not in string.ascii_lowercase for x in letters) or len(set(letters)) != len(letters):
        raise RowError(f"option letters {letters} are not distinct single letters a-z")
    empty = [letter for letter, text in pairs if not text]
    if empty:
        raise RowError(f"option(s) {', '.join(empty)} have no text")
    return pairs


def split_answer_choices(question: str) -> tuple[str, Choices]:
    """Return (stem, choices) of a question whose options follow ``Answer Choices:`` as ``(A) … (B) …``.

    Options are found in letter order, each marker after the previous one, so an option may itself
    contain parentheses (``V(D)J recombination``, ``Both (A) & (C)``) without ending early.
    """
    stem, found, tail = question.rpartition(ANSWER_CHOICES)
    if not found:
        raise RowError(f"no options: the question has no {ANSWER_CHOICES!r} line and the record no options")
    tail = tail.strip()
    marks: list[tuple[str, int, int]] = []  # letter, where its marker starts, where its text starts
    for letter in string.ascii_uppercase:
        m = re.compile(rf"(?:^|\s)\({letter}\)(?:\s|$)").search(tail, marks[-1][2] if marks else 0)
        if m is None or (not marks and m.start() != 0):
            break
        marks.append((letter.lower(), m.start(), m.end()))
    if not marks:
        raise RowError(f"the text after {ANSWER_CHOICES!r} does not start with '(A) '")
    ends = [start for _, start, _ in marks[1:]] + [len(tail)]
    pairs = [(letter, tail[begin:end].strip()) for (letter, _, begin), end in zip(marks, ends, strict=True)]
    return stem.strip(), _checked(pairs)


def stem_of(question: str) -> str:
    """Return the question text before ``Answer Choices:`` (all of it when there is none)."""
    stem, found, _ = question.rpartition(ANSWER_CHOICES)
    return (stem if found else question).strip()


def answer(value: Any, choices: Choices) -> list[str]:
    """Return the sorted answer letters of a letter, a list of letters, ``"A,C"``, or an option's text."""
    value = literal(value)
    parts = value if isinstance(value, list) else [value]
    if isinstance(value, str) and all(len(p.strip()) == 1 for p in value.split(",")):
        parts = value.split(",")  # "A,C": several letters in one CSV cell
    letters = {letter for letter, _ in choices}
    by_text = {text.casefold(): letter for letter, text in choices}
    out = []
    for part in parts:
        raw = str(part).strip() if isinstance(part, str | int) and not isinstance(part, bool) else ""
        if raw.lower() in letters:
            out.append(raw.lower())
        elif raw.casefold() in by_text:
            out.append(by_text[raw.casefold()])
        else:
            shown = ", ".join(letter for letter, _ in choices)
            raise RowError(f"answer {part!r} is not one of the options ({shown}) nor the text of one")
    if not out:
        raise RowError("the answer is empty")
    return sorted(set(out))


def image_name(value: Any) -> str:
    """Return the file name of one image entry (``{image_path: …}`` or text); refuse a path outside the folder."""
    name = value.get("image_path") if isinstance(value, Mapping) else value
    if not isinstance(name, str) or not name or PurePath(name).name != name or name.startswith("."):
        raise RowError(f"image {value!r} is not a plain file name")
    return name


def question_fields(qid: str, stem: str, choices: Choices, letters: list[str]) -> dict[str, Any]:
    """Return the Question fields every English multiple-choice record shares (one point each)."""
    if not stem.strip():
        raise RowError("the question text is empty")
    return {
        "id": qid,
        "type": "single" if len(letters) == 1 else "multi",
        "select": len(letters),
        "stem": stem.strip(),
        "choices": choices,
        "accepted_answers": [letters],
        "points": 1,
    }
