"""FHIR resources in memory and the search semantics a HAPI FHIR server gives them, for tests.

Covers the searches MedAgentBench's nine functions make (Patient, Observation, MedicationRequest,
Condition, Procedure, plus ServiceRequest): token (``code``, ``system|code``), string (starts with,
ignoring case; ``:exact``, ``:contains``), reference (``patient=S123`` or ``Patient/S123``), and date
with the prefixes eq, ne, gt, ge, lt, le. Commas mean OR, repeated parameters AND. Results keep the
order resources were added in, which is not date order; ``_sort`` on the date parameter sorts them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

Resource = dict[str, Any]
Extract = Callable[[Resource], list[Any]]


class SearchError(ValueError):
    """A search the server refuses (HTTP 400): an unknown parameter, a bad date, an unknown modifier."""


def _codings(*concepts: Any) -> list[tuple[str | None, str]]:
    found = []
    for concept in concepts:
        for item in concept if isinstance(concept, list) else [concept]:
            for coding in (item or {}).get("coding") or []:
                found.append((coding.get("system"), coding.get("code")))
    return found


def _names(r: Resource, part: str) -> list[str]:
    out: list[str] = []
    for name in r.get("name") or []:
        if part in ("name", "family") and name.get("family"):
            out.append(name["family"])
        if part in ("name", "given"):
            out.extend(name.get("given") or [])
        if part == "name" and name.get("text"):
            out.append(name["text"])
    return out


def _address(r: Resource, part: str | None) -> list[str]:
    out: list[str] = []
    for a in r.get("address") or []:
        out.extend(
            [*(a.get("line") or []), a.get("city"), a.get("state"), a.get("postalCode")]
            if part is None
            else [a.get(part)]
        )
    return [x for x in out if x]


def _subject(r: Resource) -> list[str]:
    return [r.get("subject", {}).get("reference", "")]


def _one(field: str) -> Extract:
    return lambda r: [r[field]] if r.get(field) else []


_COMMON: dict[str, tuple[str, Extract]] = {
    "_id": ("token", lambda r: [(None, r.get("id"))]),
    "patient": ("reference", _subject),
    "subject": ("reference", _subject),
}
PARAMS: dict[str, dict[str, tuple[str, Extract]]] = {
    "Patient": {
        "_id": _COMMON["_id"],
        "identifier": ("token", lambda r: [(i.get("system"), i.get("value")) for i in r.get("identifier") or []]),
        "name": ("string", lambda r: _names(r, "name")),
        "family": ("string", lambda r: _names(r, "family")),
        "given": ("string", lambda r: _names(r, "given")),
        "birthdate": ("date", _one("birthDate")),
        "gender": ("token", lambda r: [(None, r.get("gender"))]),
        "address": ("string", lambda r: _address(r, None)),
        "address-city": ("string", lambda r: _address(r, "city")),
        "address-state": ("string", lambda r: _address(r, "state")),
        "address-postalcode": ("string", lambda r: _address(r, "postalCode")),
        "telecom": ("token", lambda r: [(t.get("system"), t.get("value")) for t in r.get("telecom") or []]),
    },
    "Observation": {
        **_COMMON,
        "code": ("token", lambda r: _codings(r.get("code"))),
        "category": ("token", lambda r: _codings(r.get("category"))),
        "date": ("date", _one("effectiveDateTime")),
    },
    "MedicationRequest": {
        **_COMMON,
        "code": ("token", lambda r: _codings(r.get("medicationCodeableConcept"))),
        "category": ("token", lambda r: _codings(r.get("category"))),
        "date": ("date", _one("authoredOn")),  # HAPI's "authoredon"; the function shown to agents calls it date
        "authoredon": ("date", _one("authoredOn")),
        "status": ("token", lambda r: [(None, r.get("status"))]),
        "intent": ("token", lambda r: [(None, r.get("intent"))]),
    },
    "Condition": {
        **_COMMON,
        "code": ("token", lambda r: _codings(r.get("code"))),
        "category": ("token", lambda r: _codings(r.get("category"))),
        "clinical-status": ("token", lambda r: _codings(r.get("clinicalStatus"))),
        "onset-date": ("date", _one("onsetDateTime")),
    },
    "Procedure": {
        **_COMMON,
        "code": ("token", lambda r: _codings(r.get("code"))),
        "date": ("date", _one("performedDateTime")),
        "status": ("token", lambda r: [(None, r.get("status"))]),
    },
    "ServiceRequest": {
        **_COMMON,
        "code": ("token", lambda r: _codings(r.get("code"))),
        "authored": ("date", _one("authoredOn")),
        "status": ("token", lambda r: [(None, r.get("status"))]),
    },
}
IGNORED = {"_format", "_pretty", "_count", "_sort", "_summary", "_total", "_bundletype"}

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")


def date_range(text: str) -> tuple[datetime, datetime]:
    """Return the [start, end) a FHIR date or dateTime covers at its precision (no zone: UTC)."""
    m = _DATE.match(text.strip().replace(" ", "+"))  # an unencoded "+" in a URL arrives as a space
    if not m:
        raise SearchError(f"Invalid date/time format: {text!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        if hour is None:
            start = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
            if day:
                return start, start + timedelta(days=1)
            if month:
                return start, start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
            return start, start.replace(year=start.year + 1)
        start = datetime.fromisoformat(f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}{frac or ''}")
    except ValueError as exc:
        raise SearchError(f"Invalid date/time: {text!r} ({exc})") from exc
    offset = datetime.fromisoformat(f"2000-01-01T00:00:00{zone}").tzinfo if zone else UTC
    start = start.replace(tzinfo=offset)
    return start, start + (timedelta(seconds=1) if second else timedelta(minutes=1))


def _date_ok(value: str, wanted: str) -> bool:
    prefix, text = (wanted[:2], wanted[2:]) if wanted[:2] in ("eq", "ne", "gt", "ge", "lt", "le") else ("eq", wanted)
    lo, hi = date_range(text)
    at = date_range(value)[0]
    return {"eq": lo <= at < hi, "ne": not lo <= at < hi, "gt": at >= hi, "ge": at >= lo, "lt": at < lo, "le": at < hi}[
        prefix
    ]


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def _matches(kind: str, modifier: str, values: list[Any], wanted: str) -> bool:
    if kind == "string":
        how = {"": str.startswith, "contains": str.__contains__, "exact": str.__eq__}[modifier]
        return any(how(_fold(v), _fold(wanted)) if modifier != "exact" else v == wanted for v in values)
    if kind == "token":
        system, bar, code = wanted.rpartition("|")
        return any((not bar or (s or "") == system) and (not code or c == code) for s, c in values)
    if kind == "reference":
        ref = wanted if "/" in wanted else f"Patient/{wanted}"
        return any(v == ref or v.endswith(f"/{ref}") or ref.endswith(f"/{v}") for v in values if v)
    return any(_date_ok(v, wanted) for v in values)


def _condition(resource_type: str, name: str, raw: str) -> Callable[[Resource], bool]:
    param, _, modifier = name.partition(":")
    spec = PARAMS[resource_type].get(param)
    if spec is None:
        valid = ", ".join(sorted(PARAMS[resource_type]))
        raise SearchError(f'Unknown search parameter "{param}" for resource type "{resource_type}". Valid: {valid}')
    kind, extract = spec
    if modifier and not (kind == "string" and modifier in ("exact", "contains")):
        raise SearchError(f'Unknown modifier ":{modifier}" on search parameter "{param}"')
    alternatives = raw.split(",")
    if kind == "date":
        for wanted in alternatives:  # refuse a bad date even when no resource would be compared with it
            _date_ok("2000", wanted)
    return lambda r: any(_matches(kind, modifier, extract(r), wanted) for wanted in alternatives)


class FhirStore:
    """Resources by type and id, in the order they were added, searchable as HAPI searches them."""

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        self._by_type: dict[str, dict[str, Resource]] = {}
        self._by_subject: dict[tuple[str, str], dict[str, None]] = {}
        for resource in resources:
            self.put(resource)

    def put(self, resource: Resource) -> None:
        """Add a resource, or replace the one with its type and id (which keeps its place in the order)."""
        kind, rid = resource["resourceType"], str(resource["id"])
        self.delete(kind, rid)
        self._by_type.setdefault(kind, {})[rid] = resource
        self._by_subject.setdefault((kind, _subject(resource)[0]), {})[rid] = None

    def delete(self, resource_type: str, rid: str) -> None:
        """Remove a resource, if it is there."""
        old = self._by_type.get(resource_type, {}).pop(rid, None)
        if old is not None:
            self._by_subject.get((resource_type, _subject(old)[0]), {}).pop(rid, None)

    def get(self, resource_type: str, rid: str) -> Resource | None:
        """Return one resource by type and id, or None."""
        return self._by_type.get(resource_type, {}).get(rid)

    def all(self, resource_type: str) -> list[Resource]:
        """Return every resource of a type, in order."""
        return list(self._by_type.get(resource_type, {}).values())

    def search(self, resource_type: str, params: list[tuple[str, str]]) -> list[Resource]:
        """Return the resources matching every parameter, in order (or sorted by ``_sort``)."""
        if resource_type not in PARAMS:
            raise SearchError(f'Unknown resource type "{resource_type}"')
        conditions = [_condition(resource_type, k, v) for k, v in params if k not in IGNORED]
        found = [r for r in self._candidates(resource_type, params) if all(c(r) for c in conditions)]
        sort = next((v for k, v in params if k == "_sort"), None)
        if sort:
            kind, extract = PARAMS[resource_type].get(sort.lstrip("-"), ("", _one("")))
            if kind != "date":
                raise SearchError(f"_sort is supported on the date parameter only, not {sort!r}")
            never = datetime.min.replace(tzinfo=UTC)
            found.sort(key=lambda r: date_range(extract(r)[0])[0] if extract(r) else never, reverse=sort[0] == "-")
        return found

    def _candidates(self, resource_type: str, params: list[tuple[str, str]]) -> Iterable[Resource]:
        refs = [v for k, v in params if k in ("patient", "subject") and "," not in v]
        if not refs or resource_type == "Patient":
            return self.all(resource_type)
        ref = refs[0].rsplit("/", 2)
        key = (resource_type, f"Patient/{ref[-1]}")  # patients only: the subjects the data holds
        table = self._by_type.get(resource_type, {})
        return [table[rid] for rid in self._by_subject.get(key, {})]
