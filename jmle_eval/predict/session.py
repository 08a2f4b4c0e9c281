"""One predict session against a server: preflight, open the run, ask every question, translate failures.

:func:`session` checks that the server answers and serves the model, creates (or
rejoins) the run folder under its lock, asks the questions still to do through
one :class:`~jmle_eval.predict.client.ChatClient` (:mod:`.ask`), and writes each
answer as soon as it arrives. Whatever stops the run early becomes one :class:`UserError` that
says what to do; Ctrl-C or SIGTERM cancels the requests in flight and keeps every
finished answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from jmle_eval import io
from jmle_eval.errors import UserError
from jmle_eval.predict import store
from jmle_eval.predict.ask import Outcome, TooManyRejected, ask_all, signals
from jmle_eval.predict.job import Job
from jmle_eval.predict.lock import RunLock
from jmle_eval.predict.progress import Progress
from jmle_eval.predict.writer import PredictionWriter

if TYPE_CHECKING:  # the client imports openai (about a second); only a session needs it
    from jmle_eval.predict.client import ChatClient
    from jmle_eval.predict.replies import Fatal

log = logging.getLogger("jmle_eval.predict")


class ServerUnavailable(UserError):
    """The server went away and did not come back in time: the run stopped, unasked questions stay unasked."""

    exit_code = 3


def _fatal_message(job: Job, exc: Fatal) -> str:
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


def _leaves(error: BaseException) -> Iterable[BaseException]:
    """Return the exceptions inside (nested) exception groups, in order."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _failure(job: Job, out: Outcome, errors: list[BaseException]) -> UserError:
    """Return the one error that explains why the questions stopped.

    When several tasks failed together, the widest cause wins: the server gone, then too many
    requests refused, then an error of the data set (a UserError), then a reply no question gets past.
    """
    from jmle_eval.predict.outage import Unreachable
    from jmle_eval.predict.replies import Fatal

    def first(kind: type[BaseException]) -> BaseException | None:
        return next((e for e in errors if isinstance(e, kind)), None)

    if (unreachable := first(Unreachable)) is not None:
        return ServerUnavailable(
            f"{unreachable}. The run stopped: {out.asked} question(s) were answered or recorded by this call and "
            f"{len(job.todo or []) - out.asked} were left unasked (no attempt spent on them). Bring the server back "
            "(or fix provider.base_url) and run the same command again to resume; raise provider.outage_timeout_s "
            "to wait longer."
        )
    if (rejected := first(TooManyRejected)) is not None:
        return UserError(
            f"{job.settings.max_rejected} questions were refused by the server as sent (last: {rejected}). Fix the "
            "request settings (model.params, model.extra_body, image_mode) or raise run.max_rejected; finished "
            "answers are kept."
        )
    user_error = first(UserError)  # e.g. an image file of the data set that cannot be read
    if isinstance(user_error, UserError):
        return user_error
    fatal = first(Fatal)
    assert isinstance(fatal, Fatal)
    return UserError(_fatal_message(job, fatal))


def _client(job: Job, base_url: str, server_died: Callable[[], str | None] | None) -> ChatClient:
    """Return the one client of the session, with the provider's limits, retries and timeouts."""
    from jmle_eval.predict.client import ChatClient

    return ChatClient(
        base_url,
        job.api_key,
        max_concurrency=job.settings.max_concurrency,
        timeout_s=job.provider["timeout_s"],
        max_attempts=job.provider["max_attempts"],
        backoff_s=job.provider["backoff_s"],
        backoff_max_s=job.provider["backoff_max_s"],
        transport=job.provider.get("client") or "lean",
        secrets=job.secrets,
        outage_timeout_s=job.settings.outage_timeout_s,
        server_died=server_died,
    )


async def _preflight(job: Job, client: ChatClient) -> None:
    """Raise UserError unless the server answers ``/models`` (and serves the model, where the provider checks)."""
    from jmle_eval.predict.replies import Fatal

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


@contextlib.contextmanager
def _folder_errors(job: Job) -> Iterator[None]:
    """Turn a failure to make or lock the run folder into a UserError that names it."""
    try:
        yield
    except OSError as exc:
        raise UserError(f"Cannot create the run folder {job.run_dir} ({exc}). Check paths.predictions.") from exc


def _open_run(job: Job) -> bool:
    """Create or rejoin the run folder; return True if this call created its ``run.json``."""
    with _folder_errors(job):
        return store.open_run(job.run_dir, job.header)


def _lock_run(job: Job, stack: contextlib.ExitStack) -> None:
    """Take the run folder's lock (released by ``stack``) and clear temporaries a killed process left."""
    with _folder_errors(job):
        stack.enter_context(RunLock(job.run_dir, job.settings.shard))
        io.remove_stale_temporaries(job.run_dir)


async def _ask_todo(job: Job, client: ChatClient, out: Outcome) -> None:
    """Ask the questions still to do, writing each answer as it arrives; raise UserError if they had to stop."""
    from jmle_eval.predict.outage import Unreachable
    from jmle_eval.predict.replies import Fatal

    todo = job.todo or []
    log.info(
        "%s: asking %d of %d selected %ss (%d already %s) at %s, up to %d in flight",
        job.run_name, len(todo), job.selected, job.what[0], job.selected - len(todo), job.what[1], client.url,
        job.settings.max_concurrency,
    )  # fmt: skip
    writer = PredictionWriter(job.run_dir, durable=job.settings.durable)
    progress = Progress(job.run_name, len(todo), mode=job.settings.progress, every_s=job.settings.log_every_s)
    started = time.perf_counter()
    task = asyncio.current_task()
    assert task is not None
    failure: UserError | None = None
    try:
        with signals(task, out), progress:
            try:
                await ask_all(job, client, writer, progress, out)
            except* (Fatal, UserError, TooManyRejected, Unreachable) as group:
                failure = _failure(job, out, list(_leaves(group)))
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


async def session(job: Job, base_url: str, server_died: Callable[[], str | None] | None = None) -> Outcome:
    """Ask the plan's questions at ``base_url``; return what this call did. A refused start leaves no run behind."""
    out = Outcome()
    client = _client(job, base_url, server_died)
    created = False
    stack = contextlib.ExitStack()
    try:
        await _preflight(job, client)
        created = _open_run(job)
        _lock_run(job, stack)
        job.refresh_todo()  # another process may have answered some while this one started
        await _ask_todo(job, client, out)
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
