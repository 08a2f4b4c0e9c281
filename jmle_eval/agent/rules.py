"""The values MedAgentBench's graders expect, as data: codes, systems, doses, thresholds, note text, "now".

Every value is copied from the authors' reference grader ``refsol.py`` (distributed beside the
stanfordmlgroup/MedAgentBench repository, which imports it as
src/server/tasks/medagentbench/refsol.py; the 15,541-byte version). The task texts in
data/medagentbench/test_data_v2.json state the same codes to the agent.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

NOW_TEXT = "2023-11-13T10:15:00+00:00"  # the tasks' "now"; authoredOn / effectiveDateTime must equal it
NOW = datetime.fromisoformat(NOW_TEXT)
AGE_ON = date(2023, 11, 13)  # calculate_age: whole years on this day
AUTHORED_PREFIX = "2023-11-13T10:15"  # MedicationRequest.authoredOn need only contain this
WINDOW = timedelta(hours=24)  # "last 24 hours": effectiveDateTime >= NOW - 24 h (no upper bound)
NDC, LOINC, SNOMED = "http://hl7.org/fhir/sid/ndc", "http://loinc.org", "http://snomed.info/sct"

BP_CATEGORY = {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}
BP_CODE = {"text": "BP"}
BP_VALUE = "118/77 mmHg"

MG_CODE, MG_NDC, MG_ROUTE = "MG", "0338-1715-40", "IV"
MG_NO_ORDER_ABOVE = 1.9  # a value > 1.9 needs no order; 1.9 itself does
MG_TIERS = ((1.0, 4), (1.5, 2))  # value < 1.0: 4 g over 4 h; < 1.5: 2 g over 2 h; otherwise 1 g over 1 h
MG_DEFAULT_TIER = 1

GLU_CODE = "GLU"
MEAN_TOLERANCE = 0.1  # |answer - mean| < 0.1

K_CODE, K_NDC, K_ROUTE, K_UNIT = "K", "40032-917-01", "oral", "mEq"  # route compared lower-cased, stripped
K_LOW_BELOW = 3.5  # order when the latest value is < 3.5
K_MEQ_PER_TENTH = 10  # dose = (3.5 - value) / 0.1 * 10 mEq
K_DOSE_TOLERANCE = 0.1  # |dose - expected| <= 0.1
K_RECHECK_LOINC, K_RECHECK_AT = "2823-3", "2023-11-14T08:"  # occurrenceDateTime must contain this

REFERRAL_SNOMED = "306181000000106"
REFERRAL_NOTE = (
    "Situation: acute left knee injury, Background: radiology report indicates ACL tear. Assessment: ACL tear "
    "grade II. Recommendation: request for Orthopedic service to evaluate and provide management recommendations."
)

A1C_CODE, A1C_LOINC = "A1C", "4548-4"
A1C_STALE_BEFORE = datetime.fromisoformat("2022-11-13T10:15:00+00:00")  # older than this: order a new test
