"""The loopback FHIR server pages, filters and orders results the way HAPI FHIR does, and its data fits the tasks.

Real loopback servers (jmle_eval.testing.fhirserver in a thread) read over HTTP through the
library's FhirClient; no mocks.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import Counter

import pytest

from jmle_eval.agent import rules
from jmle_eval.agent.fhir import FhirClient, FhirUnavailable
from jmle_eval.agent.tasks import default_root, load_tasks
from jmle_eval.testing.fhirdata import build_resources, build_store, observation, scenario_of
from jmle_eval.testing.fhirserver import FhirServer, running
from jmle_eval.testing.fhirstore import FhirStore


def _get(base: str, path: str) -> tuple[int, dict]:
    """Return the status and JSON of a GET of ``path`` under ``base`` (or of a whole URL)."""

    async def go() -> tuple[int, dict]:
        async with FhirClient(base) as fhir:
            status, body = await fhir.get(path if path.startswith("http") else base + path)
        return status, json.loads(body)

    return asyncio.run(go())


def _all(base: str, resource: str, params: dict[str, str]) -> list[dict]:
    async def go() -> list[dict]:
        async with FhirClient(base) as fhir:
            return await fhir.search_all(resource, params)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def tasks():
    return load_tasks(default_root())


@pytest.fixture(scope="module")
def synthetic(tasks):
    server = FhirServer(build_store(tasks))
    with running(server) as base:
        yield server, base


# Six magnesium values at known times around the 24-hour cut-off, stored out of date order.
TIMES = ["2023-11-13T09:00:00+00:00", "2023-11-12T10:15:00+00:00", "2023-11-12T10:14:59+00:00",
         "2023-11-13T10:15:00+00:00", "2023-11-10T08:00:00+00:00", "2023-11-12T23:00:00+00:00"]  # fmt: skip


@pytest.fixture
def small():
    store = FhirStore(observation(str(i), "P1", "MG", when, 1.0 + i / 10) for i, when in enumerate(TIMES))
    server = FhirServer(store)
    with running(server) as base:
        yield server, base


def test_a_search_of_more_than_a_page_gives_twenty_a_page_and_next_links_to_every_result(synthetic):
    server, base = synthetic
    status, first = _get(base, "Observation?patient=S6307599&code=GLU&_format=json")
    assert status == 200 and first["resourceType"] == "Bundle" and first["type"] == "searchset"
    assert first["total"] > 20 and len(first["entry"]) == 20
    relations = {link["relation"]: link["url"] for link in first["link"]}
    assert relations["self"].endswith("Observation?patient=S6307599&code=GLU&_format=json")
    assert relations["next"].startswith(base.rstrip("/") + "?_getpages=")
    ids, url, pages = [], relations["next"], 1
    ids += [e["resource"]["id"] for e in first["entry"]]
    while url:
        status, page = _get(base, url)
        pages, ids = pages + 1, ids + [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert pages == -(-first["total"] // 20) and len(ids) == len(set(ids)) == first["total"]
    assert [r["id"] for r in _all(base, "Observation", {"patient": "S6307599", "code": "GLU"})] == ids


def test_results_come_in_store_order_not_date_order_unless_sorted(synthetic):
    _, base = synthetic
    found = _all(base, "Observation", {"patient": "S6307599", "code": "GLU", "_count": "100"})
    times = [r["effectiveDateTime"] for r in found]
    assert times != sorted(times) and times != sorted(times, reverse=True)
    _, newest = _get(base, "Observation?patient=S6307599&code=GLU&_sort=-date&_count=3")
    assert [e["resource"]["effectiveDateTime"] for e in newest["entry"]] == sorted(times, reverse=True)[:3]


def test_count_sets_the_page_size_up_to_the_servers_cap(small):
    server, base = small
    _, two = _get(base, "Observation?patient=P1&_count=2")
    assert len(two["entry"]) == 2 and two["total"] == 6 and any(x["relation"] == "next" for x in two["link"])
    server.max_count = 4
    _, capped = _get(base, "Observation?patient=P1&_count=5000")
    assert len(capped["entry"]) == 4
    assert len(_all(base, "Observation", {"patient": "P1", "_count": "5000"})) == 6
    _, counted = _get(base, "Observation?patient=P1&_summary=count")
    assert counted["total"] == 6 and "entry" not in counted


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date=ge2023-11-12T10:15:00%2B00:00", {0, 1, 3, 5}),  # the cut-off itself is included
        ("date=gt2023-11-12T10:15:00%2B00:00", {0, 3, 5}),
        ("date=lt2023-11-12T10:15:00%2B00:00", {2, 4}),
        ("date=le2023-11-12T10:15:00%2B00:00", {1, 2, 4}),
        ("date=2023-11-12", {1, 2, 5}),  # a day covers the whole day
        ("date=ge2023-11-12&date=lt2023-11-13", {1, 2, 5}),  # repeated parameters: all must hold
        ("date=ge2023-11-12T10:15:00+00:00", {0, 1, 3, 5}),  # an unencoded "+" arrives as a space
        ("date=gt2023-11", set()),
        ("date=2023", set(range(6))),
    ],
)
def test_date_prefixes_compare_at_the_precision_given(small, query, expected):
    _, base = small
    status, bundle = _get(base, f"Observation?patient=P1&code=MG&{query}")
    assert status == 200
    assert {int(e["resource"]["id"]) for e in bundle.get("entry", [])} == expected


def test_patients_are_found_by_mrn_name_parts_and_birth_date_and_task1_answers_hold(synthetic, tasks):
    _, base = synthetic
    for task in (t for t in tasks if t.type == 1):
        given, family, dob = re.search(r"name (.+) (\S+) and DOB of (\S+)\?", task.instruction).groups()
        found = _all(base, "Patient", {"given": given, "family": family, "birthdate": dob})
        assert ([p["identifier"][0]["value"] for p in found] or ["Patient not found"]) == list(task.sol), task.id
    _, by_name = _get(base, "Patient?name=peter&birthdate=1932-12-29")  # any name part, its start, any case
    assert [e["resource"]["id"] for e in by_name["entry"]] == ["S6534835"]
    _, by_mrn = _get(base, "Patient?identifier=S6534835")
    assert by_mrn["total"] == 1 and by_mrn["entry"][0]["resource"]["id"] == "S6534835"


def test_every_task_patient_exists_with_the_labs_its_grader_reads(synthetic, tasks):
    server, _ = synthetic
    assert len(server.store.all("Patient")) == 100
    assert all(server.store.get("Patient", t.mrn) for t in tasks if t.mrn)
    latest_mg = Counter()
    for task in (t for t in tasks if t.type == 5):
        recent = [v for when, v in scenario_of(server.store, task.mrn, "MG") if when >= rules.NOW - rules.WINDOW]
        latest_mg[recent[-1] if recent else None] += 1
    assert {None, 2.1, 1.9, 1.7, 1.5, 1.2, 1.0, 0.8} <= set(latest_mg)  # every branch and boundary of task 5
    latest_k = {scenario_of(server.store, t.mrn, "K")[-1:][0][1] if scenario_of(server.store, t.mrn, "K") else None
                for t in tasks if t.type == 9}  # fmt: skip
    assert {None, 3.5, 3.1, 2.8, 4.1} <= latest_k
    assert build_resources(tasks) == build_resources(tasks)  # deterministic


def test_bad_searches_get_http_400_and_expired_pages_410(synthetic):
    _, base = synthetic
    status, outcome = _get(base, "Observation?patient=S6307599&flavour=sweet")
    assert status == 400 and outcome["resourceType"] == "OperationOutcome" and "flavour" in json.dumps(outcome)
    assert _get(base, "Observation?patient=S6307599&date=yesterday")[0] == 400
    assert _get(base, "?_getpages=search-999999&_getpagesoffset=20&_count=20")[0] == 410
    status, metadata = _get(base, "metadata")
    assert status == 200 and metadata["resourceType"] == "CapabilityStatement"


def test_a_doubled_slash_reads_the_same_and_tests_can_add_resources(small):
    server, base = small
    assert _get(base, "/Observation?patient=P1")[1]["total"] == 6
    server.store.put(observation("99", "P1", "MG", "2023-11-13T10:00:00+00:00", 0.7))
    server.store.put(observation("0", "P1", "MG", TIMES[0], 2.4))  # replaces id 0
    values = {r["id"]: r["valueQuantity"]["value"] for r in _all(base, "Observation", {"patient": "P1"})}
    assert len(values) == 7 and values["99"] == 0.7 and values["0"] == 2.4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_one_error_naming_the_docker_command():
    base = f"http://127.0.0.1:{_free_port()}/fhir/"
    with pytest.raises(FhirUnavailable, match="docker run -p 8080:8080 jyxsu6/medagentbench"):
        _all(base, "Patient", {"identifier": "S1"})


def test_the_client_sends_nothing_outside_its_servers_origin(small):
    server, base = small
    before = len(server.requests)

    async def go() -> tuple[int, str]:
        async with FhirClient(base) as fhir:
            return await fhir.get("http://example.invalid/fhir/Patient?_format=json")

    status, reason = asyncio.run(go())
    assert status == 0 and "not on the FHIR server" in reason and len(server.requests) == before
