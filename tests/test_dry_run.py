"""run.dry_run=true: what a run would ask and cost, through real processes; nothing sent, started or written."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tests.conftest import REPO, run_python
from tests.reliability.conftest import predict_overrides

NO_KEY = {"OPENAI_API_KEY": ""}  # run_python merges into the environment; an empty key counts as unset


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


def _field(out: str, name: str) -> str:
    match = re.search(rf"^  {name} +(.+)$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def test_dry_run_of_an_api_model_needs_no_key_and_writes_nothing(tmp_path):
    predictions = tmp_path / "predictions"
    done = run_python(
        ["predict.py", "run.dry_run=true", "model=gpt_5_2", "provider=openai", f"paths.predictions={predictions}"],
        env=NO_KEY,
    )
    assert done.returncode == 0, done.stderr
    assert "dry run: gpt_5_2 on jmle2026" in done.stdout
    assert _field(done.stdout, "questions") == "400 to ask, 400 selected, 0 done"
    prompt = int(re.match(r"([\d,]+) \(estimate", _field(done.stdout, "prompt tokens")).group(1).replace(",", ""))
    assert 100_000 < prompt < 1_000_000  # 400 Japanese questions of a few hundred tokens each
    assert "default range" in _field(done.stdout, "completion tokens")
    low, high = (float(x.replace(",", "")) for x in re.findall(r"\$([\d,.]+)", _field(done.stdout, r"cost \(USD\)")))
    assert low == round((prompt * 1.75 + 200 * 400 * 14.0) / 1e6, 2)
    assert high == round((prompt * 1.75 + 4000 * 400 * 14.0) / 1e6, 2)
    assert _files(predictions) == []


def test_dry_run_sends_no_request_to_the_server(fake_server, tmp_path):
    predictions = tmp_path / "predictions"
    done = run_python(
        ["predict.py", "run.dry_run=true", *predict_overrides(fake_server, predictions, "provider.check_model=false")]
    )
    assert done.returncode == 0, done.stderr
    assert fake_server.stats()["total"] == 0
    assert "unknown (no price)" in done.stdout
    assert _files(predictions) == []


def test_dry_run_after_a_partial_run_counts_what_is_done_and_measures_completions(fake_server, tmp_path):
    predictions = tmp_path / "predictions"
    first = run_python(
        ["predict.py", "run.limit=5", *predict_overrides(fake_server, predictions, "provider.check_model=false")]
    )
    assert first.returncode == 0, first.stderr
    run_dir = predictions / "jmle2026" / "smollm2_135m"
    before = _files(predictions)
    asked = fake_server.stats()["total"]
    usage = [json.loads(p.read_text())["usage"]["completion_tokens"] for p in run_dir.glob("*-*.json")]
    assert len(usage) == 5

    done = run_python(
        ["predict.py", "run.dry_run=true", *predict_overrides(fake_server, predictions, "provider.check_model=false")]
    )
    assert done.returncode == 0, done.stderr
    assert _field(done.stdout, "questions") == "395 to ask, 400 selected, 5 done"
    completion = _field(done.stdout, "completion tokens")
    assert f"expected {usage[0] * 395:,}" in completion, completion  # the fake server's 20 per answer
    assert "measured: p10/mean/p90 of 5 answers in 1 earlier run(s)" in completion
    assert fake_server.stats()["total"] == asked
    assert _files(predictions) == before  # no new log folder in the run


def test_a_sweep_prints_one_block_per_run(tmp_path):
    predictions = tmp_path / "predictions"
    done = run_python(
        ["predict.py", "-m", "run.dry_run=true", "model=gpt_5_2,claude_opus_4_6", "provider=openrouter",
         f"paths.predictions={predictions}"],
        env={"OPENROUTER_API_KEY": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    heads = re.findall(r"^dry run: (\S+) on jmle2026", done.stdout, re.MULTILINE)
    assert heads == ["gpt_5_2", "claude_opus_4_6"], done.stdout
    assert done.stdout.count("cost (USD)") == 2
    assert _files(predictions) == []  # nor the sweep's multirun.yaml


def test_dry_run_with_the_embedded_model_starts_no_server_and_counts_with_its_tokenizer(tmp_path):
    predictions = tmp_path / "predictions"
    record = tmp_path / "engine.jsonl"
    engine = f"server.executable=[{sys.executable},{REPO / 'tests' / 'fakebin' / 'fake_engine.py'},llama_cpp]"
    done = run_python(
        ["predict.py", "run.dry_run=true", "provider=local", "run.limit=3", engine, f"paths.predictions={predictions}"],
        env={"FAKE_ENGINE_RECORD": str(record)},
    )
    assert done.returncode == 0, done.stderr
    assert not record.exists()  # the fake engine records every start
    assert _field(done.stdout, "questions") == "3 to ask, 3 selected, 0 done"
    assert "(model tokenizer)" in _field(done.stdout, "prompt tokens")
    assert "capped by max_tokens 64" in _field(done.stdout, "completion tokens")
    assert _files(predictions) == []
