"""Rubrics: a rubric card (``conf/rubric/<name>.yaml``) → the judge's messages, the reply schema, reading a reply.

A rubric is data: its prompt text, its version and its kind (what the judge
returns: option letters, a verdict, or a 0–10 score; the reply models are in
:mod:`jmle_eval.schema`). :func:`prompt_hash` covers everything that changes the
judge's messages, so it is part of a judge run's fingerprint. A reply is read
strictly when the server enforced the schema and leniently otherwise (a JSON
object inside prose or a code fence, numbers written as text); what still cannot
be read is a problem string, asked again, and finally an error record — never a
default grade.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

from pydantic import ValidationError

from jmle_eval.errors import UserError
from jmle_eval.schema import JUDGE_REPLIES, Question
from jmle_eval.score.parse import normalise, read_answer, strip_reasoning

KINDS = tuple(JUDGE_REPLIES)
FORMATS = ("json_schema", "json_object", "none")
"""How a request asks for the reply schema: OpenAI's response_format, llama-cpp-python's, or not at all."""
PLACEHOLDERS = ("question_id", "question", "choices", "select", "reference", "response")
_OMITTED = "[… the beginning of the reply is left out …]\n"
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Rubric:
    """A checked rubric card."""

    name: str
    version: str
    kind: str
    applies_to: str
    max_response_chars: int
    system: str
    user: str

    @property
    def prompt_hash(self) -> str:
        """Return 12 hex digits of the sha256 of everything that shapes the judge's messages and reply."""
        payload = {
            "kind": self.kind,
            "system": self.system,
            "user": self.user,
            "max_response_chars": self.max_response_chars,
            "schema": reply_schema(self.kind),
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def applies(self, question: Question) -> bool:
        """Return True if the rubric can judge a reply to ``question`` (extract_choice needs options)."""
        return self.applies_to != "choice" or (question.type != "numeric" and bool(question.choices))


def load(card: Mapping[str, Any]) -> Rubric:
    """Return the rubric of a resolved ``rubric`` node; raise UserError naming what is wrong with it."""
    where = f"conf/rubric/{card.get('name')}.yaml"
    kind = card.get("kind")
    if kind not in KINDS:
        raise UserError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}.")
    if card.get("applies_to") not in ("any", "choice"):
        raise UserError(f"{where}: applies_to {card.get('applies_to')!r} is not any or choice.")
    limit = card.get("max_response_chars")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 100:
        raise UserError(f"{where}: max_response_chars must be a whole number >= 100 (got {limit!r}).")
    rubric = Rubric(
        name=str(card["name"]),
        version=str(card["version"]),
        kind=str(kind),
        applies_to=str(card["applies_to"]),
        max_response_chars=limit,
        system=str(card["system"]),
        user=str(card["user"]),
    )
    for part in ("system", "user"):
        try:
            Template(getattr(rubric, part)).substitute({name: "" for name in PLACEHOLDERS})
        except (KeyError, ValueError) as exc:
            found = f"${exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
            raise UserError(
                f"{where}: the {part} text has a placeholder ({found}) that is not one of "
                f"{', '.join('$' + p for p in PLACEHOLDERS)}; write a literal dollar sign as $$."
            ) from None
    return rubric


def reply_schema(kind: str) -> dict[str, Any]:
    """Return the JSON schema of a rubric kind's reply (sent as ``response_format`` where the server honours it)."""
    schema = JUDGE_REPLIES[kind].model_json_schema()
    schema.pop("description", None)
    schema.pop("title", None)
    for prop in schema["properties"].values():
        prop.pop("title", None)
    return schema


@functools.lru_cache(maxsize=16)
def response_format(rubric: Rubric, style: str = "json_schema") -> dict[str, Any]:
    """Return the ``response_format`` request field that makes the server emit the rubric's reply object.

    ``json_schema`` is OpenAI's form (also vLLM and SGLang); ``json_object`` with a
    ``schema`` is llama-cpp-python's. Cached: building a JSON schema costs ~0.2 ms,
    which at 2,000 requests would show in the loop; callers only serialise it.
    """
    if style == "json_object":
        return {"type": "json_object", "schema": reply_schema(rubric.kind)}
    return {
        "type": "json_schema",
        "json_schema": {"name": rubric.name, "schema": reply_schema(rubric.kind), "strict": True},
    }


def reference(question: Question) -> str:
    """Return the key of a question as the judge reads it: letters with their option text, or the answer."""
    texts = dict(question.choices)
    accepted = []
    for answer in question.accepted_answers:
        accepted.append("; ".join(f"{a}: {texts[a]}" if a in texts else a for a in answer))
    return " — or — ".join(accepted)


def _response(text: str, limit: int) -> str:
    body = strip_reasoning(text).strip()
    return body if len(body) <= limit else _OMITTED + body[-limit:]


def messages(rubric: Rubric, question: Question, response: str) -> list[dict[str, str]]:
    """Return the judge's chat messages for one prediction's reply to ``question``."""
    stem = "\n\n".join(part for part in (question.case_text, question.stem) if part)
    values = {
        "question_id": question.id,
        "question": stem,
        "choices": "\n".join(f"{letter}. {text}" for letter, text in question.choices),
        "select": str(question.select),
        "reference": reference(question),
        "response": _response(response, rubric.max_response_chars),
    }
    return [
        {"role": "system", "content": Template(rubric.system).substitute(values).strip()},
        {"role": "user", "content": Template(rubric.user).substitute(values).strip()},
    ]


def _objects(text: str) -> list[Any]:
    """Return the JSON objects in ``text``: the whole text, fenced blocks, then every ``{`` that starts one."""
    found: list[Any] = []
    candidates = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            found.append(json.loads(candidate))
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            found.append(decoder.raw_decode(text, match.start())[0])
        except ValueError:
            continue
    return [obj for obj in found if isinstance(obj, dict)]


def _lenient(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """Return ``obj`` with the reply model's keys only, a verdict in lower case, and a 0–10 score as a number."""
    fields = JUDGE_REPLIES[kind].model_fields
    out = {key: obj[key] for key in fields if key in obj}
    if isinstance(out.get("verdict"), str):
        out["verdict"] = out["verdict"].strip().lower()
    for key in ("score", "confidence"):
        if isinstance(out.get(key), str | float) and not isinstance(out.get(key), bool):
            try:
                number = float(out[key])
                out[key] = int(number) if number.is_integer() else out[key]
            except ValueError:
                pass
    return out


def read_reply(text: str | None, rubric: Rubric, question: Question) -> tuple[dict[str, Any] | None, str | None]:
    """Return ``(judgment, None)`` for a readable judge reply, or ``(None, why it cannot be read)``."""
    if not text or not text.strip():
        return None, "the judge's reply is empty"
    body = strip_reasoning(text)
    objects = _objects(body)
    if not objects:
        return None, f"no JSON object in the judge's reply ({body.strip()[:80]!r})"
    model = JUDGE_REPLIES[rubric.kind]
    problem = ""
    for obj in reversed(objects):  # the last object is the final word
        try:
            judgment = model.model_validate(_lenient(obj, rubric.kind)).model_dump()
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            problem = f"{'.'.join(str(p) for p in first['loc']) or 'reply'}: {first['msg']}"
            continue
        if rubric.kind == "choice" and not _choice_readable(judgment["answer"], question):
            problem = f"answer {judgment['answer']!r} names no option of this question and is not 'none'"
            continue
        return judgment, None
    return None, f"the judge's reply does not match the {rubric.name} schema ({problem})"


def _choice_readable(answer: str, question: Question) -> bool:
    letters = "".join(letter for letter, _ in question.choices) or "abcde"
    text = normalise(answer).strip()
    if text.startswith(("none", "なし")):
        return True
    return read_answer(text, "multi", letters.lower()) is not None
