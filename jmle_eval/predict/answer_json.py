"""Structured answers (``prompt.answer_format=json``): the reply schema of one question, in the server's form.

A model asked for ``{"answer": [...]}`` under a JSON schema whose enum is the
question's own option letters cannot write an unreadable answer: the server's
grammar allows nothing else. The schema depends only on the question's shape
(type, letters, how many to choose), so it is built once per shape. How a server
takes a schema differs by engine (``provider.structured_output``): OpenAI, vLLM
and SGLang take ``json_schema``; llama-cpp-python takes ``json_object`` with a
``schema`` (its server answers ``json_schema`` with HTTP 500); ``none`` sends no
schema, and the prompt alone asks for the object.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from jmle_eval.errors import UserError
from jmle_eval.schema import Question

ANSWER_FORMATS = ("text", "json")
"""What ``prompt.answer_format`` accepts: a free-text reply with a final-answer line, or a JSON object."""
STYLES = ("json_schema", "json_object", "none")
"""What ``provider.structured_output`` accepts (the judge stage reads the same key)."""


def check_format(answer_format: Any, style: Any) -> str:
    """Return the checked answer format; raise UserError naming the setting for a value not accepted."""
    if answer_format not in ANSWER_FORMATS:
        raise UserError(
            f"prompt.answer_format={answer_format!r} is not one of {', '.join(ANSWER_FORMATS)}: text asks for a "
            'reply ending in a final-answer line; json asks for a JSON object {"answer": ...} under a schema.'
        )
    if answer_format == "json" and style not in STYLES:
        raise UserError(
            f"provider.structured_output={style!r} is not one of {', '.join(STYLES)}: it says how this server "
            "takes a JSON schema (json_schema: OpenAI, vLLM, SGLang; json_object: llama-cpp-python; none: no schema)."
        )
    return str(answer_format)


def shown_letters(question: Question, upper: bool) -> list[str]:
    """Return the option letters as the prompt shows them (English templates show ``(A)``)."""
    return [letter.upper() if upper else letter for letter, _ in question.choices]


@functools.lru_cache(maxsize=256)
def _schema(qtype: str, select: int, letters: tuple[str, ...]) -> dict[str, Any]:
    """Return the reply schema of one question shape (cached: callers only serialise it)."""
    if qtype == "numeric":
        answer: dict[str, Any] = {"type": "number"}
    elif qtype == "free":
        answer = {"type": "string"}
    else:  # exactly as many letters as the question asks for, each one of its options
        answer = {"type": "array", "items": {"type": "string", "enum": list(letters)}}
        answer.update(minItems=select, maxItems=select)
    return {"type": "object", "properties": {"answer": answer}, "required": ["answer"], "additionalProperties": False}


def answer_schema(question: Question, upper: bool = False) -> dict[str, Any]:
    """Return the JSON schema of one question's reply object ``{"answer": ...}``."""
    letters = tuple(shown_letters(question, upper)) if question.type in ("single", "multi") else ()
    return _schema(question.type, question.select, letters)


def response_format(question: Question, style: str, upper: bool = False) -> dict[str, Any] | None:
    """Return the ``response_format`` request field for one question, or None for style ``none``."""
    if style == "none":
        return None
    schema = answer_schema(question, upper)
    if style == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}


def example(question: Question, upper: bool = False) -> str:
    """Return the reply object the prompt shows as its form, e.g. ``{"answer": ["a", "c"]}``."""
    if question.type == "numeric":
        value: Any = 0.4
    elif question.type == "free":
        value = "<diagnosis>"
    else:
        letters = shown_letters(question, upper) or list("abcde")
        value = letters[: question.select] if question.select < len(letters) else letters
    return json.dumps({"answer": value}, ensure_ascii=False)
