"""Read a structured reply (``prompt.answer_format=json``): the ``answer`` of a ``{"answer": ...}`` object.

A server that enforced the schema sends exactly the object; one that did not
(``provider.structured_output: none``, or a model that ignored the prompt) may
wrap it in a code fence or prose, or write a text answer instead. So the last
object with an ``answer`` key anywhere in the reply is read, and a reply with
none falls back to the text parser: a json run is never graded more harshly
than the same reply in a text run.
"""

from __future__ import annotations

import json
from typing import Any

from jmle_eval.score.parse import DEFAULT_LETTERS, FAILED, Parsed, parse, strip_reasoning
from jmle_eval.score.parse_en import normalise

_DECODER = json.JSONDecoder()
_SEPARATORS = str.maketrans({",": " ", "、": " ", "/": " ", "&": " "})


def _objects(text: str) -> list[dict[str, Any]]:
    """Return every JSON object in ``text`` that has an ``answer`` key, in order."""
    found = []
    start = text.find("{")
    while start != -1:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and "answer" in value:
            found.append(value)
        start = text.find("{", end)
    return found


def _letters(value: Any, letters: str) -> tuple[str, ...] | None:
    """Return the sorted unique option letters of ``["a", "c"]``, ``"A, C"`` or ``"a"``; None if any is not one."""
    items = value if isinstance(value, list) else [value]
    out: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            return None
        for part in normalise(item).translate(_SEPARATORS).split():
            letter = part.strip("()（）.").lower()
            if len(letter) != 1 or letter not in letters:
                return None
            out.add(letter)
    return tuple(sorted(out)) or None


def _number(value: Any) -> tuple[str, ...] | None:
    """Return a number (``0.4``, ``"0.40"``, ``[315]``) as one number string; None if it is not one."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return (json.dumps(value),)
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            float(text)
        except ValueError:
            return None
        return (text.lstrip("+"),)
    return None


def parse_json(text: str | None, qtype: str, letters: str = DEFAULT_LETTERS) -> Parsed:
    """Return the answer of the last ``{"answer": ...}`` object in ``text``; rule ``json``, strict if it is all."""
    if not text:
        return FAILED
    reply = strip_reasoning(text).strip()
    objects = _objects(reply)
    if not objects:
        return FAILED
    value = objects[-1]["answer"]
    answer = _number(value) if qtype == "numeric" else _letters(value, letters)
    if answer is None:
        return FAILED
    try:
        whole = json.loads(reply) == objects[-1]
    except ValueError:
        whole = False
    return Parsed(answer, "json", whole)


def read_reply(
    text: str | None,
    qtype: str,
    letters: str,
    *,
    answer_format: str = "text",
    mode: str = "lenient",
    marker: str,
    language: str | None,
) -> Parsed:
    """Return the answer of one reply: a json run's object first, else (and for text runs) the text parser."""
    if answer_format == "json":
        found = parse_json(text, qtype, letters)
        if found.ok:
            return found
    return parse(text, qtype, letters, mode=mode, marker=marker, language=language)
