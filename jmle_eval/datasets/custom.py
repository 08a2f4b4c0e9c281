"""A researcher's own questions: ``dataset=custom dataset.path=<file>``.

The file is JSON Lines, CSV, or a Hugging Face ``datasets`` folder written by ``save_to_disk``
(``dataset.format`` when its name does not say). ``dataset.fields`` maps the question's parts to the
file's fields, defaults ``id``, ``question``, ``options``, ``answer``; any other key keeps a field as
an attribute (``+dataset.fields.subject=subj``), as does each of ``dataset.breakdowns`` not mapped
otherwise (the field of that name: ``dataset.breakdowns=[subject]``). ``options`` is a list
of texts (lettered a, b, c, …), a mapping letter → text, or a list of ``{letter, content}`` (in a CSV
cell, as JSON), or a list of columns (``dataset.fields.options=[A,B,C,D]``); without it, options
written after ``Answer Choices:`` in the question are read. ``answer`` is a letter, a list of letters
(``"A,C"`` in a CSV cell) or the text of an option. A record without an id gets ``custom-<line>``.
Every problem is refused with the file and the line (or row) it is on.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jmle_eval.datasets import choices
from jmle_eval.datasets.choices import RowError
from jmle_eval.datasets.sources import Fields, numbered_jsonl
from jmle_eval.errors import UserError

CORE = {"id": "id", "question": "question", "options": "options", "answer": "answer"}
FORMATS = {".jsonl": "jsonl", ".csv": "csv"}
_FIX = "fix the file"


def path_of(card: Mapping[str, Any]) -> Path:
    """Return the card's ``path``: the researcher's file or folder; refuse a missing one."""
    raw = card.get("path")
    if not raw:
        raise UserError(
            "dataset=custom needs dataset.path=<file>: a JSONL or CSV file of questions, or a Hugging Face datasets "
            "folder (save_to_disk). See README, 'Your own questions'."
        )
    path = Path(str(raw)).expanduser()
    if not path.exists():
        raise UserError(f"dataset.path={raw} does not exist.")
    return path


def format_of(card: Mapping[str, Any], path: Path) -> str:
    """Return jsonl, csv or hf: ``dataset.format``, else what the name says (a folder is hf)."""
    fmt = card.get("format") or ("hf" if path.is_dir() else FORMATS.get(path.suffix.lower()))
    if fmt not in ("jsonl", "csv", "hf"):
        raise UserError(
            f"Cannot tell the format of {path} ({card.get('format') or 'from its name'}): name it *.jsonl or *.csv, "
            "or set dataset.format=jsonl|csv|hf (hf: a Hugging Face datasets folder)."
        )
    return str(fmt)


def fields_of(card: Mapping[str, Any]) -> dict[str, Any]:
    """Return the field mapping: the defaults updated by ``dataset.fields``, each a field name (options: or a list)."""
    fields = {**CORE, **(card.get("fields") or {})}
    fields.update({str(name): str(name) for name in card.get("breakdowns") or [] if name not in fields})
    for key, column in fields.items():
        ok = isinstance(column, str) and column or (key == "options" and isinstance(column, list) and column)
        if not ok:
            raise UserError(f"dataset.fields.{key}={column!r}: give the name of a field of the file.")
    return fields


def content_hash(card: Mapping[str, Any]) -> str:
    """Return the sha256 of the file (of every file of a folder, with their names): the data set's version."""
    path = path_of(card)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(path) if path.is_dir() else ''}\0".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _csv_records(path: Path) -> Iterator[tuple[str, int, Any]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        start = 2
        for number, record in enumerate(reader, 1):
            yield f"row {number} (line {start})", number, record
            start = reader.line_num + 1


def _hf_records(path: Path) -> Iterator[tuple[str, int, Any]]:
    try:
        from datasets import Dataset, load_from_disk
    except ImportError as exc:
        raise UserError(
            f"{path} is a folder: reading a Hugging Face datasets folder needs the `datasets` package "
            "(pip install datasets). Or save the questions as JSONL or CSV."
        ) from exc
    try:
        data = load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise UserError(f"{path} is not a Hugging Face datasets folder written by save_to_disk ({exc}).") from exc
    if not isinstance(data, Dataset):
        raise UserError(
            f"{path} holds several splits ({', '.join(data)}); point dataset.path at one of them, e.g. {path}/test."
        )
    for number, record in enumerate(data, 1):
        yield f"row {number}", number, record


def records(path: Path, fmt: str) -> Iterator[tuple[str, int, Any]]:
    """Yield (where, number, record) of each question of the file: ``line N`` (JSONL), ``row N`` (CSV, HF)."""
    if fmt == "jsonl":
        return ((f"line {n}", n, record) for n, record in numbered_jsonl(path, _FIX))
    if fmt == "csv":
        return _csv_records(path)
    return _hf_records(path)


def _present(record: Mapping[str, Any], column: str) -> bool:
    return column in record and record[column] is not None


def _required(record: Mapping[str, Any], part: str, column: str) -> Any:
    if not _present(record, column):
        raise RowError(f"no {part} (field {column!r}; set dataset.fields.{part}=<field> if it has another name)")
    return record[column]


def _options(record: Mapping[str, Any], fields: Mapping[str, Any], question: str) -> tuple[str, choices.Choices]:
    column = fields["options"]
    if isinstance(column, list):  # one column per option; trailing empty cells: fewer options on this row
        texts = [record.get(c) for c in column]
        while texts and texts[-1] in (None, ""):
            texts.pop()
        gaps = [c for c, t in zip(column, texts, strict=False) if t in (None, "")]
        if gaps:
            raise RowError(f"option column {gaps[0]!r} is empty but a later one is not (the letters would shift)")
        return question, choices.options(texts)
    if _present(record, column) and record[column] != "":
        return choices.stem_of(question), choices.options(record[column])
    if choices.ANSWER_CHOICES in question:
        return choices.split_answer_choices(question)
    return question, choices.options(_required(record, "options", column))


def row_of(record: Any, fields: Mapping[str, Any], default_id: str) -> Fields:
    """Return one record as Question fields; raise RowError saying what is wrong with it."""
    if not isinstance(record, Mapping):
        raise RowError("not a JSON object")
    question = _required(record, "question", fields["question"])
    if not isinstance(question, str) or not question.strip():
        raise RowError("the question text is empty")
    stem, pairs = _options(record, fields, question)
    answer = _required(record, "answer", fields["answer"])
    if answer in ("", []):
        raise RowError("the answer is empty")
    letters = choices.answer(answer, pairs)
    raw_id = record.get(fields["id"])
    qid = choices.check_id(raw_id) if raw_id not in (None, "") else default_id
    row = choices.question_fields(qid, stem, pairs, letters)
    extra = {name: column for name, column in fields.items() if name not in CORE}
    row["attributes"] = {
        name: str(record[column]).strip()
        for name, column in extra.items()
        if _present(record, column) and str(record[column]).strip()
    }
    return row


def read(card: Mapping[str, Any]) -> list[Fields]:
    """Read the researcher's file named by ``dataset.path`` with the ``dataset.fields`` mapping."""
    path, name = path_of(card), str(card.get("name") or "custom")
    fmt, fields = format_of(card, path), fields_of(card)
    rows: list[Fields] = []
    seen: dict[str, str] = {}
    for where, number, record in records(path, fmt):
        try:
            row = row_of(record, fields, f"{name}-{number:04d}")
        except RowError as exc:
            raise UserError(f"{path} {where}: {exc}.") from exc
        if row["id"] in seen:
            raise UserError(f"{path} {where}: id {row['id']!r} is already used on {seen[row['id']]}; make ids unique.")
        seen[row["id"]] = where
        rows.append(row)
    if not rows:
        raise UserError(f"{path} holds no questions.")
    return rows
