"""An episode plays a task to its end through the model and FHIR callables, and records what the grader needs.

The model is a scripted async ``complete``; the GETs go through the library's FhirClient to a real
loopback FHIR server holding synthetic patients for all 300 tasks.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from jmle_eval.agent import protocol
from jmle_eval.agent.episode import Episode, run_episode
from jmle_eval.agent.fhir import FhirClient
from jmle_eval.agent.graders import grade
from jmle_eval.agent.tasks import AgentTask, default_root, first_message, load_functions, load_tasks
from jmle_eval.predict.replies import Reply
from jmle_eval.testing.agentmodel import plan, points
from jmle_eval.testing.fhirdata import build_store
from jmle_eval.testing.fhirserver import FhirServer, running

USAGE = {"prompt_tokens": 100, "completion_tokens": 10, "reasoning_tokens": 2}


@pytest.fixture(scope="module")
def tasks():
    return load_tasks(default_root())


@pytest.fixture(scope="module")
def base(tasks):
    with running(FhirServer(build_store(tasks))) as url:
        yield url


def scripted(*replies: str | Reply) -> Any:
    """Return a ``complete`` that gives these replies in turn (the last one again once they run out)."""
    seen: list[list[dict[str, Any]]] = []

    async def complete(messages: list[dict[str, Any]]) -> Reply:
        seen.append(messages)
        reply = replies[min(len(seen), len(replies)) - 1]
        return reply if isinstance(reply, Reply) else Reply("ok", answer_text=reply, usage=dict(USAGE), latency_s=0.5)

    complete.seen = seen  # type: ignore[attr-defined]
    return complete


def play(task: AgentTask, base: str, complete: Any, max_rounds: int = 8) -> Episode:
    async def go() -> Episode:
        async with FhirClient(base) as fhir:
            return await run_episode(task, "the first message", complete, fhir.get, max_rounds)

    return asyncio.run(go())


def _task(tasks: list[AgentTask], task_id: str) -> AgentTask:
    return next(t for t in tasks if t.id == task_id)


def _bundle(feedback: str) -> dict[str, Any]:
    return json.loads(feedback.split("\n", 1)[1].rsplit("\n", 1)[0])


def test_a_correct_episode_reads_the_server_and_finishes(tasks, base):
    task = _task(tasks, "task4_1")

    async def complete(messages: list[dict[str, Any]]) -> Reply:
        if len(messages) == 1:
            return Reply("ok", answer_text=f"GET {base}Observation?patient={task.mrn}&code=MG&_count=200", usage=USAGE)
        cut = datetime.fromisoformat("2023-11-12T10:15:00+00:00")
        recent = [v for when, v, _ in points(_bundle(messages[-1]["content"])) if when >= cut]
        return Reply("ok", answer_text=f"FINISH([{recent[-1] if recent else -1}])", usage=USAGE, latency_s=0.25)

    episode = play(task, base, complete)
    assert episode.outcome == "finished" and episode.rounds == 2 and episode.error is None
    assert [t.role for t in episode.turns] == ["user", "assistant", "user", "assistant"]
    assert episode.turns[2].content.startswith("The GET request returned:\n{") and task.mrn in episode.turns[2].content
    assert episode.usage == {"prompt_tokens": 200, "completion_tokens": 20, "reasoning_tokens": 4}
    assert episode.latency_s == 0.25 and episode.posts == []

    async def graded() -> bool:
        async with FhirClient(base) as fhir:
            return (await grade(task, episode, fhir)).correct

    assert asyncio.run(graded())


def test_an_invalid_reply_ends_the_episode_at_once(tasks, base):
    complete = scripted("The magnesium is 1.8 mg/dL.", "FINISH([1.8])")
    episode = play(_task(tasks, "task4_1"), base, complete)
    assert episode.outcome == "invalid_action" and episode.rounds == 1 and "not GET, POST or FINISH" in episode.error
    assert episode.answers is None and len(complete.seen) == 1


def test_the_round_limit_ends_an_episode_that_never_finishes(tasks, base):
    task = _task(tasks, "task7_1")
    complete = scripted(f"GET {base}Observation?patient={task.mrn}&code=GLU")
    episode = play(task, base, complete)
    assert episode.outcome == "round_limit" and episode.rounds == 8 and len(episode.turns) == 1 + 2 * 8
    assert [len(m) for m in complete.seen] == [1, 3, 5, 7, 9, 11, 13, 15]  # the whole conversation each time
    assert play(task, base, scripted(f"GET {base}Patient?identifier={task.mrn}"), max_rounds=3).rounds == 3


def test_a_post_with_bad_json_is_refused_but_the_episode_goes_on(tasks, base):
    task = _task(tasks, "task3_1")
    good = {"resourceType": "Observation", "status": "final"}
    bad = f"POST {base}Observation\n{{'resourceType': 'Observation'}}"
    episode = play(task, base, scripted(bad, f"POST {base}Observation\n{json.dumps(good)}", "FINISH([])"))
    assert episode.outcome == "finished" and episode.rounds == 3
    assert episode.turns[2].content == protocol.POST_INVALID and episode.turns[4].content == protocol.POST_ACCEPTED
    assert episode.posts == [{"url": f"{base}Observation", "body": good}] and episode.attempted_post


def test_a_failed_get_is_reported_to_the_model(tasks, base):
    task = _task(tasks, "task4_1")
    episode = play(task, base, scripted(f"GET {base}Observation?patient={task.mrn}&flavour=MG", "FINISH([-1])"))
    assert episode.outcome == "finished"
    assert episode.turns[2].content.startswith("The GET request failed: HTTP 400 for ")
    episode = play(task, base, scripted("GET http://example.invalid/fhir/Patient", "FINISH([-1])"))
    assert "not on the FHIR server" in episode.turns[2].content


def test_a_failed_model_request_or_a_dead_fhir_server_ends_as_an_error_worth_retrying(tasks, base):
    task = _task(tasks, "task4_1")
    episode = play(task, base, scripted(f"GET {base}Patient?identifier={task.mrn}", Reply("error", error="HTTP 500")))
    assert episode.outcome == "error" and "HTTP 500" in episode.error and episode.rounds == 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/fhir/"
    episode = play(task, dead, scripted(f"GET {dead}Patient?identifier={task.mrn}"))
    assert episode.outcome == "error" and "docker run -p 8080:8080 jyxsu6/medagentbench" in episode.error


def test_an_episode_survives_a_json_file_round_trip(tasks, base, tmp_path):
    task = _task(tasks, "task3_1")
    episode = play(task, base, scripted(f'POST {base}Observation\n{{"a": [1, 2.5, null]}}', 'FINISH(["done"])'))
    path = tmp_path / "episode.json"
    path.write_text(json.dumps(episode.to_dict()))
    again = Episode.from_dict(json.loads(path.read_text()))
    assert again == episode and again.answers == ["done"] and again.turns[1].usage == USAGE


def oracle(task: AgentTask, base: str) -> Any:
    async def complete(messages: list[dict[str, Any]]) -> Reply:
        steps = plan(task, base, messages)
        return Reply("ok", answer_text=steps[sum(m["role"] == "assistant" for m in messages)], usage=dict(USAGE))

    return complete


def test_a_model_that_does_every_task_right_scores_300_of_300(tasks, base):
    functions = load_functions(default_root())

    async def run_all() -> list[tuple[str, bool, str, int]]:
        async with FhirClient(base) as fhir:
            episodes = await asyncio.gather(
                *(run_episode(t, first_message(t, functions, base), oracle(t, base), fhir.get) for t in tasks)
            )
            grades = [await grade(t, e, fhir) for t, e in zip(tasks, episodes, strict=True)]
        return [(t.id, g.correct, g.reason, len(e.posts)) for t, e, g in zip(tasks, episodes, grades, strict=True)]

    results = asyncio.run(run_all())
    assert [r for r in results if not r[1]] == []
    posts = Counter(int(r[0].split("_")[0][4:]) for r in results if r[3])
    assert posts[3] == posts[8] == 30 and 0 < posts[5] < 30 and 0 < posts[9] < 30 and 0 < posts[10] < 30
