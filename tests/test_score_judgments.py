"""Scoring with LLM-judge judgments: real judgment folders beside real prediction folders, the real score stage.

Judgment files are written in judge.py's documented format (a judge run header, one file per
question naming the sha256 of the prediction file it judged). Numbers are checked against
values worked out by hand in the comments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from jmle_eval.config import load_card
from jmle_eval.schema import Question, judgment_problem
from jmle_eval.score import stage as scoring
from jmle_eval.score import stats
from jmle_eval.score.grade import compile_keys
from jmle_eval.score.judge_marks import choice_answer
from jmle_eval.score.records import RunSummary
from tests.conftest import run_python
from tests.score_fixtures import gold_text, questions, read_lines, read_summary, settings, write_run, wrong_text

DS = "jmle2026"
KINDS = {"extract_choice": "choice", "match_answer": "verdict", "diagnosis_0_10": "score"}
Reply = Callable[[Question], Mapping[str, Any] | None]


def write_judge_run(
    root: Path,
    run: str,
    name: str,
    rubric: str,
    reply: Reply,
    *,
    display_name: str | None = None,
    price: Mapping[str, Any] | None = None,
    dataset: str = DS,
) -> Path:
    """Write ``root/judgments/<dataset>/<run>/<name>/``: the header and one judgment per prediction file.

    ``reply(question)`` is the judge's validated reply (``judgment``), None for a judge error, or
    a dict with ``"skip": True`` to leave the question unjudged.
    """
    predictions = root / "predictions" / dataset / run
    folder = root / "judgments" / dataset / run / name
    folder.mkdir(parents=True, exist_ok=True)
    header = {
        "format": 1, "stage": "judge", "run": name, "dataset": dataset, "prediction_run": run,
        "prediction_fingerprint": "fp-pred",
        "rubric": {"name": rubric, "version": "v1", "kind": KINDS[rubric], "prompt_hash": "0123456789ab"},
        "fingerprint": f"fp-{name}", "fingerprint_inputs": {},
        "model": {"name": name, "id": f"{name}-id", "display_name": display_name or name, "reasoning_effort": None,
                  "price": dict(price or {"input": 1.0, "output": 10.0, "source": "test"})},
        "provider": "openai", "created_at": "2026-01-02T00:00:00Z", "config": {},
    }  # fmt: skip
    (folder / "run.json").write_text(json.dumps(header, ensure_ascii=False), encoding="utf-8")
    for q in questions(dataset):
        path = predictions / f"{q.id}.json"
        judgment = reply(q) if path.is_file() else {"skip": True}
        if judgment is not None and judgment.get("skip"):
            continue
        record = {
            "question_id": q.id, "status": "ok" if judgment is not None else "error",
            "answer_text": json.dumps(judgment, ensure_ascii=False) if judgment is not None else None,
            "usage": {"prompt_tokens": 200, "completion_tokens": 30, "reasoning_tokens": 0}, "latency_s": 0.5,
            "attempts": 1, "error": None if judgment is not None else "the reply did not follow the schema",
            "model": f"{name}-id", "fingerprint": f"fp-{name}", "created_at": "2026-01-02T00:00:00Z",
            "rubric": rubric, "kind": KINDS[rubric],
            "prediction_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "judgment": dict(judgment) if judgment is not None else None,
        }  # fmt: skip
        assert judgment_problem(record, q.id) is None, judgment_problem(record, q.id)
        (folder / f"{q.id}.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    return folder


def verdict(value: str, confidence: int = 90) -> dict[str, Any]:
    return {"rationale": f"The reply's final answer is {value}.", "extracted_answer": "x", "verdict": value,
            "confidence": confidence}  # fmt: skip


def choice(answer: str) -> dict[str, Any]:
    return {"rationale": f"The reply commits to {answer}.", "answer": answer}


def score(value: int) -> dict[str, Any]:
    return {"rationale": "Close to the reference diagnosis.", "extracted_diagnosis": "d", "score": value}


def judged_settings(root: Path, **overrides: Any) -> dict[str, Any]:
    base = settings(root, **overrides)
    base["paths"]["judgments"] = str(root / "judgments")
    return base


def _plain_questions() -> list[Question]:
    """Return single-answer, counted, not all-credited questions (grading them needs no special rule)."""
    return [q for q in questions(DS) if q.type == "single" and q.points > 0 and not q.all_credited]


# Question sets of the mixed run, disjoint, in exam order.
PLAIN = [q.id for q in _plain_questions()]
FAILED, WRONG, DIFFERENT, DOUBTED = set(PLAIN[:10]), set(PLAIN[10:30]), set(PLAIN[30:34]), set(PLAIN[34:44])
RESCUED_RIGHT, RESCUED_WRONG = PLAIN[:6], PLAIN[6:8]  # the choice judge reads letters from 8 of the 10 failures
TRUSTED = set(PLAIN[10:15])  # the verdict judge calls 5 wrong answers correct


def _other_letter(q: Question) -> str:
    return next(letter for letter, _ in q.choices if [letter] not in q.accepted_answers)


def _mixed(q: Question) -> str:
    if q.id in FAILED:
        return "選択肢を比べると、どれも決め手に欠ける。"  # no answer line: a parse failure
    return wrong_text(q) if q.id in WRONG else gold_text(q)


def _choice_reply(q: Question) -> dict[str, Any]:
    if q.id in RESCUED_RIGHT:
        return choice(q.gold[0].upper())  # "C": read with the parser's helpers
    if q.id in RESCUED_WRONG:
        return choice(_other_letter(q))
    if q.id in FAILED:
        return choice("none")
    if q.id in DIFFERENT:
        return choice(_other_letter(q).upper())
    letters = wrong_text(q).removeprefix("【回答】") if q.id in WRONG else ", ".join(q.gold).upper()
    return choice(letters)


def _verdict_reply(q: Question) -> dict[str, Any]:
    if q.id in FAILED:
        return verdict("incorrect")
    if q.id in WRONG:
        return verdict("correct" if q.id in TRUSTED else "incorrect")
    return verdict("incorrect" if q.id in DOUBTED else "correct")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> dict[str, Any]:
    """One exam-graded run with 10 parse failures and 20 wrong answers, judged by a choice and a verdict judge."""
    root = tmp_path_factory.mktemp("judged")
    write_run(root / "predictions", DS, "mixed", _mixed)
    write_judge_run(root, "mixed", "extract_choice-gpt", "extract_choice", _choice_reply, display_name="GPT judge")
    write_judge_run(root, "mixed", "match_answer-gpt", "match_answer", _verdict_reply)
    assert scoring.run(judged_settings(root)) == 0
    summary = read_summary(root, DS, "mixed")
    return {"root": root, "summary": summary, "rubrics": {r["rubric"]: r for r in summary["judges"]["rubrics"]}}


def test_cohen_kappa_matches_the_hand_computed_values():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15. p_o = 35/50 = 0.7; A says yes 25/50, B 30/50,
    # so p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 and κ = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert stats.cohen_kappa(a, b) == 0.4
    assert stats.cohen_kappa(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert stats.cohen_kappa(["a", "a"], ["a", "a"]) is None  # p_e = 1: undefined, not 0 or NaN
    assert stats.cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        stats.cohen_kappa(["a"], [])


def test_quadratic_kappa_matches_the_hand_computed_values():
    # scores 0,1,2 vs 0,2,2: Σ w·observed = (1-2)² = 1; expected = Σ_i Σ_j (i-j)² r_i c_j / n with r = (1,1,1)
    # over 0,1,2 and c = (1,0,2): (0 + 4·2)/3 + (1 + 1·2)/3 + (4 + 0)/3 = 5, so κ_w = 1 - 1/5 = 0.8.
    assert stats.quadratic_kappa([0, 1, 2], [0, 2, 2]) == 0.8
    assert stats.quadratic_kappa([3, 7, 9], [3, 7, 9]) == 1.0
    assert stats.quadratic_kappa([5, 5], [5, 5]) is None  # no expected disagreement: undefined
    assert stats.quadratic_kappa([], []) is None


def test_mean_ci_resamples_the_values():
    assert stats.mean_ci([0.5] * 10, 200, 0) == (0.5, 0.5)
    low, high = stats.mean_ci([0.0, 1.0] * 50, 2000, 0) or (0, 0)
    assert low < 0.5 < high and stats.mean_ci([], 10, 0) is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [("C", ("c",)), ("A, D", ("a", "d")), ("b", ("b",)), ("none", None), ("None.", None), ("the reply is vague", None)],
)
def test_a_choice_judges_letters_are_read_with_the_parser(written, expected):
    key = next(k for k in compile_keys(questions(DS)).values() if k.type == "multi")
    assert choice_answer(written, key) == expected


def test_parser_stays_the_grade_and_the_choice_judge_assists_where_it_failed(mixed):
    s = mixed["summary"]
    # the parser: 400 answered, 10 parse failures and 20 wrong answers → 370 right
    assert s["accuracy"]["all"]["correct"] == 370 and s["score"] is not None and s["judges"]["grade_of_record"] is None
    r = mixed["rubrics"]["extract_choice"]
    # judge letters used only for the 10 failures: 6 read right, 2 read wrong, 2 "none" → 370 + 6 = 376 of 400
    assert r["assisted_accuracy"]["correct"] == 376 and r["assisted_accuracy"]["n"] == 400
    assert r["assisted_accuracy"]["accuracy"] == 0.94 and r["rescued"] == 8
    # both decided on the 390 parsed answers; the judge read other letters on 4 of them
    assert (r["agreement"]["n"], r["agreement"]["agree"], r["agreement"]["rate"]) == (390, 386, round(386 / 390, 4))
    assert [d["question_id"] for d in r["disagreements"]] == sorted(DIFFERENT)
    assert all(d["judge"] != d["parser"] and len(d["judge"]) == 1 for d in r["disagreements"])
    # its own grade: 370 right minus the 4 it misread plus the 6 it rescued = 372 of the 400 counted questions
    assert r["grade"]["correct"] == 372 and r["grade"]["pct"] == 93.0 and r["method"] == "one judge"


def test_verdict_judge_agreement_and_kappa_against_the_parser(mixed):
    r = mixed["rubrics"]["match_answer"]
    # compared on the 390 parsed answers: parser right & judge correct 360, right & incorrect 10 (DOUBTED),
    # wrong & correct 5 (TRUSTED), wrong & incorrect 15. p_o = 375/390; the parser says right 370 times, the
    # judge 365: n²·p_e = 370·365 + 20·25 = 135,550, so κ = (390·375 − 135,550) / (390² − 135,550) = 10,700/16,550.
    assert (r["agreement"]["n"], r["agreement"]["agree"]) == (390, 375)
    assert r["agreement"]["kappa"] == round(10_700 / 16_550, 4) == 0.6465
    assert len(r["disagreements"]) == 15 and {d["question_id"] for d in r["disagreements"]} == DOUBTED | TRUSTED
    assert r["assisted_accuracy"] is None and r["rescued"] is None  # only letters can be used by the parser
    # verdict accuracy over the 400 counted questions: 360 + 5 correct = 91.25 %
    assert (r["grade"]["correct"], r["grade"]["n"], r["grade"]["pct"]) == (365, 400, 91.25)
    low, high = r["grade"]["pct_ci95"]
    assert low < 91.25 < high


def test_judge_tokens_and_cost_are_the_judges_own(mixed):
    s = mixed["summary"]
    judge = next(j for j in s["judges"]["judges"] if j["run"] == "extract_choice-gpt")
    assert judge["model"]["display_name"] == "GPT judge" and judge["kind"] == "choice"
    assert judge["tokens"]["prompt"] == 400 * 200 and judge["tokens"]["completion"] == 400 * 30
    # list price 1 $/M input, 10 $/M output: 400 × (200 + 300) / 1e6 = $0.20 per judge, $0.40 for both
    assert judge["cost_usd"] == 0.2 and judge["cost_source"] == "price" and s["judges"]["cost_usd"] == 0.4
    assert s["tokens"]["prompt"] == 400 * 100 and s["cost_usd"] is None  # the model's own, unchanged
    assert (judge["judged"], judge["errors"], judge["stale"], judge["unjudged"]) == (400, 0, 0, 0)


def test_scored_lines_carry_each_judges_grade_and_rationale(mixed):
    lines = {ln["question_id"]: ln for ln in read_lines(mixed["root"], DS, "mixed")}
    different = lines[sorted(DIFFERENT)[0]]
    entry = different["judges"]["extract_choice-gpt"]
    assert entry["status"] == "ok" and entry["agrees"] is False and entry["correct"] is False
    assert entry["rationale"].startswith("The reply commits to ")
    assert lines[PLAIN[0]]["judges"]["extract_choice-gpt"]["agrees"] is None  # the parser decided nothing
    assert lines[PLAIN[0]]["judges"]["match_answer-gpt"]["grade"] == "incorrect"


def test_leaderboard_gains_judge_columns_only_with_judgments(mixed):
    board = json.loads((mixed["root"] / "leaderboard" / f"{DS}.json").read_text(encoding="utf-8"))
    row = board["all"][0]
    assert row["extract_choice_assisted_accuracy"] == 0.94 and row["extract_choice_rescued"] == 8
    assert row["extract_choice_kappa"] == mixed["rubrics"]["extract_choice"]["agreement"]["kappa"]
    assert row["match_answer_kappa"] == 0.6465 and row["match_answer_disagreements"] == 15
    assert row["extract_choice_judge"] == "GPT judge" and row["judge_cost_usd"] == 0.4
    assert "judge_score_pct" not in row  # the parser grades this data set
    md = (mixed["root"] / "leaderboard" / f"{DS}.md").read_text(encoding="utf-8")
    assert "## Judges" in md and "| mixed | extract_choice | GPT judge | 93.0% [" in md and "| 376/400 = 94.0% [" in md
    (verdict_row,) = [line for line in md.splitlines() if line.startswith("| mixed | match_answer |")]
    assert f"| {0.6465:.3f} | 15 |" in verdict_row


def test_stale_judgments_are_counted_and_never_used(tmp_path):
    preds = tmp_path / "predictions"
    write_run(preds, DS, "run", gold_text)
    write_judge_run(tmp_path, "run", "match_answer-a", "match_answer", lambda q: verdict("correct"))
    again = PLAIN[:3]
    # predicted again: 3 new answers; every other file is rewritten byte for byte (still the file judged)
    write_run(preds, DS, "run", lambda q: wrong_text(q) if q.id in again else gold_text(q))
    assert scoring.run(judged_settings(tmp_path)) == 0
    judge = read_summary(tmp_path, DS, "run")["judges"]["judges"][0]
    assert (judge["stale"], judge["stale_ids"], judge["judged"], judge["unjudged"]) == (3, sorted(again), 397, 3)
    # the 3 new (wrong) answers have no fresh verdict: 397 correct of 400, not 400
    assert judge["grade"]["correct"] == 397 and judge["agreement"]["n"] == 397 and judge["agreement"]["rate"] == 1.0
    lines = {ln["question_id"]: ln for ln in read_lines(tmp_path, DS, "run")}
    assert lines[again[0]]["judges"]["match_answer-a"]["status"] == "stale"
    assert lines[again[0]]["judges"]["match_answer-a"]["grade"] is None


def test_two_judges_give_mean_majority_and_inter_judge_agreement(tmp_path):
    four = PLAIN[:4]
    write_run(tmp_path / "predictions", DS, "run", lambda q: gold_text(q) if q.id in four[:2] else wrong_text(q),
              only=lambda q: q.id in four)  # fmt: skip
    scores = {"a": [10, 7, 4, 0], "b": [8, 7, 6, 2]}
    verdicts = {
        "a": ["correct", "correct", "incorrect", "incorrect"],
        "b": ["correct", "incorrect", "correct", "incorrect"],
    }
    for j in ("a", "b"):
        write_judge_run(
            tmp_path, "run", f"diag-{j}", "diagnosis_0_10", lambda q, j=j: score(scores[j][four.index(q.id)])
        )
        write_judge_run(
            tmp_path, "run", f"match-{j}", "match_answer", lambda q, j=j: verdict(verdicts[j][four.index(q.id)])
        )
    assert scoring.run(judged_settings(tmp_path)) == 0
    rubrics = {r["rubric"]: r for r in read_summary(tmp_path, DS, "run")["judges"]["rubrics"]}
    diag = rubrics["diagnosis_0_10"]
    # mean per question 9, 7, 5, 1 → grades .9 + .7 + .5 + .1 = 2.2 over the 400 counted (396 missing count 0)
    assert (diag["grade"]["n"], diag["grade"]["judged"], diag["grade"]["pct"]) == (400, 4, 0.55)
    assert diag["grade"]["at_least_7"]["count"] == 2 and diag["grade"]["exact"]["count"] == 0  # 9 is not 10
    assert diag["method"].startswith("mean of the 2 judges' scores") and diag["judges"] == ["diag-a", "diag-b"]
    md = (tmp_path / "leaderboard" / f"{DS}.md").read_text(encoding="utf-8")
    assert "| 0.6% [" in md and "; 10/10: 0/400, ≥7: 2/400 (judged 4/400) |" in md
    (pair,) = diag["pairs"]
    # labels agree once (7) of 4; only "7" is shared, so n²·p_e = 1: κ = (4·1 − 1)/(16 − 1) = 0.2.
    # quadratic: Σ(a−b)² = 12, n(Σa² + Σb²) − 2ΣaΣb = 4·318 − 2·21·23 = 306: κ_w = 1 − 4·12/306.
    assert (pair["a"], pair["b"], pair["n"], pair["agree"], pair["kappa"]) == ("diag-a", "diag-b", 4, 1, 0.2)
    assert pair["kappa_quadratic"] == round(1 - 48 / 306, 4) == 0.8431
    single = next(j for j in read_summary(tmp_path, DS, "run")["judges"]["judges"] if j["run"] == "diag-a")
    assert single["grade"]["exact"]["count"] == 1 and single["grade"]["pct"] == pytest.approx(
        100 * 2.1 / 400, abs=0.006
    )
    match = rubrics["match_answer"]
    # majority: correct/correct → correct; correct/incorrect twice → a tie counts as incorrect; both incorrect
    assert match["grade"]["correct"] == 1 and "a tie counts as incorrect" in match["method"]
    # parser right, right, wrong, wrong vs panel correct, incorrect, incorrect, incorrect: agree 3 of 4;
    # n²·p_e = 2·1 + 2·3 = 8, κ = (4·3 − 8)/(16 − 8) = 0.5. Judges a vs b: agree 2 of 4, p_e = 1/2, κ = 0.
    assert (match["agreement"]["agree"], match["agreement"]["kappa"]) == (3, 0.5)
    assert (match["pairs"][0]["agree"], match["pairs"][0]["kappa"]) == (2, 0.0)


def test_judge_grader_ranks_by_the_judge_and_reports_a_run_not_judged_yet(tmp_path, capsys):
    preds = tmp_path / "predictions"
    write_run(preds, DS, "judged", lambda q: wrong_text(q) if q.number % 2 else gold_text(q))
    write_run(preds, DS, "unjudged", gold_text)  # better parser accuracy, no judgments yet
    every_4th_fails = lambda q: verdict("correct") if q.number % 4 else None  # noqa: E731 (None: a judge error)
    write_judge_run(tmp_path, "judged", "match_answer-a", "match_answer", every_4th_fails)
    card = {**load_card(DS), "grader": "judge", "rubric": "match_answer"}
    assert scoring.run(judged_settings(tmp_path, dataset=card, plots=True)) == 0  # plots: the judge score's bars
    judged, unjudged = read_summary(tmp_path, DS, "judged"), read_summary(tmp_path, DS, "unjudged")
    assert judged["score"] is None and judged["exams"] is None  # no exam parts: the judge grades
    record = judged["judges"]["rubrics"][0]
    errors = sum(q.number % 4 == 0 for q in questions(DS))
    assert judged["judges"]["grade_of_record"] == "match_answer" and judged["judges"]["note"] is None
    assert record["grade"]["correct"] == 400 - errors and record["grade"]["judged"] == 400 - errors
    assert judged["judges"]["judges"][0]["errors"] == errors
    assert unjudged["judges"]["rubrics"] == [] and "no judgments of rubric 'match_answer'" in unjudged["judges"]["note"]
    assert (
        "judgments/jmle2026/unjudged/" in unjudged["judges"]["note"] and str(tmp_path) not in unjudged["judges"]["note"]
    )
    assert "note: jmle2026/unjudged: no judgments of rubric 'match_answer'" in capsys.readouterr().err
    board = json.loads((tmp_path / "leaderboard" / f"{DS}.json").read_text(encoding="utf-8"))
    assert [r["run"] for r in board["all"]] == ["judged", "unjudged"]  # by the judge, not by parser accuracy
    top = board["all"][0]
    assert top["judge_rubric"] == "match_answer" and top["judge_model"] == "match_answer-a"
    assert top["judge_score_pct"] == round(100 * (400 - errors) / 400, 2) and board["all"][1]["judge_score_pct"] is None
    header = (tmp_path / "leaderboard" / f"{DS}.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("run,model,settings,judge_rubric,judge_model,judge_score_pct,")  # after the settings
    md = (tmp_path / "leaderboard" / f"{DS}.md").read_text(encoding="utf-8")
    assert "| # | Model | Settings | Judge score (95% CI) | Judge | Accuracy (95% CI) |" in md
    assert "| 2 | unjudged | blind | — | none yet |" in md


def test_summary_with_judges_reads_back_unchanged(mixed):
    path = mixed["root"] / "scored" / DS / "mixed.summary.json"
    summary = RunSummary.model_validate_json(path.read_bytes())
    assert summary.judges is not None and summary.judges.record is None
    from jmle_eval.io import dump_json

    assert dump_json(summary.model_dump(mode="json")) == path.read_text(encoding="utf-8")


def test_rescoring_the_same_inputs_is_byte_identical(mixed, tmp_path):
    def outputs(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for d in ("scored", "leaderboard")
                for p in sorted((root / d).rglob("*")) if p.is_file()}  # fmt: skip

    first = outputs(mixed["root"])
    assert scoring.run(judged_settings(mixed["root"])) == 0
    assert outputs(mixed["root"]) == first


def test_invalid_judgment_files_are_skipped_with_exit_3_by_score_py(tmp_path):
    write_run(tmp_path / "predictions", DS, "run", gold_text)
    folder = write_judge_run(tmp_path, "run", "match_answer-a", "match_answer", lambda q: verdict("correct"))
    (folder / f"{PLAIN[0]}.json").write_text('{"question_id": "', encoding="utf-8")  # torn
    bad = json.loads((folder / f"{PLAIN[1]}.json").read_text(encoding="utf-8"))
    bad["judgment"]["verdict"] = "maybe"  # not a verdict
    (folder / f"{PLAIN[1]}.json").write_text(json.dumps(bad), encoding="utf-8")
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    (folder / f".{PLAIN[2]}.json.tmp").write_text("{", encoding="utf-8")  # a killed writer's temporary: ignored
    args = [f"paths.{n}={tmp_path / n}" for n in ("predictions", "judgments", "scored", "leaderboard")]
    done = run_python(["score.py", f"dataset={DS}", "dataset.grader=judge", "dataset.rubric=match_answer",
                       "plots=false", *args])  # fmt: skip
    assert done.returncode == 3, done.stderr
    for name in (f"{PLAIN[0]}.json is not valid JSON", f"{PLAIN[1]}.json is not a judgment", "notes.txt is not"):
        assert name in done.stderr, name
    summary = read_summary(tmp_path, DS, "run")
    assert (
        summary["judges"]["judges"][0]["judged"] == 398 and summary["judges"]["rubrics"][0]["grade"]["correct"] == 398
    )
    assert (
        f"judgment match_answer-a/{PLAIN[0]}.json: is not valid JSON (truncated or corrupt)" in summary["skipped_files"]
    )
    assert "judge score" in done.stdout


def test_a_broken_judge_run_header_skips_that_judge_run_only(tmp_path):
    write_run(tmp_path / "predictions", DS, "run", gold_text)
    write_judge_run(tmp_path, "run", "good", "match_answer", lambda q: verdict("correct"))
    broken = write_judge_run(tmp_path, "run", "broken", "match_answer", lambda q: verdict("correct"))
    (broken / "run.json").write_text(json.dumps({"stage": "predict"}), encoding="utf-8")
    (tmp_path / "judgments" / DS / "run" / "stray.json").write_text("{}", encoding="utf-8")
    assert scoring.run(judged_settings(tmp_path)) == scoring.EXIT_SKIPPED
    summary = read_summary(tmp_path, DS, "run")
    assert [j["run"] for j in summary["judges"]["judges"]] == ["good"]


def test_a_run_without_judgments_is_scored_as_before(tmp_path):
    write_run(tmp_path / "predictions", DS, "run", gold_text)
    assert scoring.run(judged_settings(tmp_path)) == 0
    assert "judges" not in read_summary(tmp_path, DS, "run")
    assert all("judges" not in ln for ln in read_lines(tmp_path, DS, "run"))
    board = json.loads((tmp_path / "leaderboard" / f"{DS}.json").read_text(encoding="utf-8"))
    assert not any(k.startswith("judge") for k in board["all"][0])
