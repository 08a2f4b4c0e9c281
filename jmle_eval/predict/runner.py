"""The predict stage: config → selected questions → requests in flight → one file per answer.

:func:`main` is the whole stage for one resolved config (``predict.py`` wraps it
with Hydra). It checks every setting before contacting anything (:mod:`.plan`),
refuses to mix two settings in one run folder, skips questions already answered,
starts the model's server when the run launches one, asks the rest
(:mod:`.session`), and ends with one summary line computed from the files.
Ctrl-C or SIGTERM cancels the requests in flight and keeps every finished answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig

from jmle_eval.config import to_plain
from jmle_eval.predict import store
from jmle_eval.predict.ask import Outcome, TooManyRejected, record
from jmle_eval.predict.job import Job
from jmle_eval.predict.plan import Plan, plan
from jmle_eval.predict.progress import summary_line
from jmle_eval.predict.session import ServerUnavailable, session

log = logging.getLogger("jmle_eval.predict")

__all__ = [
    "Outcome", "Plan", "ServerUnavailable", "TooManyRejected", "finish", "main", "record", "run", "serve",
    "summary_line",
]  # fmt: skip


@contextlib.contextmanager
def serve(job: Job, cfg: DictConfig) -> Iterator[tuple[str, Callable[[], str | None] | None]]:
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
                f"The {process.engine} server launched for this run {process.ended(code, 'while the run was going')} "
                f"Its log ({process.log}) ends with:\n{process.tail()}\n"
            ).rstrip()

        yield process.base_url, died


def run(cfg: DictConfig) -> tuple[Plan, Outcome | None]:
    """Run the predict stage for a config; return its plan and what this call did (None: nothing to ask)."""
    for noisy in ("httpx2", "httpx", "openai"):  # one INFO line per request would cost CPU and drown the log
        logging.getLogger(noisy).setLevel(logging.WARNING)
    job = plan(to_plain(cfg))
    if not job.todo:
        return job, None
    with serve(job, cfg) as (base_url, died):
        return job, asyncio.run(session(job, base_url, died))


def finish(job: Job, out: Outcome | None, totals: dict[str, Any] | None, what: str = "question") -> int:
    """Log what one run did (one summary line, the errors, the rate limit) and return its exit code.

    0: done; 1: most items asked ended in error, or any did with run.fail_on_errors;
    128 + signal: interrupted (finished files are kept; the same command resumes).
    """
    if out is None:
        log.info("%s: nothing to ask (%d selected %ss, all done)", job.run_name, job.selected, what)
    log.info(summary_line(job.run_name, job.selected, totals, out, job.run_dir))
    if out is not None and out.errors:
        log.warning(
            "%d %s(s) ended with errors (e.g. %s); run the same command again to retry them.",
            out.errors, what, "; ".join(out.first_errors),
        )  # fmt: skip
    if out is not None and out.rate_limit_cuts:
        log.info(
            "rate limited: the in-flight limit was cut %d time(s), lowest %d", out.rate_limit_cuts, out.lowest_limit
        )
    if out is not None and out.interrupted_by is not None:
        name = signal.Signals(out.interrupted_by).name
        log.warning("interrupted by %s: finished files are kept; run the same command again to resume.", name)
        return 128 + out.interrupted_by
    if out is not None and out.errors and (job.settings.fail_on_errors or 2 * out.errors > out.asked):
        why = "run.fail_on_errors=true" if job.settings.fail_on_errors else f"most {what}s asked ended in error"
        log.error("%s: %d of %d %s(s) asked ended in error (%s): exit code 1.", job.run_name, out.errors,
                  out.asked, what, why)  # fmt: skip
        return 1
    return 0


def main(cfg: DictConfig) -> int:
    """Hydra task: predict, print one summary line, return the exit code (130/143 when interrupted)."""
    if cfg.run.get("dry_run"):  # what it would ask and cost: no request, no server, nothing written
        from jmle_eval.predict import dryrun  # only a dry run needs it (and its token counting)

        return dryrun.main(cfg)
    job, out = run(cfg)
    totals = store.totals(job.run_dir) if job.run_dir.is_dir() else None
    return finish(job, out, totals)
