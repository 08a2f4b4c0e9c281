"""Ask every question still to do and write each answer as it arrives: the request loop of a session.

One task per question; the client's adaptive limit decides how many are in
flight. Each reply becomes a :class:`~jmle_eval.schema.Prediction` (an answer,
or an error to retry) and is queued for the writer threads at once, so a crash
loses only the questions in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from jmle_eval.predict import prompts
from jmle_eval.predict.plan import Plan
from jmle_eval.predict.progress import Progress
from jmle_eval.predict.writer import PredictionWriter
from jmle_eval.schema import Prediction, Usage, prediction_problem

if TYPE_CHECKING:  # the client imports openai (about a second); only a session needs it
    from jmle_eval.predict.client import ChatClient
    from jmle_eval.predict.replies import Reply
    from jmle_eval.schema import Question

log = logging.getLogger("jmle_eval.predict")


class TooManyRejected(Exception):
    """Several questions got a 400/413/422: the cause is a setting, not the questions."""


@dataclass
class Outcome:
    """What one invocation did (the run's totals come from the files, see :func:`store.totals`)."""

    asked: int = 0
    ok: int = 0
    errors: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    interrupted_by: int | None = None
    lowest_limit: int | None = None
    rate_limit_cuts: int = 0
    first_errors: list[str] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def record(job: Plan, question_id: str, reply: Reply) -> Prediction:
    """Return the prediction file of one reply; a reply that is not a valid prediction becomes an error to retry."""
    usage = reply.usage or {}
    fields: dict[str, Any] = {
        "question_id": question_id,
        "status": reply.status,
        "answer_text": reply.answer_text,
        "reasoning_text": reply.reasoning_text,
        "finish_reason": reply.finish_reason,
        "usage": {key: usage.get(key, 0) for key in ("prompt_tokens", "completion_tokens", "reasoning_tokens")},
        "latency_s": reply.latency_s,
        "attempts": reply.attempts,
        "error": reply.error,
        "model": reply.model or job.served_id,
        "fingerprint": job.header["fingerprint"],
        "created_at": _now(),
    }
    cost = reply.cost_usd if reply.cost_usd is not None else job.cost(usage)
    if cost is not None:
        fields["cost_usd"] = round(cost, 8)
    try:
        return Prediction.model_validate(fields)
    except ValidationError:  # never store what score would skip: keep the question, as an error to retry
        problem = prediction_problem(fields, question_id)
    log.warning("%s: the reply cannot be stored as a prediction (%s); recorded as an error", question_id, problem)
    return Prediction(
        question_id=question_id,
        status="error",
        usage=Usage(),  # no counts set: written as {}
        latency_s=None,
        attempts=reply.attempts,
        error=f"reply not storable: {problem}",
        model=fields["model"],
        fingerprint=fields["fingerprint"],
        created_at=fields["created_at"],
    )


async def ask_all(job: Plan, client: ChatClient, writer: PredictionWriter, progress: Progress, out: Outcome) -> None:
    """Ask every question still to do, one task each; the client's limit decides how many are in flight."""
    from jmle_eval.predict.replies import REJECTED_STATUSES

    rejected = 0
    template = job.body_template

    async def ask(question: Question) -> None:
        nonlocal rejected

        def body() -> bytes:
            messages = prompts.build_messages(
                question, job.image_mode, job.prompt_version, job.answer_marker, job.prompt_language
            )
            return json.dumps({**template, "messages": messages}, ensure_ascii=False).encode()

        reply = await client.complete(body)
        writer.put(record(job, question.id, reply))
        out.asked += 1
        tokens = (reply.usage or {}).get("completion_tokens", 0)
        out.completion_tokens += tokens
        if reply.status == "ok":
            out.ok += 1
        else:
            out.errors += 1
            if len(out.first_errors) < 3:
                out.first_errors.append(f"{question.id}: {reply.error}")
        progress.advance(ok=reply.status == "ok", tokens=tokens, limit=client.limit.limit)
        if reply.http_status in REJECTED_STATUSES:
            rejected += 1
            if rejected >= job.settings.max_rejected:
                raise TooManyRejected(reply.error)

    async with asyncio.TaskGroup() as group:
        for question in job.todo or []:
            group.create_task(ask(question))


@contextlib.contextmanager
def signals(task: asyncio.Task[Any], out: Outcome) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a cancel of ``task``, remembering which signal arrived."""
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        if out.interrupted_by is None:
            out.interrupted_by = signum
            log.warning("stopping: cancelling requests in flight, keeping finished answers")
            task.cancel()

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    installed = []
    for signum in previous:
        try:
            loop.add_signal_handler(signum, stop, signum)
            installed.append(signum)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            pass
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
            if previous[signum] is not None:  # e.g. serving's SIGTERM handler that stops the server
                signal.signal(signum, previous[signum])
