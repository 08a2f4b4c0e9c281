"""Question + image mode → chat messages in the prompt's language, with a required final-answer line.

Templates are data: ``templates/<language>/<version>.yaml`` next to this module
holds every fixed string of one prompt (``ja/v1.yaml`` is the Japanese prompt of
the JMLE runs). :func:`template_hash` of the chosen template is part of the run
fingerprint, so editing a template without bumping its version still cannot mix
two prompts in one run. Adding a language is adding a folder with a template file.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from jmle_eval.errors import UserError
from jmle_eval.predict import answer_json
from jmle_eval.schema import ANSWER_MARKER, IMAGE_MODES, ImageMode, Question

IMAGE_MODE_SETTINGS = ("auto", *IMAGE_MODES)
"""What ``image_mode=`` accepts: a run's mode, or auto (vision if the model has it, else blind)."""

TEMPLATE_DIR = Path(__file__).resolve().with_name("templates")
DEFAULT_LANGUAGE = "ja"
"""The language of a prompt when neither ``prompt.language`` nor the data set card names one."""

REQUIRED_KEYS = ("system", "header", "case", "choose_one", "choose_n", "numeric", "blind", "vision", "answer_line")
"""Every template has these strings; ``choice`` (one choice line, default ``{letter}　{text}``) is optional."""
_OPTIONAL_KEYS = ("choice", "marker", "free", "free_example", "json_line")  # marker: default answer line
_JSON_KEYS = frozenset({"json_line"})
"""Strings only a ``prompt.answer_format=json`` run uses: left out of a text run's template hash, so adding
them to a released template leaves the fingerprints of its text runs as they were."""
_CHOICE_LINE = "{letter}\u3000{text}"


def language_of(prompt: Mapping[str, Any], card: Mapping[str, Any]) -> str:
    """Return a run's prompt language: ``prompt.language``, else the data set card's ``language``, else Japanese."""
    return str(prompt.get("language") or card.get("language") or DEFAULT_LANGUAGE)


def answer_marker(prompt: Mapping[str, Any], language: str = DEFAULT_LANGUAGE) -> str:
    """Return the run's final-answer marker: ``prompt.answer_marker``, else the template's, else 【回答】."""
    marker = prompt.get("answer_marker")
    if marker:
        return str(marker)
    return str(template(str(prompt.get("version") or "v1"), language).get("marker") or ANSWER_MARKER)


def languages() -> list[str]:
    """Return the languages that have at least one template."""
    return sorted(p.name for p in TEMPLATE_DIR.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def versions(language: str = DEFAULT_LANGUAGE) -> list[str]:
    """Return the template versions of ``language``."""
    return sorted(p.stem for p in (TEMPLATE_DIR / language).glob("*.yaml"))


@functools.cache
def template(version: str, language: str = DEFAULT_LANGUAGE) -> Mapping[str, str]:
    """Return the fixed strings of one prompt, read from ``templates/<language>/<version>.yaml``."""
    if language not in languages():
        raise UserError(f"Unknown prompt.language '{language}'. Languages with templates: {', '.join(languages())}.")
    if version not in versions(language):  # a name from the list, never a path the config made up
        raise UserError(
            f"Unknown prompt.version '{version}' for language '{language}'. "
            f"Available versions: {', '.join(versions(language))}."
        )
    path = TEMPLATE_DIR / language / f"{version}.yaml"
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    strings = loaded if isinstance(loaded, dict) else {}
    missing = [k for k in REQUIRED_KEYS if not isinstance(strings.get(k), str)]
    unknown = sorted(set(strings) - {*REQUIRED_KEYS, *_OPTIONAL_KEYS})
    if missing or unknown:
        raise UserError(f"Prompt template {path} is malformed: missing text {missing}, unknown keys {unknown}.")
    return MappingProxyType(strings)


def template_hash(version: str, language: str = DEFAULT_LANGUAGE, answer_format: str = "text") -> str:
    """Return a short hash of the template strings a run of ``version`` in ``language`` and format uses."""
    strings = dict(template(version, language))
    if answer_format == "text":
        strings = {k: v for k, v in strings.items() if k not in _JSON_KEYS}
    blob = json.dumps(strings, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def resolve_image_mode(image_mode: str, model_vision: bool) -> ImageMode:
    """Return the effective image mode: ``auto`` becomes vision or blind by model support."""
    if image_mode not in IMAGE_MODE_SETTINGS:
        raise UserError(f"image_mode={image_mode!r} is not one of {', '.join(IMAGE_MODE_SETTINGS)}.")
    if image_mode == "auto":
        return "vision" if model_vision else "blind"
    if image_mode == "vision" and not model_vision:
        raise UserError(
            "image_mode=vision but this model's config says vision: false. Use image_mode=blind or skip, "
            "or set model.vision=true if the served model really accepts images."
        )
    return image_mode  # type: ignore[return-value]


def wants(question: Question, image_mode: ImageMode) -> bool:
    """Return whether the question is part of a run in this image mode."""
    return not (image_mode == "skip" and question.requires_image)


def _example(question: Question) -> str:
    if question.type == "numeric":
        return "0.40"
    return ",".join("ace"[: question.select] if question.select <= 3 else "abcde"[: question.select])


def upper_letters(version: str = "v1", language: str = DEFAULT_LANGUAGE) -> bool:
    """Return whether the template shows option letters in upper case (``(A) …``)."""
    return "{LETTER}" in template(version, language).get("choice", _CHOICE_LINE)


def _answer_line(t: Mapping[str, str], question: Question, marker: str, answer_format: str, upper: bool) -> str:
    """Return the closing instruction: the final-answer line, or the JSON object to reply with."""
    if answer_format == "json":
        if "json_line" not in t:
            raise UserError("This prompt template has no 'json_line' text, so prompt.answer_format=json cannot use it.")
        return t["json_line"].format(example=answer_json.example(question, upper))
    example = _example(question)
    shown = t.get("free_example", example) if question.type == "free" else example.upper()
    return t["answer_line"].format(marker=marker, example=example, EXAMPLE=shown)


def render_text(
    question: Question,
    image_mode: ImageMode,
    version: str = "v1",
    marker: str = ANSWER_MARKER,
    language: str = DEFAULT_LANGUAGE,
    answer_format: str = "text",
) -> str:
    """Return the user message text for one question (images not included)."""
    t = template(version, language)
    parts = [t["header"].format(id=question.id)]
    if question.case_text:
        parts.append(t["case"].format(case=question.case_text.strip()))
    if question.requires_image:
        has_files = bool(question.images)
        parts.append(t["vision"] if image_mode == "vision" and has_files else t["blind"])
    parts.append(question.stem.strip())
    if question.choices:
        line = t.get("choice", _CHOICE_LINE)
        parts.append(
            "\n".join(line.format(letter=letter, LETTER=letter.upper(), text=text) for letter, text in question.choices)
        )
    if question.type == "free":  # a free-text answer (a diagnosis), graded by a judge
        if "free" not in t:
            raise UserError(f"Prompt template {language}/{version} has no 'free' text for free-text questions.")
        parts.append(t["free"])
    elif question.type == "numeric":
        parts.append(t["numeric"])
    else:
        parts.append(t["choose_one"] if question.select == 1 else t["choose_n"].format(n=question.select))
    parts.append(_answer_line(t, question, marker, answer_format, upper_letters(version, language)))
    return "\n\n".join(parts)


def _data_url(path: str) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"Image file {p} cannot be read ({exc}); the data set copy is incomplete.") from exc
    mime = mimetypes.guess_type(p.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_messages(
    question: Question,
    image_mode: ImageMode,
    version: str = "v1",
    marker: str = ANSWER_MARKER,
    language: str = DEFAULT_LANGUAGE,
    answer_format: str = "text",
) -> list[dict[str, Any]]:
    """Return the chat messages (system + user) for one question."""
    text = render_text(question, image_mode, version, marker, language, answer_format)
    user: Any = text
    if image_mode == "vision" and question.images:
        user = [{"type": "text", "text": text}] + [
            {"type": "image_url", "image_url": {"url": _data_url(path)}} for path in question.images
        ]
    return [{"role": "system", "content": template(version, language)["system"]}, {"role": "user", "content": user}]
