"""The three JMLE sources load into one Question model with the documented counts and rules."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from jmle_eval import datasets
from jmle_eval.datasets import text
from jmle_eval.errors import UserError
from jmle_eval.schema import Question
from tests.conftest import DATA_DIR, REPO, run_python


def card(name: str, **changes: object) -> dict:
    """Return the data set card of ``conf/dataset/<name>.yaml`` as a plain dict, with changes."""
    data = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "dataset" / f"{name}.yaml"), resolve=True)
    assert isinstance(data, dict)
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[Question]]:
    return {name: datasets.load(card(name)) for name in ("jmle2026", "igakuqa119", "igakuqa")}


def test_jmle2026_counts_match_the_published_description(loaded):
    qs = loaded["jmle2026"]
    assert len(qs) == 400
    assert sum(q.requires_image for q in qs) == 98
    assert len({path for q in qs for path in q.images}) == 110
    assert sum(q.case_id is not None for q in qs) == 50
    assert sum(q.type == "numeric" for q in qs) == 3
    assert Counter(q.select for q in qs if q.type != "numeric") == {1: 367, 2: 28, 3: 2}
    assert sum(q.points for q in qs) == 500
    assert sum(q.points for q in qs if q.section == "required") == 200


def test_jmle2026_image_paths_all_exist(loaded):
    paths = [Path(p) for q in loaded["jmle2026"] for p in q.images]
    assert paths and all(p.is_file() for p in paths)


def test_igakuqa119_counts_and_known_key_fixes(loaded):
    qs = {q.id: q for q in loaded["igakuqa119"]}
    assert len(qs) == 400
    assert sum(q.points for q in qs.values()) == 500
    assert qs["119E-28"].accepted_answers == [["a"], ["c"]]
    assert qs["119A-75"].type == "numeric" and qs["119A-75"].accepted_answers == [["600"]]
    assert [c[0] for c in qs["119A-22"].choices] == list("abcde")
    # inline choices recovered from the stem, upper-case OCR label included
    assert qs["119E-48"].choices[2] == ("c", "フロセミド")


def test_igakuqa119_choices_have_no_ocr_labels(loaded):
    for q in loaded["igakuqa119"]:
        for _, choice in q.choices:
            assert not choice.startswith(("a.", "b.", "c.", "d.", "e.")), (q.id, choice)


def test_igakuqa_counts_metadata_and_exclusions(loaded):
    qs = loaded["igakuqa"]
    assert len(qs) == 2000
    assert Counter(q.exam for q in qs) == {112: 400, 113: 400, 114: 400, 115: 400, 116: 400}
    excluded = sorted(q.id for q in qs if q.points == 0)
    assert len(excluded) == 11 and "114E-29" in excluded and "112A-43" in excluded
    assert sum(bool(q.kinki) for q in qs) == 135
    assert sum(q.requires_image for q in qs) == 529
    assert sum(q.select == 2 for q in qs) == 243 and sum(q.select == 3 for q in qs) == 55
    required_max = Counter()
    for q in qs:
        if q.section == "required":
            required_max[q.exam] += q.points
    assert required_max == {112: 200, 113: 200, 114: 197, 115: 200, 116: 197}


def test_igakuqa_alternates_all_credited_and_numeric_templates(loaded):
    qs = {q.id: q for q in loaded["igakuqa"]}
    assert qs["112B-30"].accepted_answers == [["a"], ["d"]]
    assert qs["116A-71"].all_credited
    # mark-sheet digits read through the answer template (①.② with key "21" is 2.1)
    assert qs["116B-50"].accepted_answers == [["2.1"]]
    assert qs["116F-74"].accepted_answers == [["0.4"]]
    assert qs["114F-75"].accepted_answers == [["1130"]]
    assert qs["113F-84"].accepted_answers == [["7.20"]]
    assert qs["112A-1"].human_accuracy == pytest.approx(39.3) and qs["112A-1"].category == "小児科"


@pytest.mark.parametrize("name", ["jmle2026", "igakuqa119", "igakuqa"])
def test_every_question_is_gradable(loaded, name):
    for q in loaded[name]:
        assert q.accepted_answers and all(q.accepted_answers), q.id
        assert q.points in (0, 1, 3), q.id
        assert q.id == f"{q.exam}{q.block}-{q.number}"
        if q.type == "numeric":
            assert not q.choices and all(len(a) == 1 for a in q.accepted_answers), q.id
            continue
        letters = [c[0] for c in q.choices]
        assert letters == text.letters(len(letters)) and len(letters) >= 5, q.id
        for accepted in q.accepted_answers:
            assert set(accepted) <= set(letters), q.id
            assert len(accepted) == q.select or q.all_credited, q.id


def test_year_and_block_filters_select_questions():
    qs = datasets.load(card("igakuqa", years=[2022], blocks=["b", "E"]))
    assert {q.exam for q in qs} == {116} and {q.block for q in qs} == {"B", "E"} and len(qs) == 100


def test_filter_that_matches_nothing_is_a_clear_error():
    with pytest.raises(UserError, match="no questions for years=\\[2030\\]"):
        datasets.load(card("igakuqa", years=[2030]))


def test_card_override_for_unknown_question_is_refused():
    with pytest.raises(UserError, match="overrides for questions that do not exist"):
        datasets.load(card("igakuqa119", overrides={"119A-99": {"points": 0}}))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("120A-1", "120A-1"), ("112B30", "112B-30"), ("119E028", "119E-28")],
)
def test_ids_are_normalised(raw, expected):
    assert text.normalise_id(raw) == expected


def test_table_choices_are_split_into_rows(loaded):
    q = {q.id: q for q in loaded["jmle2026"]}["120C-71"]
    assert [c[0] for c in q.choices] == list("abcde")
    assert q.choices[2][1] == "130 | 4 | 109 | 28 | 7,400 mL"
    assert "Na⁺" in q.stem  # the table header stays with the stem


def test_stats_command_prints_counts():
    proc = run_python(["-m", "jmle_eval.datasets", "stats", "dataset=igakuqa", "dataset.years=[2018]"])
    assert proc.returncode == 0, proc.stderr
    assert "400 questions" in proc.stdout and "112B" in proc.stdout and "multi-2" in proc.stdout


def test_show_command_prints_the_prompt_and_key():
    proc = run_python(["-m", "jmle_eval.datasets", "show", "120A-16", "prompt.answer_format=text"])
    assert proc.returncode == 0, proc.stderr
    assert "【問題 120A-16】" in proc.stdout and "accepted: b" in proc.stdout and "【回答】" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["stats", "dataset=nope"],
            "no conf/dataset/nope.yaml. The choices are: custom, igakuqa, igakuqa119, jmle2026, medagentbench, "
            "medmcqa, medqa, medxpertqa, medxpertqa_sampled, mmlu_medical",
        ),
        (["stats", "dataset=igakuqa119", "dataset.path=does/not/exist"], "does not exist"),
        (["show", "130A-1"], "No data set card"),
        (["show", "12A-1"], "not a JMLE question id"),
        (["show", "120A-999"], "No question 120A-999"),
    ],
)
def test_bad_input_gets_one_clear_error_and_no_traceback(args, message):
    proc = run_python(["-m", "jmle_eval.datasets", *args])
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_export_writes_a_hugging_face_dataset(tmp_path):
    from datasets import load_from_disk

    out = tmp_path / "export"
    proc = run_python(["-m", "jmle_eval.datasets", "export", "dataset=igakuqa119", f"out={out}"])
    assert proc.returncode == 0, proc.stderr
    ds = load_from_disk(str(out))
    assert len(ds) == 400 and ds[0]["id"] == "119A-1"


def _break_line(rows: str, line: str) -> str:
    """Return JSON lines with the 11th replaced by ``line`` (valid JSON, wrong shape)."""
    lines = rows.splitlines()
    return "\n".join([*lines[:10], line, *lines[11:]]) + "\n"


CORRUPTIONS = {  # data set → (file, change to its text, what the message says is wrong)
    "jmle2026": (
        "jmle2026_dataset.json",
        lambda raw: raw.replace('"answer"', '"answers"', 1),
        "a record has no field 'answer'",
    ),
    "igakuqa119": ("results/correct_answers.csv", lambda raw: raw.replace("解答", "answer", 1), "no field '解答'"),
    "igakuqa": ("data/2018/112-A.jsonl", lambda raw: _break_line(raw, "{}"), "no field 'problem_id'"),
    "igakuqa metadata": (
        "data/2018/112-A_metadata.jsonl",
        lambda raw: _break_line(raw, "[1, 2]"),
        "list indices must be integers",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_file_read_without_verify_is_a_clear_error_naming_it(tmp_path, case):
    name = case.split()[0]
    rel, change, what = CORRUPTIONS[case]
    source = DATA_DIR / name
    for path in source.rglob("*"):  # a copy made of links, except the one file that is changed
        if path.is_file():
            target = tmp_path / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    broken = tmp_path / rel
    broken.unlink()
    broken.write_text(change((source / rel).read_text(encoding="utf-8-sig")), encoding="utf-8")
    with pytest.raises(UserError) as refused:
        datasets.load(card(name, path=str(tmp_path), verify=False))
    message = str(refused.value)
    assert str(broken) in message and what in message and "Re-download it" in message, message
    with pytest.raises(UserError, match="sha256"):  # with verify on (the default) it is refused before reading
        datasets.load(card(name, path=str(tmp_path)))
