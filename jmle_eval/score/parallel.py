"""Grade runs (and draw plots) on every core: one worker process per core, results in order.

Each run is graded on its own (its files, its key, its seeded bootstrap), so the
outputs are the same bytes whether the runs are graded one after another or side
by side; only the wall time changes. Workers are forked, so they start with the
parent's imports and keys already in memory. Where fork is not available, or there
is one run or one core, runs are graded in this process.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

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
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        results = pool.map(grade, jobs)  # every job is submitted here
        if meanwhile is not None:
            meanwhile()
        yield from results
