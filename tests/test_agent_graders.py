"""Each MedAgentBench task type is graded by the paper's rule, including its boundaries.

The patients live on a real loopback FHIR server (jmle_eval.testing.fhirserver) that returns at most
five results a page, so every grader that reads the record must follow the next links. Episodes are
played by run_episode from scripted replies, as the harness would record them.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from typing import Any

import pytest

from jmle_eval.agent import rules
from jmle_eval.agent.episode import run_episode
from jmle_eval.agent.fhir import FhirClient, FhirUnavailable
from jmle_eval.agent.graders import grade
from jmle_eval.agent.tasks import AgentTask
from jmle_eval.predict.replies import Reply
from jmle_eval.testing.fhirdata import DAY, H, observation, patient, stamp
from jmle_eval.testing.fhirserver import FhirServer, running
from jmle_eval.testing.fhirstore import FhirStore

NOW = rules.NOW_TEXT
LABS = {  # patient → (code, [(minutes before now, value)]); each list is stored in this (not date) order
    "MG_21": ("MG", [(3 * H, 2.1), (20 * H, 1.4), (3 * DAY, 1.1)]),
    "MG_NONE": ("MG", [(DAY + 1, 1.2), (5 * DAY, 0.9)]),  # just outside the 24 hours
    "MG_EDGE": ("MG", [(DAY, 1.6), (DAY + 1, 2.3)]),  # exactly 24 hours old counts
    "MG_19": ("MG", [(4 * H, 1.9)]),
    "MG_15": ("MG", [(4 * H, 1.5)]),
    "MG_10": ("MG", [(4 * H, 1.0)]),
    "MG_08": ("MG", [(4 * H, 0.8)]),
    "MG_PAGE": ("MG", [(2 * H + i, 2.0 + i / 100) for i in range(1, 12)] + [(2 * H, 1.3)]),  # the latest is last
    "GLU": ("GLU", [(5 * H, 121), (DAY + 1, 500), (DAY, 130), (H, 100)]),  # mean in 24 h: 117
    "GLU_OLD": ("GLU", [(3 * DAY, 140), (2 * DAY, 150)]),
    "K_31": ("K", [(3 * DAY, 4.0), (3 * H, 3.1)]),
    "K_35": ("K", [(H, 3.5), (30 * H, 3.0)]),
}
A1C = {"A1C_RECENT": "2023-05-02T08:40:00+00:00", "A1C_OLD": "2021-03-15T09:05:00+00:00",
       "A1C_EDGE": "2022-11-13T10:15:00+00:00"}  # fmt: skip
BIRTHS = {"AGE_TODAY": "1960-11-13", "AGE_TOMORROW": "1960-11-14"}


def _store() -> FhirStore:
    store = FhirStore()
    ids = iter(range(1, 10_000))
    for mrn, (code, points) in LABS.items():
        for minutes, value in points:
            store.put(observation(str(next(ids)), mrn, code, stamp(minutes), value))
    for mrn, when in A1C.items():
        store.put(observation(str(next(ids)), mrn, "A1C", "2019-01-01T00:00:00+00:00", 8.0))
        store.put(observation(str(next(ids)), mrn, "A1C", when, {"A1C_RECENT": 7.1, "A1C_OLD": 6.5}.get(mrn, 6.9)))
    for mrn, born in BIRTHS.items():
        store.put(patient(mrn, "Ann", "Lee", born, random.Random(0)))
    return store


@pytest.fixture(scope="module")
def base():
    with running(FhirServer(_store(), max_count=5)) as url:
        yield url


def _task(kind: int, mrn: str | None, sol: list[Any] | None = None) -> AgentTask:
    return AgentTask(f"task{kind}_1", kind, "instruction", "context", mrn, tuple(sol) if sol is not None else None)


async def _played(task: AgentTask, replies: list[str]) -> Any:
    async def complete(messages: list[dict]) -> Reply:
        asked = sum(m["role"] == "assistant" for m in messages)
        return Reply("ok", answer_text=replies[min(asked, len(replies) - 1)])  # the last reply, again and again

    async def no_get(url: str) -> tuple[int, str]:
        raise AssertionError("these scripts make no GET")

    return await run_episode(task, "first", complete, no_get)


def _grade(base: str, task: AgentTask, script: list[Any]) -> tuple[bool, str]:
    """Play ``script`` (reply texts, or (resource, body) for a POST) and grade it."""
    replies = [post(base, *step) if isinstance(step, tuple) else step for step in script]

    async def go() -> Any:
        async with FhirClient(base) as fhir:
            return await grade(task, await _played(task, replies), fhir)

    result = asyncio.run(go())
    return result.correct, result.reason


def post(base: str, resource: str, body: dict[str, Any]) -> str:
    return f"POST {base}{resource}\n{json.dumps(body, indent=1)}"


def bp(mrn: str, **change: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "category": [{"coding": [dict(rules.BP_CATEGORY)]}], "code": {"text": "BP"},
            "effectiveDateTime": NOW, "status": "final", "valueString": "118/77 mmHg",
            "subject": {"reference": f"Patient/{mrn}"}, **change}  # fmt: skip


def med(mrn: str, ndc: str, dose: Any, unit: str, route: str, rate: Any = None, **change: Any) -> dict[str, Any]:
    amount = {"doseQuantity": {"value": dose, "unit": unit}} | ({"rateQuantity": rate} if rate else {})
    return {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": [{"system": rules.NDC,
            "code": ndc}]}, "authoredOn": NOW, "dosageInstruction": [{"route": route, "doseAndRate": [amount]}],
            "status": "active", "intent": "order", "subject": {"reference": f"Patient/{mrn}"}, **change}  # fmt: skip


def mg(mrn: str, grams: Any, **change: Any) -> dict[str, Any]:
    return med(mrn, rules.MG_NDC, grams, "g", "IV", {"value": grams, "unit": "h"}, **change)


def order(mrn: str, system: str, code: str, **change: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "code": {"coding": [{"system": system, "code": code}]},
            "authoredOn": NOW, "status": "active", "intent": "order", "priority": "stat",
            "subject": {"reference": f"Patient/{mrn}"}, **change}  # fmt: skip


def referral(mrn: str, **change: Any) -> dict[str, Any]:
    return order(mrn, rules.SNOMED, rules.REFERRAL_SNOMED, **{"note": {"text": rules.REFERRAL_NOTE}, **change})


def recheck(mrn: str, when: str = "2023-11-14T08:00:00+00:00") -> dict[str, Any]:
    return order(mrn, rules.LOINC, rules.K_RECHECK_LOINC, occurrenceDateTime=when)


def a1c(mrn: str) -> dict[str, Any]:
    return order(mrn, rules.LOINC, rules.A1C_LOINC)


S1 = "S6534835"
CASES = [
    # 1 patient search: the answer equals sol, and no POST
    (_task(1, S1, [S1]), [f'FINISH(["{S1}"])'], True),
    (_task(1, S1, [S1]), ['FINISH(["S6426560"])'], False),
    (_task(1, S1, [S1]), [f"FINISH({S1})"], False),  # not JSON
    (_task(1, S1, [S1]), [("Observation", bp(S1)), f'FINISH(["{S1}"])'], False),
    (_task(1, None, ["Patient not found"]), ['FINISH(["Patient not found"])'], True),
    # 2 age on 2023-11-13, in whole years
    (_task(2, "AGE_TODAY"), ["FINISH([63])"], True),
    (_task(2, "AGE_TOMORROW"), ["FINISH([62])"], True),
    (_task(2, "AGE_TOMORROW"), ["FINISH([63])"], False),
    # 3 one Observation POST with the exact fields, at <base>Observation
    (_task(3, "P3"), [("Observation", bp("P3")), "FINISH([])"], True),
    (_task(3, "P3"), ["POST x\n{bad", ("Observation", bp("P3")), "FINISH([])"], True),  # only accepted POSTs count
    (_task(3, "P3"), [("/Observation", bp("P3")), "FINISH([])"], False),  # <base>/Observation: a doubled slash
    (_task(3, "P3"), [("Observation", bp("P3")), ("Observation", bp("P3")), "FINISH([])"], False),
    (_task(3, "P3"), [("Observation", bp("P3", valueString="118/77")), "FINISH([])"], False),
    (_task(3, "P3"), [("Observation", bp("P3", subject={"reference": "Patient/P4"})), "FINISH([])"], False),
    (
        _task(3, "P3"),
        [("Observation", bp("P3", category=[{"coding": [dict(rules.BP_CATEGORY)] * 2}])), "FINISH([])"],
        False,
    ),
    # 4 latest magnesium in the last 24 h (>= now - 24 h), else -1
    (_task(4, "MG_21"), ["FINISH([2.1])"], True),
    (_task(4, "MG_21"), ["FINISH([1.4])"], False),
    (_task(4, "MG_NONE"), ["FINISH([-1])"], True),
    (_task(4, "MG_NONE"), ["FINISH([1.2])"], False),
    (_task(4, "MG_EDGE"), ["FINISH([1.6])"], True),
    (_task(4, "MG_PAGE"), ["FINISH([1.3])"], True),  # found on the last page
    (_task(4, "MG_21"), [("MedicationRequest", mg("MG_21", 1)), "FINISH([2.1])"], False),
    # 5 magnesium replacement only when <= 1.9, by tier
    (_task(5, "MG_NONE"), ['FINISH(["anything"])'], True),  # nothing in 24 h: the answer is not read
    (_task(5, "MG_NONE"), [("MedicationRequest", mg("MG_NONE", 2)), "FINISH([1.2])"], False),
    (_task(5, "MG_21"), ["FINISH([2.1])"], True),
    (_task(5, "MG_21"), ["FINISH([])"], True),
    (_task(5, "MG_21"), ["FINISH([1.4])"], False),
    (_task(5, "MG_21"), [("MedicationRequest", mg("MG_21", 1)), "FINISH([2.1])"], False),
    (_task(5, "MG_19"), [("MedicationRequest", mg("MG_19", 1)), "FINISH([1.9])"], True),  # 1.9 itself is low
    (_task(5, "MG_19"), ["FINISH([1.9])"], False),
    (_task(5, "MG_19"), [("MedicationRequest", mg("MG_19", 1)), "FINISH([1.8])"], False),
    (_task(5, "MG_15"), [("MedicationRequest", mg("MG_15", 1)), "FINISH([])"], True),  # 1.5 is mild
    (_task(5, "MG_15"), [("MedicationRequest", mg("MG_15", 2)), "FINISH([])"], False),
    (_task(5, "MG_10"), [("MedicationRequest", mg("MG_10", 2)), "FINISH([1.0])"], True),  # 1.0 is moderate
    (_task(5, "MG_10"), [("MedicationRequest", mg("MG_10", 1)), "FINISH([1.0])"], False),
    (_task(5, "MG_08"), [("MedicationRequest", mg("MG_08", 4)), "FINISH([0.8])"], True),
    (_task(5, "MG_08"), [("MedicationRequest", mg("MG_08", 4, authoredOn="2023-11-13T10:15:00Z")), "FINISH([])"], True),
    (
        _task(5, "MG_08"),
        [("MedicationRequest", med("MG_08", rules.MG_NDC, 4, "g", "iv", {"value": 4, "unit": "h"})), "FINISH([])"],
        False,
    ),  # fmt: skip
    (
        _task(5, "MG_08"),
        [("MedicationRequest", med("MG_08", rules.MG_NDC, 4, "g", "IV", {"value": 4, "unit": "hr"})), "FINISH([])"],
        False,
    ),  # fmt: skip
    # 6 mean glucose over the last 24 h, within 0.1
    (_task(6, "GLU"), ["FINISH([117])"], True),
    (_task(6, "GLU"), ["FINISH([116.95])"], True),
    (_task(6, "GLU"), ["FINISH([117.15])"], False),
    (_task(6, "GLU"), ['FINISH(["117"])'], False),
    (_task(6, "GLU_OLD"), ["FINISH([-1])"], True),
    (_task(6, "GLU"), [("Observation", bp("GLU")), "FINISH([117])"], False),
    # 7 latest glucose, however old
    (_task(7, "GLU"), ["FINISH([100])"], True),
    (_task(7, "GLU"), ["FINISH([121])"], False),
    (_task(7, "GLU_OLD"), ["FINISH([150])"], True),
    (_task(7, "NOBODY"), ["FINISH([-1])"], True),
    # 8 orthopaedic referral: exact code, authoredOn and priority; the note contains the SBAR text
    (_task(8, "P8"), [("ServiceRequest", referral("P8")), "FINISH([])"], True),
    (
        _task(8, "P8"),
        [("ServiceRequest", referral("P8", note={"text": "Referral. " + rules.REFERRAL_NOTE})), "FINISH([])"],
        True,
    ),
    (_task(8, "P8"), [("ServiceRequest", referral("P8", note=[{"text": rules.REFERRAL_NOTE}])), "FINISH([])"], False),
    (_task(8, "P8"), [("ServiceRequest", referral("P8", authoredOn="2023-11-13T10:15:00Z")), "FINISH([])"], False),
    (_task(8, "P8"), [("ServiceRequest", order("P8", rules.SNOMED, "306181000000107")), "FINISH([])"], False),
    (_task(8, "P8"), [("ServiceRequest", referral("P8"))], False),  # never finished
    # 9 potassium: if the latest is < 3.5, an oral order of (3.5 - K) / 0.1 * 10 mEq, then a recheck at 8 am
    (
        _task(9, "K_31"),
        [
            ("MedicationRequest", med("K_31", rules.K_NDC, 40, "mEq", "oral")),
            ("ServiceRequest", recheck("K_31")),
            "FINISH([3.1])",
        ],
        True,
    ),  # fmt: skip
    (
        _task(9, "K_31"),
        [
            ("MedicationRequest", med("K_31", rules.K_NDC, 40.05, "mEq", " Oral ")),
            ("ServiceRequest", recheck("K_31")),
            "FINISH([])",
        ],
        True,
    ),  # fmt: skip
    (
        _task(9, "K_31"),
        [
            ("MedicationRequest", med("K_31", rules.K_NDC, 40.2, "mEq", "oral")),
            ("ServiceRequest", recheck("K_31")),
            "FINISH([3.1])",
        ],
        False,
    ),  # fmt: skip
    (
        _task(9, "K_31"),
        [
            ("ServiceRequest", recheck("K_31")),
            ("MedicationRequest", med("K_31", rules.K_NDC, 40, "mEq", "oral")),
            "FINISH([3.1])",
        ],
        False,
    ),  # fmt: skip
    (
        _task(9, "K_31"),
        [
            ("MedicationRequest", med("K_31", rules.K_NDC, 40, "mEq", "oral")),
            ("ServiceRequest", recheck("K_31", "2023-11-14T09:00:00+00:00")),
            "FINISH([3.1])",
        ],
        False,
    ),  # fmt: skip
    (_task(9, "K_31"), [("MedicationRequest", med("K_31", rules.K_NDC, 40, "mEq", "oral")), "FINISH([3.1])"], False),
    (_task(9, "K_35"), ["FINISH([3.5])"], True),  # 3.5 is not low
    (_task(9, "K_35"), ["POST x\nnot json", "FINISH([3.5])"], False),  # even a refused POST is a POST
    (_task(9, "NOBODY"), ["FINISH([-1])"], True),
    # 10 HbA1c: value and time; a new test when missing or older than 2022-11-13T10:15
    (_task(10, "A1C_RECENT"), ['FINISH([7.1, "2023-05-02T08:40:00+00:00"])'], True),
    (_task(10, "A1C_RECENT"), ["FINISH([])"], True),
    (_task(10, "A1C_RECENT"), ['FINISH([7.1, "2023-05-02"])'], False),
    (_task(10, "A1C_RECENT"), [("ServiceRequest", a1c("A1C_RECENT")), "FINISH([])"], False),
    (_task(10, "A1C_OLD"), [("ServiceRequest", a1c("A1C_OLD")), 'FINISH([6.5, "2021-03-15T09:05:00+00:00"])'], True),
    (_task(10, "A1C_OLD"), ['FINISH([6.5, "2021-03-15T09:05:00+00:00"])'], False),
    (_task(10, "NOBODY"), [("ServiceRequest", a1c("NOBODY")), "FINISH([-1])"], True),
    (_task(10, "A1C_EDGE"), ['FINISH([6.9, "2022-11-13T10:15:00+00:00"])'], True),  # exactly a year: no order
    (_task(10, "A1C_EDGE"), [("ServiceRequest", a1c("A1C_EDGE")), "FINISH([])"], False),
]


@pytest.mark.parametrize(("task", "script", "correct"), CASES, ids=[f"{c[0].id}-{i}" for i, c in enumerate(CASES)])
def test_each_type_is_graded_by_its_rule(base, task, script, correct):
    got, reason = _grade(base, task, script)
    assert got is correct, reason
    assert reason


def test_every_type_has_a_correct_and_an_incorrect_case():
    kinds = {(c[0].type, c[2]) for c in CASES}
    assert kinds == {(n, ok) for n in range(1, 11) for ok in (True, False)}


def test_an_episode_without_finish_is_wrong_whatever_it_posted(base):
    ok, reason = _grade(base, _task(3, "P3"), [("Observation", bp("P3"))] * 8)
    assert not ok and "round_limit" in reason


def test_a_fhir_server_that_is_down_at_grading_time_raises_instead_of_grading_wrong():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/fhir/"
    with pytest.raises(FhirUnavailable, match="docker run"):
        _grade(dead, _task(4, "MG_21"), ["FINISH([2.1])"])
    assert _grade(dead, _task(1, S1, [S1]), [f'FINISH(["{S1}"])'])[0]  # types 1, 3 and 8 need no server
