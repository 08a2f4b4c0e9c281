"""The predict stage: config → selected questions → requests in flight → one file per answer.

:func:`main` is the whole stage for one resolved config (``predict.py`` wraps it
with Hydra). It checks every setting before contacting anything, refuses to mix
two settings in one run folder, skips questions already answered, asks the rest
through one :class:`~jmle_eval.client.ChatClient`, writes each answer as soon as
it arrives, and ends with one summary line computed from the files. Ctrl-C or
SIGTERM cancels the requests in flight and keeps every finished answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from jmle_eval import prompts, store
from jmle_eval.cli import to_plain
from jmle_eval.errors import UserError
from jmle_eval.plan import Plan, plan
from jmle_eval.progress import Progress, summary_line
from jmle_eval.schema import prediction_problem

if TYPE_CHECKING:  # the client imports openai (about a second); only a session needs it
    from jmle_eval.client import ChatClient, Fatal, Reply
    from jmle_eval.schema import Question

log = logging.getLogger("jmle_eval.predict")

__all__ = ["Outcome", "main", "run"]


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


def _record(job: Plan, question_id: str, reply: Reply) -> dict[str, Any]:
    """Return the prediction file content for one reply."""
    usage = reply.usage or {}
    record = {
        "question_id": question_id,
        "status": reply.status,
        "answer_text": reply.answer_text,
        "reasoning_text": reply.reasoning_text,
        "finish_reason": reply.finish_reason,
        "usage": {
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "reasoning_tokens": usage.get("reasoning_tokens", 0),
        },
        "latency_s": reply.latency_s,
        "attempts": reply.attempts,
        "error": reply.error,
        "model": reply.model or job.served_id,
        "fingerprint": job.header["fingerprint"],
        "created_at": _now(),
    }
    cost = reply.cost_usd if reply.cost_usd is not None else job.cost(usage)
    if cost is not None:
        record["cost_usd"] = round(cost, 8)
    problem = prediction_problem(record, question_id)
    if problem is not None:  # never store what score would skip: keep the question, as an error to retry
        log.warning("%s: the reply cannot be stored as a prediction (%s); recorded as an error", question_id, problem)
        for key in ("answer_text", "reasoning_text", "finish_reason", "cost_usd"):
            record.pop(key, None)
        record.update(status="error", error=f"reply not storable: {problem}", usage={}, latency_s=None)
    return record


async def _ask_all(
    job: Plan, client: ChatClient, writer: store.PredictionWriter, progress: Progress, out: Outcome
) -> None:
    """Ask every question still to do, one task each; the client's limit decides how many are in flight."""
    from jmle_eval.client import REJECTED_STATUSES

    rejected = 0
    template = job.body_template

    async def ask(question: Question) -> None:
        nonlocal rejected

        def body() -> bytes:
            messages = prompts.build_messages(question, job.image_mode, job.prompt_version, job.answer_marker)
            return json.dumps({**template, "messages": messages}, ensure_ascii=False).encode()

        reply = await client.complete(body)
        writer.put(_record(job, question.id, reply))
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
            if rejected >= job.max_rejected:
                raise TooManyRejected(reply.error)

    async with asyncio.TaskGroup() as group:
        for question in job.todo:
            group.create_task(ask(question))


@contextlib.contextmanager
def _signals(task: asyncio.Task[Any], out: Outcome) -> Iterator[None]:
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


def _fatal_message(job: Plan, exc: Fatal) -> str:
    """Return the one-paragraph message for a reply no question can get past."""
    if exc.status in (401, 403):
        env = job.provider.get("api_key_env")
        hint = f"Set a valid key in ${env}" if env else "Check the server's --api-key setting"
        return (
            f"The server rejected the request as unauthorised (HTTP {exc.status} from {exc.url}: {exc.message}). "
            f"{hint} and run the same command again; finished answers are kept."
        )
    return (
        f"HTTP {exc.status} from {exc.url}: {exc.message}. The model id sent was '{job.served_id}' "
        f"(model.id / model.provider_ids.{job.provider['name']}) and the server is provider.base_url="
        f"{job.provider['base_url']}; fix them and run the same command again (finished answers are kept)."
    )


class ServerUnavailable(UserError):
    """The server went away and did not come back in time: the run stopped, unasked questions stay unasked."""

    exit_code = 3


async def _session(job: Plan, base_url: str, server_died: Callable[[], str | None] | None = None) -> Outcome:
    from jmle_eval.client import ChatClient, Fatal, Unreachable

    out = Outcome()
    client = ChatClient(
        base_url,
        job.api_key,
        max_concurrency=job.max_concurrency,
        timeout_s=job.provider["timeout_s"],
        max_attempts=job.provider["max_attempts"],
        backoff_s=job.provider["backoff_s"],
        backoff_max_s=job.provider["backoff_max_s"],
        transport=job.provider.get("client") or "lean",
        secrets=job.secrets,
        outage_timeout_s=job.outage_timeout_s,
        server_died=server_died,
    )
    created = False
    stack = contextlib.ExitStack()
    try:
        try:
            served = await client.models(float(job.provider.get("connect_timeout_s", 30)))
        except ConnectionError as exc:
            raise UserError(
                f"Cannot reach the model server at {client.base_url} ({exc}). Start the server or fix "
                "provider.base_url (or set server.launch=true to have predict.py start it)."
            ) from None
        except Fatal as exc:
            raise UserError(_fatal_message(job, exc)) from None
        if job.provider.get("check_model") and served and job.served_id not in served:
            raise UserError(
                f"The server at {client.base_url} serves {served}, not '{job.served_id}'. Set model.id (or "
                f"model.provider_ids.{job.provider['name']}) to the served name, or serve that model."
            )
        try:
            created = store.open_run(job.run_dir, job.header)
            lock = store.RunLock(job.run_dir, job.shard)
            stack.enter_context(lock)
            store.remove_stale_temporaries(job.run_dir)
        except OSError as exc:
            raise UserError(f"Cannot create the run folder {job.run_dir} ({exc}). Check paths.predictions.") from exc
        job.refresh_todo()  # another process may have answered some while this one started
        log.info(
            "%s: asking %d of %d selected questions (%d already answered) at %s, up to %d in flight",
            job.run_name, len(job.todo), job.selected, job.selected - len(job.todo), client.url, job.max_concurrency,
        )  # fmt: skip
        writer = store.PredictionWriter(job.run_dir, durable=job.durable)
        progress = Progress(job.run_name, len(job.todo), mode=job.progress, every_s=job.log_every_s)
        started = time.perf_counter()
        task = asyncio.current_task()
        assert task is not None
        failure: BaseException | None = None
        try:
            with _signals(task, out), progress:
                try:
                    await _ask_all(job, client, writer, progress, out)
                except* Fatal as group:
                    failure = UserError(_fatal_message(job, group.exceptions[0]))
                except* UserError as group:  # e.g. an image file of the data set that cannot be read
                    failure = group.exceptions[0]
                except* TooManyRejected as group:
                    failure = UserError(
                        f"{job.max_rejected} questions were refused by the server as sent (last: "
                        f"{group.exceptions[0]}). Fix the request settings (model.params, model.extra_body, "
                        "image_mode) or raise run.max_rejected; finished answers are kept."
                    )
                except* Unreachable as group:
                    failure = ServerUnavailable(
                        f"{group.exceptions[0]}. The run stopped: {out.asked} question(s) were answered or recorded "
                        f"by this call and {len(job.todo or []) - out.asked} were left unasked (no attempt spent on "
                        "them). Bring the server back (or fix provider.base_url) and run the same command again to "
                        "resume; raise provider.outage_timeout_s to wait longer."
                    )
        except asyncio.CancelledError:
            if out.interrupted_by is None:
                raise
            task.uncancel()
        finally:
            writer.close()
            out.wall_s = time.perf_counter() - started
            out.lowest_limit, out.rate_limit_cuts = client.limit.lowest, client.limit.cuts
        if failure is not None:
            raise failure
        return out
    except UserError as exc:
        if client.sent:
            exc.keep_output = True  # requests went out: the log says what happened to them
        elif created and not any(store.read_predictions(job.run_dir)):
            (job.run_dir / store.RUN_FILE).unlink(missing_ok=True)  # leave nothing behind a refused start
        raise
    finally:
        stack.close()
        await client.aclose()


@contextlib.contextmanager
def _serve(job: Plan, cfg: DictConfig) -> Iterator[tuple[str, Callable[[], str | None] | None]]:
    """Yield the base URL to ask, and for a server this run launched, a check that says if it died."""
    if not job.launch:
        yield job.provider["base_url"], None
        return
    from jmle_eval import serving  # starts vLLM / SGLang / llama.cpp; only imported when asked for

    with serving.running(cfg) as process:

        def died() -> str | None:
            code = process.exit_code()
            if code is None:
                return None
            return (
                f"The {process.engine} server launched for this run exited with code {code} while the run was "
                f"going (log {process.log}), which ends with:\n{process.tail()}\n"
            ).rstrip()

        yield process.base_url, died


def run(cfg: DictConfig) -> tuple[Plan, Outcome | None]:
    """Run the predict stage for a config; return its plan and what this call did (None: nothing to ask)."""
    for noisy in ("httpx2", "httpx", "openai"):  # one INFO line per request would cost CPU and drown the log
        logging.getLogger(noisy).setLevel(logging.WARNING)
    job = plan(to_plain(cfg))
    if not job.todo:
        return job, None
    with _serve(job, cfg) as (base_url, died):
        return job, asyncio.run(_session(job, base_url, died))


def main(cfg: DictConfig) -> int:
    """Hydra task: predict, print one summary line, return the exit code (130/143 when interrupted)."""
    job, out = run(cfg)
    if out is None:
        log.info("%s: nothing to ask (%d selected questions, all answered)", job.run_name, job.selected)
    totals = store.totals(job.run_dir) if job.run_dir.is_dir() else None
    log.info(summary_line(job.run_name, job.selected, totals, out, job.run_dir))
    if out is not None and out.errors:
        log.warning(
            "%d question(s) ended with errors (e.g. %s); run the same command again to retry them.",
            out.errors, "; ".join(out.first_errors),
        )  # fmt: skip
    if out is not None and out.rate_limit_cuts:
        log.info(
            "rate limited: the in-flight limit was cut %d time(s), lowest %d", out.rate_limit_cuts, out.lowest_limit
        )
    if out is not None and out.interrupted_by is not None:
        name = signal.Signals(out.interrupted_by).name
        log.warning("interrupted by %s: finished answers are kept; run the same command again to resume.", name)
        return 128 + out.interrupted_by
    if out is not None and out.errors and (job.fail_on_errors or 2 * out.errors > out.asked):
        why = "run.fail_on_errors=true" if job.fail_on_errors else "most questions asked ended in error"
        log.error("%s: %d of %d question(s) asked ended in error (%s): exit code 1.", job.run_name, out.errors,
                  out.asked, why)  # fmt: skip
        return 1
    return 0
