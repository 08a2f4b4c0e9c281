"""A researcher's own question file (``dataset=custom``) loads from JSONL, CSV or a Hugging Face folder.

Every mistake in the file is one clear error naming the file and the line (or row) it is on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from jmle_eval import datasets
from jmle_eval.config import compose, load_questions
from jmle_eval.errors import UserError
from tests.conftest import REPO, run_python
from tests.test_datasets import card

GOOD = [
    {"id": "q1", "question": "Scurvy?", "options": ["Vit A", "Vit C"], "answer": "B", "subject": "nutrition"},
    {"id": "q2", "question": "Anaphylaxis?", "options": {"A": "Epinephrine", "B": "Saline"}, "answer": "a"},
    {"id": "q3", "question": "Loop?", "options": ["Furosemide", "Spironolactone", "Bumetanide"], "answer": ["A", "C"]},
    {"id": "q4", "question": "CAP?", "options": [{"letter": "A", "content": "S. pneumoniae"}, {"letter": "B",
     "content": "Legionella"}], "answer": "S. pneumoniae"},
    {"id": "q5", "question": "Heart rate?\nAnswer Choices: (A) 20-40/min (B) 60-100/min", "answer": "B"},
]  # fmt: skip


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def custom(path: Path, **changes: Any) -> dict:
    return card("custom", path=str(path), **changes)


def test_jsonl_with_every_option_and_answer_form_loads(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", GOOD)
    qs = {q.id: q for q in datasets.load(custom(path, breakdowns=["subject"]))}
    assert list(qs) == ["q1", "q2", "q3", "q4", "q5"]
    assert qs["q1"].choices == [("a", "Vit A"), ("b", "Vit C")] and qs["q1"].accepted_answers == [["b"]]
    assert qs["q2"].accepted_answers == [["a"]] and qs["q2"].choices[0] == ("a", "Epinephrine")
    assert qs["q3"].accepted_answers == [["a", "c"]] and qs["q3"].type == "multi" and qs["q3"].select == 2
    assert qs["q4"].accepted_answers == [["a"]]
    assert qs["q5"].stem == "Heart rate?" and qs["q5"].choices == [("a", "20-40/min"), ("b", "60-100/min")]
    assert qs["q1"].attributes == {"subject": "nutrition"} and qs["q2"].attributes == {}
    assert all(q.points == 1 and q.exam is None and q.dataset == "custom" for q in qs.values())


def test_records_without_ids_get_ids_from_their_line(tmp_path):
    records = [{k: v for k, v in r.items() if k != "id"} for r in GOOD[:3]]
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(records[0]) + "\n\n" + json.dumps(records[1]) + "\n" + json.dumps(records[2]) + "\n")
    assert [q.id for q in datasets.load(custom(path))] == ["custom-0001", "custom-0003", "custom-0004"]


def test_csv_with_option_columns_and_a_field_mapping_loads(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "qid,text,A,B,C,D,key,area\n"
        'c1,"Which, of these?",one,two,three,,C,cardio\n'
        'c2,"A question\nover two lines",x,y,z,w,"A,D",neuro\n'
        "c3,Third,x,y,,,y,neuro\n",
        encoding="utf-8",
    )
    fields = {"id": "qid", "question": "text", "options": ["A", "B", "C", "D"], "answer": "key", "area": "area"}
    qs = datasets.load(custom(path, fields=fields))
    assert [q.id for q in qs] == ["c1", "c2", "c3"]
    assert qs[0].stem == "Which, of these?" and qs[0].choices == [("a", "one"), ("b", "two"), ("c", "three")]
    assert qs[1].accepted_answers == [["a", "d"]] and qs[2].accepted_answers == [["b"]]
    assert qs[1].attributes == {"area": "neuro"}


def test_csv_option_columns_with_a_gap_are_refused(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("id,question,A,B,C,answer\nc1,Q?,x,,z,C\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"row 1 \(line 2\): option column 'B' is empty but a later one is not"):
        datasets.load(custom(path, fields={"options": ["A", "B", "C"]}))


def test_csv_with_options_as_json_in_one_cell_loads(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text('id,question,options,answer\nk1,Pick one,"[""red"", ""green""]",green\n', encoding="utf-8")
    (q,) = datasets.load(custom(path))
    assert q.choices == [("a", "red"), ("b", "green")] and q.accepted_answers == [["b"]]


def test_hugging_face_folder_loads_and_a_split_dict_is_refused(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = [{"id": "h1", "question": "Q?", "options": ["x", "y"], "answer": "y"}]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "one"))
    (q,) = datasets.load(custom(tmp_path / "one"))
    assert q.id == "h1" and q.accepted_answers == [["b"]]
    DatasetDict({"test": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "splits"))
    with pytest.raises(UserError, match=r"holds several splits \(test\); point dataset.path at one of them"):
        datasets.load(custom(tmp_path / "splits"))


def test_readme_example_file_loads(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)```", readme.split("### Your own questions", 1)[1], re.S)
    assert block and len(block.group(1).strip().splitlines()) == 5
    path = tmp_path / "my_questions.jsonl"
    path.write_text(block.group(1), encoding="utf-8")
    qs = datasets.load(custom(path, breakdowns=["subject"]))
    assert [q.accepted_answers for q in qs] == [[["c"]], [["a"]], [["a", "c"]], [["a"]], [["b"]]]
    assert {q.attributes["subject"] for q in qs} >= {"nutrition", "physiology"}


# --- one clear error per mistake, naming the file and the line ------------------------------------------------

BAD = {  # what is wrong with line 2 → what the message says
    "duplicate id": ({**GOOD[1], "id": "q1"}, "id 'q1' is already used on line 1"),
    "answer not an option": ({**GOOD[1], "answer": "C"}, "answer 'C' is not one of the options (a, b)"),
    "missing question": ({k: v for k, v in GOOD[1].items() if k != "question"}, "no question (field 'question'"),
    "missing answer": ({k: v for k, v in GOOD[1].items() if k != "answer"}, "no answer (field 'answer'"),
    "missing options": ({k: v for k, v in GOOD[1].items() if k != "options"}, "no options (field 'options'"),
    "empty question": ({**GOOD[1], "question": "  "}, "the question text is empty"),
    "too many options": ({**GOOD[1], "options": [f"o{i}" for i in range(27)]}, "27 options, more than the 26"),
    "one option": ({**GOOD[1], "options": ["only"]}, "1 option(s); a multiple-choice question needs at least 2"),
    "unsafe id": ({**GOOD[1], "id": "../q2"}, "id '../q2' is not a safe file name"),
    "not an object": ([1, 2], "not a JSON object"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_mistake_in_a_jsonl_file_names_the_file_and_line(tmp_path, case):
    record, message = BAD[case]
    path = write_jsonl(tmp_path / "mine.jsonl", [GOOD[0], record, GOOD[2]])
    with pytest.raises(UserError) as refused:
        datasets.load(custom(path))
    assert str(refused.value).startswith(f"{path} line 2: ") and message in str(refused.value), str(refused.value)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(GOOD[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"{re.escape(str(path))} line 2 is not valid JSON"):
        datasets.load(custom(path))


def test_a_mistake_in_a_csv_file_names_the_row_and_line(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text('id,question,options,answer\nk1,"Two\nlines","[""a"", ""b""]",A\nk2,,"[""a"", ""b""]",A\n')
    with pytest.raises(UserError) as refused:
        datasets.load(custom(path))
    assert str(refused.value) == f"{path} row 2 (line 4): the question text is empty."


def test_a_mapped_field_the_file_lacks_is_named_with_the_setting(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", GOOD)
    with pytest.raises(UserError, match=r"line 1: no question \(field 'text'; set dataset.fields.question=<field>"):
        datasets.load(custom(path, fields={"question": "text"}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"path": None}, "dataset=custom needs dataset.path=<file>"),
        ({"path": "/does/not/exist.jsonl"}, "dataset.path=/does/not/exist.jsonl does not exist"),
        ({"format": "xml"}, "set dataset.format=jsonl|csv|hf"),
    ],
)
def test_a_missing_or_unknown_file_is_refused(tmp_path, changes, message):
    path = write_jsonl(tmp_path / "mine.jsonl", GOOD)
    with pytest.raises(UserError, match=re.escape(message)):
        datasets.load({**custom(path), **changes})


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(UserError, match="holds no questions"):
        datasets.load(custom(path))


def test_the_file_content_is_the_data_set_version(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", GOOD)
    before = datasets.dataset_version(custom(path))
    assert before == datasets.dataset_version(custom(path))
    write_jsonl(path, GOOD[:4])
    assert datasets.dataset_version(custom(path)) != before


def test_command_line_mapping_and_breakdowns_compose(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [{**r, "area": "x"} for r in GOOD])
    cfg = compose(
        ["dataset=custom", f"dataset.path={path}", "+dataset.fields.area=subject", "dataset.breakdowns=[area]"]
    )
    qs = load_questions(cfg)
    assert qs[0].attributes == {"area": "nutrition"} and qs[1].attributes == {}
    assert cfg.dataset.grader == "choice" and cfg.dataset.language == "en"


def test_stats_and_show_commands_read_a_custom_file(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", GOOD)
    args = ["dataset=custom", f"dataset.path={path}", "dataset.breakdowns=[subject]"]
    proc = run_python(["-m", "jmle_eval.datasets", "stats", *args])
    assert proc.returncode == 0, proc.stderr
    assert "custom: 5 questions" in proc.stdout and "nutrition" in proc.stdout and "multi-2" in proc.stdout
    proc = run_python(["-m", "jmle_eval.datasets", "show", "q3", *args])
    assert proc.returncode == 0, proc.stderr
    assert "(C) Bumetanide" in proc.stdout and "accepted: a,c" in proc.stdout


def test_a_mistake_reaches_the_command_line_as_one_error(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [GOOD[0], {**GOOD[1], "answer": "Z"}])
    proc = run_python(["-m", "jmle_eval.datasets", "stats", "dataset=custom", f"dataset.path={path}"])
    assert proc.returncode == 2 and f"{path} line 2: answer 'Z'" in proc.stderr and "Traceback" not in proc.stderr
