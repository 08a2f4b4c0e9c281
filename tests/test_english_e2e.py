"""English benchmarks end to end: predict against the loopback server, then score and the leaderboard.

The server answers like a model would (``Answer: C`` and the other English forms); the
run is graded by the ``choice`` grader with the card's breakdowns, and 10-option
MedXpertQA questions work in the prompt, the parser and the grade.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jmle_eval.config import compose, load_questions
from jmle_eval.errors import UserError
from jmle_eval.predict import runner
from jmle_eval.score import stage
from tests.reliability.conftest import predict_overrides, reset_server
from tests.score_fixtures import read_summary, settings

SERVED = "smollm2-135m"


def questions(*overrides: str):
    return load_questions(compose(list(overrides)))


def predict(server, root: Path, dataset: str, answers: dict[str, str], *extra: str):
    """Ask the first questions of ``dataset``; the server replies ``answers[id]`` as the whole reply text."""
    reset_server(server, served_name=SERVED, content=answers, default_content="I am not sure.")
    return runner.run(compose(predict_overrides(server, root / "predictions", f"dataset={dataset}", *extra)))


def score(root: Path, dataset: str) -> dict:
    paths = {"data": "data", "judgments": str(root / "judgments")}  # data: the offline copies (JMLE_EVAL_DATA_DIR)
    assert stage.run(settings(root, paths=paths, bootstrap={"samples": 200})) == 0
    return read_summary(root, dataset, "smollm2_135m")


def test_medqa_is_asked_in_english_and_graded_by_letter(fake_server, tmp_path):
    first = questions("dataset=medqa")[:6]
    gold = {q.id: q.gold[0].upper() for q in first}
    wrong = {q.id: "A" if gold[q.id] != "A" else "B" for q in first}
    replies = {
        first[0].id: f"Reasoning…\nAnswer: {gold[first[0].id]}",
        first[1].id: f"Reasoning…\nAnswer: {wrong[first[1].id]}",
        first[2].id: f"Reasoning…\nanswer: {gold[first[2].id].lower()}",
        first[3].id: "Could be A or B.",
        first[4].id: f"Answer: {gold[first[4].id]}",
        first[5].id: f"Answer: {wrong[first[5].id]}",
    }
    job, out = predict(fake_server, tmp_path, "medqa", replies, "run.limit=6", "model.answer_format=text")
    assert out is not None and out.ok == 6 and job.answer_marker == "Answer: "
    body = fake_server.server.bodies[0]
    user = body["messages"][1]["content"]
    assert user.startswith("Question ") and "\n(A) " in user and user.rstrip().endswith("Answer: A")
    assert "physician" in body["messages"][0]["content"]
    summary = score(tmp_path, "medqa")
    assert summary["accuracy"]["all"]["correct"] == 3 and summary["accuracy"]["all"]["n"] == 6
    assert summary["parse"]["failures"] == 1 and summary["exams"] is None and summary["score"] is None
    assert "by_attribute" not in summary  # medqa's card names no breakdowns
    board = (tmp_path / "leaderboard" / "medqa.md").read_text()
    assert "3/6" in board and not (tmp_path / "leaderboard" / "medqa.exams.csv").exists()


def test_ten_option_medxpertqa_with_breakdowns(fake_server, tmp_path):
    text = [q for q in questions("dataset=medxpertqa_sampled", "dataset.subset=text") if len(q.choices) == 10]
    late = next(q for q in text if q.gold[0] in "fghij")
    replies = {late.id: f"…\nAnswer: {late.gold[0].upper()}"}
    predict(fake_server, tmp_path, "medxpertqa_sampled", replies, "dataset.subset=text", f"run.ids=[{late.id}]")
    user = fake_server.server.bodies[0]["messages"][1]["content"]
    assert "\n(J) " in user
    summary = score(tmp_path, "medxpertqa_sampled")
    assert summary["accuracy"]["all"]["correct"] == 1
    assert set(summary["by_attribute"]) >= {"medical_task", "body_system", "question_type"}
    task = late.attributes["medical_task"]
    assert summary["by_attribute"]["medical_task"][task] == {"accuracy": 1.0, "correct": 1, "n": 1}
    long = json.loads((tmp_path / "leaderboard" / "medxpertqa_sampled.breakdowns.json").read_bytes())
    assert {"run": "smollm2_135m", "field": "medical_task", "value": task, "correct": 1}.items() <= next(
        r for r in long["breakdowns"] if r["field"] == "medical_task"
    ).items()
    assert "## Accuracy by medical_task" in (tmp_path / "leaderboard" / "medxpertqa_sampled.md").read_text()


def test_vision_on_multimodal_questions_without_images_is_refused(fake_server, tmp_path):
    with pytest.raises(UserError, match="dataset.images_dir"):
        predict(fake_server, tmp_path, "medxpertqa_sampled", {}, "dataset.subset=mm", "image_mode=vision",
                "model.vision=true")  # fmt: skip
    assert fake_server.stats()["total"] == 0
    _, out = predict(fake_server, tmp_path, "medxpertqa_sampled", {}, "dataset.subset=mm", "image_mode=blind",
                     "run.limit=2")  # fmt: skip
    assert out is not None and out.asked == 2
    assert "image that is not shown" in fake_server.server.bodies[0]["messages"][1]["content"]
