"""The English multiple-choice sets (MedXpertQA's eval/data) load with the published counts, options and keys.

Real files: the read-only copies under shared/datasets/medxpertqa. The full MedXpertQA text file is
not among them, so its reader and its git-blob pin are tested on a small synthetic file of that shape.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jmle_eval import datasets
from jmle_eval.datasets import choices, fetch
from jmle_eval.errors import UserError
from jmle_eval.schema import Question
from tests.conftest import DATA_DIR, run_python
from tests.test_datasets import card

MX = DATA_DIR / "medxpertqa"
INPUT = "eval/data/medxpertqa/input"
TEXT_FILE = f"{INPUT}/medxpertqa_text_input.jsonl"
MM_FILE = f"{INPUT}/medxpertqa_mm_input.jsonl"
SAMPLED_MM = MX / "eval/data/medxpertqa_sampled/input/medxpertqa_sampled_mm_input.jsonl"
ENGLISH = ("medqa", "medmcqa", "mmlu_medical", "medxpertqa_sampled")


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[Question]]:
    sets = {name: datasets.load(card(name)) for name in ENGLISH}
    sets["medxpertqa mm"] = datasets.load(card("medxpertqa", subset="mm"))
    return sets


@pytest.mark.parametrize(
    ("name", "count", "options"),
    [
        ("medqa", 1273, {4: 1273}),
        ("medmcqa", 4183, {4: 4183}),
        ("mmlu_medical", 1089, {4: 1089}),
        ("medxpertqa_sampled", 443, {10: 244, 5: 199}),
        ("medxpertqa mm", 2000, {5: 2000}),
    ],
)
def test_each_set_has_its_published_count_and_option_counts(loaded, name, count, options):
    qs = loaded[name]
    assert len(qs) == count
    assert Counter(len(q.choices) for q in qs) == options
    assert len({q.id for q in qs}) == count, "ids are not unique"


@pytest.mark.parametrize("name", [*ENGLISH, "medxpertqa mm"])
def test_every_question_is_a_one_point_lower_case_choice_without_exam_fields(loaded, name):
    for q in loaded[name]:
        letters = [letter for letter, _ in q.choices]
        assert letters == [chr(ord("a") + i) for i in range(len(letters))], q.id
        assert q.accepted_answers == [q.accepted_answers[0]] and set(q.accepted_answers[0]) <= set(letters), q.id
        assert q.type == "single" and q.select == 1 and q.points == 1, q.id
        assert (q.exam, q.year, q.block, q.number, q.section) == (None,) * 5, q.id
        assert q.stem and "Answer Choices:" not in q.stem and all(text for _, text in q.choices), q.id
        assert choices.SAFE_ID.match(q.id), q.id


def test_upstream_ids_are_kept_and_mmlu_gets_ids_by_line(loaded):
    assert [q.id for q in loaded["medqa"][:2]] == ["test-00000", "test-00001"]
    assert loaded["medmcqa"][0].id == "45258d3d-b974-44dd-a161-c3fccbdadd88"
    assert [q.id for q in loaded["mmlu_medical"][:2]] == ["mmlu_medical-0001", "mmlu_medical-0002"]
    assert loaded["mmlu_medical"][-1].id == "mmlu_medical-1089"
    assert loaded["medxpertqa_sampled"][0].id == "Text-20" and "MM-179" in {q.id for q in loaded["medxpertqa_sampled"]}


def test_options_with_parentheses_are_read_whole(loaded):
    medqa = {q.id: q for q in loaded["medqa"]}
    assert medqa["test-00467"].choices[1] == ("b", "V(D)J recombination")
    assert medqa["test-00000"].accepted_answers == [["b"]]
    first = medqa["test-00000"]
    assert first.choices[0] == ("a", "Disclose the error to the patient and put it in the operative report")
    assert first.stem.endswith("Which of the following is the correct next action for the resident to take?")
    medmcqa = {q.id: q for q in loaded["medmcqa"]}
    assert medmcqa["e3bdd685-6159-4e8e-b379-1f3151942411"].choices[3] == ("d", "Both (A) & (C)")


def test_breakdown_attributes_are_kept_per_set(loaded):
    sampled = {q.id: q for q in loaded["medxpertqa_sampled"]}
    assert sampled["MM-179"].attributes == {
        "medical_task": "Diagnosis",
        "body_system": "Integumentary",
        "question_type": "Understanding",
        "subset": "mm",
    }
    assert Counter(q.attributes["subset"] for q in sampled.values()) == {"text": 244, "mm": 199}
    assert loaded["medmcqa"][0].attributes == {"subject_name": "Physiology"}  # topic_name null upstream: left out
    assert sum("topic_name" in q.attributes for q in loaded["medmcqa"]) == 4183 - 3760
    assert Counter(q.attributes["subject"] for q in loaded["mmlu_medical"])["professional_medicine"] == 272
    assert all(q.attributes == {} for q in loaded["medqa"])
    for name in ("medxpertqa_sampled", "medmcqa", "mmlu_medical"):
        names = {key for q in loaded[name] for key in q.attributes}
        assert set(card(name)["breakdowns"]) <= names, name


def test_multimodal_questions_need_images_that_are_not_shipped(loaded):
    mm = [q for q in loaded["medxpertqa_sampled"] if q.attributes["subset"] == "mm"]
    assert all(q.requires_image and q.images == [] for q in mm)
    assert not any(q.requires_image for q in loaded["medqa"])
    assert not datasets.images_available(loaded["medxpertqa_sampled"])
    assert datasets.images_available(loaded["medqa"])


@pytest.mark.parametrize(("subset", "count", "prefix"), [("text", 244, "Text-"), ("mm", 199, "MM-"), ("all", 443, "")])
def test_subset_selects_the_text_or_multimodal_file(subset, count, prefix):
    qs = datasets.load(card("medxpertqa_sampled", subset=subset))
    assert len(qs) == count and all(q.id.startswith(prefix) for q in qs)


def test_unknown_subset_and_subset_of_a_set_without_subsets_are_refused():
    with pytest.raises(UserError, match=r"dataset.subset='images' is not one of text, mm, all"):
        datasets.load(card("medxpertqa_sampled", subset="images"))
    with pytest.raises(UserError, match="data set 'medqa' has no subsets"):
        datasets.load(card("medqa", subset="mm"))


def test_exam_filters_are_refused_for_sets_without_exams():
    with pytest.raises(UserError, match="dataset.years selects JMLE exams"):
        datasets.load(card("medqa", years=[2020]))


def test_dataset_version_is_unchanged_for_jmle_cards_and_names_the_subset():
    # The versions every earlier run's fingerprint holds: new card keys must not change them.
    assert datasets.dataset_version(card("jmle2026")) == "76c4b29-fa7e014c"
    assert datasets.dataset_version(card("igakuqa")) == "2bc4c3d-81cad139"
    assert datasets.dataset_version(card("igakuqa119")) == "2d94239-91f5c76b"
    sampled = card("medxpertqa_sampled")
    assert datasets.dataset_version(sampled) == datasets.dataset_version({**sampled, "subset": "all"})
    assert datasets.dataset_version(sampled) != datasets.dataset_version({**sampled, "subset": "mm"})


@pytest.mark.parametrize(
    ("question", "options"),
    [
        ("Q?\nAnswer Choices: (A) x (B) y", [("a", "x"), ("b", "y")]),
        ("Q?\nAnswer Choices: (A) x (B) y (C) Both (A) & (B)", [("a", "x"), ("b", "y"), ("c", "Both (A) & (B)")]),
        (
            "Q?\nAnswer Choices: (A) V(D)J (B) poly(A) tail (C) Rh(D)-positive",
            [("a", "V(D)J"), ("b", "poly(A) tail"), ("c", "Rh(D)-positive")],
        ),
    ],
)
def test_answer_choices_are_split_in_letter_order(question, options):
    assert choices.split_answer_choices(question) == ("Q?", options)


def _medqa_copy(root: Path, text: str) -> Path:
    """Write a medqa folder (LICENSE and a question file of ``text``); return the question file."""
    path = root / "eval/data/medqa/input/medqa_input.jsonl"
    path.parent.mkdir(parents=True)
    shutil.copy(MX / "LICENSE", root / "LICENSE")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"id": "X-1", "question": "Q?\nAnswer Choices: (A) x (B) y", "label": ["C"]}, "answer 'C' is not one of"),
        ({"id": "X-1", "question": "Q? (A) x (B) y", "label": ["A"]}, "no options"),
        ({"id": "X/1", "question": "Q?\nAnswer Choices: (A) x (B) y", "label": ["A"]}, "not a safe file name"),
        ({"id": "X-1", "question": "Q?\nAnswer Choices: (A) x (B) y", "label": "['B']", "extra": 1}, None),
    ],
)
def test_a_malformed_line_is_refused_naming_file_and_line(tmp_path, line, message):
    good = {"id": "X-0", "question": "Q?\nAnswer Choices: (A) x (B) y", "label": ["A"]}
    path = _medqa_copy(tmp_path, json.dumps(good) + "\n" + json.dumps(line) + "\n")
    data = card("medqa", path=str(tmp_path), verify=False)
    if message is None:  # a label written as a Python literal, as the shared README says it may be
        assert datasets.load(data)[1].accepted_answers == [["b"]]
        return
    with pytest.raises(UserError) as refused:
        datasets.load(data)
    assert f"{path} line 2: " in str(refused.value) and message in str(refused.value)


def test_a_duplicate_id_is_refused_naming_both_lines(tmp_path):
    line = json.dumps({"id": "X-0", "question": "Q?\nAnswer Choices: (A) x (B) y", "label": ["A"]})
    path = _medqa_copy(tmp_path, f"{line}\n\n{line}\n")
    with pytest.raises(UserError, match=rf"{path} line 3: id 'X-0' was already used at {path} line 1"):
        datasets.load(card("medqa", path=str(tmp_path), verify=False))


# --- the full MedXpertQA text file: git-blob pin, synthetic copy, offline error -----------------------------


def _text_line(i: int) -> str:
    options = [{"letter": chr(65 + k), "content": f"option {k} of {i}"} for k in range(10)]
    question = f"Question {i}?\nAnswer Choices: " + " ".join(f"({o['letter']}) {o['content']}" for o in options)
    record = {"id": f"Text-{i}", "question": question, "options": options, "label": [chr(65 + i)]}
    record |= {"medical_task": "Diagnosis", "body_system": "Nervous", "question_type": "Reasoning"}
    return json.dumps(record)


def _full_copy(root: Path) -> Path:
    """Return a medxpertqa folder with a synthetic full text file (3 questions) beside the real mm file."""
    folder = root / "medxpertqa"
    (folder / INPUT).mkdir(parents=True)
    shutil.copy(MX / "LICENSE", folder / "LICENSE")
    shutil.copy(MX / MM_FILE, folder / MM_FILE)
    (folder / TEXT_FILE).write_text("".join(_text_line(i) + "\n" for i in range(3)), encoding="utf-8")
    return folder


def _pinned(data: dict, blob: str) -> dict:
    data["source"]["files"][TEXT_FILE]["git_blob"] = blob
    return data


def test_git_blob_id_is_what_git_computes(tmp_path):
    empty, hello = tmp_path / "empty", tmp_path / "hello"
    empty.write_bytes(b"")
    hello.write_bytes(b"hello\n")
    assert fetch.git_blob_of(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert fetch.git_blob_of(hello) == "ce013625030ba8dba906f756967f9e9ca394464a"
    if shutil.which("git"):
        got = subprocess.run(["git", "hash-object", str(SAMPLED_MM)], capture_output=True, text=True, check=True)
        assert fetch.git_blob_of(SAMPLED_MM) == got.stdout.strip()


def test_full_text_file_with_the_right_git_blob_loads_ten_option_questions(tmp_path):
    folder = _full_copy(tmp_path)
    data = _pinned(card("medxpertqa", path=str(folder)), fetch.git_blob_of(folder / TEXT_FILE))
    qs = datasets.load(data)
    assert len(qs) == 2003 and [q.id for q in qs[:3]] == ["Text-0", "Text-1", "Text-2"]
    assert all(len(q.choices) == 10 and q.attributes["subset"] == "text" for q in qs[:3])
    assert qs[2].accepted_answers == [["c"]] and qs[2].choices[9] == ("j", "option 9 of 2")
    assert len(datasets.load({**data, "subset": "text"})) == 3


def test_full_text_file_with_a_wrong_git_blob_is_refused(tmp_path):
    folder = _full_copy(tmp_path)
    data = card("medxpertqa", path=str(folder))  # the real pin: the synthetic file does not match it
    with pytest.raises(UserError) as refused:
        datasets.load(data)
    message = str(refused.value)
    assert TEXT_FILE in message and "git blob id" in message and "1768f2bd8738beb0caa5634b714758136dd0e704" in message


def test_a_malformed_pin_is_refused():
    data = card("medqa")
    data["source"]["files"]["LICENSE"] = {"git_blob": "not-hex"}
    with pytest.raises(UserError, match=r"source.files.LICENSE must be a sha256"):
        datasets.load(data)


def test_missing_full_text_file_offline_names_it_and_the_alternatives():
    with pytest.raises(UserError) as refused:
        datasets.load(card("medxpertqa"))  # the shared copy, like an offline folder, lacks the text file
    message = str(refused.value)
    assert TEXT_FILE in message and "dataset=medxpertqa_sampled" in message and "dataset.subset=mm" in message
    assert len(datasets.load(card("medxpertqa", subset="mm"))) == 2000  # which needs no text file


class _Upstream:
    """raw.githubusercontent.com on 127.0.0.1: serves ``<root>/<path>`` for ``/<owner>/<repo>/<commit>/<path>``."""

    def __init__(self, root: Path) -> None:
        self.hits: Counter[str] = Counter()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                rel = self.path.split("/", 4)[4]
                upstream.hits[rel] += 1
                path = root / rel
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def upstream(tmp_path, monkeypatch) -> Iterator[_Upstream]:
    monkeypatch.delenv(fetch.ENV_DATA_DIR, raising=False)
    server = _Upstream(_full_copy(tmp_path / "upstream"))
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_download_checks_the_git_blob_and_keeps_only_a_matching_file(upstream, tmp_path):
    cache = tmp_path / "cache"
    data = card("medxpertqa", source={**card("medxpertqa")["source"], "base_url": upstream.base_url})
    target = cache / "medxpertqa" / data["source"]["commit"] / TEXT_FILE
    with pytest.raises(UserError, match=r"its git blob id is [0-9a-f]{40}, expected 1768f2bd"):
        datasets.load(data, data_dir=cache)
    assert not target.exists() and not list(target.parent.glob("*.part"))
    _pinned(data, fetch.git_blob_of(tmp_path / "upstream" / "medxpertqa" / TEXT_FILE))
    assert len(datasets.load(data, data_dir=cache)) == 2003 and target.is_file()
    datasets.load(data, data_dir=cache)
    assert upstream.hits[TEXT_FILE] == 2, "a verified cached file was downloaded again"


def test_download_impossible_names_the_file_and_the_alternatives(tmp_path, monkeypatch):
    monkeypatch.delenv(fetch.ENV_DATA_DIR, raising=False)
    data = card("medxpertqa", source={**card("medxpertqa")["source"], "base_url": "http://127.0.0.1:1"})
    cached = tmp_path / "medxpertqa" / data["source"]["commit"]
    for rel in ("LICENSE", MM_FILE):  # everything but the text file is in the cache already
        (cached / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(MX / rel, cached / rel)
    with pytest.raises(UserError) as refused:
        datasets.load(data, data_dir=tmp_path)
    message = str(refused.value)
    assert f"Could not download http://127.0.0.1:1/TsinghuaC3I/MedXpertQA/{data['source']['commit']}/{TEXT_FILE}" in (
        message
    )
    assert "dataset=medxpertqa_sampled" in message and "dataset.subset=mm" in message
    assert len(datasets.load({**data, "subset": "mm"}, data_dir=tmp_path)) == 2000


# --- images ---------------------------------------------------------------------------------------------------


def _image_names() -> list[str]:
    lines = [json.loads(line) for line in SAMPLED_MM.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [image["image_path"] for line in lines for image in line["images"]]


def test_images_dir_gives_mm_questions_their_image_files(tmp_path):
    for name in _image_names():
        (tmp_path / name).write_bytes(b"\xff\xd8\xff")
    qs = {q.id: q for q in datasets.load(card("medxpertqa_sampled", images_dir=str(tmp_path)))}
    assert qs["MM-179"].images == [str(tmp_path / "MM-179-a.jpeg")] and qs["MM-179"].requires_image
    assert qs["Text-20"].images == [] and not qs["Text-20"].requires_image
    assert datasets.images_available(list(qs.values()))
    datasets.check_images(list(qs.values()), "vision")  # every file is there: no error
    (tmp_path / "MM-179-a.jpeg").unlink()
    assert datasets.missing_images(list(qs.values())) == [qs["MM-179"]]
    with pytest.raises(UserError, match=r"1 of the 199 questions .* \(MM-179\): files such as .*MM-179-a.jpeg"):
        datasets.check_images(list(qs.values()), "vision")


def test_vision_without_image_files_is_refused_with_the_alternatives(loaded):
    questions = loaded["medxpertqa_sampled"]
    for mode in ("blind", "skip"):
        datasets.check_images(questions, mode)
    with pytest.raises(UserError) as refused:
        datasets.check_images(questions, "vision")
    message = str(refused.value)
    assert "199 of the 199 questions of data set 'medxpertqa_sampled'" in message
    assert "dataset.images_dir=<folder>" in message and "image_mode=blind" in message and "image_mode=skip" in message
    assert "\n" not in message
    datasets.check_images(loaded["medqa"], "vision")  # no image questions: nothing to refuse


def test_images_dir_that_is_not_a_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"dataset.images_dir=.*nope is not a folder"):
        datasets.load(card("medxpertqa_sampled", images_dir=str(tmp_path / "nope")))


# --- the inspection commands ----------------------------------------------------------------------------------


def test_stats_command_prints_counts_by_subset_attribute_and_options():
    proc = run_python(["-m", "jmle_eval.datasets", "stats", "dataset=medxpertqa_sampled"])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "medxpertqa_sampled: 443 questions, 443 points, 199 need an image (0 with image files" in out
    for line in ("subset", "  mm             199", "  text           244", "options", "  10             244"):
        assert line in out, line
    assert "medical_task" in out and "Reasoning" in out


@pytest.mark.parametrize(
    ("name", "expected"),
    [("medqa", "1273 questions"), ("medmcqa", "Dental"), ("mmlu_medical", "professional_medicine")],
)
def test_stats_command_works_for_every_english_set(name, expected):
    proc = run_python(["-m", "jmle_eval.datasets", "stats", f"dataset={name}"])
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout


def test_show_command_prints_an_english_question_as_the_model_sees_it():
    proc = run_python(["-m", "jmle_eval.datasets", "show", "test-00000", "dataset=medqa", "prompt.answer_format=text"])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "(A) Disclose the error to the patient" in out and "(D) Refuse to dictate the operative report" in out
    assert "Answer: " in out and "accepted: b" in out and "points 1" in out and "【回答】" not in out


def test_show_command_names_the_attributes_and_a_missing_image():
    proc = run_python(["-m", "jmle_eval.datasets", "show", "MM-179", "dataset=medxpertqa_sampled"])
    assert proc.returncode == 0, proc.stderr
    assert "body_system: Integumentary" in proc.stdout and "dataset.images_dir" in proc.stdout


def test_show_without_a_data_set_needs_one_for_an_english_id():
    proc = run_python(["-m", "jmle_eval.datasets", "show", "test-00000"])
    assert proc.returncode == 2 and "pass dataset=<name>" in proc.stderr and "Traceback" not in proc.stderr
