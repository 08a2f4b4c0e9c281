"""Prediction files on disk: one atomic JSON file per question, a run header, and run totals.

A run folder ``predictions/<dataset>/<run>/`` holds ``run.json`` (what was asked
and how: the resolved config without secrets, and the fingerprint of every
setting that changes answers) and one ``<question_id>.json`` per question.
Files are written to a unique temporary name in the same folder, fsynced and
renamed, so a crash or ``kill -9`` never leaves a torn file, and several
processes (shards on several nodes) can share one folder without a lock.
Everything here is computed from the files, so totals stay right after any
number of resumes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import json
import logging
import os
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jmle_eval.errors import UserError
from jmle_eval.schema import prediction_problem

RUN_FILE = "run.json"
FORMAT = 1
log = logging.getLogger(__name__)

# Key names that may hold credentials: dropped from stored configs. "*_env" keys only name a variable.
_SECRET_NAME = re.compile(r"(?:^|_)(?:api_?key|key|secret|password|passwd|token|credentials?|auth)(?:$|_)", re.I)
_HOST = socket.gethostname().split(".")[0]


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


def scrub(value: Any, secret_values: Iterable[str] = ()) -> Any:
    """Return a copy without credential-named keys, with any known secret value masked."""
    hidden = [s for s in secret_values if s and len(s) >= 4]

    def walk(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {
                k: walk(v)
                for k, v in item.items()
                if str(k).lower().endswith("_env") or not _SECRET_NAME.search(str(k))
            }
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        if isinstance(item, str):
            return mask(item, hidden)
        return item

    return walk(value)


def mask(text: str, secret_values: Iterable[str]) -> str:
    """Return ``text`` with every occurrence of a secret value replaced by ``***``."""
    for secret in secret_values:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


# Temporary names: host and pid (to find leftovers of dead processes), a random token per process (pids are
# reused, e.g. in containers) and a counter (no syscall per name).
_TOKEN = secrets.token_hex(4)
_SERIAL = itertools.count()


def _temporary(path: str | os.PathLike[str]) -> str:
    folder, name = os.path.split(os.fspath(path))
    return os.path.join(folder, f".{name}.{_HOST}.{os.getpid()}.{_TOKEN}-{next(_SERIAL)}.tmp")


def _write_new(path: str, data: bytes, *, durable: bool = True) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a unique temporary file in the same folder, fsync and rename."""
    tmp = _temporary(path)
    try:
        _write_new(tmp, data, durable=durable)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _dump(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()  # the C encoder: indent would use the slow Python one


def _repair(value: Any) -> Any:
    """Return ``value`` with every string made encodable: surrogate pairs joined, lone surrogates → U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {k: _repair(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_repair(v) for v in value]
    return value


def encode_record(record: Mapping[str, Any]) -> bytes:
    """Return a record's file bytes (UTF-8 JSON).

    A server may send text that is valid JSON but not valid Unicode (a lone
    UTF-16 surrogate such as ``"\\ud83d"``): such text is stored with U+FFFD in
    place of what cannot be encoded, and the record's ``text_repaired`` names the
    fields that were changed, so an answer is never lost to an encoding error.
    """
    try:
        return _dump(record)
    except UnicodeEncodeError:
        repaired = {}
        changed = []
        for key, value in record.items():
            repaired[key] = _repair(value)
            if repaired[key] != value:
                changed.append(key)
        repaired["text_repaired"] = sorted(set(changed) | set(record.get("text_repaired") or []))
        return _dump(repaired)


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
    tmp = _temporary(target)
    try:
        _write_new(tmp, _dump(header))
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


def read_predictions(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Return every valid prediction record of a run, by question id.

    Valid means what score accepts (:func:`schema.prediction_problem`), in a
    regular file named for its question: a torn, foreign or invalid file is
    skipped with a warning, so its question is asked again and the new answer
    replaces it.
    """
    records: dict[str, dict[str, Any]] = {}
    for entry in _prediction_files(Path(run_dir)):
        try:
            if not entry.is_file():  # a FIFO or a dangling link would block or fail the read
                raise OSError("not a regular file")
            with open(entry.path, "rb") as f:
                record = json.loads(f.read())
        except (OSError, ValueError) as exc:
            log.warning(
                "ignoring unreadable prediction file %s (%s); its question will be asked again", entry.path, exc
            )
            continue
        problem = prediction_problem(record, entry.name[: -len(".json")])
        if problem is not None:
            log.warning(
                "ignoring invalid prediction file %s (%s); its question will be asked again", entry.path, problem
            )
            continue
        records[record["question_id"]] = record
    return records


def finished_ids(run_dir: Path, *, retry_errors: bool = True) -> set[str]:
    """Return the ids not to ask again: status ok, plus status error when ``retry_errors`` is false."""
    keep = {"ok"} if retry_errors else {"ok", "error"}
    return {qid for qid, r in read_predictions(run_dir).items() if r.get("status") in keep}


def totals(run_dir: Path) -> dict[str, Any]:
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
    for record in read_predictions(run_dir).values():
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


def remove_stale_temporaries(run_dir: Path) -> int:
    """Delete temporary files left by dead processes of this host; return how many went."""
    removed = 0
    for entry in os.scandir(run_dir) if Path(run_dir).is_dir() else []:
        parts = entry.name.split(".")
        if not (entry.name.startswith(".") and entry.name.endswith(".tmp") and len(parts) >= 6):
            continue
        host, pid, token = parts[-4], parts[-3], parts[-2].split("-")[0]
        if host != _HOST or not pid.isdigit():
            continue
        if int(pid) == os.getpid() and token == _TOKEN:
            continue  # ours
        if int(pid) != os.getpid() and _alive(int(pid)):
            continue  # another live process on this host (e.g. a concurrent shard)
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


LOCK_FILE = ".predict.lock"


class RunLock:
    """Keeps two predict processes from asking the same questions of one run folder.

    A process without a shard holds an exclusive ``flock`` on ``.predict.lock``;
    shards hold it shared (shards split the work between them) plus an exclusive
    lock on their own ``.predict.shard-k-of-n.lock``, so two copies of one shard
    are refused too. The kernel drops a lock when its process dies (``kill -9``
    included), so a lock is never stale; the file only names the holder (host,
    pid, start) for the message. Where the file system has no locks, a warning
    is logged and the run goes on unlocked.
    """

    def __init__(self, run_dir: Path, shard: tuple[int, int] | None) -> None:
        self.run_dir = Path(run_dir)
        self.shard = shard
        self._files: list[Any] = []

    def _take(self, name: str, exclusive: bool) -> bool:
        path = self.run_dir / name
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            self._holder = handle.read().strip()
            handle.close()
            return False
        except OSError as exc:  # ENOLCK, EOPNOTSUPP: a file system without locks
            handle.close()
            log.warning("cannot lock %s (%s): nothing stops a second predict process on this run", path, exc)
            return True
        if exclusive:
            handle.seek(0)
            handle.truncate()
            handle.write(f"host {_HOST}, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
            handle.flush()
        self._files.append(handle)
        return True

    def __enter__(self) -> RunLock:
        self._holder = ""
        if self.shard is None:
            if not self._take(LOCK_FILE, exclusive=True):  # shards hold it shared and write no holder line
                self._refuse("another predict process" if self._holder else "predict processes with run.shard=k/n")
            return self
        k, n = self.shard
        if not self._take(LOCK_FILE, exclusive=False):
            self._refuse("a predict process without run.shard")
        if not self._take(f".predict.shard-{k}-of-{n}.lock", exclusive=True):
            self._refuse(f"another predict process with run.shard={k}/{n}")
        return self

    def _refuse(self, who: str) -> None:
        self.__exit__(None, None, None)
        holder = f" ({self._holder})" if self._holder else ""
        verb = "are" if who.startswith("predict processes") else "is"
        raise UserError(
            f"{who[0].upper()}{who[1:]}{holder} {verb} working on the run folder {self.run_dir}; a second one "
            "would ask the same questions again (double cost). Wait for it to finish, or split the work: give "
            "every process its own run.shard=k/n (e.g. run.shard=0/2 and run.shard=1/2)."
        )

    def __exit__(self, *exc: object) -> None:
        for handle in self._files:
            with contextlib.suppress(OSError):
                handle.close()  # closing drops the lock; the file stays, naming nobody who holds it
        self._files.clear()


class PredictionWriter:
    """Writes prediction records on background threads, so file I/O never stalls the request loop.

    ``put`` queues a record; ``close`` writes everything queued and stops the
    threads. Several threads let fsyncs overlap (the file system commits them
    together). A write failure (disk full, permissions) is raised as a UserError
    from the next ``put`` or from ``close``.
    """

    def __init__(self, run_dir: Path, *, durable: bool = True, threads: int = 4) -> None:
        self.run_dir = Path(run_dir)
        self._folder = os.fspath(run_dir)
        self.durable = durable
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"prediction-writer-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (record := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                data = encode_record(record)
                atomic_write(f"{self._folder}/{record['question_id']}.json", data, durable=self.durable)
            except BaseException as exc:
                self._error = exc

    def _raise(self) -> None:
        if self._error is None:
            return
        if isinstance(self._error, OSError):
            raise UserError(
                f"Cannot write prediction files in {self.run_dir} ({self._error}). Free disk space or fix "
                "permissions, then run the same command again: finished answers are kept."
            ) from self._error
        raise UserError(
            f"A prediction file could not be written in {self.run_dir} ({type(self._error).__name__}: "
            f"{self._error}); the run was stopped so that no answer is lost unnoticed. This is a bug: please report "
            "it with predict.log. Finished answers are kept; the same command resumes."
        ) from self._error

    def put(self, record: dict[str, Any]) -> None:
        """Queue one prediction record for writing."""
        self._raise()
        self._queue.put(record)

    def close(self) -> None:
        """Write every queued record, stop the threads, and raise a write failure if one happened."""
        alive = [t for t in self._threads if t.is_alive()]
        for _ in alive:
            self._queue.put(None)
        for thread in alive:
            thread.join()
        self._raise()
