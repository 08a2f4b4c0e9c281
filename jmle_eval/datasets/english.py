"""Reader of MedXpertQA's ``eval/data`` JSON Lines (TsinghuaC3I/MedXpertQA, MIT): five English sets.

MedQA, MedMCQA and MMLU-medical embed their options in the question after ``Answer Choices:``
(``(A) … (B) …``); MedXpertQA lines carry them as ``options`` [{letter, content}] (10 for text, 5 for
multimodal) with ``medical_task``, ``body_system``, ``question_type`` and, for multimodal, ``images``
(file names: the image files are not in the upstream repository, ``dataset.images_dir`` points at a
local copy). ``label`` is a list of letters, or that list as a Python literal. Every other text field
of a line (``subject``, ``subject_name``, …) is kept in ``Question.attributes``; a card with
``subsets`` (name → its files) reads the ``dataset.subset`` chosen and adds the attribute ``subset``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jmle_eval.datasets import choices
from jmle_eval.datasets.choices import RowError
from jmle_eval.datasets.sources import Fields, numbered_jsonl
from jmle_eval.errors import UserError

ALL = "all"
_NOT_ATTRIBUTES = {"id", "question", "label", "options", "images", "label_rationale"}
_FIX = (
    "the file is not what this data set's loader expects (modified, or from another version): restore it from "
    "upstream and keep dataset.verify=true, which refuses a changed file by its hash before it is read"
)


def _files(spec: Any) -> list[str]:
    return [spec] if isinstance(spec, str) else [str(rel) for rel in spec or []]


def chosen_subsets(card: Mapping[str, Any]) -> list[str]:
    """Return the card's subsets that ``dataset.subset`` selects (all by default; none when it has none)."""
    subsets = card.get("subsets") or {}
    chosen = card.get("subset") or ALL
    if not subsets:
        if chosen != ALL:
            raise UserError(
                f"dataset.subset={chosen}: data set '{card.get('name')}' has no subsets (only a card with a "
                "'subsets' block has them, e.g. medxpertqa and medxpertqa_sampled: text, mm). Leave it out."
            )
        return []
    if chosen == ALL:
        return list(subsets)
    if chosen not in subsets:
        raise UserError(
            f"dataset.subset={chosen!r} is not one of {', '.join([*subsets, ALL])} (data set '{card.get('name')}')."
        )
    return [str(chosen)]


def files_to_read(card: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """Return (subset, file) of every question file the card's selection reads, in order."""
    subsets = card.get("subsets") or {}
    chosen = chosen_subsets(card)
    if chosen:
        return [(name, rel) for name in chosen for rel in _files(subsets[name])]
    return [(None, str(rel)) for rel in (card.get("source") or {}).get("files") or {} if str(rel).endswith(".jsonl")]


def unused_files(card: Mapping[str, Any]) -> set[str]:
    """Return the source files of the subsets not selected (not needed, so neither checked nor downloaded)."""
    chosen = set(chosen_subsets(card))
    return {rel for name, spec in (card.get("subsets") or {}).items() if name not in chosen for rel in _files(spec)}


def images_dir(card: Mapping[str, Any]) -> Path | None:
    """Return the card's ``images_dir`` (a local copy of the image files), or None; refuse one that is not a folder."""
    raw = card.get("images_dir")
    if not raw:
        return None
    folder = Path(str(raw)).expanduser()
    if not folder.is_dir():
        raise UserError(
            f"dataset.images_dir={raw} is not a folder. Point it at the folder holding the image files (named as "
            "in the data's 'images' field, e.g. MM-0-a.jpeg), or leave it out to pose image questions without them."
        )
    return folder


def _attributes(line: Mapping[str, Any]) -> dict[str, str]:
    kept = {k: v for k, v in line.items() if k not in _NOT_ATTRIBUTES}
    return {k: v.strip() for k, v in kept.items() if isinstance(v, str) and v.strip()}


def _row(line: Any, default_id: str, folder: Path | None) -> Fields:
    """Return one line as Question fields; raise RowError saying what is wrong with it."""
    if not isinstance(line, dict):
        raise RowError("not a JSON object")
    question = line.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RowError("no question text ('question')")
    if line.get("options"):
        stem, pairs = choices.stem_of(question), choices.options(line["options"])
    else:
        stem, pairs = choices.split_answer_choices(question)
    if line.get("label") in (None, "", []):
        raise RowError("no answer ('label')")
    letters = choices.answer(line["label"], pairs)
    qid = choices.check_id(line["id"]) if line.get("id") is not None else default_id
    images = choices.literal(line.get("images")) or []
    names = [choices.image_name(image) for image in (images if isinstance(images, list) else [images])]
    row = choices.question_fields(qid, stem, pairs, letters)
    row["images"] = [str(folder / name) for name in names] if folder else []
    row["requires_image"] = bool(names)
    row["attributes"] = _attributes(line)
    return row


def read(folder: Path, card: Mapping[str, Any]) -> list[Fields]:
    """Read the question files of the card's subset (all its ``.jsonl`` files when it has none)."""
    name, images = str(card.get("name")), images_dir(card)
    rows: list[Fields] = []
    seen: dict[str, str] = {}
    for subset, rel in files_to_read(card):
        path = folder / rel
        for lineno, line in numbered_jsonl(path, _FIX):
            where = f"{path} line {lineno}"
            try:
                row = _row(line, f"{name}-{lineno:04d}", images)
            except RowError as exc:
                raise UserError(f"{where}: {exc}; {_FIX}.") from exc
            if subset:
                row["attributes"]["subset"] = subset
            if row["id"] in seen:
                raise UserError(f"{where}: id {row['id']!r} was already used at {seen[row['id']]}; {_FIX}.")
            seen[row["id"]] = where
            rows.append(row)
    return rows
