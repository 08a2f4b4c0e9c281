"""A loopback "model" that plays MedAgentBench episodes by a script: right, wrong, invalid, or never done.

An OpenAI-compatible chat server (``POST /v1/chat/completions``, ``GET /v1/models``) for
agent tests and demos. It finds the task from the first user message (its context and
question), counts the replies it has given, and answers the next step of the task's
plan. The default plan does the task right, reading only what its own GETs returned
(the FHIR server's JSON in the conversation), with rules written apart from the
graders' so that the two check each other. ``behaviour`` makes chosen tasks go wrong:
``wrong`` (a wrong FINISH), ``invalid`` (prose instead of a call), ``round_limit``
(GETs forever), ``error`` (HTTP 500, every attempt).

Run it alone: ``python -m jmle_eval.testing.agentmodel --port 0 --port-file port.txt``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from jmle_eval.agent.tasks import AgentTask, default_root, load_tasks
from jmle_eval.testing.background import in_thread, until_stopped

__all__ = ["AgentModel", "main", "plan", "running"]

USAGE = {"prompt_tokens": 100, "completion_tokens": 10, "reasoning_tokens": 2}
_BASE = re.compile(r"Use (\S+) as the api_base")


def _bundle(feedback: str) -> dict[str, Any]:
    """Return the JSON a GET's feedback message carries (its text between the first and last line)."""
    return json.loads(feedback.split("\n", 1)[1].rsplit("\n", 1)[0])


# A model that does every task right, reading only what its GETs return: 300 of 300 must grade correct.
# Its rules are written out here, apart from the graders', so that the two check each other.
NOW = datetime.fromisoformat("2023-11-13T10:15:00+00:00")
CODE = {4: "MG", 5: "MG", 6: "GLU", 7: "GLU", 9: "K", 10: "A1C"}
NDC, LOINC = "http://hl7.org/fhir/sid/ndc", "http://loinc.org"


def points(bundle: dict[str, Any]) -> list[tuple[datetime, Any, str]]:
    """Return a searchset's observations as (time, value, time as written), oldest first."""
    resources = [e["resource"] for e in bundle.get("entry", [])]
    found = [(datetime.fromisoformat(r["effectiveDateTime"]), r["valueQuantity"]["value"], r["effectiveDateTime"])
             for r in resources]  # fmt: skip
    return sorted(found, key=lambda p: p[0])


def _order(kind: str, mrn: str | None, **fields: Any) -> tuple[str, dict[str, Any]]:
    body = {"resourceType": kind, "authoredOn": "2023-11-13T10:15:00+00:00", "status": "active", "intent": "order"}
    return kind, {**body, "subject": {"reference": f"Patient/{mrn}"}, **fields}


def _drug(mrn: str | None, ndc: str, route: str, dose: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    medication = {"coding": [{"system": NDC, "code": ndc}]}
    instruction = [{"route": route, "doseAndRate": [dose]}]
    return _order("MedicationRequest", mrn, medicationCodeableConcept=medication, dosageInstruction=instruction)


def _test(mrn: str | None, system: str, code: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return _order("ServiceRequest", mrn, priority="stat", code={"coding": [{"system": system, "code": code}]}, **fields)


def _first(task: AgentTask, base: str) -> str:
    if task.type == 1:
        found = re.search(r"name (.+) (\S+) and DOB of (\S+)\?", task.instruction)
        given, family, dob = found.groups() if found else ("", "", "")
        return f"GET {base}Patient?given={given}&family={family}&birthdate={dob}"
    if task.type == 2:
        return f"GET {base}Patient?identifier={task.mrn}"
    return f"GET {base}Observation?patient={task.mrn}&code={CODE[task.type]}&_count=500"


def _answer(task: AgentTask, bundle: dict[str, Any]) -> list[Any]:
    series = points(bundle) if task.type > 3 else []
    recent = [p for p in series if p[0] >= NOW - timedelta(days=1)]
    latest = (recent if task.type in (4, 5) else series)[-1:]
    if task.type == 1:
        return [bundle["entry"][0]["resource"]["id"]] if bundle["total"] else ["Patient not found"]
    if task.type == 2:
        born = datetime.fromisoformat(bundle["entry"][0]["resource"]["birthDate"])
        return [2023 - born.year - ((11, 13) < (born.month, born.day))]
    if task.type == 6:
        return [sum(p[1] for p in recent) / len(recent) if recent else -1]
    if task.type == 10:
        return [latest[0][1], latest[0][2]] if latest else [-1]
    return [latest[0][1] if latest else -1]


def _posts(task: AgentTask, answer: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    value, mrn = answer[0], task.mrn
    if task.type == 5 and value != -1 and value <= 1.9:
        grams = 4 if value < 1 else 2 if value < 1.5 else 1
        dose = {"doseQuantity": {"value": grams, "unit": "g"}, "rateQuantity": {"value": grams, "unit": "h"}}
        return [_drug(mrn, "0338-1715-40", "IV", dose)]
    if task.type == 9 and value != -1 and value < 3.5:
        dose = {"doseQuantity": {"value": round((3.5 - value) * 100, 1), "unit": "mEq"}}
        recheck = _test(mrn, LOINC, "2823-3", occurrenceDateTime="2023-11-14T08:00:00+00:00")
        return [_drug(mrn, "40032-917-01", "oral", dose), recheck]
    if task.type == 10 and (len(answer) == 1 or datetime.fromisoformat(answer[1]) < NOW - timedelta(days=365)):
        return [_test(mrn, LOINC, "4548-4")]
    return []


def _writes(task: AgentTask) -> list[tuple[str, dict[str, Any]]]:
    if task.type == 8:
        found = re.search(r'"(Situation:.+)"', task.instruction)
        note = found[1] if found else ""
        return [_test(task.mrn, "http://snomed.info/sct", "306181000000106", note={"text": note})]
    category = {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}
    body = {"resourceType": "Observation", "category": [{"coding": [category]}], "code": {"text": "BP"},
            "effectiveDateTime": "2023-11-13T10:15:00+00:00", "status": "final", "valueString": "118/77 mmHg",
            "subject": {"reference": f"Patient/{task.mrn}"}}  # fmt: skip
    return [("Observation", body)]


def plan(task: AgentTask, base: str, messages: list[dict[str, Any]]) -> list[str]:
    """Return every reply of a right episode of ``task``, as far as the conversation so far decides them."""
    if task.type in (3, 8):
        posts, answer, first = _writes(task), [], []
    elif len(messages) == 1:
        return [_first(task, base)]
    else:
        answer = _answer(task, _bundle(messages[2]["content"]))
        posts, first = _posts(task, answer), [_first(task, base)]
    writes = [f"POST {base}{kind}\n{json.dumps(body)}" for kind, body in posts]
    return [*first, *writes, f"FINISH({json.dumps(answer)})"]


def _misbehave(how: str, base: str, step: int, task: AgentTask) -> str:
    if how == "wrong":
        return 'FINISH(["not the answer"])'
    if how == "invalid":
        return "I would look up the patient's chart first, then decide."
    return f"GET {base}Patient?identifier={task.mrn}&round={step}"  # round_limit: never FINISH


class AgentModel:
    """The server state: the tasks it can recognise, what each one should do, and the requests it answered."""

    def __init__(
        self,
        tasks: list[AgentTask],
        served_name: str,
        behaviour: Mapping[str, str] | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.served_name, self.latency_s = served_name, latency_s
        self.behaviour = dict(behaviour or {})  # task id → wrong | invalid | round_limit | error; else right
        self._by_text: dict[tuple[str, str], AgentTask] = {}
        for task in tasks:
            self._by_text.setdefault((task.context, task.instruction), task)
        self.requests = 0

    def task_of(self, opening: str) -> AgentTask | None:
        """Return the task a first message poses (by its context and question), or None."""
        match = re.search(r"Context: (.*)\nQuestion: (.*)\Z", opening, re.DOTALL)
        return self._by_text.get((match[1], match[2])) if match else None

    def reply(self, messages: list[dict[str, Any]]) -> str | None:
        """Return the next reply of the conversation, or None for an injected server error."""
        opening = str(messages[0]["content"])
        task, base = self.task_of(opening), _BASE.search(opening)
        if task is None or base is None:
            return "FINISH([])"
        how = self.behaviour.get(task.id, "right")
        if how == "error":
            return None
        step = sum(m["role"] == "assistant" for m in messages)
        if how != "right":
            return _misbehave(how, base[1], step, task)
        steps = plan(task, base[1], messages)
        return steps[min(step, len(steps) - 1)]

    def app(self) -> web.Application:
        """Return the aiohttp application."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        return app

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.served_name, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        text = self.reply(body["messages"])
        if text is None:
            return web.json_response({"error": {"message": "injected failure"}}, status=500)
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        payload = {"id": f"chat-{self.requests}", "object": "chat.completion", "model": self.served_name}
        return web.json_response({**payload, "choices": [choice], "usage": dict(USAGE)})


async def serve(model: AgentModel, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the server; return its runner and the port it listens on."""
    runner = web.AppRunner(model.app())
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@contextmanager
def running(model: AgentModel, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the server on a free port in a background thread; yield its OpenAI base URL (``…/v1``)."""
    with in_thread(lambda: serve(model, host, 0), "agent model server") as (port, _):
        yield f"http://{host}:{port}/v1"


def main(argv: list[str] | None = None) -> None:
    """Serve the scripted agent model until SIGTERM/Ctrl-C (tasks from $JMLE_EVAL_DATA_DIR/medagentbench)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", default=None)
    parser.add_argument("--served-name", default="agent-model")
    parser.add_argument("--behaviour", default="{}", help='JSON: {"task1_1": "wrong", ...}')
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    args = parser.parse_args(argv)
    model = AgentModel(load_tasks(default_root()), args.served_name, json.loads(args.behaviour), args.latency)

    asyncio.run(until_stopped(lambda: serve(model, "127.0.0.1", args.port), args.port_file))


if __name__ == "__main__":
    main()
