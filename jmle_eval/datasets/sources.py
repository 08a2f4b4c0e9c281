"""Readers for the three upstream formats: files on disk → question fields (dicts).

IgakuQA also ships an English translation of every question; :func:`igakuqa_en` reads it
with the Japanese key (``TRANSLATED``, picked by the card's ``language``).

Each reader knows one source's quirks and nothing about exam rules: points,
sections and per-question overrides are applied afterwards from the data set
card (``jmle_eval.datasets.load``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jmle_eval.datasets import text
from jmle_eval.errors import UserError

Fields = dict[str, Any]


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn a record of ``path`` without the expected fields or types into a UserError naming the file.

    The readers index records directly (``r["answer"]``); a corrupt or foreign copy used with
    ``dataset.verify=false`` must end in one clear message, not a KeyError traceback.
    """
    try:
        yield
    except UserError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        what = f"a record has no field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
        raise UserError(
            f"{path} is corrupt or not what this data set's loader expects ({what}); it may be truncated, "
            "modified or from another version. Re-download it (delete it from the download cache so that it "
            "is fetched again, or restore your local copy from upstream) and keep dataset.verify=true, the "
            "default, which refuses a changed file by its sha256 before it is read."
        ) from exc


def read_json(path: Path) -> Any:
    """Return parsed JSON, or raise a UserError naming the file and the position."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
            "The file is corrupt or truncated: restore it from upstream (or delete it from the "
            "download cache so that it is fetched again)."
        ) from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc}). Restore it from upstream.") from exc


def read_jsonl(path: Path) -> Iterator[Any]:
    """Yield parsed JSON lines, or raise a UserError naming the file and line."""
    for _, record in numbered_jsonl(path):
        yield record


def numbered_jsonl(path: Path, fix: str = "restore it from upstream") -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed JSON) of each non-blank line, or raise a UserError naming the file and line."""
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(
                        f"{path} line {lineno} is not valid JSON ({exc.msg}). The file is corrupt or truncated: {fix}."
                    ) from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc}): {fix}.") from exc


def _answer_sets(raw: list[str]) -> list[list[str]]:
    """Turn an answer list like ['a', 'c'] or ['a or d'] into accepted answer sets."""
    sets: list[list[str]] = [[]]
    for part in raw:
        options = [o.strip() for o in re.split(r"\s+or\s+", part.strip())]
        sets = [s + [o] for s in sets for o in options]
    return [sorted(s) for s in sets]


def jmle2026(folder: Path) -> list[Fields]:
    """Read ``jmle2026_dataset.json`` (choices embedded in the text; shared cases)."""
    path = folder / "jmle2026_dataset.json"
    rows = read_json(path)
    out = []
    with reading(path):
        for r in rows:
            qid = text.normalise_id(r["question_id"])
            numeric = r["question_type"] == "calculation"
            stem, choices = text.split_choices(r["question_text"])
            if numeric:
                stem, choices = r["question_text"].strip(), []
            stem = text.strip_leading_number(stem, int(r["number"]))
            group = r.get("serial_group") or {}
            answer = [str(a).strip() for a in r["answer"]]
            out.append(
                {
                    "id": qid,
                    "type": "numeric" if numeric else ("multi" if r["num_choices_to_select"] > 1 else "single"),
                    "select": int(r["num_choices_to_select"]),
                    "stem": stem,
                    "choices": choices,
                    "accepted_answers": [answer] if numeric else [sorted(answer)],
                    "images": [str(folder / "images" / name) for name in r.get("clinical_images") or []],
                    "requires_image": bool(r["requires_image"]),
                    "case_id": group.get("group_id"),
                    "case_text": group.get("context_text"),
                }
            )
    return out


def igakuqa119(folder: Path) -> list[Fields]:
    """Read ``questions/119X_json.json`` with the key from ``results/correct_answers.csv``."""
    key_path = folder / "results" / "correct_answers.csv"
    with reading(key_path), open(key_path, encoding="utf-8-sig", newline="") as f:
        key = {text.normalise_id(row["問題番号"]): row["解答"].strip() for row in csv.DictReader(f)}
    out = []
    for block in "ABCDEF":
        path = folder / "questions" / f"119{block}_json.json"
        with reading(path):
            for r in read_json(path):
                qid = text.normalise_id(r["number"])
                if qid not in key:
                    raise UserError(
                        f"{key_path} has no answer for {qid}; the data set copy is incomplete or corrupt. "
                        "Re-download it (or restore it from upstream) and keep dataset.verify=true."
                    )
                raw_answer = key[qid]
                stem = r["question"].strip()
                choices = [(chr(ord("a") + i), text.strip_choice_prefix(c)) for i, c in enumerate(r["choices"] or [])]
                notes = []
                if not choices and not raw_answer.isdigit():
                    stem, choices = text.split_inline_choices(stem)
                    notes.append("choices recovered from the stem text")
                elif any(c != text.strip_choice_prefix(c) for c in r["choices"] or []):
                    notes.append("OCR choice labels ('a. ') removed")
                numeric = raw_answer.isdigit() or bool(re.fullmatch(r"\d+\.\d+", raw_answer))
                answer = [raw_answer] if numeric else sorted(raw_answer)
                out.append(
                    {
                        "id": qid,
                        "type": "numeric" if numeric else ("multi" if len(answer) > 1 else "single"),
                        "select": 1 if numeric else len(answer),
                        "stem": stem,
                        "choices": [] if numeric else choices,
                        "accepted_answers": [answer],
                        "requires_image": bool(r.get("has_image")),
                        "notes": notes,
                    }
                )
    return out


def igakuqa(folder: Path) -> list[Fields]:
    """Read ``data/{year}/{exam}-{block}.jsonl`` and its ``_metadata.jsonl``."""
    out = []
    for path in sorted((folder / "data").glob("*/*-?.jsonl")):
        meta_path = path.with_name(path.stem + "_metadata.jsonl")
        with reading(meta_path):
            meta = {m["problem_id"]: m for m in read_jsonl(meta_path)}
        with reading(path):
            for r in read_jsonl(path):
                qid = text.normalise_id(r["problem_id"])
                m = meta.get(r["problem_id"], {})
                choices = list(zip(text.letters(len(r["choices"])), [c.strip() for c in r["choices"]], strict=True))
                numeric = not choices
                notes = []
                accepted = _answer_sets(r["answer"]) if not numeric else [[r["answer"][0].strip()]]
                if numeric:
                    value = text.numeric_from_template(r["problem_text"], accepted[0][0])
                    if value is not None:
                        notes.append(f"numeric key '{accepted[0][0]}' read through the answer template as {value}")
                        accepted = [[value]]
                human = m.get("human_accuracy")
                out.append(
                    {
                        "id": qid,
                        "type": "numeric" if numeric else ("multi" if len(accepted[0]) > 1 else "single"),
                        "select": 1 if numeric else len(accepted[0]),
                        "stem": r["problem_text"].strip(),
                        "choices": choices,
                        "accepted_answers": accepted,
                        "points": int(r["points"]),
                        "requires_image": not r["text_only"],
                        "kinki": sorted(k.strip() for k in m.get("kinki") or []),
                        "human_accuracy": float(human) if human not in (None, "") else None,
                        "category": m.get("category") or None,
                        "notes": notes,
                    }
                )
    return out


def _english_text(path: Path) -> dict[str, tuple[str, list[str]]]:
    """Return ``{id: (stem, choice texts)}`` of one ``_translate.jsonl`` file (``problem_text_en``, ``choices_en``)."""
    if not path.is_file():
        raise UserError(
            f"{path} is missing: the English questions of IgakuQA are its upstream _translate.jsonl files. "
            "Re-download the data set (or copy those files into your local copy) and keep dataset.verify=true."
        )
    with reading(path):
        return {
            text.normalise_id(r["problem_id"]): (r["problem_text_en"].strip(), [c.strip() for c in r["choices_en"]])
            for r in read_jsonl(path)
        }


def igakuqa_en(folder: Path) -> list[Fields]:
    """Read IgakuQA in English: :func:`igakuqa` with the stem and choice texts of ``{exam}-{block}_translate.jsonl``.

    Only the text is taken from the translation; ids, key, points, image flags and metadata are the Japanese
    file's, so both languages are graded alike. Choices keep the letters a–e in the order of the Japanese file.
    """
    english: dict[str, tuple[str, list[str]]] = {}
    for path in sorted((folder / "data").glob("*/*-?.jsonl")):
        english.update(_english_text(path.with_name(path.stem + "_translate.jsonl")))
    rows = igakuqa(folder)
    for row in rows:
        stem, choices = english.pop(row["id"], ("", []))
        if not stem or len(choices) != len(row["choices"]):
            raise UserError(
                f"The English translation of IgakuQA question {row['id']} is missing or has {len(choices)} choices "
                f"for the Japanese {len(row['choices'])}: the _translate.jsonl files do not match the questions. "
                "Re-download the data set and keep dataset.verify=true."
            )
        row["stem"] = stem
        row["choices"] = [(letter, en) for (letter, _), en in zip(row["choices"], choices, strict=True)]
    if english:
        raise UserError(f"IgakuQA's _translate.jsonl files have questions the Japanese files lack: {sorted(english)}.")
    return rows


READERS = {"jmle2026": jmle2026, "igakuqa119": igakuqa119, "igakuqa": igakuqa}
"""Exam readers of the questions as the exam printed them (Japanese): loader → reader."""
TRANSLATED = {"igakuqa": {"en": igakuqa_en}}
"""Exam readers of an upstream translation, chosen by the card's ``language``: loader → language → reader."""
