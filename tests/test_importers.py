"""Importers: other benchmarks' result files → our prediction folders (raw text kept, idempotent, safe)."""

from __future__ import annotations

import json

import pytest

from jmle_eval.errors import UserError
from jmle_eval.schema import Prediction
from jmle_eval.score import importers
from jmle_eval.score import stage as scoring
from tests.conftest import REFERENCE_RESULTS
from tests.score_fixtures import settings, write_run

BENCH = REFERENCE_RESULTS / "jmle2026"
IGAKUQA = REFERENCE_RESULTS / "igakuqa"


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_bench_import_keeps_raw_text_and_is_idempotent(tmp_path):
    source = BENCH / "openai_gpt-5.2.json"
    written = importers.import_jmle2026_bench(str(source), tmp_path)
    assert written == [("jmle2026", "jmle2026bench-openai_gpt-5.2")]
    run_dir = tmp_path / "jmle2026" / "jmle2026bench-openai_gpt-5.2"
    first = _files(run_dir)
    assert len(first) == 401  # 400 questions + run.json
    original = {r["question_id"]: r for r in json.loads(source.read_text(encoding="utf-8"))["results"]}
    record = json.loads((run_dir / "120A-1.json").read_text(encoding="utf-8"))
    Prediction.model_validate(record)
    assert record["answer_text"] == original["120A-1"]["raw_response"]
    assert record["reasoning_text"] == original["120A-1"]["reasoning"]
    assert record["source"] == "openai_gpt-5.2.json"
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert info["provider"] == "import" and info["image_mode"] == "vision" and info["parse_mode"] == "lenient"
    assert info["model"]["display_name"] == "GPT-5.2" and info["source"]["summary"]["score"] == 488
    importers.import_jmle2026_bench([str(BENCH / "openai_gpt-5.2.json")], tmp_path)
    assert _files(run_dir) == first
    for name, data in first.items():
        assert str(BENCH) not in data.decode("utf-8"), name


def test_bench_import_accepts_globs_and_folders(tmp_path):
    assert len(importers.import_jmle2026_bench(str(BENCH / "*.json"), tmp_path)) == 3
    assert len(importers.import_jmle2026_bench(str(BENCH), tmp_path / "again")) == 3


def test_reimport_removes_questions_the_file_no_longer_has(tmp_path):
    doc = json.loads((BENCH / "Qwen_Qwen3-32B_nothink.json").read_text(encoding="utf-8"))
    path = tmp_path / "qwen.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    importers.import_jmle2026_bench(str(path), tmp_path / "p")
    doc["results"] = doc["results"][:10]
    path.write_text(json.dumps(doc), encoding="utf-8")
    importers.import_jmle2026_bench(str(path), tmp_path / "p")
    assert len(list((tmp_path / "p" / "jmle2026" / "jmle2026bench-qwen").glob("120*.json"))) == 10


def test_import_never_overwrites_a_real_run(tmp_path):
    write_run(tmp_path, "jmle2026", "jmle2026bench-openai_gpt-5.2", only=lambda q: q.number == 1)
    with pytest.raises(UserError, match="not imported"):
        importers.import_jmle2026_bench(str(BENCH / "openai_gpt-5.2.json"), tmp_path)


def test_bad_bench_input_is_a_user_error(tmp_path):
    (tmp_path / "torn.json").write_text('{"metadata": {', encoding="utf-8")
    (tmp_path / "other.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(UserError, match="cannot be read as JSON"):
        importers.import_jmle2026_bench(str(tmp_path / "torn.json"), tmp_path / "p")
    with pytest.raises(UserError, match="not a JMLE2026-Bench result file"):
        importers.import_jmle2026_bench(str(tmp_path / "other.json"), tmp_path / "p")
    with pytest.raises(UserError, match="matches no file"):
        importers.import_jmle2026_bench(str(tmp_path / "none*.json"), tmp_path / "p")


def test_igakuqa_import_makes_one_run_per_system(tmp_path):
    written = importers.import_igakuqa_baseline(IGAKUQA, None, tmp_path)
    assert written == [("igakuqa", "igakuqa_gpt4"), ("igakuqa", "igakuqa_student-majority")]
    run_dir = tmp_path / "igakuqa" / "igakuqa_gpt4"
    assert len(list(run_dir.glob("1*.json"))) == 2000
    record = json.loads((run_dir / "112A-14.json").read_text(encoding="utf-8"))
    assert record["answer_text"].startswith("申し訳ありませんが") and record["source"] == "2018/112-A_gpt4.jsonl:14"
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert info["parse_mode"] == "extracted" and sorted(info["source"]["files"])[0] == "2018/112-A_gpt4.jsonl"


def test_any_igakuqa_system_in_that_format_imports_the_same_way(tmp_path):
    folder = tmp_path / "baseline" / "2022"
    folder.mkdir(parents=True)
    (folder / "116-A_translate_chatgpt-en.jsonl").write_text(
        '{"problem_id": "116A1", "prediction": "c", "explanation": "because"}\n'
        '{"problem_id": "116A2", "prediction": "a,b", "explanation": "a,b"}\n',
        encoding="utf-8",
    )
    (folder / "116-A_chatgpt.jsonl").write_text('{"problem_id": "116A1", "prediction": "d"}\n', encoding="utf-8")
    written = importers.import_igakuqa_baseline(tmp_path / "baseline", ["translate_chatgpt-en"], tmp_path / "p")
    assert written == [("igakuqa", "igakuqa_translate_chatgpt-en")]
    run_dir = tmp_path / "p" / "igakuqa" / "igakuqa_translate_chatgpt-en"
    first = json.loads((run_dir / "116A-1.json").read_text(encoding="utf-8"))
    assert first["answer_text"] == "c" and first["explanation"] == "because"
    assert "explanation" not in json.loads((run_dir / "116A-2.json").read_text(encoding="utf-8"))
    with pytest.raises(UserError, match="found: chatgpt, translate_chatgpt-en"):
        importers.import_igakuqa_baseline(tmp_path / "baseline", ["gpt3"], tmp_path / "p")


def test_imported_partial_run_scores_as_incomplete(tmp_path):
    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / "116-A_chatgpt.jsonl").write_text('{"problem_id": "116A1", "prediction": "d"}\n', encoding="utf-8")
    code = scoring.run(settings(tmp_path, **{"import": {"igakuqa_baseline": str(folder), "system": "chatgpt"}}))
    assert code == 0
    summary = json.loads((tmp_path / "scored" / "igakuqa" / "igakuqa_chatgpt.summary.json").read_text(encoding="utf-8"))
    assert summary["questions"]["answered"] == 1 and summary["exams"]["116"]["verdict"] == "incomplete"


def test_import_settings_are_checked(tmp_path):
    with pytest.raises(UserError, match="only applies with import.igakuqa_baseline"):
        importers.run_imports({"system": "gpt4"}, tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        importers.run_imports({"igakuqa_baseline": str(tmp_path / "nope")}, tmp_path)


def test_run_names_are_sanitised():
    assert importers.sanitize("openai/gpt-5.2 (high)") == "openai_gpt-5.2_high"
    assert importers.sanitize("///") == "run"
