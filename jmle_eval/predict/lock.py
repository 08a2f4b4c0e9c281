"""One predict process per run folder (per shard): an advisory ``flock`` the kernel drops when its holder dies."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Any

from jmle_eval.errors import UserError
from jmle_eval.io import HOST

log = logging.getLogger(__name__)

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
            handle.write(f"host {HOST}, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
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
