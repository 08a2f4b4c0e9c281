"""Odd things on disk that score.py and the data set loader meet: reported by path, never a traceback or a hang.

Each test runs the real command as a subprocess (issue 14, score side): prediction
files whose fields have the wrong types, a symlink loop, a named pipe, nothing to
score at all, and a corrupt data set file read with ``dataset.verify=false``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, REPO, run_python
from tests.reliability.conftest import DATASET, assert_refused, snapshot
from tests.score_fixtures import write_run

TIMEOUT_S = 30  # far above a normal score.py (~1–2 s): only a hang reaches it


def _score(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_python([str(REPO / "score.py"), "plots=false", *args], cwd=root, timeout=TIMEOUT_S)


def _statuses(root: Path, run: str) -> dict[str, str]:
    path = root / "scored" / DATASET / f"{run}.jsonl"
    return {line["question_id"]: line["status"] for line in map(json.loads, path.read_text().splitlines())}


def _assert_skipped_and_rest_scored(
    result: subprocess.CompletedProcess[str], root: Path, skipped: list[str], entries: int | None = None
) -> None:
    """Exit 3, no traceback, ``entries`` paths reported, of run ``a`` only ``skipped`` left out; ``b`` all scored."""
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    count = len(skipped) if entries is None else entries
    assert f"{count} file(s)/folder(s) were skipped (exit code 3)" in result.stderr, result.stderr
    a = _statuses(root, "a")
    assert sorted(q for q, s in a.items() if s != "ok") == sorted(skipped)
    assert len(a) == 400 and set(_statuses(root, "b").values()) == {"ok"}


BROKEN_FIELDS = {  # question id → (field, value, words of the reason); each was once graded or crashed the run
    "120A-1": ("finish_reason", ["stop"], "finish_reason: Input should be a valid string"),
    "120A-2": ("cost_usd", float("nan"), "cost_usd: Input should be a finite number"),
    "120A-3": ("latency_s", float("inf"), "latency_s: Input should be a finite number"),
    "120A-4": ("usage", "lots", "usage: Input should be a valid dictionary"),
    "120A-5": ("cost_usd", "free", "cost_usd: Input should be a valid number"),
    "120A-6": ("created_at", 5, "created_at: Input should be a valid string"),
}


def test_prediction_files_with_wrong_field_types_are_reported_and_the_rest_scored(tmp_path):
    run_a = write_run(tmp_path / "predictions", DATASET, "a")
    write_run(tmp_path / "predictions", DATASET, "b")
    for qid, (field, value, _) in BROKEN_FIELDS.items():
        path = run_a / f"{qid}.json"
        record = json.loads(path.read_bytes())
        path.write_text(json.dumps({**record, field: value}))  # NaN / Infinity as Python's json writes them
    result = _score(tmp_path)
    _assert_skipped_and_rest_scored(result, tmp_path, list(BROKEN_FIELDS))
    for qid, (_, _, reason) in BROKEN_FIELDS.items():
        assert f"skipped: predictions/{DATASET}/a/{qid}.json is not a prediction record ({reason}" in result.stderr


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_self_referencing_symlink_is_reported_and_the_rest_scored(tmp_path):
    run_a = write_run(tmp_path / "predictions", DATASET, "a")
    write_run(tmp_path / "predictions", DATASET, "b")
    (run_a / "120A-1.json").unlink()
    os.symlink("120A-1.json", run_a / "120A-1.json")  # resolves to itself: ELOOP on every access
    result = _score(tmp_path)
    _assert_skipped_and_rest_scored(result, tmp_path, ["120A-1"])
    assert f"skipped: predictions/{DATASET}/a/120A-1.json cannot be read (Too many levels of symbolic links)" in (
        result.stderr
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipes_are_reported_not_waited_on_and_the_rest_scored(tmp_path):
    run_a = write_run(tmp_path / "predictions", DATASET, "a")
    write_run(tmp_path / "predictions", DATASET, "b")
    (run_a / "120A-1.json").unlink()
    os.mkfifo(run_a / "120A-1.json")  # no writer ever comes: opening it to read would block forever
    pipe_run = write_run(tmp_path / "predictions", DATASET, "c", only=lambda q: q.number == 1)
    (pipe_run / "run.json").unlink()
    os.mkfifo(pipe_run / "run.json")
    result = _score(tmp_path)
    assert f"skipped: predictions/{DATASET}/a/120A-1.json is a named pipe (FIFO), not a regular file" in result.stderr
    assert f"skipped: predictions/{DATASET}/c run.json is a named pipe (FIFO), not a regular file" in result.stderr
    _assert_skipped_and_rest_scored(result, tmp_path, ["120A-1"], entries=2)  # the pipe and run c
    assert not (tmp_path / "scored" / DATASET / "c.jsonl").exists()


NOTHING_TO_SCORE = {
    "empty predictions folder": ([], "predictions holds no run folders"),
    "data set folder without runs": ([DATASET], "predictions holds no run folders"),
    "runs=[]": ([DATASET, "run"], "runs=[] selects no run"),
}


@pytest.mark.parametrize("case", list(NOTHING_TO_SCORE))
def test_nothing_to_score_is_a_clear_error_not_a_silent_success(tmp_path, case):
    layout, expected = NOTHING_TO_SCORE[case]
    (tmp_path / "predictions").mkdir()
    if layout == [DATASET]:
        (tmp_path / "predictions" / DATASET).mkdir()
    elif layout:
        write_run(tmp_path / "predictions", DATASET, "run", only=lambda q: q.number == 1)
    before = snapshot(tmp_path)
    result = _score(tmp_path, *(["runs=[]"] if case == "runs=[]" else []))
    assert_refused(result, "There is nothing to score", expected)
    assert snapshot(tmp_path) == before  # nothing written: no scored/, no leaderboard/


def test_predictions_path_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    before = snapshot(tmp_path)
    result = _score(tmp_path, "paths.predictions=results.json")
    assert_refused(result, "paths.predictions=results.json is not a folder", "<dataset>/<run>/")
    assert snapshot(tmp_path) == before


def _corrupt_jmle2026(root: Path, change: str) -> Path:
    """Return a data root whose jmle2026 copy has a structurally broken data file (valid JSON, wrong shape)."""
    source, copy = DATA_DIR / DATASET, root / "data" / DATASET
    copy.mkdir(parents=True)
    for entry in source.iterdir():  # links, not copies: only the JSON file is changed (images are 26 MB)
        if entry.name != "jmle2026_dataset.json":
            os.symlink(entry, copy / entry.name)
    rows = json.loads((source / "jmle2026_dataset.json").read_bytes())
    if change == "missing field":
        del rows[5]["answer"]
    else:
        rows = {"questions": rows}
    (copy / "jmle2026_dataset.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return root / "data"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
@pytest.mark.parametrize("change", ["missing field", "wrong top-level type"])
@pytest.mark.parametrize("command", ["datasets stats", "score.py"])
def test_corrupt_data_file_with_verify_off_is_a_clear_error_naming_the_file(tmp_path, change, command):
    data = _corrupt_jmle2026(tmp_path, change)
    args = [f"dataset={DATASET}", "dataset.verify=false"]
    if command == "score.py":
        write_run(tmp_path / "predictions", DATASET, "run", only=lambda q: q.number == 1)
        argv, cwd = [str(REPO / "score.py"), "plots=false", *args], tmp_path
    else:
        argv, cwd = ["-m", "jmle_eval.datasets", "stats", *args], REPO  # -m finds jmle_eval from the repo root
    result = run_python(argv, env={"JMLE_EVAL_DATA_DIR": str(data)}, cwd=cwd, timeout=TIMEOUT_S)
    path = data / DATASET / "jmle2026_dataset.json"
    assert_refused(result, f"{path} is corrupt", "Re-download it", "dataset.verify=true")
    if change == "missing field":
        assert "a record has no field 'answer'" in result.stderr
    assert not (tmp_path / "scored").exists()
