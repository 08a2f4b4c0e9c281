"""Prediction files on disk: one atomic JSON file per question, a run header, and run totals.

A run folder ``predictions/<dataset>/<run>/`` holds ``run.json`` (what was asked
and how: the resolved config without secrets, and the fingerprint of every
setting that changes answers) and one ``<question_id>.json`` per question.
Files are written to a unique temporary name in the same folder, fsynced and
renamed (:mod:`.writer`), so a crash or ``kill -9`` never leaves a torn file, and
several processes (shards on several nodes) can share one folder without a lock.
Everything here is computed from the files, so totals stay right after any
number of resumes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from jmle_eval.errors import UserError
from jmle_eval.io import read_regular, temporary_name, write_new
from jmle_eval.predict.writer import PredictionWriter, dump, encode_record
from jmle_eval.schema import prediction_problem, record_id

__all__ = [
    "FORMAT", "RUN_FILE", "PredictionWriter", "check_header", "diff_inputs", "encode_record", "finished_ids",
    "fingerprint", "open_run", "read_header", "read_predictions", "totals",
]  # fmt: skip

RUN_FILE = "run.json"
FORMAT = 1
log = logging.getLogger(__name__)


def fingerprint(inputs: Mapping[str, Any]) -> str:
    """Return the sha256 hex digest of the canonical JSON of ``inputs``."""
    blob = json.dumps(inputs, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):  # an empty mapping has no leaves: {} and "unset" compare equal
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def diff_inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Return ``"path: old != new"`` for every differing leaf of two fingerprint-input dicts."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            fa = "(unset)" if va is missing else json.dumps(va, ensure_ascii=False)
            fb = "(unset)" if vb is missing else json.dumps(vb, ensure_ascii=False)
            lines.append(f"{key}: {fa} != {fb}")
    return lines


def read_header(run_dir: Path) -> dict[str, Any] | None:
    """Return the run's ``run.json``, or None when the run does not exist yet."""
    path = Path(run_dir) / RUN_FILE
    try:
        header = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path} cannot be read ({exc}). Restore it, or delete the run folder to start the run over."
        ) from exc
    if not isinstance(header, dict) or "fingerprint" not in header:
        raise UserError(f"{path} is not a run header (no 'fingerprint'). Delete the run folder to start over.")
    return header


def check_header(run_dir: Path, header: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the existing header if it matches ``header``'s fingerprint; raise UserError if it differs."""
    existing = read_header(run_dir)
    if existing is not None and existing["fingerprint"] != header["fingerprint"]:
        changes = diff_inputs(existing.get("fingerprint_inputs") or {}, header.get("fingerprint_inputs") or {})
        detail = "; ".join(changes) if changes else "fingerprint inputs unknown (older run format)"
        raise UserError(
            f"Run folder {run_dir} was made with different answer-changing settings (stored != now): {detail}. "
            "Resume with the stored settings, or pick another run.name=<name> for the new settings "
            "(or delete the folder to start over)."
        )
    return existing


def _torn_header(run_dir: Path) -> bool:
    """Return True if ``run.json`` exists but is empty and the run has no answers (a creation that failed)."""
    path = run_dir / RUN_FILE
    try:
        return path.stat().st_size == 0 and not any(_prediction_files(run_dir))
    except OSError:
        return False


def open_run(run_dir: Path, header: Mapping[str, Any]) -> bool:
    """Create ``run.json`` atomically unless it exists; return True if this call created it.

    The header is written to a temporary file, fsynced and hard-linked to its
    name: a failure (disk full) leaves no ``run.json`` at all, and two shards
    starting together cannot both create it — exactly one link succeeds and the
    other compares fingerprints. An empty ``run.json`` left by an older version
    in a run without answers is replaced.
    """
    run_dir = Path(run_dir)
    if _torn_header(run_dir):
        log.warning("replacing the empty %s left by a failed start", run_dir / RUN_FILE)
        (run_dir / RUN_FILE).unlink(missing_ok=True)
    check_header(run_dir, header)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / RUN_FILE
    tmp = temporary_name(target)
    try:
        write_new(tmp, dump(header))
        try:
            os.link(tmp, target)
            created = True
        except FileExistsError:
            created = False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            created = _claim_without_link(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    if not created:
        check_header(run_dir, header)
    return created


def _claim_without_link(tmp: str, target: Path) -> bool:
    """Create ``target`` from ``tmp`` on a file system without hard links; False if it already exists.

    An exclusive create of an empty placeholder decides who owns the name; the
    complete file then replaces it by rename, and a failed write removes it.
    """
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    return True


def _prediction_files(run_dir: Path) -> Iterable[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(run_dir))
    except FileNotFoundError:
        return []
    return [e for e in entries if e.name.endswith(".json") and e.name != RUN_FILE and not e.name.startswith(".")]


def read_predictions(
    run_dir: Path,
    *,
    check: Callable[[object, str], str | None] = prediction_problem,
    digests: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Return every valid record of a run folder, by the id its file is named by (``schema.record_id``).

    Valid means what score accepts (``check``: :func:`schema.prediction_problem`
    for predictions, :func:`schema.judgment_problem` for judgments), in a regular
    file named for its question: a torn, foreign or invalid file is skipped with
    a warning, so its question is asked again and the new file replaces it.
    ``digests``, when given, receives the sha256 of each valid file's bytes (a
    judgment names the exact prediction file it judged).
    """
    records: dict[str, dict[str, Any]] = {}
    for entry in _prediction_files(Path(run_dir)):
        try:
            data = read_regular(Path(entry.path))  # a FIFO or a dangling link: ValueError, no hang
            record = json.loads(data)
        except ValueError as exc:
            log.warning("ignoring unreadable file %s (%s); its question will be asked again", entry.path, exc)
            continue
        problem = check(record, entry.name[: -len(".json")])
        if problem is not None:
            log.warning("ignoring invalid file %s (%s); its question will be asked again", entry.path, problem)
            continue
        records[record_id(record)] = record
        if digests is not None:
            digests[record_id(record)] = hashlib.sha256(data).hexdigest()
    return records


def finished_ids(
    run_dir: Path,
    *,
    retry_errors: bool = True,
    check: Callable[[object, str], str | None] = prediction_problem,
    current: Callable[[str, dict[str, Any]], bool] | None = None,
) -> set[str]:
    """Return the ids not to ask again: status ok, plus status error when ``retry_errors`` is false.

    ``current`` (a judgment: does it judge the prediction file as it is now?) can
    send a finished file back to be asked again.
    """
    keep = {"ok"} if retry_errors else {"ok", "error"}
    return {
        qid
        for qid, r in read_predictions(run_dir, check=check).items()
        if r.get("status") in keep and (current is None or current(qid, r))
    }


def totals(run_dir: Path, *, check: Callable[[object, str], str | None] = prediction_problem) -> dict[str, Any]:
    """Return the run's totals summed over its prediction files (right after any number of resumes).

    Keys: questions, answered (status ok), errors, prompt_tokens, completion_tokens,
    reasoning_tokens, cost_usd (None when no file has a cost), latency_s (sum of
    request latencies), first_at and last_at (ISO times of the oldest and newest file).
    """
    out: dict[str, Any] = {
        "questions": 0,
        "answered": 0,
        "errors": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": None,
        "latency_s": 0.0,
        "first_at": None,
        "last_at": None,
    }
    stamps = []
    for record in read_predictions(run_dir, check=check).values():
        out["questions"] += 1
        out["answered" if record.get("status") == "ok" else "errors"] += 1
        usage = record.get("usage") or {}
        for key in ("prompt_tokens", "completion_tokens", "reasoning_tokens"):
            out[key] += int(usage.get(key) or 0)
        if record.get("cost_usd") is not None:
            out["cost_usd"] = (out["cost_usd"] or 0.0) + float(record["cost_usd"])
        out["latency_s"] += float(record.get("latency_s") or 0.0)
        if record.get("created_at"):
            stamps.append(record["created_at"])
    if stamps:
        out["first_at"], out["last_at"] = min(stamps), max(stamps)
    out["latency_s"] = round(out["latency_s"], 3)
    return out
