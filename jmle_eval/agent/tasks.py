"""MedAgentBench tasks and functions from the upstream files, and the first message an agent is given.

The task file holds 300 tasks, ``task<type>_<k>`` for ten types of 30. The paper reports
query tasks (which only read the record) and action tasks (which must also write orders or
observations) separately; the reference grader forbids any POST in exactly the query types.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jmle_eval.datasets.fetch import ENV_DATA_DIR
from jmle_eval.datasets.sources import read_json, reading
from jmle_eval.errors import UserError

TASKS_FILE = "data/medagentbench/test_data_v2.json"
FUNCTIONS_FILE = "data/medagentbench/funcs_v1.json"
FOLDER = "medagentbench"  # under $JMLE_EVAL_DATA_DIR, like the other data sets
DEFAULT_FHIR_BASE = "http://localhost:8080/fhir/"  # configs/tasks/medagentbench.yaml upstream
MAX_ROUNDS = 8  # configs/tasks/medagentbench.yaml upstream (the code's own default is 5)

QUERY_TYPES = frozenset({1, 2, 4, 6, 7})
"""Patient search, age, magnesium, mean glucose, latest glucose: answered by reading only."""
ACTION_TYPES = frozenset({3, 5, 8, 9, 10})
"""Blood pressure, magnesium replacement, referral, potassium replacement, HbA1c: the record must be written."""
TYPES = QUERY_TYPES | ACTION_TYPES

_ID = re.compile(r"^task(\d+)_(\d+)$")


@dataclass(frozen=True)
class AgentTask:
    """One MedAgentBench task: what the clinician asks, its context, the patient, and (type 1) the answer."""

    id: str
    type: int
    instruction: str
    context: str
    mrn: str | None  # eval_MRN: the patient the grader reads (absent on two type-1 tasks)
    sol: tuple[Any, ...] | None = None  # the reference answer list; only type 1 ships one

    @property
    def kind(self) -> str:
        """Return "query" or "action", the paper's split."""
        return "query" if self.type in QUERY_TYPES else "action"


def default_root() -> Path:
    """Return the local MedAgentBench copy, ``$JMLE_EVAL_DATA_DIR/medagentbench``."""
    base = os.environ.get(ENV_DATA_DIR)
    root = Path(base) / FOLDER if base else None
    if root is None or not (root / TASKS_FILE).is_file():
        raise UserError(
            f"MedAgentBench's task file was not found ({root / TASKS_FILE if root else f'${ENV_DATA_DIR} is unset'}). "
            f"Set {ENV_DATA_DIR} to a folder holding medagentbench/{TASKS_FILE} (a copy of stanfordmlgroup/"
            "MedAgentBench at its pinned commit), or pass the folder explicitly."
        )
    return root


def _task(record: dict[str, Any]) -> AgentTask:
    match = _ID.match(str(record["id"]))
    if not match or int(match.group(1)) not in TYPES:
        raise ValueError(f"task id {record['id']!r} is not task<1..10>_<k>")
    sol = record.get("sol")
    if sol is not None and not isinstance(sol, list):
        raise ValueError(f"{record['id']}: sol is not a list")
    mrn = record.get("eval_MRN")
    return AgentTask(
        id=record["id"],
        type=int(match.group(1)),
        instruction=str(record["instruction"]),
        context=str(record.get("context") or ""),
        mrn=str(mrn) if mrn else None,
        sol=tuple(sol) if sol is not None else None,
    )


def load_tasks(root: Path, types: set[int] | None = None) -> list[AgentTask]:
    """Return the tasks of ``root/data/medagentbench/test_data_v2.json`` in file order, optionally only some types."""
    path = Path(root) / TASKS_FILE
    records = read_json(path)
    with reading(path):
        if not isinstance(records, list):
            raise ValueError("the file is not a JSON list")
        tasks = [_task(record) for record in records]
    if len({t.id for t in tasks}) != len(tasks):
        raise UserError(f"{path} repeats a task id; restore it from upstream.")
    return [t for t in tasks if types is None or t.type in types]


def load_functions(root: Path) -> list[dict[str, Any]]:
    """Return the FHIR functions shown to the agent (``funcs_v1.json``), as upstream ships them."""
    path = Path(root) / FUNCTIONS_FILE
    functions = read_json(path)
    with reading(path):
        if not isinstance(functions, list) or not all(isinstance(f, dict) and f["name"] for f in functions):
            raise ValueError("the file is not a list of functions with names")
    return functions


# Our wording of upstream's prompt (src/server/tasks/medagentbench/__init__.py): the same three reply forms,
# one call per reply, no other text, the functions as JSON with their literal {api_base}, then context and question.
_FIRST_MESSAGE = """\
You help clinicians by working in an electronic health record through its FHIR API. Below are a \
clinician's request and the API functions you may call. Reach the goal by calling them, one call per reply.

Every reply must take exactly one of these three forms:

1. To call a GET function, write
GET url?param_name1=param_value1&param_name2=param_value2...

2. To call a POST function, write the URL on the first line and the payload as JSON on the lines after it:
POST url
[the payload, in JSON]

3. Once every question is answered and every requested task is done, end the conversation with
FINISH([answer1, answer2, ...])
where the list must load as JSON.

Call one function per reply and write nothing besides that call.

The functions, in JSON. Use {fhir_base} as the api_base.
{functions}

Context: {context}
Question: {instruction}"""


def first_message(task: AgentTask, functions: list[dict[str, Any]], fhir_base: str) -> str:
    """Return the one user message that opens an episode: protocol, functions, context and instruction."""
    return _FIRST_MESSAGE.format(
        fhir_base=fhir_base,
        functions=json.dumps(functions),
        context=task.context,
        instruction=task.instruction,
    )


TYPE_NAMES = {
    1: "patient search",
    2: "age",
    3: "record blood pressure",
    4: "latest magnesium (24 h)",
    5: "magnesium replacement",
    6: "mean glucose (24 h)",
    7: "latest glucose",
    8: "orthopaedic referral",
    9: "potassium replacement + recheck",
    10: "HbA1c value / order",
}
"""A few words on what each task type asks (the paper's Table 1, in our words)."""


def task_stats(tasks: list[AgentTask]) -> str:
    """Return the task counts by type and by kind (query / action), for ``python -m jmle_eval.datasets stats``."""
    by_type = {t: sum(task.type == t for task in tasks) for t in sorted({task.type for task in tasks})}
    lines = [f"medagentbench: {len(tasks)} tasks, {sum(t.kind == 'query' for t in tasks)} query, "
             f"{sum(t.kind == 'action' for t in tasks)} action"]  # fmt: skip
    for kind, types in (("query", QUERY_TYPES), ("action", ACTION_TYPES)):
        lines.append(kind)
        lines += [f"  T{t:<3} {TYPE_NAMES[t]:<34} {n:>4}" for t, n in by_type.items() if t in types]
    return "\n".join(lines)
