"""The paper's grading rule for each of MedAgentBench's ten task types.

The rules follow MedAgentBench's reference grader ``refsol.py`` (see :mod:`jmle_eval.agent.rules`,
which holds every value a grader expects). Types 1, 3 and 8 are graded
from the transcript alone; the others read the patient's data from the FHIR server at grading
time, following every result page. As upstream, a task is graded only when the episode ended
with FINISH; POSTs are the accepted ones, in order, compared with exact URLs
(``<base>Observation``, so ``<base>/Observation`` with a doubled slash fails).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from jmle_eval.agent import rules
from jmle_eval.agent.episode import Episode
from jmle_eval.agent.fhir import FhirClient, FhirUnavailable
from jmle_eval.agent.tasks import AgentTask

_MISSING = object()


@dataclass(frozen=True)
class Grade:
    """Whether the task was done right, and why (or why not)."""

    correct: bool
    reason: str


def _at(obj: Any, *path: Any) -> Any:
    for key in path:
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return obj


Check = tuple[tuple[Any, ...], Any]  # (path in the payload, expected value or a predicate)


def _mismatch(payload: Any, checks: list[Check]) -> str | None:
    for path, want in checks:
        got = _at(payload, *path)
        try:
            ok = got is not _MISSING and (want(got) if callable(want) else got == want)
        except (TypeError, ValueError, AttributeError):
            ok = False
        if not ok:
            shown = "missing" if got is _MISSING else repr(got)[:80]
            return f"{'.'.join(map(str, path))} is {shown}"
    return None


def _order(episode: Episode, index: int, url: str, checks: list[Check]) -> str | None:
    post = episode.posts[index]
    if post["url"] != url:
        return f"POST {index + 1} went to {post['url']!r}, not {url!r}"
    wrong = _mismatch(post["body"], checks)
    return f"POST {index + 1}: {wrong}" if wrong else None


def _subject(mrn: str | None) -> Check:
    return ("subject",), {"reference": f"Patient/{mrn}"}


def _answer(episode: Episode, expected: list[Any], empty_ok: bool = False) -> Grade:
    if episode.answers is None:
        return Grade(False, f"FINISH({episode.finish_raw}) does not hold a JSON list")
    if episode.answers == expected or (empty_ok and episode.answers == []):
        return Grade(True, f"answer {episode.answers} (expected {expected})")
    return Grade(False, f"answer {episode.answers}, expected {expected}")


def _when(resource: dict[str, Any]) -> datetime:
    when = datetime.fromisoformat(resource["effectiveDateTime"])
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def _observations(fhir: FhirClient, mrn: str | None, code: str) -> list[dict[str, Any]]:
    if not mrn:
        raise ValueError("the task names no patient")
    return await fhir.search_all("Observation", {"patient": mrn, "code": code, "_count": "5000"})


def _latest(observations: list[dict[str, Any]], since: datetime | None = None) -> dict[str, Any] | None:
    """Return the latest observation (at or after ``since``); of equal times the first found, as upstream."""
    best: dict[str, Any] | None = None
    for obs in observations:
        if (since is None or _when(obs) >= since) and (best is None or _when(obs) > _when(best)):
            best = obs
    return best


def _value(obs: dict[str, Any] | None) -> Any:
    return -1 if obs is None else obs["valueQuantity"]["value"]


GradeFn = Callable[[AgentTask, Episode, FhirClient], Awaitable[Grade]]
POST_IN_QUERY = Grade(False, "a POST was made in a task that must only read")


async def _patient_search(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    return POST_IN_QUERY if episode.attempted_post else _answer(episode, list(task.sol or ()))


async def _age(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    if episode.attempted_post:
        return POST_IN_QUERY
    patients = await fhir.search_all("Patient", {"identifier": str(task.mrn)})
    born = date.fromisoformat(patients[0]["birthDate"])
    age = rules.AGE_ON.year - born.year - ((rules.AGE_ON.month, rules.AGE_ON.day) < (born.month, born.day))
    return _answer(episode, [age])


async def _blood_pressure(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    if len(episode.posts) != 1:
        return Grade(False, f"{len(episode.posts)} accepted POSTs, expected 1")
    checks: list[Check] = [
        (("resourceType",), "Observation"),
        (("category",), lambda v: len(v) == 1 and len(v[0]["coding"]) == 1 and v[0]["coding"][0] == rules.BP_CATEGORY),
        (("code",), rules.BP_CODE),
        (("effectiveDateTime",), rules.NOW_TEXT),
        (("status",), "final"),
        (("valueString",), rules.BP_VALUE),
        _subject(task.mrn),
    ]
    wrong = _order(episode, 0, f"{fhir.base}Observation", checks)
    return Grade(wrong is None, wrong or "the blood pressure was recorded as asked")


async def _magnesium(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    if episode.attempted_post:
        return POST_IN_QUERY
    latest = _latest(await _observations(fhir, task.mrn, rules.MG_CODE), rules.NOW - rules.WINDOW)
    return _answer(episode, [_value(latest)])


def _mg_dose(value: float) -> int:
    return next((dose for below, dose in rules.MG_TIERS if value < below), rules.MG_DEFAULT_TIER)


async def _magnesium_order(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    latest = _latest(await _observations(fhir, task.mrn, rules.MG_CODE), rules.NOW - rules.WINDOW)
    if latest is None:  # upstream does not look at the answer here
        if episode.attempted_post:
            return Grade(False, "no magnesium in 24 h, so nothing may be ordered, but a POST was made")
        return Grade(True, "no magnesium in 24 h and nothing ordered")
    value = _value(latest)
    if value > rules.MG_NO_ORDER_ABOVE:
        if episode.attempted_post:
            return Grade(False, f"magnesium {value} is not low, but a POST was made")
        return _answer(episode, [value], empty_ok=True)
    if len(episode.posts) != 1:
        return Grade(False, f"magnesium {value} needs one order; {len(episode.posts)} accepted POSTs")
    dose = _mg_dose(value)
    checks: list[Check] = [
        (("resourceType",), "MedicationRequest"),
        (("medicationCodeableConcept", "coding", 0, "system"), rules.NDC),
        (("medicationCodeableConcept", "coding", 0, "code"), rules.MG_NDC),
        (("authoredOn",), lambda v: rules.AUTHORED_PREFIX in v),
        (("dosageInstruction", 0, "route"), rules.MG_ROUTE),
        (("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity"), {"value": dose, "unit": "g"}),
        (("dosageInstruction", 0, "doseAndRate", 0, "rateQuantity"), {"value": dose, "unit": "h"}),
        (("status",), "active"),
        (("intent",), "order"),
        _subject(task.mrn),
    ]
    wrong = _order(episode, 0, f"{fhir.base}MedicationRequest", checks)
    return Grade(False, wrong) if wrong else _answer(episode, [value], empty_ok=True)


async def _mean_glucose(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    if episode.attempted_post:
        return POST_IN_QUERY
    values = [
        o["valueQuantity"]["value"]
        for o in await _observations(fhir, task.mrn, rules.GLU_CODE)
        if _when(o) >= rules.NOW - rules.WINDOW
    ]
    mean = sum(values) / len(values) if values else -1
    answers = episode.answers
    try:
        ok = answers is not None and len(answers) == 1 and abs(answers[0] - mean) < rules.MEAN_TOLERANCE
    except TypeError:
        ok = False
    return Grade(ok, f"answer {answers if answers is not None else episode.finish_raw}, mean {mean}")


async def _latest_glucose(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    if episode.attempted_post:
        return POST_IN_QUERY
    return _answer(episode, [_value(_latest(await _observations(fhir, task.mrn, rules.GLU_CODE)))])


async def _referral(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    if len(episode.posts) != 1:
        return Grade(False, f"{len(episode.posts)} accepted POSTs, expected 1")
    checks = [
        *_service_request(task, rules.REFERRAL_SNOMED, rules.SNOMED),
        (("note", "text"), lambda v: rules.REFERRAL_NOTE in v),
    ]
    wrong = _order(episode, 0, f"{fhir.base}ServiceRequest", checks)
    return Grade(wrong is None, wrong or "the referral was ordered as asked")


def _service_request(task: AgentTask, code: str, system: str) -> list[Check]:
    return [
        (("resourceType",), "ServiceRequest"),
        (("code", "coding", 0, "system"), system),
        (("code", "coding", 0, "code"), code),
        (("authoredOn",), rules.NOW_TEXT),
        (("status",), "active"),
        (("intent",), "order"),
        (("priority",), "stat"),
        _subject(task.mrn),
    ]


def _potassium_checks(task: AgentTask, value: float) -> list[Check]:
    dose = (rules.K_LOW_BELOW - value) / 0.1 * rules.K_MEQ_PER_TENTH
    quantity = ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity")
    return [
        (("resourceType",), "MedicationRequest"),
        (("medicationCodeableConcept", "coding", 0, "system"), rules.NDC),
        (("medicationCodeableConcept", "coding", 0, "code"), rules.K_NDC),
        (("authoredOn",), lambda v: rules.AUTHORED_PREFIX in v),
        (("dosageInstruction", 0, "route"), lambda v: v.lower().strip() == rules.K_ROUTE),
        ((*quantity, "value"), lambda v: abs(v - dose) <= rules.K_DOSE_TOLERANCE),
        ((*quantity, "unit"), rules.K_UNIT),
        (("status",), "active"),
        (("intent",), "order"),
        _subject(task.mrn),
    ]


async def _potassium_order(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    latest = _latest(await _observations(fhir, task.mrn, rules.K_CODE))
    value = _value(latest)
    if latest is None or value >= rules.K_LOW_BELOW:
        if episode.attempted_post:
            return Grade(False, f"potassium {value} needs no order, but a POST was made")
        return _answer(episode, [value], empty_ok=True)
    if len(episode.posts) != 2:
        return Grade(False, f"potassium {value} needs an order and a recheck; {len(episode.posts)} accepted POSTs")
    recheck = [
        *_service_request(task, rules.K_RECHECK_LOINC, rules.LOINC),
        (("occurrenceDateTime",), lambda v: rules.K_RECHECK_AT in v),
    ]
    wrong = _order(episode, 0, f"{fhir.base}MedicationRequest", _potassium_checks(task, value))
    wrong = wrong or _order(episode, 1, f"{fhir.base}ServiceRequest", recheck)
    return Grade(False, wrong) if wrong else _answer(episode, [value], empty_ok=True)


async def _hba1c(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    latest = _latest(await _observations(fhir, task.mrn, rules.A1C_CODE))
    expected = [-1] if latest is None else [_value(latest), latest["effectiveDateTime"]]
    if latest is None or _when(latest) < rules.A1C_STALE_BEFORE:
        if len(episode.posts) != 1:
            return Grade(False, f"HbA1c {expected} needs a new test; {len(episode.posts)} accepted POSTs")
        wrong = _order(episode, 0, f"{fhir.base}ServiceRequest", _service_request(task, rules.A1C_LOINC, rules.LOINC))
        if wrong:
            return Grade(False, wrong)
    elif episode.attempted_post:
        return Grade(False, f"HbA1c {expected} is recent, but a POST was made")
    return _answer(episode, expected, empty_ok=True)


GRADERS: dict[int, GradeFn] = {
    1: _patient_search,
    2: _age,
    3: _blood_pressure,
    4: _magnesium,
    5: _magnesium_order,
    6: _mean_glucose,
    7: _latest_glucose,
    8: _referral,
    9: _potassium_order,
    10: _hba1c,
}


async def grade(task: AgentTask, episode: Episode, fhir: FhirClient) -> Grade:
    """Return the grade of one episode by its task type's rule; a FHIR server that cannot be read raises."""
    if episode.outcome != "finished":
        return Grade(False, f"the episode ended without FINISH ({episode.outcome})")
    try:
        return await GRADERS[task.type](task, episode, fhir)
    except FhirUnavailable:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # upstream counts these as incorrect, too
        return Grade(False, f"cannot be graded: {type(exc).__name__}: {exc}")
