"""MedAgentBench's reply protocol and task files: how one reply becomes an action, and what the agent is shown.

Pure functions and the read-only copy under shared/datasets/medagentbench; no network.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from jmle_eval.agent import protocol
from jmle_eval.agent.protocol import Finish, Get, Invalid, Post, parse_action
from jmle_eval.agent.tasks import ACTION_TYPES, QUERY_TYPES, default_root, first_message, load_functions, load_tasks
from jmle_eval.errors import UserError
from tests.conftest import DATA_DIR

BASE = "http://localhost:8080/fhir/"


def test_get_gets_format_json_after_its_query_or_as_its_first_parameter():
    assert parse_action(f"GET {BASE}Patient?identifier=S1") == Get(f"{BASE}Patient?identifier=S1&_format=json")
    assert parse_action(f"GET {BASE}Patient/S1") == Get(f"{BASE}Patient/S1?_format=json")


def test_code_fences_and_surrounding_space_are_removed_before_reading():
    assert parse_action(f"```tool_code\nGET {BASE}Observation?code=MG\n```") == Get(
        f"{BASE}Observation?code=MG&_format=json"
    )
    assert parse_action("  \n```\nFINISH([1.8])\n```  ") == Finish("[1.8]", [1.8])


def test_a_fence_with_a_language_tag_leaves_the_tag_and_the_reply_is_invalid():
    assert isinstance(parse_action('```json\nFINISH(["x"])\n```'), Invalid)  # upstream strips only ``` and ```tool_code


def test_post_reads_the_url_from_its_first_line_and_json_from_the_rest():
    action = parse_action(f'POST {BASE}Observation\n{{"resourceType": "Observation",\n "status": "final"}}')
    assert action == Post(f"{BASE}Observation", {"resourceType": "Observation", "status": "final"})
    assert isinstance(action, Post) and action.accepted


@pytest.mark.parametrize(
    "reply",
    [
        f"POST {BASE}Observation\n{{'resourceType': 'Observation'}}",  # Python, not JSON
        f'POST {BASE}Observation {{"resourceType": "Observation"}}',  # body on the URL's line: none below it
        f"POST {BASE}Observation",
    ],
)
def test_a_post_without_a_json_body_is_kept_as_a_post_that_is_not_accepted(reply):
    action = parse_action(reply)
    assert isinstance(action, Post) and not action.accepted and action.json_error
    assert action.url.startswith(f"{BASE}Observation")


@pytest.mark.parametrize(
    ("reply", "raw", "answers"),
    [
        ('FINISH(["S6534835"])', '["S6534835"]', ["S6534835"]),
        ("FINISH([])", "[]", []),
        (
            'FINISH([6.1, "2023-01-01T00:00:00+00:00"])',
            '[6.1, "2023-01-01T00:00:00+00:00"]',
            [6.1, "2023-01-01T00:00:00+00:00"],
        ),
        ("FINISH([1.8]).", "[1.8])", None),  # upstream cuts the last character, whatever it is
        ("FINISH(S6534835)", "S6534835", None),
        ('FINISH("S6534835")', '"S6534835"', None),  # JSON, but not a list
    ],
)
def test_finish_keeps_the_text_inside_and_its_json_list_when_it_is_one(reply, raw, answers):
    assert parse_action(reply) == Finish(raw, answers)


@pytest.mark.parametrize(
    "reply", ["The patient's MRN is S6534835.", "finish([1])", "", "I will now call GET", "Answer: FINISH([1])"]
)
def test_any_other_reply_is_an_invalid_action(reply):
    action = parse_action(reply)
    assert isinstance(action, Invalid) and action.reason


def test_feedback_carries_the_server_body_and_acknowledges_posts_as_upstream_words_it():
    assert '{"total": 0}' in protocol.get_feedback('{"total": 0}')
    assert "FINISH" in protocol.get_feedback("{}")
    assert "HTTP 400" in protocol.get_error_feedback("HTTP 400 for x")
    assert "POST request accepted" in protocol.POST_ACCEPTED
    assert "not valid JSON" in protocol.POST_INVALID


@pytest.fixture(scope="module")
def tasks():
    return load_tasks(default_root())


def test_the_task_file_holds_ten_types_of_thirty_split_into_query_and_action(tasks):
    assert len(tasks) == 300
    assert Counter(t.type for t in tasks) == {n: 30 for n in range(1, 11)}
    assert QUERY_TYPES | ACTION_TYPES == set(range(1, 11)) and not QUERY_TYPES & ACTION_TYPES
    assert sum(t.kind == "query" for t in tasks) == 150
    assert {t.id for t in tasks if t.sol is not None} == {t.id for t in tasks if t.type == 1}
    assert {t.id for t in tasks if t.mrn is None} == {"task1_29", "task1_30"}
    assert load_tasks(default_root(), {9, 10})[0].id == "task9_1"


def test_first_message_states_the_protocol_functions_base_context_and_question(tasks):
    functions = load_functions(default_root())
    assert len(functions) == 9
    task = next(t for t in tasks if t.id == "task5_1")
    text = first_message(task, functions, BASE)
    assert json.dumps(functions) in text  # the functions as upstream ships them, {api_base} left literal
    assert "{api_base}" in text and f"Use {BASE} as the api_base" in text
    assert text.endswith(f"Context: {task.context}\nQuestion: {task.instruction}")
    for form in ("GET url?param_name1=param_value1", "POST url", "FINISH([answer1, answer2, ...])"):
        assert form in text


def test_a_missing_or_corrupt_task_file_is_one_clear_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JMLE_EVAL_DATA_DIR", str(tmp_path))
    with pytest.raises(UserError, match="medagentbench"):
        default_root()
    target = tmp_path / "medagentbench/data/medagentbench"
    target.mkdir(parents=True)
    (target / "test_data_v2.json").write_text(json.dumps([{"id": "task11_1", "instruction": "x"}]))
    with pytest.raises(UserError, match="corrupt"):
        load_tasks(tmp_path / "medagentbench")
    assert (DATA_DIR / "medagentbench/data/medagentbench/test_data_v2.json").is_file()
