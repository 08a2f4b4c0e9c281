"""Prediction folders as the score stage reads them, and its output files.

``predictions/<dataset>/<run>/`` holds ``run.json`` and one ``<question_id>.json``
per question (``schema.Prediction``). Logs, ``*.tmp`` files of killed writers and
hidden files are ignored; anything else that is not a readable prediction of a
question of the data set is reported by path (:class:`Skipped`) and left out.
Only regular files are opened: a named pipe would block the reader forever, and
a symlink loop or a device is reported like any other unreadable file.
Outputs are written atomically in one canonical JSON form, so reruns are
byte-identical and a crash never leaves a torn file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from jmle_eval.config import CONF_DIR
from jmle_eval.errors import UserError
from jmle_eval.io import read_regular
from jmle_eval.schema import IMAGE_MODES, ScoredItem, prediction_problem
from jmle_eval.score.grade import Key
from jmle_eval.score.parse import PARSE_MODES


@dataclass
class Skipped:
    """Files and folders that were reported and left out; any entry makes the exit code 3."""

    entries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: Path | str, reason: str) -> None:
        """Record one skipped path with the reason."""
        self.entries.append((os.fspath(path), reason))

    @staticmethod
    def names(entries: list[tuple[str, str]], judgments: Path | None = None) -> list[str]:
        """Return a run's skipped files as ``name: why`` (a summary's ``skipped_files``), sorted.

        A file under the run's judgments folder ``judgments`` is named ``judgment <judge run>/<name>``.
        """
        names = []
        for path, why in entries:
            found = Path(path)
            if judgments is not None and found.is_relative_to(judgments):
                names.append(f"judgment {found.relative_to(judgments).as_posix()}: {why}")
            else:
                names.append(f"{found.name}: {why}")
        return sorted(names)


def read_json(path: Path) -> Any:
    """Return the parsed JSON of a regular file; raise ValueError with the reason to skip it."""
    return loads(read_regular(path))


_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19
"""19 digits in a row (after ``_DIGITS_ONLY`` makes every digit a 0): a number orjson would read differently
(an integer past 64 bits becomes a float). A regular expression takes five times longer to look."""


def loads(data: bytes) -> Any:
    """Return the parsed JSON of a file's bytes; raise ValueError with the reason to skip the file.

    orjson reads a prediction file in 40 % of ``json``'s time (json was a tenth of scoring time); what it
    refuses or might read differently (NaN, a byte-order mark, a lone surrogate, huge numbers) goes to
    ``json``, so every file gets the same value, or the same refusal, as before.
    """
    if _LONG_NUMBER not in data.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(data)
    except ValueError as exc:  # JSON and UTF-8 decode errors
        raise ValueError("is not valid JSON (truncated or corrupt)") from exc


SELECTION = ("subset", "sample", "seed", "include_no_context", "language")
"""Card keys that choose a run's question set: a run is graded on the set it was asked (recorded in run.json)."""


def run_card(card: Mapping[str, Any], run_dir: Path) -> dict[str, Any]:
    """Return the card with the question-set choices the run was made with (``dataset.sample=50`` …)."""
    try:
        recorded = ((read_json(run_dir / "run.json") or {}).get("config") or {}).get("dataset") or {}
    except (ValueError, AttributeError):
        recorded = {}  # an unreadable run.json is reported by score_run
    return {**card, **{k: recorded[k] for k in SELECTION if isinstance(recorded, dict) and k in recorded}}


def read_run_info(run_dir: Path, dataset: str) -> dict[str, Any]:
    """Return a run's ``run.json``, checked; raise ValueError with the reason to skip the run."""
    path = run_dir / "run.json"
    if not os.path.lexists(path):  # anything named run.json (a pipe, a broken link) is read and reported below
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


def is_ignored(name: str) -> bool:
    """Return whether a file in a run folder is not a record: hidden, a writer's ``*.tmp``, a log, ``run.json``."""
    return name.startswith(".") or ".tmp" in name or name.endswith(".log") or name == "run.json"


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop raises ELOOP here; it is kept, then reported when it cannot be read
        return False


_SAMPLE = re.compile(r"(.+)\.r(0|[1-9][0-9]*)")
"""A repeats run's file id: ``<question id>.r<i>``."""


def read_predictions(
    run_dir: Path,
    keys: Mapping[str, Key],
    fingerprint: str | None,
    skipped: Skipped,
    hashes: dict[str, str] | None = None,
    repeats: int = 1,
) -> dict[str, dict[str, Any]]:
    """Return the run's prediction records by file id; report and skip bad or foreign files.

    The file id is the question id, or ``<question id>.r<i>`` for sample i < ``repeats`` of a
    ``run.repeats`` run. With ``hashes`` (a run that has judgments), the sha256 of each record's
    file bytes is put there by file id: a judgment names the exact file it judged.
    """
    predictions: dict[str, dict[str, Any]] = {}
    with os.scandir(run_dir) as entries:
        names = sorted(e.name for e in entries if not _is_dir(e))
    for name in names:
        if is_ignored(name):
            continue
        path = os.path.join(run_dir, name)  # a str: a Path per file costs more than reading it
        qid = name[:-5] if name.endswith(".json") else None
        if qid is not None and repeats > 1:  # <id>.r<i>.json only: a one-sample file does not belong here
            sample = _SAMPLE.fullmatch(qid)
            qid = sample[1] if sample and int(sample[2]) < repeats else None
        if qid is None or qid not in keys:
            what = f"a sample (<id>.r0 … r{repeats - 1}) of" if repeats > 1 else "a prediction file of"
            skipped.add(path, f"is not {what} a question in this data set")
            continue
        try:
            data = read_regular(path)
            record = loads(data)
        except ValueError as exc:
            skipped.add(path, str(exc))
            continue
        # The check predict applies before writing (schema.Prediction, strict), so the stages never
        # disagree on what a valid file is; ~3 µs a record, under 1 % of scoring time (measured).
        problem = prediction_problem(record, name[:-5])
        if problem:
            skipped.add(path, f"is not a prediction record ({problem})")
            continue
        if fingerprint and record.get("fingerprint") not in (None, fingerprint):
            skipped.add(path, "has a different fingerprint from run.json (written with other settings)")
            continue
        predictions[name[:-5]] = record
        if hashes is not None:
            hashes[name[:-5]] = hashlib.sha256(data).hexdigest()
    return predictions


_WHAT_TO_DO = (
    "Run predict.py first, point paths.predictions at your predictions folder, or import published results "
    "(import.jmle2026_bench=… or import.igakuqa_baseline=…)."
)


def check_predictions_dir(predictions_dir: Path) -> None:
    """Refuse a ``paths.predictions`` that exists but is not a folder (before an import writes into it)."""
    if os.path.lexists(predictions_dir) and not predictions_dir.is_dir():
        raise UserError(
            f"There is nothing to score: paths.predictions={predictions_dir} is not a folder. Point "
            "paths.predictions at the folder that holds <dataset>/<run>/ run folders (default: predictions)."
        )


def discover(predictions_dir: Path, datasets: set[str] | None, skipped: Skipped) -> dict[str, list[Path]]:
    """Return the run folders of each data set to score (sorted); report foreign entries.

    Finding no run folder at all is a user error rather than a silent exit 0 that writes nothing.
    """
    check_predictions_dir(predictions_dir)
    if not predictions_dir.is_dir():
        raise UserError(f"There is nothing to score: {predictions_dir} does not exist. {_WHAT_TO_DO}")
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
    if not any(found.values()):
        # The entries left out would otherwise never be shown: this error ends the command.
        left_out = "".join(f" Left out: {path} {why}." for path, why in skipped.entries[:3])
        more = f" (and {len(skipped.entries) - 3} more)" if len(skipped.entries) > 3 else ""
        raise UserError(
            f"There is nothing to score: {predictions_dir} holds no run folders (expected "
            f"{predictions_dir}/<dataset>/<run>/ with run.json and one <question_id>.json per question).{left_out}"
            f"{more} {_WHAT_TO_DO}"
        )
    return found


def select_runs(found: dict[str, list[Path]], runs: list[str] | None) -> dict[str, list[Path]]:
    """Return only the named runs (all when ``runs`` is None); an unknown name or ``runs=[]`` is a user error."""
    if runs is None:
        return found
    known = {p.name for paths in found.values() for p in paths}
    if not runs:
        raise UserError(
            "There is nothing to score: runs=[] selects no run. Name the runs to score, e.g. "
            f"runs='[{min(known, default='run_a')}]', or leave runs unset to score every run. "
            f"Available runs: {', '.join(sorted(known)) or 'none'}."
        )
    unknown = [r for r in runs if r not in known]
    if unknown:
        raise UserError(
            f"No run folder named {', '.join(unknown)} under the selected data set(s). "
            f"Available runs: {', '.join(sorted(known)) or 'none'}."
        )
    return {
        ds: [p for p in paths if p.name in runs] for ds, paths in found.items() if any(p.name in runs for p in paths)
    }


def read_scored(path: Path) -> list[ScoredItem]:
    """Return the scored lines of ``scored/<dataset>/<run>.jsonl`` (as the score stage wrote them)."""
    lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines(): text may hold U+2028, U+0085…
    return [ScoredItem.model_validate_json(line) for line in lines if line.strip()]


Summary = TypeVar("Summary", bound=BaseModel)


def stored_summaries(paths: Mapping[str, Path], dataset: str, exclude: set[str], model: type[Summary]) -> list[Summary]:
    """Return the stored summaries (``model``) of the data set's other runs whose prediction folder still exists.

    A partial re-score (``runs=``) keeps them on the leaderboard; an unreadable or older-format summary is left
    out, and a plain ``python score.py`` scores that run again.
    """
    out = []
    for path in sorted((paths["scored"] / dataset).glob("*.summary.json")):
        name = path.name.removesuffix(".summary.json")
        if name in exclude or not (paths["predictions"] / dataset / name / "run.json").is_file():
            continue
        try:
            out.append(model.model_validate_json(path.read_bytes()))
        except (OSError, ValidationError):
            continue
    return out
