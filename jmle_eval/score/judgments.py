"""Judgment folders as the score stage reads them: the judge runs of one prediction run.

``<paths.judgments>/<dataset>/<prediction run>/<judge run>/`` holds the judge run's
``run.json`` (stage judge: the rubric, the judge model and its price) and one
``<question_id>.json`` per judged question (``schema.Judgment``). The conventions of
prediction folders hold (``runs``): hidden files, ``*.tmp`` files and logs are ignored;
anything else that is not a valid judgment of a question of the data set, by this judge
run's rubric and settings, is reported by path (:class:`~jmle_eval.score.runs.Skipped`,
exit 3) and left out. A judgment whose ``prediction_sha256`` is not the sha256 of the
prediction file as it is now (the question was predicted again and not judged again, or
its file is gone or unreadable) is stale: counted, never used.

Only files are read; nothing here imports the judge stage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from jmle_eval.schema import RubricKind, judgment_problem
from jmle_eval.score.grade import Key
from jmle_eval.score.runs import Skipped, is_ignored, read_json

KINDS = ("choice", "verdict", "score")


@dataclass
class JudgeRun:
    """One judge run of a prediction run: its header and its judgments by question id."""

    name: str
    rubric: str
    kind: RubricKind
    header: dict[str, Any]
    judgments: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Fresh judgments (of the prediction file as it is now), status ok or error."""
    stale: set[str] = field(default_factory=set)
    """Question ids whose judgment is of an older prediction file."""

    @property
    def model(self) -> dict[str, Any]:
        """Return the judge model as run.json records it (empty when it records none)."""
        model = self.header.get("model")
        return model if isinstance(model, dict) else {}


def judgments_folder(root: str | os.PathLike[str] | None, dataset: str, run: str) -> Path | None:
    """Return ``<root>/<dataset>/<run>/`` when it is a folder (one stat per run), else None."""
    if root is None:
        return None
    folder = Path(root) / dataset / run
    return folder if folder.is_dir() else None


def read_header(folder: Path, dataset: str, run: str) -> dict[str, Any]:
    """Return a judge run's ``run.json``, checked; raise ValueError with the reason to skip the judge run."""
    path = folder / "run.json"
    if not os.path.lexists(path):
        raise ValueError("has no run.json (not a judge run folder)")
    try:
        header = read_json(path)
    except ValueError as exc:
        raise ValueError(f"run.json {exc}") from exc
    if not isinstance(header, dict) or header.get("stage") != "judge":
        raise ValueError("run.json is not a judge run header (stage: judge)")
    for name, expected in (("dataset", dataset), ("prediction_run", run)):
        if header.get(name) not in (None, expected):
            raise ValueError(f"run.json says {name} '{header.get(name)}', but the folder is under '{expected}'")
    rubric = header.get("rubric")
    if not isinstance(rubric, dict) or not isinstance(rubric.get("name"), str) or not rubric["name"]:
        raise ValueError("run.json names no rubric (rubric.name)")
    if rubric.get("kind") not in KINDS:
        raise ValueError(f"run.json rubric.kind is {rubric.get('kind')!r}, expected one of {', '.join(KINDS)}")
    return header


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return not entry.is_dir()
    except OSError:  # a symlink loop: kept, then reported when it cannot be read
        return True


def _record_problem(record: dict[str, Any], judge: JudgeRun) -> str | None:
    """Return why a valid judgment file does not belong to this judge run, or None when it does."""
    if record["rubric"] != judge.rubric or record["kind"] != judge.kind:
        return f"was judged with rubric {record['rubric']} ({record['kind']}), not {judge.rubric} ({judge.kind})"
    fingerprint = judge.header.get("fingerprint")
    if fingerprint and record.get("fingerprint") not in (None, fingerprint):
        return "has a different fingerprint from run.json (judged with other settings)"
    return None


def read_judgments(
    folder: Path, judge: JudgeRun, keys: Mapping[str, Key], hashes: Mapping[str, str], skipped: Skipped
) -> None:
    """Fill ``judge`` with the folder's judgments: fresh ones by question id, stale ones counted."""
    with os.scandir(folder) as entries:
        names = sorted(e.name for e in entries if _is_file(e))
    for name in names:
        if is_ignored(name):
            continue
        path = folder / name
        qid = name[:-5] if name.endswith(".json") else None
        if qid is None or qid not in keys:
            skipped.add(path, "is not a judgment file of a question in this data set")
            continue
        try:
            record = read_json(path)
        except ValueError as exc:
            skipped.add(path, str(exc))
            continue
        problem = judgment_problem(record, qid) or _record_problem(record, judge)
        if problem:
            skipped.add(path, f"is not a judgment of this judge run ({problem})")
            continue
        if hashes.get(qid) != record["prediction_sha256"]:
            judge.stale.add(qid)
        else:
            judge.judgments[qid] = record


def read_judge_runs(
    folder: Path, dataset: str, run: str, keys: Mapping[str, Key], hashes: Mapping[str, str], skipped: Skipped
) -> list[JudgeRun]:
    """Return the judge runs of one prediction run (sorted by name); report and skip bad folders and files.

    ``hashes`` are the sha256 of the run's prediction files by question id (``runs.read_predictions``).
    """
    judges = []
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith("."))
    except OSError as exc:
        skipped.add(folder, f"cannot be listed ({exc.strerror or exc})")
        return []
    for name in names:
        path = folder / name
        if not path.is_dir():
            skipped.add(path, "is not a judge run folder (expected judgments/<dataset>/<run>/<judge run>/)")
            continue
        try:
            header = read_header(path, dataset, run)
            judge = JudgeRun(name, header["rubric"]["name"], cast(RubricKind, header["rubric"]["kind"]), header)
            read_judgments(path, judge, keys, hashes, skipped)
        except ValueError as exc:
            skipped.add(path, str(exc))
            continue
        except OSError as exc:
            skipped.add(path, f"cannot be listed ({exc.strerror or exc})")
            continue
        judges.append(judge)
    return judges
