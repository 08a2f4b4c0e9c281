"""Bad inputs to predict.py and score.py: a clear message, a non-zero exit, and nothing written or lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jmle_eval.config import compose
from jmle_eval.predict import runner
from tests.conftest import REPO, run_python
from tests.reliability.conftest import (
    DATASET,
    RUN,
    SERVED,
    assert_refused,
    free_port,
    predict_overrides,
    read_run,
    snapshot,
)
from tests.score_fixtures import write_run

# Every refusal is the project's own paragraph (exit 2), Hydra's override errors included (cli.run_hydra).
PREDICT_CASES = {
    "malformed override": (["run.limit=[1,"], ["Cannot read the override 'run.limit=[1,'"]),
    "unknown key": (["run.limt=5"], ["Unknown setting run.limt", "did you mean run.limit?"]),
    "mistyped key": (["provider.timeout=5"], ["Unknown setting provider.timeout", "did you mean provider.timeout_s?"]),
    "unknown added key": (["+model.temprature=0.7"], ["model.temprature", "did you mean model.params.temperature?"]),
    "unknown top-level key": (["concurrency=8"], ["Unknown setting concurrency", "provider.max_concurrency"]),
    "unknown provider": (["provider=nowhere"], ["provider=nowhere", "conf/provider/nowhere.yaml", "vllm"]),
    "wrong type": (["run.limit=abc"], ["run.limit must be a whole number (got 'abc')"]),
    "zero concurrency": (["provider.max_concurrency=0"], ["provider.max_concurrency", ">= 1", "got 0"]),
    "negative concurrency": (["provider.max_concurrency=-4"], ["provider.max_concurrency", "got -4"]),
    "zero model concurrency": (["model.max_concurrency=0"], ["model.max_concurrency", "got 0"]),
    "negative model concurrency": (["model.max_concurrency=-1"], ["model.max_concurrency", "got -1"]),
    "fractional concurrency": (["provider.max_concurrency=2.5"], ["provider.max_concurrency", "got 2.5"]),
    "missing dataset path": (["dataset.path={root}/no_such_folder"], ["no_such_folder", "dataset.path"]),
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Return a folder holding an earlier finished run under predictions/, which no refused command may touch."""
    write_run(tmp_path / "predictions", DATASET, "earlier", only=lambda q: q.number <= 2)
    return tmp_path


@pytest.mark.parametrize("case", list(PREDICT_CASES))
def test_bad_predict_command_is_refused_clearly_and_writes_nothing(workspace, case):
    args, expected = PREDICT_CASES[case]
    before = snapshot(workspace)
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: a refusal must come before any request
    result = run_python(
        [
            "predict.py",
            "provider=vllm",
            f"provider.base_url={url}",
            "provider.connect_timeout_s=1",
            f"paths.predictions={workspace / 'predictions'}",
            "run.limit=2",
            *(a.format(root=workspace) for a in args),
        ]
    )
    assert_refused(result, *(e.format(root=workspace) for e in expected))
    assert snapshot(workspace) == before


def test_refused_predict_in_a_fresh_folder_leaves_no_predictions_folder(tmp_path):
    result = run_python(
        ["predict.py", "provider=vllm", "provider.max_concurrency=0", f"paths.predictions={tmp_path / 'predictions'}"]
    )
    assert_refused(result, "provider.max_concurrency")
    assert snapshot(tmp_path) == {}


def test_resume_with_other_answer_settings_is_refused_and_the_run_stays_byte_identical(fake_server, tmp_path):
    fake_server.configure(served_name=SERVED)
    runner.run(compose(predict_overrides(fake_server, tmp_path, "run.limit=3")))
    run_dir = tmp_path / DATASET / RUN
    assert len(read_run(run_dir)) == 3
    before, asked = snapshot(tmp_path), fake_server.stats()["total"]
    for changed in ("model.params.temperature=0.7", "model.params.max_tokens=128", "image_mode=skip"):
        result = run_python(
            ["predict.py", *predict_overrides(fake_server, tmp_path, "run.limit=5", f"run.name={RUN}", changed)]
        )
        assert_refused(result, str(run_dir), "different answer-changing settings", "run.name=")
        assert snapshot(tmp_path) == before, changed
    assert fake_server.stats()["total"] == asked  # refused before any request


SCORE_CASES = {
    "malformed override": (["runs=[a,"], ["Cannot read the override 'runs=[a,'"]),
    "unknown key": (["bootstrap.sample=5"], ["Unknown setting bootstrap.sample", "did you mean bootstrap.samples?"]),
    "unknown data set": (["dataset=nope"], ["dataset=nope", "conf/dataset/nope.yaml", "jmle2026"]),
    "wrong type": (["plots=maybe"], ["plots must be true or false (got 'maybe')"]),
    "unknown run": (["runs=[nope]"], ["nope", "earlier"]),
    "missing dataset path": (["dataset=jmle2026", "dataset.path={root}/no_such_folder"], ["no_such_folder"]),
    "missing predictions folder": (["paths.predictions={root}/elsewhere"], ["elsewhere", "nothing to score"]),
    "negative bootstrap": (["bootstrap.samples=-5"], ["bootstrap.samples"]),
}


@pytest.fixture(scope="module")
def scored_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder with a run already scored (scored/ and leaderboard/ exist), shared by the score cases."""
    root = tmp_path_factory.mktemp("scored")
    write_run(root / "predictions", DATASET, "earlier")
    done = run_python([str(REPO / "score.py"), "plots=false"], cwd=root)
    assert done.returncode == 0, done.stderr
    assert (root / "scored").is_dir() and (root / "leaderboard").is_dir()
    return root


@pytest.mark.parametrize("case", list(SCORE_CASES))
def test_bad_score_command_is_refused_clearly_and_changes_nothing(scored_workspace, case):
    args, expected = SCORE_CASES[case]
    before = snapshot(scored_workspace)
    result = run_python(
        [str(REPO / "score.py"), *(a.format(root=scored_workspace) for a in args)], cwd=scored_workspace
    )
    assert_refused(result, *(e.format(root=scored_workspace) for e in expected))
    assert snapshot(scored_workspace) == before


def test_truncated_and_foreign_prediction_files_are_reported_skipped_and_the_rest_scored(tmp_path):
    run_dir = write_run(tmp_path / "predictions", DATASET, "run_a")
    truncated = run_dir / "120B-7.json"
    truncated.write_bytes(truncated.read_bytes()[:40])  # a file cut off mid-write (not written by our store)
    empty = run_dir / "120C-2.json"
    empty.write_bytes(b"")
    foreign = run_dir / "120D-3.json"
    record = json.loads(foreign.read_bytes())
    foreign.write_text(json.dumps({**record, "fingerprint": "fp-other-settings"}), encoding="utf-8")
    predictions = snapshot(tmp_path / "predictions")
    result = run_python([str(REPO / "score.py"), "plots=false"], cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    for path, reason in [
        (truncated, "is not valid JSON"),
        (empty, "is not valid JSON"),
        (foreign, "has a different fingerprint"),
    ]:
        assert f"skipped: {path.relative_to(tmp_path)} {reason}" in result.stderr, result.stderr
    assert "3 file(s)/folder(s) were skipped (exit code 3)" in result.stderr
    lines = [json.loads(x) for x in (tmp_path / "scored" / DATASET / "run_a.jsonl").read_text().splitlines()]
    status = {line["question_id"]: line["status"] for line in lines}
    assert [q for q, s in status.items() if s != "ok"] == ["120B-7", "120C-2", "120D-3"]
    assert sum(line["correct"] for line in lines) == len(lines) - 3  # the rest are graded (all gold answers)
    summary = json.loads((tmp_path / "scored" / DATASET / "run_a.summary.json").read_text())
    assert [f.split(":")[0] for f in summary["skipped_files"]] == ["120B-7.json", "120C-2.json", "120D-3.json"]
    assert snapshot(tmp_path / "predictions") == predictions  # scoring never changes its inputs
