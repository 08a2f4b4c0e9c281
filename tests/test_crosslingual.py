"""The same exam in Japanese and English: IgakuQA's translation, asked and graded with the Japanese key.

``dataset=igakuqa dataset.language=en`` reads the upstream ``_translate.jsonl`` files: English
text, the Japanese ids, key, points and exam rules. A run asked so is named ``<model>-en``, is
graded with the English parser rules, and pairs with the Japanese run in ``score.py compare``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jmle_eval import datasets
from jmle_eval.config import compose, load_card, load_questions, to_plain
from jmle_eval.errors import UserError
from jmle_eval.resolvers import run_name
from jmle_eval.score import stage
from tests.conftest import DATA_DIR, REFERENCE_RESULTS, run_python
from tests.reliability.conftest import predict_overrides, reset_server
from tests.score_fixtures import read_summary, settings
from tests.test_reproduce import PUBLISHED

SERVED = "smollm2-135m"  # model=smollm2_135m's id
ASKED = ["112A-1", "112A-2", "112A-3", "112A-4"]  # single-choice, text only


def _questions(*overrides: str):
    return load_questions(compose(["dataset=igakuqa", *overrides]))


def test_english_questions_keep_every_japanese_id_key_and_point():
    japanese, english = _questions(), _questions("dataset.language=en")
    assert len(english) == len(japanese) == 2000
    for ja, en in zip(japanese, english, strict=True):
        assert (en.id, en.type, en.select, en.points, en.section) == (ja.id, ja.type, ja.select, ja.points, ja.section)
        assert (en.accepted_answers, en.all_credited, en.requires_image) == (
            ja.accepted_answers,
            ja.all_credited,
            ja.requires_image,
        )
        assert [letter for letter, _ in en.choices] == [letter for letter, _ in ja.choices]
        assert en.stem and en.stem != ja.stem
    first = english[0]
    assert first.stem == "What disease causes hyperammonemia?" and first.gold == ["e"]
    assert first.choices[4] == ("e", "Ornithine transcarbamylase deficiency")
    numeric = next(q for q in english if q.id == "116B-50")  # the key read through the Japanese answer template
    assert numeric.type == "numeric" and numeric.accepted_answers == [["2.1"]] and "Answer:" in numeric.stem


def test_the_language_enters_the_version_only_for_a_translation():
    card = load_card("igakuqa")
    assert datasets.dataset_version(card) == "2bc4c3d-81cad139"  # the Japanese version, as pinned before
    assert datasets.dataset_version({**card, "language": "ja"}) == "2bc4c3d-81cad139"
    assert datasets.dataset_version({**card, "language": "en"}) == "2bc4c3d-30368aae"
    medqa = load_card("medqa")  # an English set's own language is not a translation: its version is unchanged
    assert medqa["language"] == "en"
    assert datasets.dataset_version(medqa) == datasets.dataset_version({**medqa, "language": None})


def test_the_translation_files_are_pinned_like_the_japanese_ones():
    files = load_card("igakuqa")["source"]["files"]
    japanese = sorted(
        f for f in files if f.endswith(("-A.jsonl", "-B.jsonl", "-C.jsonl", "-D.jsonl", "-E.jsonl", "-F.jsonl"))
    )
    assert len(japanese) == 30
    assert all(len(files[f.replace(".jsonl", "_translate.jsonl")]) == 64 for f in japanese)


def test_a_set_without_a_translation_refuses_english_and_names_the_one_that_has_it():
    with pytest.raises(UserError, match=r"igakuqa119' has no en translation upstream \(only dataset=igakuqa"):
        load_questions(compose(["dataset=igakuqa119", "dataset.language=en"]))
    with pytest.raises(UserError, match="no exam set has one"):
        _questions("dataset.language=fr")


def test_a_missing_translation_file_is_a_clear_error(tmp_path):
    copy = tmp_path / "igakuqa"
    shutil.copytree(DATA_DIR / "igakuqa", copy)
    (copy / "data" / "2022" / "116-F_translate.jsonl").unlink()
    with pytest.raises(UserError, match="missing under .*: data/2022/116-F_translate.jsonl"):
        _questions("dataset.language=en", f"dataset.path={copy}", "dataset.verify=false")


def test_show_prints_the_english_question_with_the_japanese_key():
    shown = run_python(
        [
            "-m",
            "jmle_eval.datasets",
            "show",
            "112A-1",
            "dataset=igakuqa",
            "dataset.language=en",
            "prompt.answer_format=text",
        ]
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "Question 112A-1" in out and "What disease causes hyperammonemia?" in out
    assert "(E) Ornithine transcarbamylase deficiency" in out and "Answer: A" in out
    assert "accepted: e" in out and "points 1" in out


def test_run_name_records_the_language_and_nothing_else_moves():
    run = to_plain(compose([]))["run"]
    ignore, aliases = run["name_ignore"], run["name_aliases"]
    assert run_name("gpt_oss_120b", ["dataset=igakuqa", "dataset.language=en"], ignore, aliases) == "gpt_oss_120b-en"
    assert (
        run_name("gpt_oss_120b", ["dataset.language=en", "model.reasoning_effort=high"], ignore, aliases)
        == "gpt_oss_120b-en-effort_high"
    )
    unchanged = ["dataset=igakuqa", "dataset.years=[2022]", "dataset.sample=5", "run.limit=3", "image_mode=vision"]
    assert run_name("gpt_oss_120b", unchanged, ignore, aliases) == "gpt_oss_120b-vision"
    assert run_name("gpt_oss_120b", ["model.reasoning_effort=high"], ignore, aliases) == "gpt_oss_120b-effort_high"


def _predict(server, root: Path, replies: dict[str, str], *extra: str) -> None:
    """Ask the ASKED questions of igakuqa with ``python predict.py``; the server replies ``replies[id]``."""
    reset_server(server, served_name=SERVED, content=replies, default_content="I am not sure.")
    overrides = predict_overrides(server, root / "predictions", "dataset=igakuqa", f"run.ids=[{','.join(ASKED)}]")
    done = run_python(["predict.py", *overrides, *extra])
    assert done.returncode == 0, done.stderr


def test_an_english_run_is_named_for_its_language_graded_in_english_and_pairs_with_the_japanese(fake_server, tmp_path):
    english = {
        "112A-1": "Hyperammonemia points to a urea cycle defect.\nAnswer: E",  # right, in the required form
        "112A-2": "The answer is (E).",  # right, read by an English-only rule
        "112A-3": "Answer: A",  # wrong (key d)
        "112A-4": "Could be A or E.",  # no answer
    }
    _predict(fake_server, tmp_path, english, "dataset.language=en")
    run_dir = tmp_path / "predictions" / "igakuqa" / "smollm2_135m-en"
    info = json.loads((run_dir / "run.json").read_bytes())
    assert info["config"]["dataset"]["language"] == "en" and info["dataset_version"] == "2bc4c3d-30368aae"
    user = fake_server.server.bodies[0]["messages"][1]["content"]
    assert user.startswith("Question 112A-") and "\n(A) " in user  # SmolLM2 asks for JSON; text replies still read
    assert user.rstrip().endswith('{"answer": ["A"]}') and "Answer: " not in user
    japanese = {q: "【回答】" + a for q, a in zip(ASKED, "eedb", strict=True)}  # 112A-3 right, 112A-4 wrong (key e)
    _predict(fake_server, tmp_path, japanese)
    assert "【問題 112A-" in fake_server.server.bodies[0]["messages"][1]["content"]
    assert (tmp_path / "predictions" / "igakuqa" / "smollm2_135m" / "run.json").is_file()

    paths = [f"paths.{p}={tmp_path / p}" for p in ("predictions", "scored", "leaderboard")]
    done = run_python(["score.py", "dataset=igakuqa", "compare=[smollm2_135m,smollm2_135m-en]", "plots=false", *paths])
    assert done.returncode == 0, done.stderr
    lines = {
        json.loads(line)["question_id"]: json.loads(line)
        for line in (tmp_path / "scored" / "igakuqa" / "smollm2_135m-en.jsonl").read_text().splitlines()
    }
    assert (lines["112A-1"]["parse_rule"], lines["112A-1"]["strict"], lines["112A-1"]["correct"]) == (
        "marker",
        True,
        True,
    )
    assert (lines["112A-2"]["parse_rule"], lines["112A-2"]["correct"]) == ("answer_is", True)
    assert lines["112A-3"]["correct"] is False and lines["112A-4"]["predicted"] is None
    summary = read_summary(tmp_path, "igakuqa", "smollm2_135m-en")
    assert summary["accuracy"]["all"]["correct"] == 2 and summary["parse"]["failures"] == 1
    compared = json.loads(
        (tmp_path / "leaderboard" / "igakuqa.compare.smollm2_135m__smollm2_135m-en.json").read_bytes()
    )
    assert compared["n"] == 4 and (compared["accuracy_a"], compared["accuracy_b"]) == (0.75, 0.5)
    assert (compared["only_a_correct"], compared["only_b_correct"]) == (1, 0)
    assert "compare igakuqa: smollm2_135m vs smollm2_135m-en on 4 common questions" in done.stdout


def test_the_translated_chatgpt_baseline_grades_as_before(tmp_path):
    """IgakuQA's translate_chatgpt-en files import as any system: here GPT-4's answers under that name."""
    baseline = tmp_path / "baseline"
    for path in (REFERENCE_RESULTS / "igakuqa").rglob("*_gpt4.jsonl"):
        (baseline / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, baseline / path.parent.name / path.name.replace("_gpt4", "_translate_chatgpt-en"))
    imports = {"igakuqa_baseline": str(baseline), "system": "translate_chatgpt-en"}
    assert stage.run(settings(tmp_path, **{"import": imports})) == 0
    summary = read_summary(tmp_path, "igakuqa", "igakuqa_translate_chatgpt-en")
    assert summary["accuracy"]["all"]["correct"] == 1528 and summary["accuracy"]["all"]["n"] == 1989
    assert summary["dataset_version"] == summary["dataset_version_scored"] == "2bc4c3d-81cad139"
    for exam, (req, req_max, gen, gen_max, kinki) in PUBLISHED["gpt4"].items():
        result = summary["exams"][exam]
        got = (result["required"]["points"], result["required"]["candidate_max"], result["general"]["points"])
        assert got + (result["general"]["max"], result["kinki"]["picks"]) == (req, req_max, gen, gen_max, kinki)
