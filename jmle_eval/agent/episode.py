"""Play one MedAgentBench task to its end: the model's replies, the harness's answers, the outcome.

The episode never touches the network itself: ``complete`` asks the model (it gets the whole
conversation so far) and ``fhir_get`` sends one GET, so tests can play an episode against a
scripted model and a loopback FHIR server. What it records is enough to grade the task later
(:mod:`jmle_eval.agent.graders`) and to read what happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from jmle_eval.agent import protocol
from jmle_eval.agent.fhir import FhirUnavailable
from jmle_eval.agent.tasks import MAX_ROUNDS, AgentTask
from jmle_eval.predict.replies import Reply

Complete = Callable[[list[dict[str, Any]]], Awaitable[Reply]]
FhirGet = Callable[[str], Awaitable[tuple[int, str]]]
OUTCOMES = ("finished", "invalid_action", "round_limit", "error")


@dataclass
class Turn:
    """One message: the user's (first message, harness answers) or the model's, with its usage and timing."""

    role: str  # user | assistant
    content: str
    usage: dict[str, int] | None = None
    latency_s: float | None = None
    finish_reason: str | None = None
    reasoning_text: str | None = None


@dataclass
class Episode:
    """Everything one task's conversation produced; ``to_dict`` / ``from_dict`` store it as JSON."""

    task_id: str
    turns: list[Turn] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)  # accepted POSTs in order: {url, body}
    finish_raw: str | None = None  # the text inside FINISH(...)
    answers: list[Any] | None = None  # that text as a JSON list, or None
    outcome: str = "round_limit"  # one of OUTCOMES
    error: str | None = None  # why: the failed request (error) or the unreadable reply (invalid_action)
    usage: dict[str, int] = field(default_factory=dict)
    rounds: int = 0  # model replies asked for
    latency_s: float = 0.0
    cost_usd: float | None = None
    model: str | None = None

    @property
    def attempted_post(self) -> bool:
        """Return True when any model reply mentions POST, accepted or not (upstream's no-POST test)."""
        return any(t.role == "assistant" and "POST" in t.content for t in self.turns)

    def to_dict(self) -> dict[str, Any]:
        """Return the episode as plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        """Return the episode stored by :meth:`to_dict`."""
        fields = dict(data)
        fields["turns"] = [Turn(**t) for t in fields.get("turns") or []]
        return cls(**fields)


def _count(episode: Episode, reply: Reply) -> None:
    episode.rounds += 1
    for name, value in (reply.usage or {}).items():
        episode.usage[name] = episode.usage.get(name, 0) + int(value)
    episode.latency_s += reply.latency_s or 0.0
    if reply.cost_usd is not None:
        episode.cost_usd = (episode.cost_usd or 0.0) + reply.cost_usd
    episode.model = reply.model or episode.model


async def _answer_get(action: protocol.Get, fhir_get: FhirGet) -> str:
    status, body = await fhir_get(action.url)
    if 200 <= status < 300:
        return protocol.get_feedback(body)
    if status == 0:
        return protocol.get_error_feedback(body)
    return protocol.get_error_feedback(f"HTTP {status} for {action.url}")


def _finish(episode: Episode, outcome: str, error: str | None = None) -> Episode:
    episode.outcome, episode.error = outcome, error
    return episode


async def run_episode(
    task: AgentTask, first_message: str, complete: Complete, fhir_get: FhirGet, max_rounds: int = MAX_ROUNDS
) -> Episode:
    """Return the episode of ``task``: at most ``max_rounds`` model replies, ended by FINISH, an invalid reply,
    the round limit, or an error (a failed model request or an unreachable FHIR server, worth retrying).
    """
    episode = Episode(task.id, turns=[Turn("user", first_message)])
    messages: list[dict[str, Any]] = [{"role": "user", "content": first_message}]
    for _ in range(max_rounds):
        reply = await complete(list(messages))
        _count(episode, reply)
        if reply.status != "ok":
            return _finish(episode, "error", f"model request failed: {reply.error or 'no reason given'}")
        text = reply.answer_text or ""
        episode.turns.append(
            Turn("assistant", text, dict(reply.usage), reply.latency_s, reply.finish_reason, reply.reasoning_text)
        )
        messages.append({"role": "assistant", "content": text})
        action = protocol.parse_action(text)
        if isinstance(action, protocol.Finish):
            episode.finish_raw, episode.answers = action.raw, action.answers
            return _finish(episode, "finished")
        if isinstance(action, protocol.Invalid):
            return _finish(episode, "invalid_action", action.reason)
        if isinstance(action, protocol.Get):
            try:
                feedback = await _answer_get(action, fhir_get)
            except FhirUnavailable as exc:
                return _finish(episode, "error", str(exc))
        elif action.accepted:
            episode.posts.append({"url": action.url, "body": action.body})
            feedback = protocol.POST_ACCEPTED
        else:
            feedback = protocol.POST_INVALID
        episode.turns.append(Turn("user", feedback))
        messages.append({"role": "user", "content": feedback})
    return _finish(episode, "round_limit", f"no FINISH within {max_rounds} rounds")
