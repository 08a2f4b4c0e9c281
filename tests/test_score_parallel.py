"""Runs graded side by side (one forked worker per core) give the same bytes as one after another.

``score.parallel`` changes only the wall time: each run is graded on its own, with its own
seeded bootstrap. This compares every output file, the exit code and the skipped-file report of
a scoring with one worker against one with several, plots included (drawn in workers too).
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest

from jmle_eval.score import parallel, stage
from tests.score_fixtures import gold_text, settings, write_run, wrong_text


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _score(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, bytes], str, str]:
    code = stage.run(settings(root, plots=True))
    out = capsys.readouterr()
    return code, {**_tree(root / "scored"), **_tree(root / "leaderboard")}, out.out, out.err


def test_scoring_runs_in_parallel_gives_the_bytes_of_scoring_them_in_turn(tmp_path, monkeypatch, capsys):
    predictions = tmp_path / "predictions"
    for k in range(5):  # five runs, each right on a different share of the questions
        write_run(
            predictions, "jmle2026", f"run{k}", lambda q, k=k: gold_text(q) if q.number % 5 >= k else wrong_text(q)
        )
    (predictions / "jmle2026" / "run2" / "120A-1.json").write_text("{torn")  # reported in both
    assert parallel.cores() >= 1
    monkeypatch.setattr(parallel, "MAX_WORKERS", 1)
    one = _score(tmp_path, capsys)
    for out in ("scored", "leaderboard"):
        (tmp_path / out).rename(tmp_path / f"{out}.one")
    monkeypatch.setattr(parallel, "MAX_WORKERS", 8)
    monkeypatch.setattr(parallel, "cores", lambda: 4)  # several workers even on a one-core runner
    several = _score(tmp_path, capsys)
    assert one[0] == several[0] == stage.EXIT_SKIPPED
    assert one[1] == several[1] and len(one[1]) > 10 and any(name.endswith(".png") for name in one[1])
    assert one[2:] == several[2:] and "120A-1.json" in one[3]


def test_ordered_map_keeps_the_order_and_runs_the_meanwhile_step(monkeypatch):
    seen = []
    monkeypatch.setattr(parallel, "cores", lambda: 3)
    assert list(parallel.ordered_map(abs, [-3, 1, -2, 5], lambda: seen.append("warm"))) == [3, 1, 2, 5]
    assert seen == ["warm"]


def _freeze_count_and_lock_state(job: tuple[int, threading.Lock]) -> tuple[int, int, bool]:
    """In a worker: the job's number, how many objects its GC leaves alone, and the job's lock as inherited."""
    number, lock = job
    return number, gc.get_freeze_count(), lock.locked()


def test_workers_inherit_their_jobs_unpickled_and_frozen(monkeypatch):
    # A lock cannot be pickled: the jobs reach the workers only because they are forked with them.
    # Frozen at the fork, the inherited objects are not scanned (nor their pages copied) by the
    # workers' collector; this process is unfrozen again when the map ends.
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    held = threading.Lock()
    held.acquire()
    jobs = [(n, held if n % 2 else threading.Lock()) for n in range(4)]
    got = list(parallel.ordered_map(_freeze_count_and_lock_state, jobs))
    held.release()
    assert [(n, locked) for n, _, locked in got] == [(0, False), (1, True), (2, False), (3, True)]
    assert all(frozen > 1000 for _, frozen, _ in got)
    assert gc.get_freeze_count() == 0
