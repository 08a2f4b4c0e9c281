"""The judge stage: config → prediction runs → judge requests in flight → one judgment file per prediction.

:func:`main` judges every selected prediction run of a data set in turn with
one judge model and one rubric (``judge.py`` wraps it with Hydra). Every check
runs before a server is contacted (:mod:`.plan`); the judge model's server is
started once when the run launches one; each run is asked through the predict
session, and the stage ends with one summary line per run computed from the files.
"""

from __future__ import annotations

import asyncio
import logging

from omegaconf import DictConfig

from jmle_eval.config import to_plain
from jmle_eval.judge.plan import JudgePlan, plans
from jmle_eval.predict import store
from jmle_eval.predict.ask import Outcome
from jmle_eval.predict.runner import finish, serve
from jmle_eval.predict.session import session
from jmle_eval.schema import judgment_problem

log = logging.getLogger("jmle_eval.judge")

__all__ = ["main", "run"]


def run(cfg: DictConfig) -> list[tuple[JudgePlan, Outcome | None]]:
    """Judge every selected prediction run; return each plan with what this call did (None: nothing to ask)."""
    for noisy in ("httpx2", "httpx", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    jobs = plans(to_plain(cfg))
    done: list[tuple[JudgePlan, Outcome | None]] = [(job, None) for job in jobs]
    todo = [i for i, job in enumerate(jobs) if job.todo]
    if not todo:
        return done
    with serve(jobs[todo[0]], cfg) as (base_url, died):
        for i in todo:
            out = asyncio.run(session(jobs[i], base_url, died))
            done[i] = (jobs[i], out)
            if out.interrupted_by is not None:
                break  # Ctrl-C / SIGTERM: the runs not started stay as they are
    return done


def main(cfg: DictConfig) -> int:
    """Hydra task: judge, print one summary line per prediction run, return the worst exit code."""
    codes = []
    for job, out in run(cfg):
        totals = store.totals(job.run_dir, check=judgment_problem) if job.run_dir.is_dir() else None
        codes.append(finish(job, out, totals, what="judgment"))
    interrupted = [c for c in codes if c >= 128]
    return interrupted[0] if interrupted else max(codes, default=0)
