"""The predict stage of an agent data set: config → tasks → episodes in flight → one transcript file per task.

``predict.py dataset=medagentbench`` lands here. Every check runs before anything is
contacted (:mod:`.plan`); then the FHIR server is checked (or started, ``fhir.launch``),
the model's server is started when the run launches one, and the tasks are played
through the predict session, so retries, the adaptive limit, outages, Ctrl-C and the
summary line are predict's own.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from omegaconf import DictConfig

from jmle_eval.agent.launch import fhir_server
from jmle_eval.agent.plan import AgentPlan, agent_plan
from jmle_eval.agent.records import episode_problem
from jmle_eval.agent.tasks import first_message
from jmle_eval.config import to_plain
from jmle_eval.hydra_output import remove_output
from jmle_eval.predict import store
from jmle_eval.predict.ask import Outcome
from jmle_eval.predict.runner import finish, serve
from jmle_eval.predict.session import session

__all__ = ["main", "run"]


def run(cfg: DictConfig) -> tuple[AgentPlan, Outcome | None]:
    """Play every selected task still to do; return the plan and what this call did (None: nothing to play)."""
    for noisy in ("httpx2", "httpx", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = to_plain(cfg)
    job = agent_plan(settings)
    if not job.todo:
        return job, None
    with fhir_server(settings["fhir"], job.run_dir), serve(job, cfg) as (base_url, died):
        return job, asyncio.run(session(job, base_url, died))


def dry_run(cfg: DictConfig) -> int:
    """Print the tasks an agent run would play and what their opening requests cost; send and write nothing."""
    from jmle_eval.predict.dryrun import tokenizer

    plain = to_plain(cfg)
    job = agent_plan(plain)
    count, how = tokenizer(job.model)
    todo = job.todo or []
    opening = sum(count(first_message(t, job.functions, job.fhir_base)) for t in todo)
    price = (job.model.get("price") or {}).get("input")
    cost = f"at least ${opening * float(price) / 1e6:.2f}" if price is not None else "unknown (no price)"
    print(
        f"dry run: {job.run_name} on {cfg.dataset.name} (nothing sent, nothing written)\n"
        f"  tasks             {len(todo)} to play, {job.selected} selected, {job.selected - len(todo)} done; "
        f"up to {job.max_rounds} model replies each\n"
        f"  opening prompts   {opening:,} tokens ({how}); every further reply resends the conversation, with "
        "the FHIR server's JSON, so an episode of r replies costs more than r times its opening\n"
        f"  input cost (USD)  {cost} for one reply per task",
        flush=True,
    )
    remove_output(Path(str(plain["paths"]["predictions"])), sweep_record=True)
    return 0


def main(cfg: DictConfig) -> int:
    """Hydra task: play the tasks, print one summary line, return predict's exit code."""
    if cfg.run.get("dry_run"):  # no FHIR server, no model server, no key, no file
        return dry_run(cfg)
    job, out = run(cfg)
    totals = store.totals(job.run_dir, check=episode_problem) if job.run_dir.is_dir() else None
    return finish(job, out, totals, what="task")
