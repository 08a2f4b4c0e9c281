"""Synthetic patients for the loopback FHIR server: deterministic, and shaped to reach every grader branch.

MedAgentBench's 100 real patients ship only inside its docker image; these stand in for them in
tests. Each task's patient (``eval_MRN``) exists; type-1 tasks' names and birth dates belong to the
MRN in their ``sol`` (and a "Patient not found" search matches nobody); and the labs the graders
read are drawn from scenarios that cover each rule's branches and boundaries (magnesium absent in
24 h, normal, each dose tier, exactly 1.9 / 1.5 / 1.0, exactly 24 h old; potassium low, normal,
exactly 3.5; glucose series with and without values in 24 h; HbA1c recent, old, missing, exactly
one year old). Series are longer than a result page and are stored in shuffled order.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from jmle_eval.agent import rules
from jmle_eval.agent.tasks import AgentTask
from jmle_eval.testing.fhirstore import FhirStore, Resource

H = 60  # minutes in an hour: scenario points are (minutes before now, value)
DAY = 24 * H
# Scenario → the recent points; every lab also gets an older history (more than a page of results).
Points = list[tuple[int, float]] | None
MG: dict[str, Points] = {
    "absent": [(DAY + 1, 1.3)],  # a low value just outside the window must not trigger an order
    "normal": [(20 * H, 1.4), (3 * H, 2.1)],
    "mild": [(5 * H, 1.7)],
    "moderate": [(6 * H, 2.2), (2 * H, 1.2)],
    "severe": [(H, 0.8)],
    "at_1.9": [(4 * H, 1.9)],
    "at_1.5": [(4 * H, 1.5)],
    "at_1.0": [(4 * H, 1.0)],
    "edge_24h": [(DAY, 1.8), (DAY + 1, 2.3)],  # exactly 24 h old counts
}
K: dict[str, Points] = {
    "none": None,  # no potassium at all
    "normal": [(2 * H, 4.1)],
    "low": [(3 * H, 3.1)],
    "at_3.5": [(H, 3.5)],
    "very_low": [(40 * H, 4.0), (5 * H, 2.8)],
    "low_then_normal": [(30 * H, 3.0), (2 * H, 3.9)],
    "old_low": [(10 * DAY, 3.3)],  # no time window for potassium: the latest counts however old
}
GLU: dict[str, Points] = {
    "series": [(m * H + 7, v) for m, v in zip(range(1, 23, 3), (112, 145, 98, 187, 133, 121, 160, 104), strict=True)],
    "none_recent": [(DAY + 30, 131)],
    "none": None,
    "edge_24h": [(DAY, 150), (DAY + 1, 300), (5 * H, 99)],
}
A1C_AT = {  # scenario → effectiveDateTime of the latest HbA1c (None: no HbA1c)
    "recent": "2023-05-02T08:40:00+00:00",
    "old": "2021-03-15T09:05:00+00:00",
    "none": None,
    "at_boundary": "2022-11-13T10:15:00+00:00",  # exactly one year: not older, no order
    "just_old": "2022-11-13T10:14:00+00:00",
}
SCENARIOS: dict[str, Sequence[str]] = {"MG": list(MG), "K": list(K), "GLU": list(GLU), "A1C": list(A1C_AT)}
TYPE_LAB = ((5, "MG"), (4, "MG"), (9, "K"), (10, "A1C"), (6, "GLU"), (7, "GLU"))  # first come, first served
UNITS = {"MG": "mg/dL", "K": "mmol/L", "GLU": "mg/dL", "A1C": "%", "NA": "mmol/L"}
FIRST = ["Alice", "Bruno", "Carmen", "Derek", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Keiko", "Luis"]
LAST = ["Abbott", "Bergstrom", "Castillo", "Dimitrov", "Eriksen", "Fujita", "Gallo", "Haddad", "Ivanova", "Jensen"]
_T1 = re.compile(r"name (?P<name>.+?) and DOB of (?P<dob>\d{4}-\d{2}-\d{2})")


def stamp(minutes_before_now: float) -> str:
    """Return the FHIR dateTime this many minutes before the tasks' now."""
    return (rules.NOW - timedelta(minutes=minutes_before_now)).isoformat()


def observation(oid: str, mrn: str, code: str, when: str, value: Any, category: str = "laboratory") -> Resource:
    """Return a lab (or vital-sign) Observation of one patient."""
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                        "display": "Vital Signs" if category == "vital-signs" else "Laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": code}], "text": code},
        "subject": {"reference": f"Patient/{mrn}"},
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": {"value": value, "unit": UNITS.get(code, ""), "system": "http://unitsofmeasure.org"},
    }


def patient(mrn: str, given: str, family: str, birth: str, rng: random.Random) -> Resource:
    """Return a Patient whose id and MRN identifier are both ``mrn``, as in MedAgentBench's data."""
    return {
        "resourceType": "Patient",
        "id": mrn,
        "identifier": [
            {
                "use": "usual",
                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                "value": mrn,
                "type": {"coding": [{"code": "MR", "display": "Medical Record Number"}]},
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": family, "given": given.split()}],
        "telecom": [{"system": "phone", "value": f"555-{rng.randrange(1000, 9999)}", "use": "home"}],
        "gender": rng.choice(["female", "male"]),
        "birthDate": birth,
        "address": [
            {
                "line": [f"{rng.randrange(1, 999)} Main St"],
                "city": "Palo Alto",
                "state": "CA",
                "postalCode": f"94{rng.randrange(300, 310)}",
                "country": "US",
            }
        ],
    }


def _lab_points(lab: str, scenario: str, rng: random.Random) -> list[tuple[str, Any]]:
    if lab == "A1C":
        at = A1C_AT[scenario]
        older = ["2019-06-01T09:00:00+00:00", "2020-01-20T10:30:00+00:00"]
        return [] if at is None else [(t, round(rng.uniform(5.4, 9.8), 1)) for t in [*older, at]]
    recent = {"MG": MG, "K": K, "GLU": GLU}[lab][scenario]
    if recent is None:
        return []
    low, high, count = {"MG": (1.9, 2.5, 22), "K": (3.6, 4.8, 18), "GLU": (80, 190, 26)}[lab]
    start = max(m for m, _ in recent) + DAY  # the history is older than every scenario point
    history = [(stamp(start + i * 7 * H), rng.uniform(low, high)) for i in range(count)]
    points = history + [(stamp(m), v) for m, v in recent]
    return [(when, int(v) if lab == "GLU" else round(v, 1)) for when, v in points]


class _Builder:
    def __init__(self, seed: int) -> None:
        self.seed, self.next_id = seed, 1000

    def rng(self, key: str) -> random.Random:
        return random.Random(f"{self.seed}:{key}")

    def oid(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def records(self, mrn: str, labs: dict[str, str]) -> list[Resource]:
        rng = self.rng(mrn)
        found = [
            observation(self.oid(), mrn, lab, when, value)
            for lab, scenario in labs.items()
            for when, value in _lab_points(lab, scenario, rng)
        ]
        for i in range(6):  # vitals and another lab, so that code and category filters matter
            bp = f"{rng.randrange(100, 150)}/77 mmHg"
            found.append(observation(self.oid(), mrn, "BP", stamp(i * 9 * H + 30), bp, "vital-signs"))
            found.append(observation(self.oid(), mrn, "NA", stamp(i * 11 * H + 20), rng.randrange(133, 146)))
        rng.shuffle(found)  # servers do not return results in date order
        return found + [dict(r, id=self.oid()) for r in _history(mrn, rng)]


HISTORY = [  # (condition ICD-10, medication, procedure CPT) per entry
    (("I10", "Essential hypertension"), "lisinopril 10 mg tablet", "85025"),
    (("E11.9", "Type 2 diabetes mellitus"), "metformin 500 mg tablet", "80053"),
]


def _history(mrn: str, rng: random.Random) -> list[Resource]:
    """Return problems, medication orders and procedures (ids left to the caller)."""
    subject = {"reference": f"Patient/{mrn}"}
    out: list[Resource] = []
    for i, ((icd, problem), drug, cpt) in enumerate(HISTORY):
        condition = {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd, "display": problem}
        out.append(
            {
                "resourceType": "Condition",
                "subject": subject,
                "category": [{"coding": [{"code": "problem-list-item"}]}],
                "code": {"coding": [condition]},
                "onsetDateTime": stamp((400 + 200 * i) * DAY),
            }
        )
        out.append(
            {
                "resourceType": "MedicationRequest",
                "subject": subject,
                "status": "active",
                "intent": "order",
                "authoredOn": stamp((30 + 90 * i) * DAY + rng.randrange(600)),
                "medicationCodeableConcept": {"coding": [{"system": rules.NDC, "code": f"0000-{i}"}], "text": drug},
            }
        )
        out.append(
            {
                "resourceType": "Procedure",
                "subject": subject,
                "status": "completed",
                "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": cpt}]},
                "performedDateTime": stamp((3 + 50 * i) * DAY),
            }
        )
    return out


def _t1_identity(task: AgentTask) -> tuple[str, str, str] | None:
    """Return (given, family, birth date) a type-1 task searches for."""
    m = _T1.search(task.instruction)
    if task.type != 1 or not m:
        return None
    *given, family = m.group("name").split()
    return " ".join(given), family, m.group("dob")


def _identities(tasks: Sequence[AgentTask], mrns: list[str], seed: int) -> dict[str, tuple[str, str, str]]:
    found = {t.mrn: ident for t in tasks if t.mrn and list(t.sol or ()) == [t.mrn] and (ident := _t1_identity(t))}
    rng = random.Random(f"{seed}:names")
    names = [(f, last) for f in FIRST for last in LAST]
    rng.shuffle(names)
    # birthdays around the tasks' "now" (today, tomorrow, yesterday) and a leap day, for the age rule
    edges = iter(["1958-11-13", "1971-11-14", "1985-11-12", "1960-02-29", "2001-11-13"])
    age_mrns = {t.mrn for t in tasks if t.type == 2}
    for mrn in mrns:
        if mrn not in found:
            given, family = names.pop()
            dob = next(edges, None) if mrn in age_mrns else None
            found[mrn] = (
                given,
                family,
                dob or f"{rng.randrange(1935, 2004)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            )
    return found


def _scenarios(tasks: Sequence[AgentTask], mrns: list[str]) -> dict[str, dict[str, str]]:
    labs: dict[str, dict[str, str]] = {mrn: {} for mrn in mrns}
    given = {lab: 0 for lab in SCENARIOS}
    for task_type, lab in TYPE_LAB:
        for task in tasks:
            if task.type == task_type and task.mrn and lab not in labs[task.mrn]:
                labs[task.mrn][lab] = SCENARIOS[lab][given[lab] % len(SCENARIOS[lab])]
                given[lab] += 1
    for i, mrn in enumerate(mrns):  # the rest cycle through every scenario too
        for lab, names in SCENARIOS.items():
            labs[mrn].setdefault(lab, names[(i + len(lab)) % len(names)])
    return labs


def build_resources(tasks: Sequence[AgentTask] = (), patients: int = 100, seed: int = 0) -> list[Resource]:
    """Return every synthetic resource: the tasks' patients first, then made-up ones up to ``patients``."""
    mrns = list(dict.fromkeys(t.mrn for t in tasks if t.mrn))
    mrns += [f"S9{n:06d}" for n in range(1, patients - len(mrns) + 1)]
    identities, labs = _identities(tasks, mrns, seed), _scenarios(tasks, mrns)
    builder = _Builder(seed)
    out: list[Resource] = []
    for mrn in mrns:
        given, family, birth = identities[mrn]
        out.append(patient(mrn, given, family, birth, builder.rng(f"patient:{mrn}")))
        out.extend(builder.records(mrn, labs[mrn]))
    _check_not_found(tasks, identities.values())
    return out


def _check_not_found(tasks: Sequence[AgentTask], identities: Iterable[tuple[str, str, str]]) -> None:
    taken = set(identities)
    for task in tasks:
        if list(task.sol or ()) == ["Patient not found"] and _t1_identity(task) in taken:
            raise ValueError(f"{task.id}: the synthetic data holds the patient this task expects to be missing")


def build_store(tasks: Sequence[AgentTask] = (), patients: int = 100, seed: int = 0) -> FhirStore:
    """Return a store of :func:`build_resources`."""
    return FhirStore(build_resources(tasks, patients, seed))


def scenario_of(store: FhirStore, mrn: str, code: str) -> list[tuple[datetime, Any]]:
    """Return one patient's (time, value) points of a lab code, in date order (for tests and checks)."""
    found = store.search("Observation", [("patient", mrn), ("code", code)])
    points = [(datetime.fromisoformat(r["effectiveDateTime"]), r["valueQuantity"]["value"]) for r in found]
    return sorted(points, key=lambda p: p[0])
