"""Grade runs (and draw plots) on every core: one worker process per core, results in order.

Each run is graded on its own (its files, its key, its seeded bootstrap), so the
outputs are the same bytes whether the runs are graded one after another or side
by side; only the wall time changes. Workers are forked, so they start with the
parent's imports, keys and jobs already in memory: a job goes to a worker as its
index (pickling a run's 2,000 keys and unpickling them cost 20 ms a run, more than
a tenth of grading it). Where fork is not available, or there
is one run or one core, runs are graded in this process.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from jmle_eval.io import cores

__all__ = ["MAX_WORKERS", "cores", "ordered_map"]

Job = TypeVar("Job")
Result = TypeVar("Result")

MAX_WORKERS = 8
"""More processes than this only add memory: reading and parsing a run is CPU-bound and short."""


def ordered_map(
    grade: Callable[[Job], Result], jobs: Sequence[Job], meanwhile: Callable[[], object] | None = None
) -> Iterator[Result]:
    """Yield ``grade(job)`` for every job, in order, computed by up to one forked worker per core.

    ``meanwhile`` runs in this process while the workers grade (e.g. importing what comes next), so its
    time is hidden; without workers it runs first.
    """
    workers = min(cores(), len(jobs), MAX_WORKERS)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        if meanwhile is not None:
            meanwhile()
        yield from map(grade, jobs)
        return
    global _TASK
    _TASK = (grade, jobs)  # the workers are forked with it: a job is sent as its index, never pickled
    # Frozen, the objects the workers inherit are never scanned by a garbage collector, so their memory
    # pages stay shared instead of being copied into each worker, and this process's collections during
    # ``meanwhile`` skip them too: -0.45 s CPU of 4.6 when scoring 20 runs x 2,000 (bench/RESULTS.md).
    gc.freeze()
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = pool.map(_run_task, range(len(jobs)))  # every job is submitted, every worker forked
            if meanwhile is not None:
                meanwhile()
            yield from results
    finally:
        _TASK = None
        gc.unfreeze()


_TASK: tuple[Callable[[Any], Any], Sequence[Any]] | None = None
"""The function and jobs of the map in progress, inherited by its forked workers."""


def _run_task(index: int) -> Any:
    """Run job ``index`` of the map in progress (in a worker)."""
    assert _TASK is not None, "a worker of ordered_map runs only in a process forked by it"
    grade, jobs = _TASK
    return grade(jobs[index])
