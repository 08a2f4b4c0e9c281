"""``prompt.answer_format=json``: a JSON reply under a schema of the question's options, sent and read.

Through a loopback server: the request carries ``response_format`` in the provider's form, the
prompt shows the object to reply with, the reply is read by the JSON reader, and the run records
the format in its fingerprint. The reader's table covers what servers without a schema send.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jmle_eval.config import compose, to_plain
from jmle_eval.errors import UserError
from jmle_eval.predict import prompts
from jmle_eval.predict.plan import plan
from jmle_eval.score.parse_json import parse_json, read_reply
from tests.conftest import run_python
from tests.reliability.conftest import predict_overrides, reset_server
from tests.score_fixtures import read_summary

ASKED = ["112A-1", "112A-2", "112A-3", "116B-50"]  # keys e, e, d; 116B-50 is numeric (2.1)
SERVED = "Qwen/Qwen3-32B"


def _run(server, root: Path, replies: dict[str, str], *extra: str):
    reset_server(server, served_name=SERVED, content=replies)
    ids = f"run.ids=[{','.join(ASKED)}]"
    overrides = predict_overrides(server, root / "predictions", "model=qwen3_32b", "dataset=igakuqa", ids, *extra)
    return run_python(["predict.py", "prompt.answer_format=json", *overrides])


def test_a_json_run_sends_the_options_schema_and_reads_every_structured_reply(fake_server, tmp_path):
    replies = {
        "112A-1": '{"answer": ["e"]}',
        "112A-2": '{"answer": ["a"]}',
        "112A-3": '{ "answer": [ "d" ] }',
        "116B-50": '{"answer": 2.1}',
    }
    done = _run(fake_server, tmp_path, replies)
    assert done.returncode == 0, done.stderr
    bodies = {b["messages"][1]["content"].split("】")[0][4:]: b for b in fake_server.server.bodies}
    choice = bodies["112A-1"]["response_format"]
    assert choice["type"] == "json_schema" and choice["json_schema"]["strict"] is True
    answer = choice["json_schema"]["schema"]["properties"]["answer"]
    assert answer == {"type": "array", "items": {"type": "string", "enum": list("abcde")}, "minItems": 1, "maxItems": 1}
    numeric = bodies["116B-50"]["response_format"]["json_schema"]["schema"]["properties"]["answer"]
    assert numeric == {"type": "number"}
    assert bodies["112A-1"]["messages"][1]["content"].endswith('{"answer": ["a"]}')
    assert "【回答】" not in bodies["112A-1"]["messages"][1]["content"]

    run_dir = tmp_path / "predictions" / "igakuqa" / "qwen3_32b-json"  # the format is in the run name
    inputs = json.loads((run_dir / "run.json").read_bytes())["fingerprint_inputs"]
    assert (inputs["prompt.answer_format"], inputs["provider.structured_output"]) == ("json", "json_schema")

    paths = [f"paths.{p}={tmp_path / p}" for p in ("predictions", "scored", "leaderboard")]
    scored = run_python(["score.py", "dataset=igakuqa", "plots=false", *paths])
    assert scored.returncode == 0, scored.stderr
    summary = read_summary(tmp_path, "igakuqa", "qwen3_32b-json")
    assert summary["parse"]["failures"] == 0 and summary["parse"]["rules"] == {"json": 4}
    assert summary["accuracy"]["all"]["correct"] == 3 and summary["accuracy"]["all"]["n"] == 4


def test_a_multi_answer_question_asks_for_exactly_its_number_of_letters_in_the_shown_case(fake_server, tmp_path):
    multi = "112A-12"  # choose two
    replies = {multi: '{"answer": ["B", "E"]}'}
    reset_server(fake_server, served_name=SERVED, content=replies)
    overrides = predict_overrides(
        fake_server, tmp_path / "predictions", "model=qwen3_32b", "dataset=igakuqa", f"run.ids=[{multi}]"
    )
    done = run_python(["predict.py", "prompt.answer_format=json", "dataset.language=en", *overrides])
    assert done.returncode == 0, done.stderr
    (body,) = fake_server.server.bodies
    answer = body["response_format"]["json_schema"]["schema"]["properties"]["answer"]
    assert answer["items"]["enum"] == list("ABCDE") and answer["minItems"] == answer["maxItems"] == 2
    assert body["messages"][1]["content"].endswith('{"answer": ["A", "B"]}')


def test_the_form_follows_the_provider_and_text_runs_keep_their_fingerprint():
    local = plan(to_plain(compose(["prompt.answer_format=json", "dataset=igakuqa"])), load=False)  # provider local
    question = next(q for q in compose_questions() if q.id == "112A-1")
    body = json.loads(local.request(question))
    assert body["response_format"]["type"] == "json_object" and "schema" in body["response_format"]
    none = plan(to_plain(compose(["provider=ollama", "prompt.answer_format=json"])), load=False)
    assert "response_format" not in json.loads(none.request(question))  # the prompt alone asks for the object
    # text runs: the JSON line is left out of the template hash, so runs made before it keep their fingerprint
    assert prompts.template_hash("v1", "ja") == "a748a0e713eb" and prompts.template_hash("v1", "en") == "5cd021a329de"
    assert prompts.template_hash("v1", "ja", "json") != "a748a0e713eb"


def compose_questions():
    from jmle_eval.config import load_questions

    return load_questions(compose(["dataset=igakuqa"]))


def test_the_embedded_model_defaults_to_json_and_others_to_text():
    assert to_plain(compose([]))["prompt"]["answer_format"] == "json"  # SmolLM2, the quick start
    assert to_plain(compose(["model=qwen3_32b"]))["prompt"]["answer_format"] == "text"
    assert to_plain(compose(["model=qwen3_32b", "model.answer_format=json"]))["prompt"]["answer_format"] == "json"


def test_a_bad_format_is_one_clear_error():
    with pytest.raises(UserError, match=r"prompt.answer_format='yaml' is not one of text, json"):
        plan(to_plain(compose(["prompt.answer_format=yaml"])), load=False)
    with pytest.raises(UserError, match=r"provider.structured_output='xml' is not one of"):
        plan(to_plain(compose(["prompt.answer_format=json", "provider.structured_output=xml"])), load=False)


@pytest.mark.parametrize(
    ("reply", "qtype", "answer", "strict"),
    [
        ('{"answer": ["c"]}', "single", ("c",), True),
        ('{"answer": ["E", "a"]}', "multi", ("a", "e"), True),
        ('```json\n{"answer": ["b"]}\n```', "single", ("b",), False),  # a fenced object, as servers without a schema
        ('I think {"answer": ["a"]} but no: {"answer": ["d"]}', "single", ("d",), False),  # the last object wins
        ('{"answer": "A, C"}', "multi", ("a", "c"), True),
        ('{"answer": "(B)"}', "single", ("b",), True),
        ('<think>{"answer": ["a"]}</think>{"answer": ["b"]}', "single", ("b",), True),  # reasoning is not the reply
        ('{"answer": 0.40}', "numeric", ("0.4",), True),
        ('{"answer": "1,130"}', "numeric", ("1130",), True),
        ('{"answer": [315]}', "numeric", ("315",), True),
        ('{"answer": ["f"]}', "single", None, None),  # not an option
        ('{"answer": true}', "numeric", None, None),
        ('{"answer": ["ab"]}', "multi", None, None),
        ('{"reply": ["a"]}', "single", None, None),
        ("", "single", None, None),
    ],
)
def test_the_json_reader(reply, qtype, answer, strict):
    parsed = parse_json(reply, qtype)
    assert parsed.answer == answer
    if answer is not None:
        assert (parsed.rule, parsed.strict) == ("json", strict)


def test_a_json_run_falls_back_to_the_text_parser_and_a_text_run_never_reads_json():
    fallback = read_reply("【回答】c", "single", "abcde", answer_format="json", marker="【回答】", language="ja")
    assert (fallback.answer, fallback.rule) == (("c",), "marker")
    text = read_reply('{"answer": ["b"]}', "single", "abcde", answer_format="text", marker="【回答】", language="ja")
    assert text.rule != "json"


def test_show_prints_the_question_in_the_runs_answer_format():
    shown = run_python(["-m", "jmle_eval.datasets", "show", "120A-74"])  # SmolLM2's card: json
    assert shown.returncode == 0, shown.stderr
    assert "次の形式のJSONオブジェクトだけで解答してください" in shown.stdout and '{"answer": 0.4}' in shown.stdout
    text = run_python(["-m", "jmle_eval.datasets", "show", "120A-74", "model=qwen3_32b"])
    assert "【回答】0.40" in text.stdout and '{"answer"' not in text.stdout
