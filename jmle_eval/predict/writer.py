"""Prediction files written on background threads: one atomic, optionally fsynced JSON file per question.

A record is written to a unique temporary name in the run folder, fsynced and
renamed (:func:`jmle_eval.io.atomic_write`), so a crash or ``kill -9`` never
leaves a torn file. The request loop only queues records; file I/O never stalls it.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jmle_eval.errors import UserError
from jmle_eval.io import atomic_write
from jmle_eval.schema import Prediction, record_id


def dump(record: Mapping[str, Any]) -> bytes:
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
        return dump(record)
    except UnicodeEncodeError:
        repaired = {}
        changed = []
        for key, value in record.items():
            repaired[key] = _repair(value)
            if repaired[key] != value:
                changed.append(key)
        repaired["text_repaired"] = sorted(set(changed) | set(record.get("text_repaired") or []))
        return dump(repaired)


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
        self._queue: queue.SimpleQueue[Prediction | Mapping[str, Any] | None] = queue.SimpleQueue()
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
                fields = record.model_dump(exclude_unset=True) if isinstance(record, Prediction) else record
                data = encode_record(fields)
                atomic_write(f"{self._folder}/{record_id(fields)}.json", data, durable=self.durable)
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

    def put(self, record: Prediction | Mapping[str, Any]) -> None:
        """Queue one prediction for writing (a model is written with the fields it was given, in field order)."""
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
