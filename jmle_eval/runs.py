"""Prediction folders as the score stage reads them, and its output files.

``predictions/<dataset>/<run>/`` holds ``run.json`` and one ``<question_id>.json``
per question (``schema.Prediction``). Logs, ``*.tmp`` files of killed writers and
hidden files are ignored; anything else that is not a readable prediction of a
question of the data set is reported by path (:class:`Skipped`) and left out.
Outputs are written atomically in one canonical JSON form, so reruns are
byte-identical and a crash never leaves a torn file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jmle_eval.config import CONF_DIR
from jmle_eval.errors import UserError
from jmle_eval.grade import Key
from jmle_eval.parse import PARSE_MODES

IMAGE_MODES = ("blind", "vision", "skip")


@dataclass
class Skipped:
    """Files and folders that were reported and left out; any entry makes the exit code 3."""

    entries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: Path | str, reason: str) -> None:
        """Record one skipped path with the reason."""
        self.entries.append((os.fspath(path), reason))


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write a file via a temporary sibling and rename, so a crash never leaves a torn output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    os.replace(tmp, path)


def dump_json(value: Any) -> str:
    """Return the canonical JSON text of an output file (sorted keys, UTF-8, trailing newline)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2, allow_nan=False) + "\n"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # ValueError covers JSON and UTF-8 decode errors
        reason = "cannot be read" if isinstance(exc, OSError) else "is not valid JSON (truncated or corrupt)"
        raise ValueError(reason) from exc


def read_run_info(run_dir: Path, dataset: str) -> dict[str, Any]:
    """Return a run's ``run.json``, checked; raise ValueError with the reason to skip the run."""
    path = run_dir / "run.json"
    if not path.is_file():
        raise ValueError("has no run.json (not a run folder)")
    try:
        info = read_json(path)
    except ValueError as exc:
        raise ValueError(f"run.json {exc}") from exc
    if not isinstance(info, dict):
        raise ValueError("run.json is not a JSON object")
    if info.get("dataset") not in (None, dataset):
        raise ValueError(f"run.json says dataset '{info.get('dataset')}', but the folder is under '{dataset}'")
    if info.get("image_mode") not in IMAGE_MODES:
        raise ValueError(f"run.json image_mode is {info.get('image_mode')!r}, expected one of {', '.join(IMAGE_MODES)}")
    if info.get("parse_mode", "lenient") not in PARSE_MODES:
        raise ValueError(f"run.json parse_mode is {info.get('parse_mode')!r}, expected one of {', '.join(PARSE_MODES)}")
    return info


def _ignored(name: str) -> bool:
    return name.startswith(".") or ".tmp" in name or name.endswith(".log") or name == "run.json"


_NUMBER = (int, float)


def record_problem(record: Any, qid: str) -> str | None:
    """Return what makes ``record`` unusable as the prediction of ``qid``, or None when it is fine.

    Checked by hand rather than with pydantic: this runs once per file in the hot loop.
    """
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("question_id") != qid:
        return f"question_id {record.get('question_id')!r} does not match the file name"
    if record.get("status") not in ("ok", "error"):
        return f"status {record.get('status')!r} is not ok|error"
    for field_name in ("answer_text", "reasoning_text", "finish_reason", "error"):
        if not isinstance(record.get(field_name), str | None):
            return f"{field_name} is not text"
    usage = record.get("usage")
    if usage is not None and (
        not isinstance(usage, dict) or any(not isinstance(v, int) or isinstance(v, bool) for v in usage.values())
    ):
        return "usage is not a mapping of token counts"
    for field_name in ("latency_s", "cost_usd"):
        value = record.get(field_name)
        if value is not None and (not isinstance(value, _NUMBER) or isinstance(value, bool)):
            return f"{field_name} is not a number"
    return None


def read_predictions(
    run_dir: Path, keys: Mapping[str, Key], fingerprint: str | None, skipped: Skipped
) -> dict[str, dict[str, Any]]:
    """Return the run's prediction records by question id; report and skip bad or foreign files."""
    predictions: dict[str, dict[str, Any]] = {}
    with os.scandir(run_dir) as entries:
        names = sorted(e.name for e in entries if not e.is_dir())
    for name in names:
        if _ignored(name):
            continue
        path = run_dir / name
        qid = name[:-5] if name.endswith(".json") else None
        if qid is None or qid not in keys:
            skipped.add(path, "is not a prediction file of a question in this data set")
            continue
        try:
            record = read_json(path)
        except ValueError as exc:
            skipped.add(path, str(exc))
            continue
        problem = record_problem(record, qid)
        if problem:
            skipped.add(path, f"is not a prediction record ({problem})")
            continue
        if fingerprint and record.get("fingerprint") not in (None, fingerprint):
            skipped.add(path, "has a different fingerprint from run.json (written with other settings)")
            continue
        predictions[qid] = record
    return predictions


def discover(predictions_dir: Path, datasets: set[str] | None, skipped: Skipped) -> dict[str, list[Path]]:
    """Return the run folders of each data set to score (sorted); report foreign entries."""
    if not predictions_dir.is_dir():
        raise UserError(
            f"There is nothing to score: {predictions_dir} does not exist. Run predict.py first, point "
            "paths.predictions at your predictions folder, or import published results "
            "(import.jmle2026_bench=… or import.igakuqa_baseline=…)."
        )
    found: dict[str, list[Path]] = {}
    for entry in sorted(predictions_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.add(entry, "is not a data set folder (expected predictions/<dataset>/<run>/)")
            continue
        if datasets and entry.name not in datasets:
            continue
        if not (CONF_DIR / "dataset" / f"{entry.name}.yaml").is_file():
            skipped.add(entry, f"has no data set card conf/dataset/{entry.name}.yaml")
            continue
        runs = []
        for run in sorted(entry.iterdir()):
            if run.name.startswith("."):
                continue
            if run.is_dir():
                runs.append(run)
            else:
                skipped.add(run, "is not a run folder (expected predictions/<dataset>/<run>/)")
        found[entry.name] = runs
    for name in sorted((datasets or set()) - set(found)):
        raise UserError(f"There are no predictions for data set '{name}' under {predictions_dir}/.")
    return found


def select_runs(found: dict[str, list[Path]], runs: list[str] | None) -> dict[str, list[Path]]:
    """Return only the named runs (all when ``runs`` is None); an unknown name is a user error."""
    if runs is None:
        return found
    known = {p.name for paths in found.values() for p in paths}
    unknown = [r for r in runs if r not in known]
    if unknown:
        raise UserError(
            f"No run folder named {', '.join(unknown)} under the selected data set(s). "
            f"Available runs: {', '.join(sorted(known)) or 'none'}."
        )
    return {
        ds: [p for p in paths if p.name in runs] for ds, paths in found.items() if any(p.name in runs for p in paths)
    }
