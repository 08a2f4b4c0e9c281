"""Remove what Hydra wrote for an invocation that must leave nothing behind (a refused start, a dry run).

Hydra creates the run's log folder (and, for a sweep, ``multirun.yaml``) before the task
starts. A refused command and a dry run delete them, and every parent folder they left
empty, up to and including the output root (``paths.predictions`` …) — never the current
directory. Library code and the CLI glue share this one implementation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _prune(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, up to and including ``stop``, never the cwd."""
    cwd, stop, folder = Path.cwd().resolve(), stop.resolve(), folder.resolve()
    while folder != cwd and (folder == stop or stop in folder.parents):
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            return
        folder = folder.parent


def remove_output(stop_at: str | os.PathLike[str] | None, *, sweep_record: bool = False) -> None:
    """Delete this invocation's Hydra output folder (and with ``sweep_record`` a sweep's multirun.yaml).

    Parents left empty go too, up to ``stop_at`` (default: the current directory, never removed).
    Called without Hydra, it does nothing.
    """
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
    except (ValueError, ImportError):
        return
    stop = Path(stop_at) if stop_at else Path.cwd()
    out = Path(hydra.runtime.output_dir)
    if out.exists() and out.resolve() != Path.cwd().resolve():
        shutil.rmtree(out, ignore_errors=True)
        _prune(out.parent, stop)
    if sweep_record and hydra.mode == RunMode.MULTIRUN:  # the sweep's record, written before its first point ran
        record = Path(hydra.sweep.dir) / "multirun.yaml"
        record.unlink(missing_ok=True)
        _prune(record.parent, stop)
