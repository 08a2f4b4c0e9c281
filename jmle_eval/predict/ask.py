"""Ask every item still to do and write each reply as it arrives: the request loop of a session.

One task per item (a question for predict, a prediction for judge); the client's
adaptive limit decides how many are in flight. Each reply becomes the job's file
record (an answer, or an error to retry) and is queued for the writer threads at
once, so a crash loses only the items in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jmle_eval.predict.job import Job, prediction_record
from jmle_eval.predict.progress import Progress
from jmle_eval.predict.writer import PredictionWriter

if TYPE_CHECKING:  # the client imports openai (about a second); only a session needs it
    from jmle_eval.predict.client import ChatClient
    from jmle_eval.predict.replies import Reply

record = prediction_record  # the prediction file of one reply (kept under its old name)

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


async def _reply(job: Job, client: ChatClient, item: Any) -> Reply:
    """Return one item's reply; an ok reply the job cannot read is asked again, up to ``job.reread_attempts``.

    A job whose item is a conversation of several requests (an agent's episode) plays it with its own ``play``.
    """
    play = getattr(job, "play", None)
    if play is not None:
        reply: Reply = await play(client, item)
        return reply
    reply = await client.complete(lambda: job.request(item))
    for _ in range(job.reread_attempts - 1):
        if reply.status != "ok" or job.unreadable(item, reply) is None:
            break
        again = await client.complete(lambda: job.request(item))
        spent = {k: reply.usage.get(k, 0) + again.usage.get(k, 0) for k in set(reply.usage) | set(again.usage)}
        costs = [c for c in (reply.cost_usd, again.cost_usd) if c is not None]
        again.usage, again.attempts = spent, reply.attempts + again.attempts
        again.cost_usd = sum(costs) if costs else None
        reply = again  # every reply's tokens are paid for: the record counts them all
    return reply


async def ask_all(job: Job, client: ChatClient, writer: PredictionWriter, progress: Progress, out: Outcome) -> None:
    """Ask every item still to do, one task each; the client's limit decides how many are in flight."""
    from jmle_eval.predict.replies import REJECTED_STATUSES

    rejected = 0

    async def ask(item: Any) -> None:
        nonlocal rejected
        reply = await _reply(job, client, item)
        stored = job.to_record(item, reply)
        writer.put(stored)
        status = stored.status
        out.asked += 1
        tokens = (reply.usage or {}).get("completion_tokens", 0)
        out.completion_tokens += tokens
        if status == "ok":
            out.ok += 1
        else:
            out.errors += 1
            if len(out.first_errors) < 3:
                out.first_errors.append(f"{item.id}: {stored.error or reply.error}")
        progress.advance(ok=status == "ok", tokens=tokens, limit=client.limit.limit)
        if reply.http_status in REJECTED_STATUSES:
            rejected += 1
            if rejected >= job.settings.max_rejected:
                raise TooManyRejected(reply.error)

    async with asyncio.TaskGroup() as group:
        for item in job.todo or []:
            group.create_task(ask(item))


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
