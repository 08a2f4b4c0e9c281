"""A hostile server, a full disk and odd inputs: every question ends as one valid file, the totals equal the files,
and a run that went wrong says so in its exit code. One test (or parametrised group) per defect of issue 14.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jmle_eval import schema
from jmle_eval.config import compose
from jmle_eval.errors import UserError
from jmle_eval.predict import runner, store
from jmle_eval.predict.lock import RunLock
from tests.conftest import REPO, run_python
from tests.fakebin import fake_env, records, wait_until
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

FAST = ("provider.timeout_s=5", "provider.max_attempts=2")
SUMMARY = re.compile(
    r"answered (\d+), errors (\d+) \((\d+) selected\) \| this call asked (\d+): (\d+) ok, (\d+) errors"
)


def predict(server, root: Path, *extra: str) -> tuple[runner.Plan, runner.Outcome | None]:
    """Run the predict stage in-process against the loopback server, writing under ``root``."""
    server.configure(served_name=SERVED)
    return runner.run(compose(predict_overrides(server, root, *FAST, *extra)))


def predict_cli(server, root: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python predict.py`` against the loopback server, as a user would."""
    server.configure(served_name=SERVED)
    return run_python(["predict.py", *predict_overrides(server, root, *FAST, *extra)], timeout=timeout)


def assert_totals_equal_files(result: subprocess.CompletedProcess[str], run_dir: Path) -> dict[str, dict]:
    """Assert the printed summary counts what is on disk; return the run's files."""
    files = read_run(run_dir)
    match = SUMMARY.search(result.stderr + result.stdout)
    assert match, result.stderr
    answered, errors = int(match[1]), int(match[2])
    assert answered == sum(r["status"] == "ok" for r in files.values()), result.stderr
    assert errors == sum(r["status"] == "error" for r in files.values()), result.stderr
    assert "Traceback" not in result.stderr
    return files


def score_cli(root: Path) -> subprocess.CompletedProcess[str]:
    """Score ``root/predictions`` with score.py (plots off), from ``root``."""
    return run_python([str(REPO / "score.py"), "plots=false", f"paths.predictions={root}"], cwd=root.parent)


def scored_lines(root: Path) -> dict[str, dict]:
    lines = (root.parent / "scored" / DATASET / f"{RUN}.jsonl").read_text(encoding="utf-8").splitlines()
    return {item["question_id"]: item for item in map(json.loads, lines)}


# --- 1. text that is valid JSON but not valid Unicode -------------------------------------------------------------


def test_lone_surrogates_in_replies_are_stored_replaced_and_flagged_and_no_answer_is_lost(fake_server, tmp_path):
    odd = {
        f"120A-{n}": {"patch": {"choices": [{"message": {"content": "\ud83d 考察\n【回答】b"}}]}} for n in range(1, 7)
    }
    odd["120A-7"] = {
        "patch": {"choices": [{"message": {"content": "😀 ok\n【回答】c", "reasoning_content": "\udc00"}}]}
    }
    fake_server.configure(replies=odd)
    root = tmp_path / "predictions"
    result = predict_cli(fake_server, root, "run.limit=30", "provider.max_concurrency=8")
    assert result.returncode == 0, result.stderr
    files = assert_totals_equal_files(result, root / DATASET / RUN)
    assert len(files) == 30 and all(r["status"] == "ok" for r in files.values())
    for n in range(1, 7):
        record = files[f"120A-{n}"]
        assert record["answer_text"] == "\ufffd 考察\n【回答】b" and record["text_repaired"] == ["answer_text"]
    assert files["120A-7"]["answer_text"] == "😀 ok\n【回答】c"  # a valid pair is joined, not replaced
    assert files["120A-7"]["text_repaired"] == ["reasoning_text"]
    assert "text_repaired" not in files["120A-8"]
    scored = score_cli(root)
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stderr
    assert scored_lines(root)["120A-1"]["predicted"] == ["b"]


def test_a_writer_failure_stops_the_run_with_a_clear_error_instead_of_dropping_answers(tmp_path):
    writer = store.PredictionWriter(tmp_path, durable=False, threads=2)
    writer.put({"question_id": "120A-1", "status": "ok", "answer_text": "fine"})
    writer.put({"question_id": "120A-2", "status": "ok", "answer_text": object()})  # cannot be JSON: a bug
    with pytest.raises(UserError, match="could not be written.*TypeError"):
        writer.close()
    assert json.loads((tmp_path / "120A-1.json").read_bytes())["answer_text"] == "fine"


# --- 2. outages -----------------------------------------------------------------------------------------------------


def _start_server(port: int, latency: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jmle_eval.testing.fakeserver",
            "--port",
            str(port),
            "--latency",
            str(latency),
            "--served-name",
            SERVED,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_until(lambda: _answers(port), 15), "fake server did not start"
    return proc


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
            return True
    except OSError:
        return False


def _outage_run(tmp_path: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    overrides = [
        "provider=vllm",
        f"provider.base_url=http://127.0.0.1:{port}/v1",
        "provider.max_attempts=1",  # an attempt spent on the outage would turn its question into an error
        "provider.backoff_s=0.05",
        "provider.backoff_max_s=0.2",
        "provider.max_concurrency=4",
        "run.limit=40",
        f"paths.predictions={tmp_path / 'predictions'}",
        *extra,
    ]
    return subprocess.Popen(
        [sys.executable, "predict.py", *overrides], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _files(run_dir: Path) -> int:
    return sum(1 for p in run_dir.glob("*.json") if p.name != "run.json") if run_dir.is_dir() else 0


def test_server_killed_mid_run_and_back_5_s_later_every_question_ends_ok_with_no_attempt_spent(tmp_path):
    port = free_port()
    server = _start_server(port, latency=0.2)
    run_dir = tmp_path / "predictions" / DATASET / RUN
    proc = _outage_run(tmp_path, port, "provider.outage_timeout_s=60")
    try:
        assert wait_until(lambda: _files(run_dir) >= 8, 30), "predict answered nothing"
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        before = _files(run_dir)
        time.sleep(5)
        assert _files(run_dir) == before  # nothing was recorded while the server was away
        server = _start_server(port, latency=0.2)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        server.kill()
    assert proc.returncode == 0, err
    assert "unreachable" in out and "answers again" in out, out
    files = read_run(run_dir)
    assert len(files) == 40 and {(r["status"], r["attempts"]) for r in files.values()} == {("ok", 1)}
    assert "Traceback" not in err


def test_permanent_outage_stops_after_the_outage_timeout_with_exit_3_and_leaves_the_rest_unasked(tmp_path):
    port = free_port()
    server = _start_server(port, latency=0.2)
    run_dir = tmp_path / "predictions" / DATASET / RUN
    proc = _outage_run(tmp_path, port, "provider.outage_timeout_s=2")
    try:
        assert wait_until(lambda: _files(run_dir) >= 8, 30), "predict answered nothing"
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        killed = time.monotonic()
        out, err = proc.communicate(timeout=60)
        waited = time.monotonic() - killed
    finally:
        proc.kill()
        server.kill()
    assert proc.returncode == 3, err
    assert 2 <= waited < 15, waited
    assert "unreachable for 2 s (provider.outage_timeout_s)" in err and "left unasked" in err, err
    assert "Traceback" not in err
    files = read_run(run_dir)
    assert 8 <= len(files) < 40 and all(r["status"] == "ok" for r in files.values())  # no question spent
    assert list(run_dir.glob("logs/*/predict.log")), "the log of a run that sent requests is kept"


def test_a_launched_server_that_dies_is_reported_with_its_log_tail_at_once(tmp_path):
    record = tmp_path / "engine.jsonl"
    env = fake_env(record, FAKE_ENGINE_CONFIG=json.dumps({"latency": 0.2}))
    run_dir = tmp_path / "predictions" / DATASET / RUN
    overrides = [
        "provider=vllm",
        "server.launch=true",
        "+model.serve.hf_id=org/fake-model-1b",
        "server.health_timeout_s=20",
        "server.stop_grace_s=2",
        "provider.max_attempts=1",
        "provider.max_concurrency=4",
        "provider.outage_timeout_s=600",  # a dead launched server is not waited for
        "run.limit=60",
        f"paths.predictions={tmp_path / 'predictions'}",
    ]
    proc = subprocess.Popen(
        [sys.executable, "predict.py", *overrides],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: _files(run_dir) >= 4, 60), "predict answered nothing"
        os.kill(records(record)[0]["pid"], signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "server launched for this run was killed by signal 9 (SIGKILL)" in err and "ends with:" in err, err
    assert "Traceback" not in err
    assert all(r["status"] == "ok" for r in read_run(run_dir).values())


def test_a_run_where_most_questions_end_in_error_exits_1(fake_server, tmp_path):
    fake_server.configure(fault="500", fault_rate=1.0, fault_attempts=99)
    root = tmp_path / "predictions"
    result = predict_cli(fake_server, root, "run.limit=4")
    assert result.returncode == 1, result.stderr
    assert "most questions asked ended in error" in result.stdout + result.stderr
    files = assert_totals_equal_files(result, root / DATASET / RUN)
    assert {r["status"] for r in files.values()} == {"error"}


def test_fail_on_errors_exits_1_for_a_single_error_and_0_without_it(fake_server, tmp_path):
    fake_server.configure(faults={"120A-1": "500"})
    root = tmp_path / "predictions"
    assert predict_cli(fake_server, root, "run.limit=4").returncode == 0
    result = predict_cli(fake_server, root, "run.limit=4", "run.fail_on_errors=true")
    assert result.returncode == 1 and "run.fail_on_errors=true" in result.stdout, result.stdout


# --- 3. odd but parseable replies ---------------------------------------------------------------------------------

ODD_REPLIES = {
    "usage count is text": ({"patch": {"usage": {"prompt_tokens": "lots"}}}, "usage.prompt_tokens is not a token"),
    "usage count is an object": ({"patch": {"usage": {"prompt_tokens": {"n": 1}}}}, "usage.prompt_tokens is not"),
    "usage is a list": ({"patch": {"usage": [1, 2]}}, "usage is not an object"),
    "content part text is a number": (
        {"patch": {"choices": [{"message": {"content": [{"type": "text", "text": 5}]}}]}},
        "content part's text is not a string",
    ),
    "finish_reason is a list": ({"patch": {"choices": [{"finish_reason": ["stop"]}]}}, "finish_reason is not a string"),
    "choices hold a string": ({"patch": {"choices": ["hello"]}}, "response has no choices"),
    "deeply nested body": ({"raw": "[" * 100_000 + "]" * 100_000}, "malformed response body|not a JSON object"),
}


@pytest.mark.parametrize("case", list(ODD_REPLIES))
def test_an_odd_reply_is_a_retried_error_of_its_question_never_a_crash(fake_server, tmp_path, case):
    odd, cause = ODD_REPLIES[case]
    fake_server.configure(replies={"120A-1": odd})
    root = tmp_path / "predictions"
    job, out = predict(fake_server, root, "run.limit=5")
    files = read_run(job.run_dir)
    assert len(files) == 5 and out is not None and (out.ok, out.errors) == (4, 1)
    assert files["120A-1"]["status"] == "error" and re.search(cause, files["120A-1"]["error"]), files["120A-1"]
    assert fake_server.stats()["requests"]["120A-1"] == 2  # retried like any transient failure
    scored = score_cli(root)
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stderr


def test_usable_replies_with_odd_extras_are_kept(fake_server, tmp_path):
    fake_server.configure(
        replies={
            "120A-1": {"patch": {"usage": {"cost": math.nan}}},  # NaN is valid in Python's JSON; a cost it is not
            "120A-2": {"patch": {"usage": {"prompt_tokens": "120", "completion_tokens": 7.0}}},
            "120A-3": {"status": 429, "headers": {"Retry-After": "soon"}, "raw": "{}", "attempts": 1},
            "120A-4": {"status": 503, "headers": {"retry-after-ms": "inf"}, "raw": "{}", "attempts": 1},
        }
    )
    root = tmp_path / "predictions"
    job, out = predict(fake_server, root, "run.limit=5")
    files = read_run(job.run_dir)
    assert out is not None and (out.ok, out.errors) == (5, 0)
    assert "cost_usd" not in files["120A-1"]  # unknown, not NaN
    assert files["120A-2"]["usage"]["prompt_tokens"] == 120 and files["120A-2"]["usage"]["completion_tokens"] == 7
    assert files["120A-3"]["attempts"] == files["120A-4"]["attempts"] == 2
    scored = score_cli(root)
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stderr


# --- 4. one definition of a valid prediction file ------------------------------------------------------------------

INVALID_FILES = {
    "finish_reason list": {"finish_reason": ["stop"]},
    "cost NaN": {"cost_usd": math.nan},
    "latency infinite": {"latency_s": math.inf},
    "usage text": {"usage": "lots"},
    "usage count text": {"usage": {"prompt_tokens": "3"}},
    "cost text": {"cost_usd": "free"},
    "created_at number": {"created_at": 5},
    "status other": {"status": "done"},
}


def test_what_score_would_skip_resume_asks_again_and_rewrites_valid(fake_server, tmp_path):
    root = tmp_path / "predictions"
    job, _ = predict(fake_server, root, "run.limit=10")
    good = read_run(job.run_dir)
    for n, change in enumerate(INVALID_FILES.values(), start=1):
        qid = f"120A-{n}"
        path = job.run_dir / f"{qid}.json"
        path.write_text(json.dumps({**good[qid], **change}), encoding="utf-8")  # NaN/Infinity as Python writes them
        assert schema.prediction_problem(json.loads(path.read_bytes()), qid) is not None, change
    assert sorted(store.read_predictions(job.run_dir)) == ["120A-10", "120A-9"]
    scored = score_cli(root)
    assert scored.returncode == 3 and "Traceback" not in scored.stderr, scored.stderr
    assert scored.stderr.count("is not a prediction record") == len(INVALID_FILES), scored.stderr
    fake_server.configure(replies={})
    before = fake_server.stats()["total"]
    _, out = predict(fake_server, root, "run.limit=10")
    assert out is not None and out.asked == len(INVALID_FILES)
    assert fake_server.stats()["total"] - before == len(INVALID_FILES)
    assert len(read_run(job.run_dir)) == 10  # read_run validates every file with the same model
    assert score_cli(root).returncode == 0


def test_a_reply_predict_cannot_store_validly_becomes_an_error_record_not_a_file_score_skips(fake_server, tmp_path):
    fake_server.configure(replies={"120A-1": {"patch": {"usage": {"cost": -3}}}})  # negative: ignored, not stored
    job, _ = predict(fake_server, tmp_path / "predictions", "run.limit=2")
    files = read_run(job.run_dir)
    assert files["120A-1"]["status"] == "ok" and "cost_usd" not in files["120A-1"]


# --- 5. everything that reaches the request body is fingerprinted -------------------------------------------------


def test_resume_with_another_request_extra_is_refused_naming_it(fake_server, tmp_path):
    root = tmp_path / "predictions"
    predict(fake_server, root, "run.limit=2")
    asked = fake_server.stats()["total"]
    result = predict_cli(fake_server, root, "run.limit=4", "+provider.request_extra.temperature=1.9")
    assert_refused(result, "provider.request_extra.temperature: (unset) != 1.9", "run.name=")
    assert fake_server.stats()["total"] == asked
    job, _ = predict(fake_server, root, "run.limit=2", "+provider.request_extra.temperature=1.9", "run.name=hot")
    assert job.header["fingerprint_inputs"]["provider.request_extra"] == {"temperature": 1.9}
    assert fake_server.server.bodies[-1]["temperature"] == 1.9


def test_an_empty_request_extra_keeps_the_fingerprint_of_runs_made_before_it(fake_server, tmp_path):
    job, _ = predict(fake_server, tmp_path / "predictions", "run.limit=1")
    assert "provider.request_extra" not in job.header["fingerprint_inputs"]


# --- 6. a failed run keeps its log ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["400", "401"])
def test_a_run_stopped_after_sending_requests_keeps_its_log(fake_server, tmp_path, fault):
    fake_server.configure(fault=fault, fault_rate=1.0, fault_attempts=99)
    root = tmp_path / "predictions"
    result = predict_cli(fake_server, root, "run.limit=6", "provider.max_concurrency=1")
    assert_refused(result, f"HTTP {fault}")
    logs = list((root / DATASET / RUN).glob("logs/*/predict.log"))
    assert logs and f"HTTP {fault}" in logs[0].read_text(encoding="utf-8")


def test_a_refused_start_that_sent_nothing_still_leaves_nothing(fake_server, tmp_path):
    fake_server.configure(api_key="right-key")  # the preflight is refused: no question was sent
    result = predict_cli(fake_server, tmp_path / "predictions", "run.limit=2")
    assert_refused(result, "HTTP 401")
    assert snapshot(tmp_path) == {}


# --- 7. disk full when the run starts -----------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    """Mount a 256 KiB tmpfs (a real file system that fills up); skip where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}): needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_at_start_leaves_no_run_json_and_the_next_run_works(fake_server, tiny_disk):
    root = tiny_disk / "predictions"
    (root / DATASET / RUN).mkdir(parents=True)
    filler = tiny_disk / "filler"
    with open(filler, "wb", buffering=0) as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 4096)
    logs = f"hydra.run.dir={tiny_disk.parent / 'logs'}"  # Hydra's own files need space before predict starts
    result = predict_cli(fake_server, root, "run.limit=2", logs)
    assert_refused(result, "No space left on device")
    assert not (root / DATASET / RUN / "run.json").exists()
    filler.unlink()
    result = predict_cli(fake_server, root, "run.limit=2", logs)
    assert result.returncode == 0, result.stderr
    assert len(read_run(root / DATASET / RUN)) == 2


def test_an_empty_run_json_left_by_an_older_version_is_replaced(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_bytes(b"")
    assert store.open_run(run_dir, {"fingerprint": "abc", "fingerprint_inputs": {}})
    assert json.loads((run_dir / "run.json").read_bytes())["fingerprint"] == "abc"


# --- 8. run.name is one safe folder name --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["''", "team/exp1", "../../../etc", "..", ".hidden"])
def test_a_run_name_that_is_not_one_safe_folder_is_refused(fake_server, tmp_path, name):
    result = predict_cli(fake_server, tmp_path / "predictions", "run.limit=1", f"run.name={name}")
    assert_refused(result, "cannot be a run folder name")
    assert snapshot(tmp_path) == {}
    assert fake_server.stats()["total"] == 0


# --- 9. two processes on one run folder ---------------------------------------------------------------------------


def test_a_second_unsharded_process_on_a_live_run_is_refused_and_a_killed_holder_leaves_no_stale_lock(
    fake_server, tmp_path
):
    fake_server.configure(served_name=SERVED, latency=0.3)
    root = tmp_path / "predictions"
    overrides = predict_overrides(fake_server, root, "run.limit=60", "provider.max_concurrency=2")
    argv = [sys.executable, "predict.py", *overrides]
    first = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_dir = root / DATASET / RUN
        assert wait_until(lambda: _files(run_dir) >= 1, 30)
        second = run_python(argv[1:])
        assert_refused(second, "is working on the run folder", f"pid {first.pid}", "run.shard=k/n")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    third = run_python(argv[1:])  # the kernel dropped the killed process's lock
    assert third.returncode == 0, third.stderr
    assert len(read_run(run_dir)) == 60


def test_shards_share_a_run_but_not_a_shard_and_not_with_an_unsharded_process(tmp_path):
    run_dir = tmp_path
    with RunLock(run_dir, (0, 2)), RunLock(run_dir, (1, 2)):
        with pytest.raises(UserError, match="(?i)another predict process with run.shard=1/2"):
            RunLock(run_dir, (1, 2)).__enter__()
        with pytest.raises(UserError, match="Predict processes with run.shard=k/n are working"):
            RunLock(run_dir, None).__enter__()
    with RunLock(run_dir, None), pytest.raises(UserError, match="without run.shard"):
        RunLock(run_dir, (0, 2)).__enter__()


# --- 11. smaller --------------------------------------------------------------------------------------------------


def test_predictions_path_that_is_a_file_is_refused_clearly(fake_server, tmp_path):
    target = tmp_path / "predictions"
    target.write_text("not a folder")
    result = predict_cli(fake_server, target, "run.limit=1")
    assert_refused(result, "is a file, not a folder", "paths.predictions")
    assert target.read_text() == "not a folder"


@pytest.mark.parametrize("setting", ["run.fsync", "run.retry_errors", "run.fail_on_errors", "server.launch"])
def test_a_boolean_setting_refuses_maybe(fake_server, tmp_path, setting):
    result = predict_cli(fake_server, tmp_path / "predictions", "run.limit=1", f"{setting}=maybe")
    assert_refused(result, setting, "true or false", "'maybe'")


def test_an_override_without_a_key_is_refused_without_a_traceback():
    result = run_python(["predict.py", "=5"])
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "=5" in result.stderr


def test_ctrl_c_during_start_up_prints_one_line_not_a_traceback(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "predict.py", f"paths.predictions={tmp_path}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.4)  # importing Hydra and the library
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    assert "Traceback" not in err, err
    assert "interrupted" in err
