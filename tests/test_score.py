"""The score pipeline end to end: prediction folders → scored lines, summaries, leaderboards, plots."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jmle_eval.config import load_card
from jmle_eval.errors import UserError
from jmle_eval.io import dump_json, read_regular
from jmle_eval.schema import ScoredItem, prediction_problem
from jmle_eval.score import runs
from jmle_eval.score import stage as scoring
from jmle_eval.score.records import RunSummary
from tests.score_fixtures import (
    gold_text,
    questions,
    read_lines,
    read_summary,
    settings,
    write_run,
    wrong_text,
)

DS = "jmle2026"


def _outputs(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for folder in ("scored", "leaderboard")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


def test_perfect_run_scores_every_question_and_writes_every_output(tmp_path):
    write_run(tmp_path / "predictions", DS, "perfect")
    assert scoring.run(settings(tmp_path, plots=True)) == 0
    lines = read_lines(tmp_path, DS, "perfect")
    assert len(lines) == 400 and [ln["question_id"] for ln in lines][:2] == ["120A-1", "120A-2"]
    for line in lines:
        ScoredItem.model_validate(line)
    assert all(ln["correct"] and ln["strict"] and ln["parse_rule"] == "marker" for ln in lines)
    s = read_summary(tmp_path, DS, "perfect")
    assert (s["score"]["points"], s["score"]["max"]) == (500, 500)
    assert s["score_text_only"] == {"points": 382, "max": 382, "pct": 100.0}
    exam = s["exams"]["120"]
    assert (exam["required"]["points"], exam["general"]["points"]) == (200, 300)
    assert exam["verdict"] == "unknown" and exam["stand_in"]["verdict"] == "pass"  # 120th criteria not published
    assert s["accuracy"]["all"]["n"] == 400 and s["parse"]["strict_rate"] == 1.0
    assert s["tokens"] == {
        "prompt": 40000,
        "completion": 8000,
        "reasoning": 2000,
        "total": 48000,
        "completion_per_question": 20.0,
    }
    assert s["cost_usd"] is None  # no price: unknown, never 0
    assert set(s["latency_s"]) == {"p50", "p90", "p99", "mean"}
    board = tmp_path / "leaderboard"
    for suffix in (".csv", ".json", ".md", ".exams.csv", ".exams.json", ".png", ".blocks.png", ".cost.png"):
        assert (board / f"{DS}{suffix}").stat().st_size > 0, suffix
    md = (board / f"{DS}.md").read_text(encoding="utf-8")
    assert "## All questions" in md and "## Text-only questions" in md and "vs 119th criteria (stand-in)" in md


def test_leaderboard_is_sorted_by_score_with_both_tables(tmp_path):
    preds = tmp_path / "predictions"
    write_run(preds, DS, "good", display_name="Good model")
    write_run(preds, DS, "half", lambda q: gold_text(q) if q.number % 2 else wrong_text(q))
    write_run(preds, DS, "text_only", image_mode="skip")
    assert scoring.run(settings(tmp_path)) == 0
    board = json.loads((tmp_path / "leaderboard" / f"{DS}.json").read_text(encoding="utf-8"))
    assert [r["run"] for r in board["all"]] == ["good", "text_only", "half"]
    assert board["all"][0]["model"] == "Good model" and board["all"][0]["points"] == 500
    # a text-only (skip) run is partial overall but complete in the text-only table
    skip = next(r for r in board["all"] if r["run"] == "text_only")
    assert skip["verdict"] == "incomplete" and skip["points"] == 382 and skip["missing"] == 98
    assert [r["run"] for r in board["text_only"]][:2] == ["good", "text_only"]
    assert board["text_only"][1]["points"] == 382 and board["text_only"][1]["points_max"] == 382
    csv_header = (tmp_path / "leaderboard" / f"{DS}.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    for column in (
        "model",
        "settings",
        "points",
        "accuracy",
        "accuracy_ci_low",
        "required_pct",
        "general_points",
        "verdict",
        "stand_in_verdict",
        "parse_failures",
        "errors",
        "completion_tokens",
        "cost_usd",
    ):
        assert column in csv_header


def test_rescoring_gives_byte_identical_outputs(tmp_path):
    preds = tmp_path / "predictions"
    write_run(
        preds, DS, "a", lambda q: gold_text(q) if q.number % 3 else wrong_text(q), price={"input": 1.0, "output": 2.0}
    )
    write_run(preds, DS, "b", lambda q: gold_text(q) if q.number % 4 else "わからない")
    assert scoring.run(settings(tmp_path, plots=True)) == 0
    first = _outputs(tmp_path)
    assert scoring.run(settings(tmp_path, plots=True)) == 0
    assert _outputs(tmp_path) == first
    assert any(name.endswith(".png") for name in first)


def test_errors_and_parse_failures_count_as_wrong_and_are_reported(tmp_path):
    def answer(q):
        if q.id == "120A-1":
            return None  # status error
        if q.id == "120A-2":
            return "画像がないため回答できません。"
        if q.id == "120A-3":
            return "回答：" + gold_text(q).split("【回答】")[1]  # lenient only
        return gold_text(q)

    write_run(tmp_path / "predictions", DS, "mixed", answer)
    scoring.run(settings(tmp_path))
    lines = {ln["question_id"]: ln for ln in read_lines(tmp_path, DS, "mixed")}
    assert lines["120A-1"]["status"] == "error" and not lines["120A-1"]["correct"]
    assert lines["120A-1"]["error"] == "HTTP 500 after 4 attempts"
    assert (
        lines["120A-2"]["predicted"] is None
        and lines["120A-2"]["parse_rule"] is None
        and not lines["120A-2"]["correct"]
    )
    assert lines["120A-3"]["correct"] and lines["120A-3"]["parse_rule"] == "label" and not lines["120A-3"]["strict"]
    s = read_summary(tmp_path, DS, "mixed")
    assert s["errors"] == 1 and s["error_ids"] == ["120A-1"]
    assert s["parse"]["failures"] == 1 and s["parse"]["failure_ids"] == ["120A-2"]
    assert s["parse"]["strict"] == 397 and s["accuracy"]["all"] == {**s["accuracy"]["all"], "correct": 398, "n": 400}


def test_missing_questions_leave_the_exam_incomplete(tmp_path):
    write_run(tmp_path / "predictions", DS, "partial", only=lambda q: q.block != "F")
    assert scoring.run(settings(tmp_path)) == 0
    s = read_summary(tmp_path, DS, "partial")
    assert s["questions"]["missing"] == 75 and s["exams"]["120"]["verdict"] == "incomplete"
    assert s["accuracy"]["all"]["n"] == 325 and s["score"]["points"] == 425
    assert sum(ln["status"] == "missing" for ln in read_lines(tmp_path, DS, "partial")) == 75


def test_cost_comes_from_predictions_or_prices_and_is_null_when_unknown(tmp_path):
    preds = tmp_path / "predictions"
    write_run(preds, DS, "priced", price={"input": 2.0, "output": 10.0, "source": "test"})
    folder = write_run(preds, DS, "recorded")
    for path in folder.glob("120*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**record, "cost_usd": 0.01}), encoding="utf-8")
    write_run(preds, DS, "free")
    scoring.run(settings(tmp_path))
    assert read_summary(tmp_path, DS, "priced")["cost_usd"] == pytest.approx((40000 * 2 + 8000 * 10) / 1e6)
    assert read_summary(tmp_path, DS, "priced")["cost_source"] == "price"
    assert read_summary(tmp_path, DS, "recorded")["cost_usd"] == pytest.approx(4.0)
    assert read_summary(tmp_path, DS, "free")["cost_usd"] is None


def test_corrupt_and_foreign_files_are_skipped_and_the_rest_is_scored(tmp_path, capsys):
    preds = tmp_path / "predictions"
    good = write_run(preds, DS, "good")
    damaged = write_run(preds, DS, "damaged")
    (damaged / "120A-1.json").write_text('{"question_id": "120A-1", "stat', encoding="utf-8")  # torn write
    (damaged / "120A-2.json").write_text('{"question_id": "120A-3", "status": "ok"}', encoding="utf-8")
    other = json.loads((damaged / "120A-4.json").read_text(encoding="utf-8"))
    (damaged / "120A-4.json").write_text(json.dumps({**other, "fingerprint": "other"}), encoding="utf-8")
    (damaged / "120A-6.json").write_text(
        json.dumps({**other, "question_id": "120A-6", "answer_text": 3}), encoding="utf-8"
    )
    (damaged / "notes.txt").write_text("mine", encoding="utf-8")
    (damaged / "999Z-1.json").write_text("{}", encoding="utf-8")
    (damaged / ".120A-5.json.1234.tmp").write_text("{", encoding="utf-8")  # a killed writer: ignored
    (damaged / "server.log").write_text("log", encoding="utf-8")
    (damaged / "logs").mkdir()
    (preds / DS / "no_run_json").mkdir()
    (preds / DS / "bad_run_json").mkdir()
    (preds / DS / "bad_run_json" / "run.json").write_text("{", encoding="utf-8")
    (preds / "unknown_dataset" / "run").mkdir(parents=True)
    (preds / "stray.json").write_text("{}", encoding="utf-8")
    skipped = scoring.Skipped()
    found = scoring.discover(preds, None, skipped)
    assert list(found) == [DS]
    assert scoring.run(settings(tmp_path)) == scoring.EXIT_SKIPPED
    assert read_summary(tmp_path, DS, "good")["score"]["points"] == 500
    s = read_summary(tmp_path, DS, "damaged")
    assert s["questions"]["missing"] == 4
    assert [f.split(":")[0] for f in s["skipped_files"]] == [
        "120A-1.json",
        "120A-2.json",
        "120A-4.json",
        "120A-6.json",
        "999Z-1.json",
        "notes.txt",
    ]
    assert not (tmp_path / "scored" / DS / "no_run_json.summary.json").exists()
    assert not (tmp_path / "scored" / DS / "bad_run_json.summary.json").exists()
    # every folder left out is named with its reason, and the good run is untouched by the others' damage
    reported = [line.removeprefix(f"skipped: {preds}{os.sep}") for line in capsys.readouterr().err.splitlines()]
    for entry in (
        "stray.json is not a data set folder",
        "unknown_dataset has no data set card",
        f"{DS}{os.sep}bad_run_json run.json is not valid JSON",
        f"{DS}{os.sep}no_run_json has no run.json",
    ):
        assert any(line.startswith(entry) for line in reported), (entry, reported)
    assert not any(line.startswith(f"{DS}{os.sep}good") for line in reported)
    assert read_summary(tmp_path, DS, "good")["skipped_files"] == []
    assert sorted(p.name for p in good.iterdir()) == sorted([*(f"{q.id}.json" for q in questions(DS)), "run.json"])


def test_rescoring_some_runs_keeps_the_others_on_the_leaderboard(tmp_path):
    preds = tmp_path / "predictions"
    write_run(preds, DS, "a")
    write_run(preds, DS, "b", wrong_text)
    assert scoring.run(settings(tmp_path)) == 0
    board_path = tmp_path / "leaderboard" / f"{DS}.json"
    before = board_path.read_bytes()
    assert scoring.run(settings(tmp_path, runs=["b"])) == 0
    assert board_path.read_bytes() == before
    assert [r["run"] for r in json.loads(before)["all"]] == ["a", "b"]


def test_runs_filter_scores_only_the_named_runs(tmp_path):
    preds = tmp_path / "predictions"
    write_run(preds, DS, "a")
    write_run(preds, DS, "b", wrong_text)
    assert scoring.run(settings(tmp_path, runs=["b"])) == 0
    assert not (tmp_path / "scored" / DS / "a.jsonl").exists()
    board = json.loads((tmp_path / "leaderboard" / f"{DS}.json").read_text(encoding="utf-8"))
    assert [r["run"] for r in board["all"]] == ["b"]
    with pytest.raises(UserError, match="No run folder named nope"):
        scoring.run(settings(tmp_path, runs=["nope"]))
    with pytest.raises(UserError, match="no predictions for data set 'igakuqa'"):
        scoring.run(settings(tmp_path, dataset={"name": "igakuqa"}))
    with pytest.raises(UserError, match="nothing to score"):
        scoring.run(settings(tmp_path / "empty"))
    with pytest.raises(UserError, match="bootstrap.samples must be a positive"):
        scoring.run(settings(tmp_path, bootstrap={"samples": 0}))


def test_prediction_files_with_wrong_types_are_skipped_by_the_check_predict_uses(tmp_path):
    folder = write_run(tmp_path / "predictions", DS, "a")
    changes = {  # question id → (change to a valid record, words of the reason)
        "120A-1": ({"status": "done"}, "status: Input should be 'ok' or 'error'"),
        "120A-2": ({"answer_text": ["a"]}, "answer_text: Input should be a valid string"),
        "120A-3": ({"usage": {"prompt_tokens": "3"}}, "usage.prompt_tokens: Input should be a valid integer"),
        "120A-4": ({"latency_s": "1s"}, "latency_s: Input should be a valid number"),
        "120A-5": ({"attempts": True}, "attempts: Input should be a valid integer"),
        "120A-6": ({"question_id": "120A-7"}, "question_id '120A-7' does not match the file name"),
    }
    for qid, (change, _) in changes.items():
        path = folder / f"{qid}.json"
        record = {**json.loads(path.read_bytes()), **change}
        path.write_text(json.dumps(record), encoding="utf-8")
        assert prediction_problem(record, qid) is not None  # predict would not have written it either
    (folder / "120A-8.json").write_text("[1, 2]", encoding="utf-8")
    assert scoring.run(settings(tmp_path)) == 3
    skipped = read_summary(tmp_path, DS, "a")["skipped_files"]
    expected = [f"{q}.json: is not a prediction record ({why}" for q, (_, why) in changes.items()]
    expected.append("120A-8.json: is not a prediction record (not a JSON object)")
    assert len(skipped) == len(expected) and all(s.startswith(e) for s, e in zip(skipped, expected, strict=True))
    status = {ln["question_id"]: ln["status"] for ln in read_lines(tmp_path, DS, "a")}
    assert [q for q, s in status.items() if s != "ok"] == [*changes, "120A-8"]


def test_compare_writes_a_paired_comparison(tmp_path, capsys):
    preds = tmp_path / "predictions"
    write_run(preds, DS, "a")
    write_run(preds, DS, "b", lambda q: gold_text(q) if q.block != "A" else wrong_text(q))
    scoring.run(settings(tmp_path, compare=["a", "b"]))
    result = json.loads((tmp_path / "leaderboard" / f"{DS}.compare.a__b.json").read_text(encoding="utf-8"))
    assert result["n"] == 400 and result["only_a_correct"] == 75 and result["only_b_correct"] == 0
    assert result["difference"] == pytest.approx(75 / 400) and result["ci_low"] > 0
    assert result["mcnemar_p"] < 1e-6
    assert "McNemar" in capsys.readouterr().out
    with pytest.raises(UserError, match="two different run names"):
        scoring.run(settings(tmp_path, compare=["a", "a"]))
    with pytest.raises(UserError, match="were not both scored"):
        scoring.run(settings(tmp_path, compare=["a", "zzz"]))


def test_outputs_hold_no_absolute_paths_or_timestamps(tmp_path):
    write_run(tmp_path / "predictions", DS, "run")
    scoring.run(settings(tmp_path))
    for name, data in _outputs(tmp_path).items():
        if name.endswith(".png"):
            continue
        text = data.decode("utf-8")
        assert str(tmp_path) not in text and "/work/" not in text, name
        assert "2026-01-01T00:00:00" not in text, name


def test_image_mode_vision_and_blind_expect_every_question(tmp_path):
    write_run(tmp_path / "predictions", DS, "v", image_mode="vision", only=lambda q: not q.requires_image)
    scoring.run(settings(tmp_path))
    s = read_summary(tmp_path, DS, "v")
    assert (
        s["questions"]["missing"] == sum(q.requires_image for q in questions(DS)) and s["questions"]["not_asked"] == 0
    )


def _pinned_runs(root: Path) -> None:
    """Write the small set of runs whose outputs are pinned below: exam grader, one exam and five."""

    def mixed(q):
        if q.id == "120A-1":
            return None  # status error
        if q.id == "120A-2":
            return "画像がないため回答できません。"  # parse failure
        if q.id == "120A-3":
            return "回答：" + gold_text(q).split("【回答】")[1]  # lenient only
        return gold_text(q) if q.number % 3 else wrong_text(q)

    preds = root / "predictions"
    write_run(preds, DS, "mixed", mixed, price={"input": 1.0, "output": 2.0, "source": "test"})
    write_run(preds, DS, "skip", lambda q: gold_text(q) if q.number % 4 else wrong_text(q), image_mode="skip")
    write_run(preds, DS, "partial", only=lambda q: q.block != "F", parse_mode="extracted")
    write_run(preds, "igakuqa", "blocks_a", wrong_text, only=lambda q: q.block == "A", usage={"prompt_tokens": 7})


# sha256 of every text output of _pinned_runs, as the score stage wrote them before the typed records
# (commit 1c36609): a change of format, rounding, key order or column order fails here first.
PINNED = {
    "leaderboard/igakuqa.csv": "8e62c6ca2db694fa67237b6a95233fec959ac1ea74e7595933ce142e357d753a",
    "leaderboard/igakuqa.exams.csv": "392af48e028e56eb5a14251bf582c545b15d5dad5a10d5bdbce16d329fdbba3e",
    "leaderboard/igakuqa.exams.json": "56b2dc4338ca8e4a97b956c929c313cf4cd288af903b363dfa453dfa324aa5f9",
    "leaderboard/igakuqa.json": "2f345ce7cab0b34c40e37e4a1202bcb9e3b30ce55123a059ffe6dd077f044a2b",
    "leaderboard/igakuqa.md": "31fdf735a3430e995b82affe535b72e3c0a5b52098b875ad703ab0479edfc975",
    "leaderboard/jmle2026.csv": "f1c7d4a7388a239490e56ae41c4f6202db848873dbc86b61f74a270e7362f3a1",
    "leaderboard/jmle2026.exams.csv": "c2b187311869201c60c987897791102cffbb89969c73e93b4988cc73b64f8be9",
    "leaderboard/jmle2026.exams.json": "666780e556fc91736abf44dbe5567505515ca0e27fb0b00a875428ff10e5ec6a",
    "leaderboard/jmle2026.json": "42291eae37d30238ccafab464da7f654d3c86e35b4571bb8e39f82df951f4f82",
    "leaderboard/jmle2026.md": "7b7de6c6fb70841c85dad5eb98560bab42e09c6ff21750b3b9025c126c6a57c1",
    "scored/igakuqa/blocks_a.jsonl": "1ee9631997fc2f10f7efcefc1498b7394d2a8478eb1ff4b434c7aeffae01ebbe",
    "scored/igakuqa/blocks_a.summary.json": "92952f3446a0591eefbf839986605ef2bcbc0259d126c8c4af052a73f674b18c",
    "scored/jmle2026/mixed.jsonl": "6faadea9edf6d9d95e0b4bb171f7bf2de298773b0c1ca68c474ae613c30819a5",
    "scored/jmle2026/mixed.summary.json": "ba57445fce0148588fba18512a72a09082366fe021ce7b09a468c169163f5713",
    "scored/jmle2026/partial.jsonl": "b92a1ac8fddaf94af0ec3119aac5a98f99d8e88264f98e1d49f33c7cc8c8a715",
    "scored/jmle2026/partial.summary.json": "7627d8959a3e8c3cff043aa3669a6d583b1f9855fea7f0f4e049769246b7b14a",
    "scored/jmle2026/skip.jsonl": "37933582e4caa1d23f8bca58b25ef5c7874904103a2c43766b6b4cacd6d9c285",
    "scored/jmle2026/skip.summary.json": "2981208dbf0ac81a65382feab67b7aeb806bee82a1e7291383e1895443a5ef90",
}


def test_scored_outputs_are_byte_for_byte_the_pinned_ones(tmp_path):
    import hashlib

    _pinned_runs(tmp_path)
    assert scoring.run(settings(tmp_path)) == 0
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in _outputs(tmp_path).items()}
    assert {n: d for n, d in digests.items() if d != PINNED.get(n)} == {}


def test_summary_file_is_the_typed_summary_dumped_and_reads_back_unchanged(tmp_path):
    write_run(tmp_path / "predictions", DS, "skip", wrong_text, image_mode="skip")
    assert scoring.run(settings(tmp_path)) == 0
    path = tmp_path / "scored" / DS / "skip.summary.json"
    summary = RunSummary.model_validate_json(path.read_bytes())
    assert dump_json(summary.model_dump(mode="json")) == path.read_text(encoding="utf-8")
    assert summary.exams is not None and summary.exams["120"].verdict == "incomplete"
    assert summary.score is not None and summary.score.points == 0 and summary.accuracy.image.n == 0
    assert "stand_in" in json.loads(path.read_bytes())["exams"]["120"]  # the card names one
    with pytest.raises(ValueError, match="nonsense"):
        RunSummary.model_validate({**json.loads(path.read_bytes()), "nonsense": 1})  # a misspelt key is an error


def _card(**changes) -> dict:
    return {**load_card(DS), **changes}


def test_choice_grader_gives_accuracy_without_points_sections_or_pass_fail(tmp_path):
    preds = tmp_path / "predictions"
    write_run(preds, DS, "half", lambda q: gold_text(q) if q.number % 2 else wrong_text(q))
    write_run(preds, DS, "good", lambda q: gold_text(q) if q.number % 10 else wrong_text(q))
    write_run(preds, DS, "skip", image_mode="skip")
    assert scoring.run(settings(tmp_path, dataset=_card(grader="choice"), plots=True)) == 0
    s = read_summary(tmp_path, DS, "good")
    assert s["score"] is None and s["score_text_only"] is None and s["exams"] is None
    # 40 wrong answers, 2 of them to questions credited to everyone (all_credited)
    assert s["accuracy"]["all"]["n"] == 400 and s["accuracy"]["all"]["accuracy"] == 0.905
    assert s["accuracy"]["all"]["ci95"][0] < 0.905 < s["accuracy"]["all"]["ci95"][1]
    assert s["by_section"]["required"]["n"] == 100 and s["by_block"]["120A"]["n"] == 75
    # the answers are graded the same way as by the exam grader: only the summary differs
    lines = read_lines(tmp_path, DS, "good")
    assert sum(ln["correct"] for ln in lines) == 362 and all(ScoredItem.model_validate(ln) for ln in lines)
    board = json.loads((tmp_path / "leaderboard" / f"{DS}.json").read_text(encoding="utf-8"))
    assert [r["run"] for r in board["all"]] == ["skip", "good", "half"]  # by accuracy: skip answered all it had
    assert board["criteria"] == {}
    for row in board["all"]:
        assert not {"points", "score_pct", "verdict", "required_points", "kinki_picks"} & set(row), row
        assert {"accuracy", "accuracy_ci_low", "accuracy_ci_high", "parse_failures", "cost_usd"} <= set(row)
    header = (tmp_path / "leaderboard" / f"{DS}.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("run,model,settings,correct,answered,accuracy,accuracy_ci_low,")
    md = (tmp_path / "leaderboard" / f"{DS}.md").read_text(encoding="utf-8")
    assert "| # | Model | Settings | Accuracy (95% CI) | Parse fail |" in md
    assert "Score" not in md and "Pass/fail" not in md
    assert "| 1 | skip | skip | 302/302 = 100.0% [100.0–100.0] (partial: 98 not answered) |" in md
    assert not (tmp_path / "leaderboard" / f"{DS}.exams.csv").exists()
    assert (tmp_path / "leaderboard" / f"{DS}.png").stat().st_size > 0


def test_judge_grader_without_a_rubric_is_refused_before_any_run_is_read(tmp_path):
    write_run(tmp_path / "predictions", DS, "a")
    with pytest.raises(UserError, match="grader 'judge' needs the rubric .* dataset.rubric=match_answer"):
        scoring.run(settings(tmp_path, dataset=_card(grader="judge")))
    with pytest.raises(UserError, match="grader 'exams' is not one of exam, choice, judge"):
        scoring.run(settings(tmp_path, dataset=_card(grader="exams")))
    assert not (tmp_path / "scored").exists()


def test_pass_lines_come_from_the_card(tmp_path):
    from jmle_eval.report import plots

    plt = plots.pyplot()
    card = _card()
    card["exams"] = {"120": {**card["exams"]["120"], "pass": {**card["exams"]["120"]["pass"], "required_ratio": 0.7}}}
    for exams, required in ((card["exams"], [70.0]), (_card()["exams"], [80.0]), ({}, [])):
        fig, ax = plt.subplots()
        assert plots.pass_lines(ax, {"exams": exams})[0] == required
        labels = [line.get_label() for line in ax.lines]
        assert [x for x in labels if x.startswith("required")] == [f"required section {r:g}%" for r in required]
        plt.close(fig)


@pytest.mark.parametrize(
    "data",
    [
        b'{"usage": {"completion_tokens": 12}, "latency_s": 1.25, "answer_text": "\\u3010\\u56de\\u7b54\\u3011a"}',
        b'{"usage": {"completion_tokens": 123456789012345678901234567890}}',  # orjson: a float; json: an int
        b'{"usage": {"completion_tokens": 9223372036854775808}}',  # one past int64
        b'{"latency_s": NaN, "x": -Infinity}',  # refused by orjson, read by json
        b'\xef\xbb\xbf{"a": 1}',  # a byte-order mark
        b'{"a": "\\ud800"}',  # a lone surrogate
        b'{"a": 1, "a": 2}',  # the last duplicate wins in both
        b'{"a": 1e400, "b": -0.0, "c": 1.0}',
    ],
)
def test_prediction_files_are_read_as_json_reads_them(data):
    assert repr(runs.loads(data)) == repr(json.loads(data))  # repr: NaN != NaN, and 1 == 1.0 is not enough


@pytest.mark.parametrize("data", [b'{"a": 1', b"", b'{"a": "\xff"}', b'{"a": 1} x', b'{"a": "x\ty"}'])
def test_a_file_json_cannot_read_is_refused_with_the_reason(data):
    with pytest.raises(ValueError, match="is not valid JSON"):
        runs.loads(data)


def test_a_file_read_while_it_grows_is_read_whole():
    # /proc files say size 0 and then give more: the read goes on to the end instead of stopping at the size.
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("no /proc here")
    data = read_regular(status)
    assert status.stat().st_size == 0 and b"\nPid:" in data and data.endswith(b"\n")
