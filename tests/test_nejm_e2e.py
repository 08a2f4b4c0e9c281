"""NEJM Image Challenge end to end on the synthetic file: predict → judge → score, and the reader baseline.

``nejm_dx``: free-text diagnoses from the loopback "model", scored 0–10 by the loopback
"judge", graded by the judge (overall score, exact rate) with the leaderboard's columns
and the two-panel plot. ``nejm``: multiple choice with the readers' reference row, and a
sampled run graded on its own sample.
"""

from __future__ import annotations

import json
from pathlib import Path

from jmle_eval.config import compose
from jmle_eval.judge import runner as judge_runner
from jmle_eval.predict import runner
from jmle_eval.score import stage
from tests.nejm_fixture import write_cases
from tests.reliability.conftest import predict_overrides, reset_server
from tests.score_fixtures import read_summary, settings

SERVED = "smollm2-135m"
RUN = "smollm2_135m"


def data(root: Path, dataset: str, n: int = 12) -> list[str]:
    write_cases(root / "nejm", n)  # 12 cases, 3 without clinical context (left out): 9 questions
    return [f"dataset={dataset}", f"dataset.path={root / 'nejm'}", "dataset.verify=false"]


def score(root: Path, card: dict, plots: bool = False) -> dict:
    paths = {"data": "data", "judgments": str(root / "judgments")}
    assert stage.run(settings(root, dataset=card, plots=plots, paths=paths, bootstrap={"samples": 200})) == 0
    return read_summary(root, card["name"], RUN)


def test_nejm_dx_free_text_diagnosis_judged_0_to_10(fake_server, tmp_path):
    selection = data(tmp_path, "nejm_dx")
    reset_server(fake_server, served_name=SERVED, default_content="Reasoning…\nAnswer: Disease X")
    cfg = compose(predict_overrides(fake_server, tmp_path / "predictions", *selection))
    job, out = runner.run(cfg)
    assert out is not None and out.ok == 9
    user = fake_server.server.bodies[0]["messages"][1]["content"]
    assert "single most likely diagnosis" in user and "(A)" not in user and "image that is not shown" in user
    ids = [q.id for q in job.todo or []]
    scores = {qid: [10, 10, 7, 5, 0, 10, 9, 3, 8][i] for i, qid in enumerate(ids)}
    content = {q: json.dumps({"rationale": "r", "extracted_diagnosis": "x", "score": v}) for q, v in scores.items()}
    reset_server(fake_server, served_name=SERVED, content=content, default_content=None)
    overrides = [*predict_overrides(fake_server, tmp_path / "predictions", *selection), "rubric=diagnosis_0_10",
                 f"paths.judgments={tmp_path / 'judgments'}"]  # fmt: skip
    [(_, judged)] = judge_runner.run(compose(overrides, config_name="judge"))
    assert judged is not None and judged.ok == 9
    prompt = fake_server.server.bodies[0]["messages"][1]["content"]
    assert "Reference diagnosis: Disease" in prompt and "Answer: Disease X" in prompt
    summary = score(tmp_path, cfg.dataset, plots=True)
    grade = summary["judges"]["judges"][0]["grade"]
    assert grade["pct"] == round(sum(scores.values()) / 9 * 10, 2) and grade["n"] == 9
    assert grade["exact"]["count"] == 3 and grade["exact"]["n"] == 9 and grade["at_least_7"]["count"] == 6
    assert summary["judges"]["grade_of_record"] == "diagnosis_0_10" and summary["parse"]["failures"] == 0
    assert "readers" not in summary  # the readers voted on options: no baseline for the free-text form
    row = json.loads((tmp_path / "leaderboard" / "nejm_dx.json").read_bytes())["all"][0]
    assert row["judge_score_pct"] == grade["pct"] and row["judge_exact_rate"] == round(3 / 9, 4)
    assert row["images_shown"] is False and row["judge_model"] and row["settings"].startswith("blind")
    assert (tmp_path / "leaderboard" / "nejm_dx.judge.png").stat().st_size > 1000


def test_nejm_multiple_choice_with_the_readers_as_reference_and_a_sample(fake_server, tmp_path):
    selection = data(tmp_path, "nejm")
    cfg = compose(predict_overrides(fake_server, tmp_path / "predictions", *selection))
    from jmle_eval.config import load_questions

    questions = load_questions(cfg)
    right = {q.id: f"Answer: {q.gold[0].upper()}" for q in questions[:6]}  # 6 of 9 right, 3 wrong ("Answer: E"…)
    wrong = {q.id: "Answer: " + ("E" if q.gold[0] != "e" else "D") for q in questions[6:]}
    reset_server(fake_server, served_name=SERVED, content={**right, **wrong})
    runner.run(cfg)
    summary = score(tmp_path, cfg.dataset)
    assert summary["accuracy"]["all"]["correct"] == 6 and summary["accuracy"]["all"]["n"] == 9
    readers = summary["readers"]
    assert readers["cases"] == 9 and readers["mean_accuracy"] == 0.6 and readers["majority_accuracy"] == 1.0
    assert readers["agreement"] == 6 and readers["agreement_n"] == 9  # the synthetic readers always favour the key
    assert summary["vs_human"]["human_mean_accuracy"] == 0.6
    board = json.loads((tmp_path / "leaderboard" / "nejm.json").read_bytes())["all"]
    assert board[-1]["model"] == "Readers (mean vote share)" and board[-1]["accuracy"] == 0.6
    assert "## Human baseline" in (tmp_path / "leaderboard" / "nejm.md").read_text()
    # a sampled run is graded on its own sample, and says so
    sampled = compose(
        predict_overrides(
            fake_server, tmp_path / "predictions", *selection, "dataset.sample=4", "dataset.seed=42", "run.name=sampled"
        )  # fmt: skip
    )
    runner.run(sampled)
    score(tmp_path, cfg.dataset)
    small = json.loads((tmp_path / "scored" / "nejm" / "sampled.summary.json").read_bytes())
    assert small["questions"]["total"] == 4 and small["questions"]["missing"] == 0
    assert small["settings"]["question_set"] == "sample 4 (seed 42)"
