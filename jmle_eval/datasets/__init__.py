"""Data sets: read a source, apply its exam rules, return ``list[Question]``.

The data set card (``conf/dataset/<name>.yaml``, passed in as a plain dict) says
where the files are, which reader understands them, and the exam rules:
required blocks, points, pass criteria and per-question overrides. Sets without
exams (English multiple choice, a researcher's own file) keep their file order,
one point per question, and the source's breakdown fields in ``attributes``.

``dataset.sample=N dataset.seed=S`` (every set) keeps N questions of those left after every other filter:
``random.Random(S).sample(sorted(ids), N)``, in the data set's own order. A sample is part of the data set
version; without one the version is what it always was.

``dataset.language=en`` on an exam set reads its upstream English translation (IgakuQA's
``_translate.jsonl``): the text changes, ids, key, points and exam rules do not. The language is part
of the version only then, so the Japanese versions stay as they were.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jmle_eval.datasets import custom, english, fetch, nejm, text
from jmle_eval.datasets.images import check_images, images_available, missing_images
from jmle_eval.datasets.remote_images import fetch_images
from jmle_eval.datasets.sources import READERS, TRANSLATED, Fields
from jmle_eval.errors import UserError
from jmle_eval.schema import Question, Section

__all__ = [
    "check_images",
    "dataset_version",
    "fetch_images",
    "images_available",
    "left_out",
    "load",
    "missing_images",
    "source_of",
]

CHOICE_READERS = {"medxpertqa": english.read, "nejm": nejm.read, nejm.FREE_LOADER: nejm.read}
"""Readers of sets without exams: (folder, card) → question fields."""
CUSTOM = "custom"

LOADER_VERSION = "1"
"""Bump when a reader changes what questions look like; it is part of the data set version."""

ORIGINAL_LANGUAGE = "ja"
"""The language the exam sets are printed in; ``dataset.language=en`` reads an upstream translation where one exists."""

_OVERRIDABLE = {"accepted_answers", "points", "all_credited", "correct_only", "choices", "stem", "select"}


def source_of(card: Mapping[str, Any]) -> fetch.Source:
    """Return the pinned upstream source described by a data set card."""
    src = card["source"]
    unused = english.unused_files(card)  # the files of subsets not selected are neither checked nor fetched
    return fetch.Source(
        name=card["name"],
        repo=src["repo"],
        commit=src["commit"],
        files={rel: pin for rel, pin in src["files"].items() if rel not in unused},
        base_url=src.get("base_url") or "https://raw.githubusercontent.com",
        folder=src.get("folder"),
    )


def dataset_version(card: Mapping[str, Any]) -> str:
    """Return a short hash of everything in the card that changes the questions or their key.

    Keys added for the English sets enter only when set, so every earlier card keeps its version
    (and its runs their fingerprint). A researcher's file is versioned by its content.
    """
    commit = custom.content_hash(card) if card["loader"] == CUSTOM else card["source"]["commit"]
    payload = {
        "loader": card["loader"],
        "loader_version": LOADER_VERSION,
        "commit": commit,
        "overrides": card.get("overrides") or {},
    }
    if card.get("subset") not in (None, english.ALL):
        payload["subset"] = card["subset"]
    for key in ("fields", "format", "include_no_context"):
        if card.get(key):
            payload[key] = card[key]
    if card["loader"] in READERS and (card.get("language") or ORIGINAL_LANGUAGE) != ORIGINAL_LANGUAGE:
        payload["language"] = card["language"]  # a translation: other text, the same key
    if card.get("sample") is not None:
        payload["sample"], payload["seed"] = card["sample"], card.get("seed") or 0
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return f"{commit[:7]}-{hashlib.sha256(blob).hexdigest()[:8]}"


def exam_rules(card: Mapping[str, Any], exam: int) -> Mapping[str, Any]:
    """Return the card's rules for one exam (required blocks, points, pass criteria)."""
    exams = card.get("exams") or {}
    rules = exams.get(str(exam)) or exams.get(exam)
    if rules is None:
        raise UserError(
            f"Data set '{card['name']}' has a question from exam {exam}, but conf/dataset/{card['name']}.yaml "
            f"has no exams.'{exam}' entry. Add that exam's rules (required blocks, pass criteria)."
        )
    return rules


def _points_by_rule(rules: Mapping[str, Any], block: str, number: int) -> int:
    spec = rules.get("points")
    if not spec:
        raise UserError(
            "The data set gives no per-question points and its card has no 'points' rule for "
            f"block {block}; add exams.<exam>.points to the card."
        )
    for rule in spec.get("rules") or []:
        if block in rule["blocks"] and rule["first"] <= number <= rule["last"]:
            return int(rule["points"])
    return int(spec["default"])


def _apply_override(row: dict[str, Any], fix: Mapping[str, Any], name: Any) -> None:
    """Apply a card's per-question override (``overrides.<id>``) to a reader row, noting it in the row."""
    unknown = set(fix) - _OVERRIDABLE
    if unknown:
        raise UserError(
            f"conf/dataset/{name}.yaml overrides.{row['id']} has unknown field(s) {sorted(unknown)}; "
            f"allowed: {sorted(_OVERRIDABLE)}."
        )
    for key, value in fix.items():
        row[key] = [list(map(str, a)) for a in value] if key == "accepted_answers" else value
    if "select" in fix and row["type"] != "numeric":
        row["type"] = "multi" if int(fix["select"]) > 1 else "single"
    if fix:
        row.setdefault("notes", []).append(f"card override: {sorted(fix)}")


def _question(card: Mapping[str, Any], row: dict[str, Any], overrides: dict[str, Any]) -> Question:
    """Return one reader row as a Question: exam rules applied, points filled in, the card's override taken."""
    name = str(card.get("name"))
    exam, block, number = text.split_id(row["id"])
    rules = exam_rules(card, exam)
    row.setdefault("points", None)
    if row["points"] is None:
        row["points"] = _points_by_rule(rules, block, number)
    _apply_override(row, overrides.pop(row["id"], None) or {}, name)
    row["choices"] = [tuple(c) for c in row.get("choices") or []]
    section: Section = "required" if block in rules["required_blocks"] else "general"
    try:
        return Question(
            dataset=name, exam=exam, year=int(rules["year"]), block=block, number=number, section=section, **row
        )
    except ValidationError as exc:
        raise UserError(f"Data set '{name}', question {row['id']} is malformed: {exc}") from exc


def _selected(card: Mapping[str, Any], questions: list[Question]) -> list[Question]:
    """Return the questions of the card's ``years`` and ``blocks`` (all when unset), in exam order."""
    years = set(card.get("years") or [])
    blocks = {str(b).upper() for b in card.get("blocks") or []}
    selected = [q for q in questions if (not years or q.year in years) and (not blocks or q.block in blocks)]
    if not selected:
        raise UserError(
            f"Data set '{card.get('name')}' has no questions for years={sorted(years) or 'all'} "
            f"blocks={sorted(blocks) or 'all'}. Available years: {sorted({q.year or 0 for q in questions})}; "
            f"blocks: {sorted({q.block or '' for q in questions})}."
        )
    selected.sort(key=lambda q: (q.exam or 0, q.block or "", q.number or 0))  # an exam set: all three are set
    return selected


def _choice_questions(card: Mapping[str, Any], rows: list[Fields]) -> list[Question]:
    """Return a set without exams as Questions, in file order, with the card's overrides (keyed by id) taken."""
    name = str(card.get("name"))
    for key in ("years", "blocks"):
        if card.get(key):
            raise UserError(f"dataset.{key} selects JMLE exams; data set '{name}' has none. Leave it out.")
    overrides = dict(card.get("overrides") or {})
    questions = []
    for row in rows:
        _apply_override(row, overrides.pop(row["id"], None) or {}, name)
        row["choices"] = [tuple(c) for c in row.get("choices") or []]
        try:
            questions.append(Question(dataset=name, **row))
        except ValidationError as exc:
            raise UserError(f"Data set '{name}', question {row['id']} is malformed: {exc}") from exc
    if overrides:
        raise UserError(f"conf/dataset/{name}.yaml has overrides for questions that do not exist: {sorted(overrides)}.")
    if not questions:
        raise UserError(f"Data set '{name}' has no questions (its files are empty).")
    return questions


def folder(card: Mapping[str, Any], data_dir: str | Path) -> Path:
    """Return the local folder of the card's pinned source files (downloaded and hash-checked, or a copy)."""
    return fetch.resolve(
        source_of(card),
        path=card.get("path"),
        cache_dir=data_dir,
        verify=bool(card.get("verify", True)),
        download=bool(card.get("download", True)),
    )


def _whole(card: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = card.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (key == "sample" and value < 1):
        raise UserError(
            f"dataset.{key}={value!r} must be a whole number" + (" of at least 1." if key == "sample" else ".")
        )
    return value


def sampled(card: Mapping[str, Any], questions: list[Question]) -> list[Question]:
    """Return ``dataset.sample`` questions: ``random.Random(seed).sample(sorted ids, sample)``, in the given order."""
    size, seed = _whole(card, "sample", None), _whole(card, "seed", 0)
    if size is None:
        return questions
    if size > len(questions):
        raise UserError(
            f"dataset.sample={size}, but data set '{card.get('name')}' has only {len(questions)} questions with its "
            f"current filters. Ask for at most {len(questions)}, or leave dataset.sample out for all of them."
        )
    chosen = set(random.Random(seed).sample(sorted(q.id for q in questions), size))
    return [q for q in questions if q.id in chosen]


def left_out(card: Mapping[str, Any], *, data_dir: str | Path = "data") -> int:
    """Return how many of the source's cases the card leaves out before sampling (nejm: no clinical context)."""
    if card.get("loader") not in ("nejm", nejm.FREE_LOADER):
        return 0
    return nejm.left_out(folder(card, data_dir), card)


def load(card: Mapping[str, Any], *, data_dir: str | Path = "data") -> list[Question]:
    """Return the card's questions (an exam set's by ``years`` and ``blocks`` in exam order, others in file
    order), then the ``dataset.sample`` of them when one is asked for."""
    return sampled(card, _load(card, data_dir))


def _exam_reader(card: Mapping[str, Any]) -> Callable[[Path], list[Fields]]:
    """Return the reader of an exam set in the card's ``language``: the printed exam, or an upstream translation."""
    name, loader = card.get("name"), str(card.get("loader", ""))
    if loader not in READERS:
        raise UserError(
            f"Data set '{name}' names loader '{card.get('loader')}', which does not exist. "
            f"Available loaders: {', '.join(sorted([*READERS, *CHOICE_READERS, CUSTOM]))}."
        )
    language = str(card.get("language") or ORIGINAL_LANGUAGE)
    if language == ORIGINAL_LANGUAGE:
        return READERS[loader]
    reader = TRANSLATED.get(loader, {}).get(language)
    if reader is None:
        having = sorted(n for n, by_language in TRANSLATED.items() if language in by_language)
        which = f"only dataset={' / '.join(having)} has one" if having else "no exam set has one"
        raise UserError(
            f"dataset.language={language}: data set '{name}' has no {language} translation upstream ({which}). "
            "Leave dataset.language out to ask its questions in Japanese."
        )
    return reader


def _load(card: Mapping[str, Any], data_dir: str | Path) -> list[Question]:
    name, loader = card.get("name"), str(card.get("loader", ""))
    if card.get("grader") == "agent":
        raise UserError(
            f"Data set '{name}' holds agent tasks, not questions: predict.py, score.py and "
            f"`python -m jmle_eval.datasets stats dataset={name}` read it as tasks (jmle_eval/agent)."
        )
    if loader == CUSTOM:
        return _choice_questions(card, custom.read(card))
    if loader in CHOICE_READERS:
        return _choice_questions(card, CHOICE_READERS[loader](folder(card, data_dir), card))
    reader = _exam_reader(card)
    local = folder(card, data_dir)
    overrides = {text.normalise_id(k): v for k, v in (card.get("overrides") or {}).items()}
    questions = [_question(card, row, overrides) for row in reader(local)]
    if overrides:
        raise UserError(f"conf/dataset/{name}.yaml has overrides for questions that do not exist: {sorted(overrides)}.")
    return _selected(card, questions)
