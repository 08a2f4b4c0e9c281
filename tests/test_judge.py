"""The judge stage in-process against a real loopback server acting as judge: rubrics, store, resume, refusals.

Predictions are made by the real predict stage against the same server; the
server then answers as the judge (``default_content`` / ``content``: the whole
reply text per question).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jmle_eval import schema
from jmle_eval.config import compose, to_plain
from jmle_eval.errors import UserError
from jmle_eval.judge import rubrics
from jmle_eval.judge import runner as judge_runner
from jmle_eval.predict import runner as predict_runner
from tests.reliability.conftest import predict_overrides, reset_server

SERVED = "smollm2-135m"
RUN = "smollm2_135m"
JUDGE_RUN = "extract_choice-smollm2_135m"
CHOICE = json.dumps({"rationale": "The last line names c.", "answer": "c"})
VERDICT = json.dumps({"rationale": "Same option.", "extracted_answer": "a", "verdict": "correct", "confidence": 80})


def make_predictions(server, root: Path, n: int = 6, *extra: str) -> Path:
    """Answer the first ``n`` jmle2026 questions with the real predict stage; return the run folder."""
    server.configure(served_name=SERVED, answers={"120A-2": "I would pick b"})
    predict_runner.run(compose(predict_overrides(server, root / "predictions", f"run.limit={n}", *extra)))
    return root / "predictions" / "jmle2026" / RUN


def judge_overrides(server, root: Path, *extra: str) -> list[str]:
    """Return judge.py's overrides: predict's (the fake server, fast retries) plus where judgments go."""
    return predict_overrides(server, root / "predictions", f"paths.judgments={root / 'judgments'}", *extra)


def judge(server, root: Path, *extra: str, reply: str | None = CHOICE, **config) -> list:
    """Reset the server's counters, make it answer ``reply`` as a judge, and run the judge stage in-process."""
    reset_server(server, served_name=SERVED, default_content=reply, **{"content": {}, "replies": {}, **config})
    return judge_runner.run(compose(judge_overrides(server, root, *extra), config_name="judge"))


def judgments(root: Path, judge_run: str = JUDGE_RUN) -> dict[str, dict]:
    folder = root / "judgments" / "jmle2026" / RUN / judge_run
    out = {}
    for path in sorted(folder.glob("*.json")):
        if path.name != "run.json":
            record = json.loads(path.read_bytes())
            assert schema.judgment_problem(record, path.stem) is None, record
            out[path.stem] = record
    return out


def test_full_judge_run_writes_one_valid_judgment_per_answered_prediction(fake_server, tmp_path):
    make_predictions(fake_server, tmp_path)
    [(job, out)] = judge(fake_server, tmp_path)
    files = judgments(tmp_path)
    assert sorted(files) == [f"120A-{i}" for i in range(1, 7)]
    assert out is not None and out.asked == 6 and out.ok == 6
    assert all(r["status"] == "ok" and r["judgment"] == json.loads(CHOICE) for r in files.values())
    header = json.loads((job.run_dir / "run.json").read_bytes())
    assert header["stage"] == "judge" and header["prediction_run"] == RUN
    assert header["rubric"]["name"] == "extract_choice" and header["rubric"]["kind"] == "choice"
    for key in ("model.id", "model.params", "rubric.prompt_hash", "rubric.version", "prediction.fingerprint"):
        assert key in header["fingerprint_inputs"], key
    # the request: the rubric's messages with the question and the model's reply, and the reply schema
    body = fake_server.server.bodies[-1]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["rationale", "answer"]
    user = body["messages"][-1]["content"]
    qid = user.split("Question ", 1)[1].split("\n", 1)[0]
    prediction = json.loads((tmp_path / "predictions/jmle2026" / RUN / f"{qid}.json").read_bytes())
    assert prediction["answer_text"].strip() in user


def test_resume_asks_nothing_and_a_changed_prediction_is_judged_again(fake_server, tmp_path):
    run_dir = make_predictions(fake_server, tmp_path)
    judge(fake_server, tmp_path)
    before = judgments(tmp_path)
    [(_, out)] = judge(fake_server, tmp_path)
    assert out is None and fake_server.stats()["total"] == 0  # nothing asked, not even once
    path = run_dir / "120A-3.json"
    record = json.loads(path.read_bytes())
    path.write_text(json.dumps({**record, "answer_text": record["answer_text"] + "\n(re-predicted)"}))
    [(_, out)] = judge(fake_server, tmp_path)
    assert out is not None and out.asked == 1 and fake_server.stats()["requests"] == {"120A-3": 1}
    after = judgments(tmp_path)
    assert after["120A-3"]["prediction_sha256"] != before["120A-3"]["prediction_sha256"]
    assert {k: v for k, v in after.items() if k != "120A-3"} == {k: v for k, v in before.items() if k != "120A-3"}


def test_unreadable_reply_is_asked_again_then_recorded_as_an_error(fake_server, tmp_path):
    make_predictions(fake_server, tmp_path, 4)
    once_unreadable = {"raw": json.dumps({"choices": [{"message": {"content": "no idea"}}]}), "attempts": 1}
    [(_, out)] = judge(
        fake_server,
        tmp_path,
        content={"120A-1": "I think the answer is probably c.", "120A-2": '{"answer": "c"}'},
        replies={"120A-3": once_unreadable},
    )
    files = judgments(tmp_path)
    requests = fake_server.stats()["requests"]
    assert requests["120A-1"] == 3 and requests["120A-2"] == 3  # judge.reread_attempts=3, then an error
    for qid in ("120A-1", "120A-2"):
        assert files[qid]["status"] == "error" and files[qid]["judgment"] is None
        assert "unreadable judge reply after 3 attempt(s)" in files[qid]["error"]
    assert "rationale" in files["120A-2"]["error"]  # names what is missing from the schema
    assert files["120A-3"]["status"] == "ok" and files["120A-3"]["attempts"] == 2  # read on the second reply
    assert files["120A-4"]["status"] == "ok" and out is not None and out.errors == 2
    [(_, again)] = judge(fake_server, tmp_path)  # a resume retries the errors, now readable
    assert again is not None and again.asked == 2 and all(r["status"] == "ok" for r in judgments(tmp_path).values())


def test_unreadable_replies_spend_tokens_that_the_judgment_counts(fake_server, tmp_path):
    make_predictions(fake_server, tmp_path, 1)
    judge(fake_server, tmp_path, reply="not json")
    [record] = judgments(tmp_path).values()
    assert record["usage"]["prompt_tokens"] == 3 * 100 and record["attempts"] == 3


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.params.temperature=0.5", "model.params.temperature: 0.0 != 0.5"),
        ("rubric.version=v2", "rubric.version"),
        ("judge.structured_output=none", 'response_format: "json_schema" != "none"'),
    ],
)
def test_other_judgment_settings_in_the_same_folder_are_refused_with_the_keys_named(
    fake_server, tmp_path, override, named
):
    make_predictions(fake_server, tmp_path, 2)
    judge(fake_server, tmp_path)
    before = judgments(tmp_path)
    with pytest.raises(UserError, match="different answer-changing settings") as refused:
        judge(fake_server, tmp_path, override, f"run.name={JUDGE_RUN}")
    assert named in str(refused.value)
    assert judgments(tmp_path) == before and fake_server.stats()["total"] == 0


def test_match_answer_and_diagnosis_rubrics_store_their_grades(fake_server, tmp_path):
    make_predictions(fake_server, tmp_path, 2)
    judge(fake_server, tmp_path, "rubric=match_answer", reply=VERDICT)
    assert {r["judgment"]["verdict"] for r in judgments(tmp_path, "match_answer-smollm2_135m").values()} == {"correct"}
    score = "<think>compare</think>\n" + json.dumps({"rationale": "x", "extracted_diagnosis": "y", "score": "7"})
    judge(fake_server, tmp_path, "rubric=diagnosis_0_10", reply=score)
    stored = judgments(tmp_path, "diagnosis_0_10-smollm2_135m")
    assert {r["judgment"]["score"] for r in stored.values()} == {7}  # "7" read leniently, stored as a number


def test_no_structured_output_for_providers_that_do_not_honour_it(fake_server, tmp_path):
    make_predictions(fake_server, tmp_path, 1)
    judge(fake_server, tmp_path, "provider.structured_output=none")
    assert "response_format" not in fake_server.server.bodies[-1]


def test_extract_choice_leaves_out_numeric_questions(fake_server, tmp_path):
    cfg = to_plain(compose(["dataset=igakuqa119"], config_name="judge"))
    rubric = rubrics.load(cfg["rubric"])
    from jmle_eval.datasets import load

    questions = load(cfg["dataset"], data_dir="data")
    numeric = [q for q in questions if q.type == "numeric"]
    assert numeric and not any(rubric.applies(q) for q in numeric)
    assert all(rubric.applies(q) for q in questions if q.type != "numeric")


# --- reading replies ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def question():
    cfg = to_plain(compose([], config_name="judge"))
    from jmle_eval.datasets import load

    return next(q for q in load(cfg["dataset"], data_dir="data") if q.type == "single")


def _rubric(name: str) -> rubrics.Rubric:
    return rubrics.load(to_plain(compose([f"rubric={name}"], config_name="judge"))["rubric"])


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ('{"rationale": "r", "answer": "C"}', "C"),
        ('Here you go:\n```json\n{"rationale": "r", "answer": "b, d"}\n```', "b, d"),
        ('{"rationale": "r", "answer": "a"} and on reflection {"rationale": "r2", "answer": "e"}', "e"),
        ('<think>{"answer": "x"}</think>{"rationale": "r", "answer": "none"}', "none"),
        ('{"rationale": "r", "answer": "ｃ", "extra": 1}', "ｃ"),
    ],
)
def test_choice_replies_are_read_leniently(question, text, answer):
    judgment, problem = rubrics.read_reply(text, _rubric("extract_choice"), question)
    assert problem is None and judgment == {"rationale": judgment["rationale"], "answer": answer}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("The answer is c.", "no JSON object"),
        ('{"rationale": "r", "answer": "z"}', "names no option"),
        ('{"rationale": "r"}', "answer"),
        ("[1, 2]", "no JSON object"),
    ],
)
def test_unreadable_choice_replies_name_the_problem(question, text, why):
    judgment, problem = rubrics.read_reply(text, _rubric("extract_choice"), question)
    assert judgment is None and why in (problem or "")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"rationale": "r", "extracted_answer": "a", "verdict": "Correct", "confidence": "90"}', True),
        ('{"rationale": "r", "extracted_answer": "a", "verdict": "maybe", "confidence": 90}', False),
        ('{"rationale": "r", "extracted_answer": "a", "verdict": "correct", "confidence": 101}', False),
        ('{"rationale": "r", "extracted_answer": "a", "verdict": "correct", "confidence": true}', False),
    ],
)
def test_verdict_replies(question, text, ok):
    judgment, problem = rubrics.read_reply(text, _rubric("match_answer"), question)
    assert (judgment is not None) is ok, problem
    if ok:
        assert judgment == {"rationale": "r", "extracted_answer": "a", "verdict": "correct", "confidence": 90}


def test_score_outside_the_scale_is_unreadable(question):
    rubric = _rubric("diagnosis_0_10")
    for score, ok in ((0, True), (10, True), (11, False), (-1, False), (7.5, False)):
        text = json.dumps({"rationale": "r", "extracted_diagnosis": "d", "score": score})
        assert (rubrics.read_reply(text, rubric, question)[0] is not None) is ok, score


def test_judge_prompt_carries_question_options_reference_and_the_reply_tail(question):
    rubric = _rubric("match_answer")
    long_reply = "x" * 20000 + "\n【回答】c"
    system, user = rubrics.messages(rubric, question, long_reply)
    content = user["content"]
    assert question.stem in content and f"Question {question.id}" in content
    assert all(f"{letter}. {text}" in content for letter, text in question.choices)
    assert f"Reference answer: {rubrics.reference(question)}" in content
    assert "【回答】c" in content and "left out" in content and len(content) < 8000 + 4000
    assert system["role"] == "system" and "$" not in content


def test_every_shipped_rubric_loads_and_its_hash_tracks_its_text():
    for name in ("extract_choice", "match_answer", "diagnosis_0_10"):
        card = to_plain(compose([f"rubric={name}"], config_name="judge"))["rubric"]
        rubric = rubrics.load(card)
        assert rubric.name == name and len(rubric.prompt_hash) == 12
        changed = rubrics.load({**card, "user": card["user"] + " "})
        assert changed.prompt_hash != rubric.prompt_hash


def test_a_rubric_with_an_unknown_placeholder_is_refused():
    card = to_plain(compose([], config_name="judge"))["rubric"]
    with pytest.raises(UserError, match=r"\$answer_key"):
        rubrics.load({**card, "user": card["user"] + " $answer_key"})
    with pytest.raises(UserError, match="kind"):
        rubrics.load({**card, "kind": "stars"})
