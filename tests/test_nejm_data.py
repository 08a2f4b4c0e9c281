"""The NEJM Image Challenge cards read the upstream schema, filter, sample and fetch images as documented.

The real file has no licence and is not shipped: these tests read a synthetic file of the same schema
(tests/nejm_fixture.py) with its sha256 pinned, and fetch images from a real loopback HTTP server.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jmle_eval import datasets
from jmle_eval.datasets import nejm, remote_images
from jmle_eval.errors import UserError
from tests.conftest import run_python
from tests.nejm_fixture import nejm_card, write_cases
from tests.test_datasets import card

JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_cases(tmp_path / "nejm", 20)
    return tmp_path / "nejm"


def test_cases_load_as_five_option_questions_with_the_readers_votes(folder):
    qs = {q.id: q for q in datasets.load(nejm_card("nejm", folder))}
    assert len(qs) == 15  # 20 cases, every fourth without clinical context
    q = qs["nejm-20050106"]  # case 1: jan-06-2005, correct B with 60 % of the votes
    assert q.choices == [(x, f"Disease 1-{x.upper()}") for x in "abcde"]
    assert q.accepted_answers == [["b"]] and q.type == "single" and q.select == 1 and q.points == 1
    assert q.human_accuracy == 60.0
    assert q.attributes == {"readers_choice": "b", "relevant_context": "yes", "year": "2005"}
    assert q.requires_image and q.images == [] and q.exam is None
    assert q.stem == "A 21-year-old patient has a rash. Diagnosis?"
    assert list(qs)[:3] == ["nejm-20050101", "nejm-20050106", "nejm-20050111"], "file order is kept"


@pytest.mark.parametrize(
    ("votes", "shares"),
    [
        (["62%", "8%", "10%", "10%", "10%"], [62, 8, 10, 10, 10]),
        (["62", "8", "10", "10", "10"], [62, 8, 10, 10, 10]),
        ([0.62, 0.08, 0.1, 0.1, 0.1], [62, 8, 10, 10, 10]),
        ([62, "8 %", None, "", "10"], [62, 8, None, None, 10]),
    ],
)
def test_vote_shares_are_read_as_percentages_in_every_written_form(votes, shares):
    record = {f"option_{x}_votes": v for x, v in zip("ABCDE", votes, strict=True)}
    got = nejm.vote_shares(record, list("abcde"))
    want = {x: float(s) for x, s in zip("abcde", shares, strict=True) if s is not None}
    assert got == pytest.approx(want)


def test_a_tie_of_the_readers_goes_to_the_alphabetically_first_option(tmp_path):
    tie = {"option_A_votes": "10%", "option_B_votes": "40%", "option_C_votes": "10%", "option_D_votes": "40%"}
    write_cases(tmp_path, 2, {0: {**tie, "option_E_votes": "0%", "option_most_voted": "D"}})
    q = datasets.load(nejm_card("nejm", tmp_path))[0]
    assert q.attributes["readers_choice"] == "b" and q.human_accuracy == 10.0


def test_ids_come_from_dates_and_a_repeated_date_is_numbered_and_a_keyed_file_reads_alike(tmp_path):
    write_cases(tmp_path, 3, {1: {"date": "jan-01-2005"}, 2: {"date": "Jan-01-2005"}}, keyed=True)
    assert [q.id for q in datasets.load(nejm_card("nejm", tmp_path))] == [
        "nejm-20050101",
        "nejm-20050101-2",
        "nejm-20050101-3",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"correct_answer": "F"}, r"case 2 \(nejm-20050106\): correct_answer 'F' is not one of the options"),
        ({"date": "someday"}, r"date 'someday' is not a date like 'apr-01-2010'"),
        ({"option_B_votes": "many"}, r"vote share 'many' is not a number"),
        ({"question": " "}, r"no question text"),
    ],
)
def test_a_malformed_case_is_refused_naming_the_file_and_the_case(tmp_path, change, message):
    write_cases(tmp_path, 3, {1: change})
    with pytest.raises(UserError, match=message):
        datasets.load(nejm_card("nejm", tmp_path))


def test_cases_without_clinical_context_are_left_out_counted_and_kept_on_request(folder, caplog):
    with caplog.at_level(logging.INFO, logger="jmle_eval.datasets"):
        qs = datasets.load(nejm_card("nejm", folder))
    assert all(q.attributes["relevant_context"] == "yes" for q in qs)
    assert "nejm: 5 of 20 cases left out (relevant_context: no); dataset.include_no_context=true keeps them" in (
        caplog.text
    )
    assert datasets.left_out(nejm_card("nejm", folder)) == 5
    every = datasets.load(nejm_card("nejm", folder, include_no_context=True))
    assert len(every) == 20 and datasets.left_out(nejm_card("nejm", folder, include_no_context=True)) == 0
    assert sum(q.attributes["relevant_context"] == "no" for q in every) == 5
    assert datasets.left_out(card("medqa")) == 0


def test_a_sample_is_reproducible_by_seed_in_data_set_order_and_versioned(folder):
    def ids(**keys: object) -> list[str]:
        return [q.id for q in datasets.load(nejm_card("nejm", folder, **keys))]

    every = ids()
    first = ids(sample=5, seed=42)
    assert len(first) == 5 and first == ids(sample=5, seed=42)
    assert first == [i for i in every if i in first], "the sample keeps the data set's order"
    assert ids(sample=5, seed=7) != first
    assert set(first) == set(random.Random(42).sample(sorted(every), 5)), "the documented rule"
    base = nejm_card("nejm", folder)
    version = datasets.dataset_version
    assert version({**base, "sample": None, "seed": 42}) == version(base)
    assert version({**base, "sample": 5, "seed": 42}) not in (version(base), version({**base, "sample": 5}))
    assert version({**base, "include_no_context": True}) != version(base)


def test_a_sample_larger_than_the_questions_left_is_refused(folder):
    with pytest.raises(UserError, match=r"dataset.sample=16, but data set 'nejm' has only 15 questions"):
        datasets.load(nejm_card("nejm", folder, sample=16))
    with pytest.raises(UserError, match=r"dataset.sample=0 must be a whole number of at least 1"):
        datasets.load(nejm_card("nejm", folder, sample=0))


@pytest.mark.parametrize("name", ["medqa", "jmle2026"])
def test_every_data_set_takes_a_sample_in_its_own_order(name):
    every = [q.id for q in datasets.load(card(name))]
    qs = [q.id for q in datasets.load(card(name, sample=10, seed=1))]
    assert len(qs) == 10 and qs == [i for i in every if i in qs]
    assert set(qs) == set(random.Random(1).sample(sorted(every), 10))


def test_nejm_dx_poses_the_same_cases_without_options_with_the_correct_option_as_reference(folder):
    qs = {q.id: q for q in datasets.load(nejm_card("nejm_dx", folder))}
    q = qs["nejm-20050106"]
    assert q.type == "free" and q.select == 1 and q.choices == []
    assert q.accepted_answers == [["Disease 1-B"]] and q.human_accuracy == 60.0 and q.requires_image
    assert set(qs) == {q.id for q in datasets.load(nejm_card("nejm", folder))}


# --- images -------------------------------------------------------------------------------------------------


class _Images(BaseHTTPRequestHandler):
    missing: set[str] = set()
    html: set[str] = set()
    requests: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        name = self.path.rsplit("=", 1)[-1]
        type(self).requests.append((name, self.headers.get("User-Agent", "")))
        if name in self.missing:
            self.send_error(404)
            return
        body = b"<html>sign in</html>" if name in self.html else JPEG
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if name in self.html else "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[tuple[str, type[_Images]]]:
    handler = type("Handler", (_Images,), {"missing": set(), "html": set(), "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ContentServer/images?id=IC{{date}}", handler
    server.shutdown()
    server.server_close()


def _vision_card(folder: Path, url: str, **changes: object) -> dict:
    the_card = nejm_card("nejm", folder, sample=4, seed=3, **changes)
    the_card["source"]["images"] = {"url": url, "name": "IC{date}"}
    return the_card


def test_images_are_fetched_once_into_the_cache_and_read_from_it_after(folder, image_server, tmp_path):
    url, server = image_server
    the_card = _vision_card(folder, url)
    qs = datasets.load(the_card)
    with pytest.raises(UserError, match="image_mode=vision"):
        datasets.check_images(qs, "vision")
    fetched = datasets.fetch_images(the_card, qs, tmp_path / "data")
    cache = tmp_path / "data" / "nejm" / "images"
    assert [q.images for q in fetched] == [[str(cache / f"IC{q.id[5:]}.jpg")] for q in qs]
    assert all(Path(q.images[0]).read_bytes() == JPEG for q in fetched)
    datasets.check_images(fetched, "vision")  # every image is there now
    assert sorted(name for name, _ in server.requests) == sorted(f"IC{q.id[5:]}" for q in qs)
    assert all(agent.startswith("Mozilla/5.0") for _, agent in server.requests)
    again = datasets.fetch_images(the_card, datasets.load(the_card), tmp_path / "data")
    assert again == fetched and len(server.requests) == 4, "the cache is read, nothing fetched again"
    assert not list(cache.glob(".*")), "no temporary file is left"


def test_images_that_cannot_be_fetched_are_reported_together_and_the_rest_cached(folder, image_server, tmp_path):
    url, server = image_server
    the_card = _vision_card(folder, url)
    qs = datasets.load(the_card)
    server.missing = {f"IC{qs[0].id[5:]}", f"IC{qs[2].id[5:]}"}
    server.html = {f"IC{qs[3].id[5:]}"}
    with pytest.raises(UserError) as refused:
        datasets.fetch_images(the_card, qs, tmp_path / "data")
    message = str(refused.value)
    assert "3 of 4 images of data set 'nejm' could not be fetched" in message
    assert f"{qs[0].id}: HTTP Error 404" in message and f"{qs[3].id}: not an image (text/html" in message
    assert "dataset.images_dir=<folder>" in message and "IC<yyyymmdd>.<ext>" in message
    assert "image_mode=blind" in message and "\n" not in message
    cached = sorted(p.name for p in (tmp_path / "data" / "nejm" / "images").iterdir())
    assert cached == [f"IC{qs[1].id[5:]}.jpg"], "the one fetched is kept, nothing else"


def test_images_dir_supplies_local_files_and_nothing_is_fetched(folder, image_server, tmp_path):
    url, server = image_server
    local = tmp_path / "local"
    local.mkdir()
    the_card = _vision_card(folder, url, images_dir=str(local))
    qs = datasets.load(the_card)
    for q in qs[:3]:
        (local / f"IC{q.id[5:]}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert datasets.load(the_card)[0].images == [str(local / f"IC{qs[0].id[5:]}.png")], "the loader finds them"
    with pytest.raises(UserError, match=rf"1 of 4 images .* not in dataset.images_dir=.*\({qs[3].id}: no IC"):
        datasets.fetch_images(the_card, qs, tmp_path / "data")
    (local / f"IC{qs[3].id[5:]}.jpeg").write_bytes(JPEG)
    fetched = datasets.fetch_images(the_card, qs, tmp_path / "data")
    assert fetched[3].images == [str(local / f"IC{qs[3].id[5:]}.jpeg")] and server.requests == []


def test_image_names_come_from_the_date_of_the_id():
    the_card = card("nejm")
    assert remote_images.image_name(the_card, "nejm-20100401") == "IC20100401"
    assert remote_images.image_name(the_card, "nejm-20100401-2") == "IC20100401"
    url = the_card["source"]["images"]["url"]
    assert url == "https://csvc.nejm.org/ContentServer/images?id=IC{date}"


# --- the inspection commands --------------------------------------------------------------------------------


def test_stats_and_show_work_for_both_cards(folder):
    where = [f"dataset.path={folder}", "dataset.verify=false"]
    proc = run_python(["-m", "jmle_eval.datasets", "stats", "dataset=nejm", *where])
    assert proc.returncode == 0, proc.stderr
    assert "nejm: 15 questions, 15 points, 15 need an image" in proc.stdout and "readers_choice" in proc.stdout
    assert "5 of 20 cases left out" in proc.stderr
    proc = run_python(["-m", "jmle_eval.datasets", "show", "nejm-20050106", "dataset=nejm_dx", *where])
    assert proc.returncode == 0, proc.stderr
    assert "A 21-year-old patient has a rash. Diagnosis?" in proc.stdout and "(A)" not in proc.stdout
    assert "accepted: Disease 1-B" in proc.stdout and "human accuracy: 60.0 %" in proc.stdout
