"""Prediction files: atomic writes, the run header race, fingerprint refusal, totals, secrets."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from jmle_eval import io
from jmle_eval.errors import UserError
from jmle_eval.predict import store

INPUTS = {"model.id": "m", "model.params": {"temperature": 0.0}, "image_mode": "blind"}


def _header(**inputs) -> dict:
    fingerprint_inputs = {**INPUTS, **inputs}
    return {"format": 1, "fingerprint": store.fingerprint(fingerprint_inputs), "fingerprint_inputs": fingerprint_inputs}


def _record(qid: str, status: str = "ok", **extra) -> dict:
    usage = {"prompt_tokens": 10, "completion_tokens": 4, "reasoning_tokens": 1}
    return {"question_id": qid, "status": status, "usage": usage, "latency_s": 0.5, "fingerprint": "f",
            "created_at": f"2026-01-01T00:00:0{len(qid) % 10}+00:00", **extra}  # fmt: skip


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "120A-1.json"
    io.atomic_write(target, b'{"a": 1}')
    io.atomic_write(target, b'{"a": 2}')
    assert json.loads(target.read_bytes()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["120A-1.json"]


def _open(args: tuple[str, dict]) -> bool:
    return store.open_run(Path(args[0]), args[1])


def test_two_processes_opening_one_run_create_run_json_exactly_once(tmp_path):
    header = _header()
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        created = pool.map(_open, [(str(tmp_path / "run"), header)] * 12)
    assert sum(created) == 1
    assert json.loads((tmp_path / "run" / store.RUN_FILE).read_text())["fingerprint"] == header["fingerprint"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [store.RUN_FILE]


def test_resume_with_other_settings_is_refused_naming_the_settings(tmp_path):
    store.open_run(tmp_path, _header())
    assert store.open_run(tmp_path, _header()) is False  # same settings: resume
    with pytest.raises(UserError) as info:
        store.open_run(tmp_path, _header(**{"model.params": {"temperature": 0.7, "top_p": 0.8}}))
    message = str(info.value)
    assert "model.params.temperature: 0.0 != 0.7" in message
    assert "model.params.top_p: (unset) != 0.8" in message and "run.name=" in message


def test_unreadable_run_json_is_a_user_error(tmp_path):
    (tmp_path / store.RUN_FILE).write_text("{torn")
    with pytest.raises(UserError, match="cannot be read"):
        store.check_header(tmp_path, _header())


def test_torn_foreign_and_temporary_files_are_not_answers(tmp_path):
    io.atomic_write(tmp_path / "120A-1.json", json.dumps(_record("120A-1")).encode())
    io.atomic_write(tmp_path / "120A-2.json", json.dumps(_record("120A-2", "error")).encode())
    (tmp_path / "120A-3.json").write_text('{"question_id": "120A-3", "sta')  # torn
    (tmp_path / "120A-4.json").write_text("")  # empty
    (tmp_path / ".120A-5.json.host.1.ab.tmp").write_text(json.dumps(_record("120A-5")))
    (tmp_path / "notes.json").write_text("[1, 2]")
    (tmp_path / store.RUN_FILE).write_text(json.dumps(_header()))
    assert sorted(store.read_predictions(tmp_path)) == ["120A-1", "120A-2"]
    assert store.finished_ids(tmp_path) == {"120A-1"}
    assert store.finished_ids(tmp_path, retry_errors=False) == {"120A-1", "120A-2"}


def test_totals_are_summed_from_the_files(tmp_path):
    for qid, status, cost in [("120A-1", "ok", 0.25), ("120A-2", "ok", None), ("120A-10", "error", None)]:
        extra = {"cost_usd": cost} if cost is not None else {}
        io.atomic_write(tmp_path / f"{qid}.json", json.dumps(_record(qid, status, **extra)).encode())
    totals = store.totals(tmp_path)
    assert totals["questions"] == 3 and totals["answered"] == 2 and totals["errors"] == 1
    assert (totals["prompt_tokens"], totals["completion_tokens"], totals["reasoning_tokens"]) == (30, 12, 3)
    assert totals["cost_usd"] == 0.25 and totals["latency_s"] == 1.5
    assert totals["first_at"] < totals["last_at"]
    assert store.totals(tmp_path / "missing")["questions"] == 0


def test_scrub_drops_credentials_but_keeps_token_counts_and_env_names():
    config = {
        "provider": {
            "api_key_env": "OPENROUTER_API_KEY",
            "api_key": "sk-secret-1",
            "base_url": "http://h/?k=sk-secret-1",
        },
        "model": {"params": {"max_tokens": 64}, "hf_token": "hf_x", "extra_body": {"password": "p"}},
        "list": ["sk-secret-1", 3],
    }
    clean = io.scrub(config, ["sk-secret-1"])
    assert clean["provider"] == {"api_key_env": "OPENROUTER_API_KEY", "base_url": "http://h/?k=***"}
    assert clean["model"] == {"params": {"max_tokens": 64}, "extra_body": {}}
    assert clean["list"] == ["***", 3]
    assert "sk-secret-1" not in json.dumps(clean)


def test_writer_writes_everything_queued_before_close(tmp_path):
    writer = store.PredictionWriter(tmp_path, threads=3)
    for n in range(1, 101):
        writer.put(_record(f"120A-{n}"))
    writer.close()
    assert len(store.read_predictions(tmp_path)) == 100
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_writer_turns_a_write_failure_into_a_user_error(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    writer = store.PredictionWriter(not_a_folder)
    writer.put(_record("120A-1"))
    with pytest.raises(UserError, match="Cannot write prediction files"):
        writer.close()


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = multiprocessing.get_context("spawn").Process(target=os.getpid)
    dead.start()
    dead.join()
    host = io.HOST
    stale = tmp_path / f".120A-1.json.{host}.{dead.pid}.abcd1234-0.tmp"
    mine = Path(io.temporary_name(tmp_path / "120A-2.json"))
    reused_pid = tmp_path / f".120A-4.json.{host}.{os.getpid()}.ffff0000-0.tmp"  # a dead process that had our pid
    other_host = tmp_path / f".120A-3.json.elsewhere.{dead.pid}.abcd1234-0.tmp"
    for path in (stale, mine, reused_pid, other_host):
        path.write_text("{")
    assert io.remove_stale_temporaries(tmp_path) == 2
    assert not stale.exists() and not reused_pid.exists() and mine.exists() and other_host.exists()
