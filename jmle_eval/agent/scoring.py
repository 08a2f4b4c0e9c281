"""The score stage of agent data sets (MedAgentBench): task files → graded lines, run summaries, leaderboard.

``predictions/<dataset>/<run>/`` holds ``run.json`` and one ``<task_id>.json`` per task (``records.EpisodeRecord``).
Each finished episode is graded by its type's rule (``graders``): types 1, 3 and 8 from the transcript alone, the
others against the FHIR server, checked once per run before grading. Every rate's denominator is all selected
tasks: no usable file, an error, an invalid action or the round limit is a failure, never left out. Writes
``scored/<dataset>/<run>.jsonl`` (a line per task), ``<run>.summary.json`` (``board.AgentSummary``) and
``leaderboard/<dataset>.*``; the same inputs give byte-identical outputs.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmle_eval import datasets
from jmle_eval.agent import board, graders
from jmle_eval.agent.board import AgentSummary as AgentSummary  # the summary record, re-exported
from jmle_eval.agent.episode import OUTCOMES, Episode
from jmle_eval.agent.fhir import DOCKER_HINT, FhirClient, FhirUnavailable
from jmle_eval.agent.plan import task_types
from jmle_eval.agent.records import episode_problem
from jmle_eval.agent.tasks import ACTION_TYPES, QUERY_TYPES, AgentTask, load_tasks
from jmle_eval.io import dump_json, read_regular, write_file
from jmle_eval.score.parts import Accuracy
from jmle_eval.score.records import Bootstrap, RunModel
from jmle_eval.score.runs import Skipped, is_ignored, loads, read_run_info, stored_summaries
from jmle_eval.score.summary import UsageTally, as_text, record_cost, tally_accuracy, usage_parts

FORMAT = 1
TRANSCRIPT_TYPES = frozenset({1, 3, 8})
"""Types graded from the transcript alone: scoring only these needs no FHIR server."""
CONCURRENCY = 16  # graders in flight against the FHIR server, per run
_LINE = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
Graded = tuple[dict[str, Any], Episode]  # a usable task file and its episode


def fhir_down(base: str, where: str) -> FhirUnavailable:
    """Return the error that says grading needs the FHIR server, how to start it and which setting names it."""
    return FhirUnavailable(
        f"Scoring {where} needs MedAgentBench's FHIR server at {base} (task types 2, 4, 5, 6, 7, 9 and 10 are "
        f"graded against the patients' data there), but {base}metadata does not answer. Start it with "
        f"`{DOCKER_HINT}`, wait until {base}metadata answers, and score again; or point fhir.base_url at a running "
        "server (python score.py fhir.base_url=http://<host>:8080/fhir/). Types 1, 3 and 8 alone need no server."
    )


def read_task_files(
    run_dir: Path, every: Mapping[str, AgentTask], selected: set[str], fingerprint: Any, skipped: Skipped
) -> dict[str, Graded]:
    """Return the run's usable task files of the selected tasks by task id; report and skip bad or foreign files.

    ``every`` holds all the data set's tasks: a file of a task outside the selection is left alone, not reported.
    """
    found: dict[str, Graded] = {}
    with os.scandir(run_dir) as entries:
        names = sorted(e.name for e in entries if not e.is_dir(follow_symlinks=False))  # a link is read, or reported
    for name in names:
        task_id = name.removesuffix(".json")
        if is_ignored(name) or task_id in every and task_id not in selected:
            continue
        path = run_dir / name
        if not name.endswith(".json") or task_id not in every:
            skipped.add(path, "is not the file of a task in this data set (task<type>_<k>.json)")
            continue
        try:
            record = loads(read_regular(path))
        except ValueError as exc:
            skipped.add(path, str(exc))
            continue
        problem = episode_problem(record, task_id)
        if problem is None and record["task_type"] != every[task_id].type:
            problem = f"task_type {record['task_type']} is not the type of {task_id}"
        if problem is None:
            try:
                episode = _episode(record["episode"])
            except (TypeError, KeyError, ValueError) as exc:
                problem = f"episode cannot be read ({exc})"
        if problem is not None:
            skipped.add(path, f"is not an episode record ({problem})")
        elif fingerprint and record.get("fingerprint") not in (None, fingerprint):
            skipped.add(path, "has a different fingerprint from run.json (written with other settings)")
        else:
            found[task_id] = (record, episode)
    return found


def _episode(data: dict[str, Any]) -> Episode:
    """Return the stored episode; raise ValueError where its POSTs or rounds are not what a grader reads."""
    episode = Episode.from_dict(data)
    if not isinstance(episode.rounds, int) or not isinstance(episode.posts, list):
        raise ValueError("rounds is not a whole number or posts is not a list")
    if not all(isinstance(p, dict) and isinstance(p.get("url"), str) for p in episode.posts):
        raise ValueError("a POST is not {url, body}")
    return episode


def _told_base(info: Mapping[str, Any]) -> str | None:
    """Return the FHIR base the run's agent was given (its POST URLs start with it), if run.json says."""
    told = (info.get("fingerprint_inputs") or {}).get("fhir.base_url")
    told = told or ((info.get("config") or {}).get("fhir") or {}).get("base_url")
    return str(told).rstrip("/") + "/" if told else None


def _rebase(episode: Episode, told: str | None, base: str) -> Episode:
    """Return the episode with POSTs to the base it was told moved onto ``base``: graders compare URLs with the
    base they read, and the server may answer at another address when scoring (another port, another node)."""
    if told and told != base:
        episode.posts = [
            {**post, "url": base + post["url"][len(told) :]} if str(post.get("url")).startswith(told) else post
            for post in episode.posts
        ]
    return episode


async def grade_episodes(pairs: Sequence[tuple[AgentTask, Episode]], base: str, where: str) -> list[graders.Grade]:
    """Return the grades of the episodes (in order), at most CONCURRENCY at a time through one FHIR client."""
    async with FhirClient(base) as fhir:
        if any(task.type not in TRANSCRIPT_TYPES for task, _ in pairs) and not await fhir.ready():
            raise fhir_down(base, where)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(task: AgentTask, episode: Episode) -> graders.Grade:
            async with limit:
                return await graders.grade(task, episode, fhir)

        return list(await asyncio.gather(*(one(task, episode) for task, episode in pairs)))


def _line(task: AgentTask, found: Graded | None, grade: graders.Grade | None) -> dict[str, Any]:
    """Return one task's scored line; a task without a usable file is ``missing`` (counts as a failure)."""
    line: dict[str, Any] = {
        "task_id": task.id,
        "type": task.type,
        "kind": task.kind,
        "correct": bool(grade and grade.correct),
    }
    if found is None:
        none = dict.fromkeys(("outcome", "rounds", "posts", "prompt_tokens", "completion_tokens"))
        return {**line, **none, "status": "missing", "reason": "no usable task file"}
    record, episode = found
    usage = record.get("usage") or {}
    if record["status"] == "error":
        reason = f"the episode failed: {record.get('error') or episode.error or 'no reason given'}"
    else:
        reason = grade.reason if grade else f"the episode ended without FINISH ({record['outcome']})"
    return {
        **line,
        "status": record["status"],
        "outcome": record["outcome"],
        "reason": reason,
        "rounds": episode.rounds,
        "posts": len(episode.posts),
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
    }


def _rate(lines: Sequence[Mapping[str, Any]], bootstrap: Mapping[str, int]) -> Accuracy:
    return tally_accuracy(sum(line["correct"] for line in lines), len(lines), bootstrap)


def agent_summary(
    run: str,
    info: Mapping[str, Any],
    card: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    found: Mapping[str, Graded],
    bootstrap: Mapping[str, int],
    bad_files: Sequence[str] = (),
) -> AgentSummary:
    """Return the summary of one graded run from its scored lines and task files."""
    types = task_types(card)
    model = info.get("model") or {}
    price = model.get("price") or {}
    tally = UsageTally()
    for record, _ in found.values():
        usage = record.get("usage") or {}
        tally.add(record, usage, record_cost(record, usage, price))
    rounds = [line["rounds"] for line in lines if line["status"] == "ok"]
    outcomes = Counter(line["outcome"] or "missing" for line in lines)
    selected = sorted({line["type"] for line in lines})
    return AgentSummary(
        format=FORMAT,
        run=run,
        dataset=str(card["name"]),
        dataset_version=as_text(info.get("dataset_version")),
        model=RunModel(
            name=as_text(model.get("name")),
            id=as_text(model.get("id")),
            display_name=as_text(model.get("display_name")),
            vision=model.get("vision"),
            reasoning_effort=model.get("reasoning_effort"),
        ),
        provider=info.get("provider"),
        task_types=sorted(types) if types is not None else None,
        max_rounds=(info.get("fingerprint_inputs") or {}).get("dataset.max_rounds"),
        tasks=len(lines),
        answered=sum(line["status"] == "ok" for line in lines),
        overall=_rate(lines, bootstrap),
        query=_rate([line for line in lines if line["type"] in QUERY_TYPES], bootstrap),
        action=_rate([line for line in lines if line["type"] in ACTION_TYPES], bootstrap),
        by_type={str(t): _rate([line for line in lines if line["type"] == t], bootstrap) for t in selected},
        outcomes={name: outcomes[name] for name in (*OUTCOMES, "missing")},
        rounds_mean=round(sum(rounds) / len(rounds), 3) if rounds else None,
        tokens=usage_parts(tally, len(found))["tokens"],
        cost_usd=usage_parts(tally, len(found))["cost_usd"],
        skipped_files=list(bad_files),
        bootstrap=Bootstrap(**bootstrap),
    )


def score_agent_run(
    run_dir: Path,
    card: Mapping[str, Any],
    every: Mapping[str, AgentTask],
    selected: Sequence[AgentTask],
    base: str,
    bootstrap: Mapping[str, int],
    skipped: Skipped,
) -> tuple[list[dict[str, Any]], AgentSummary] | None:
    """Return one run's scored lines (task order) and summary, or None (reported) when it is not a usable run."""
    name = str(card["name"])
    try:
        info = read_run_info(run_dir, name)
        before = len(skipped.entries)
        found = read_task_files(run_dir, every, {t.id for t in selected}, info.get("fingerprint"), skipped)
    except ValueError as exc:
        skipped.add(run_dir, str(exc))
        return None
    except OSError as exc:  # the folder itself cannot be listed
        skipped.add(run_dir, f"cannot be listed ({exc.strerror or exc})")
        return None
    told = _told_base(info)
    to_grade = [
        (task, _rebase(found[task.id][1], told, base))
        for task in selected
        if task.id in found and found[task.id][0]["status"] == "ok" and found[task.id][0]["outcome"] == "finished"
    ]
    graded = asyncio.run(grade_episodes(to_grade, base, f"{name}/{run_dir.name}"))
    grades = {task.id: grade for (task, _), grade in zip(to_grade, graded, strict=True)}
    lines = [_line(task, found.get(task.id), grades.get(task.id)) for task in selected]
    bad = Skipped.names(skipped.entries[before:])
    return lines, agent_summary(run_dir.name, info, card, lines, found, bootstrap, bad)


def score_agent_dataset(
    card: Mapping[str, Any],
    run_dirs: Sequence[Path],
    settings: Mapping[str, Any],
    bootstrap: Mapping[str, int],
    skipped: Skipped,
) -> list[AgentSummary]:
    """Grade the agent data set's runs, write their scored lines, summaries and the leaderboard; return the
    summaries. The FHIR server (``settings["fhir"]["base_url"]``) must answer when a run has tasks that read it."""
    paths = {k: Path(v) for k, v in settings["paths"].items()}
    name, types = str(card["name"]), task_types(card)
    every = load_tasks(datasets.folder(card, os.fspath(paths["data"])))
    selected = [t for t in every if types is None or t.type in types]
    base = str(settings["fhir"]["base_url"]).rstrip("/") + "/"
    by_id = {t.id: t for t in every}
    scored = []
    for run_dir in run_dirs:
        if result := score_agent_run(run_dir, card, by_id, selected, base, bootstrap, skipped):
            lines, summary = result
            folder = paths["scored"] / name
            write_file(folder / f"{run_dir.name}.jsonl", "".join(_LINE.encode(line) + "\n" for line in lines))
            write_file(folder / f"{run_dir.name}.summary.json", dump_json(summary.model_dump(mode="json")))
            scored.append(summary)
    if scored:
        summaries = list(scored)
        if settings.get("runs") is not None:  # a partial re-score keeps the other runs on the leaderboard
            summaries += stored_summaries(paths, name, {s.run for s in scored}, AgentSummary)
        board.write(name, card, summaries, paths["leaderboard"], plots=bool(settings.get("plots")))
    return scored


def print_agent_results(summaries: Sequence[AgentSummary]) -> None:
    """Print one compact table per agent data set to stdout: success with its CI, the split, the failures."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    for dataset in sorted({s.dataset for s in summaries}):
        runs = board.rank([s for s in summaries if s.dataset == dataset])
        table = Table(title=f"{dataset}: {len(runs)} run(s) scored", title_justify="left")
        for column in ("run", "success (95% CI)", "query", "action", "invalid", "round limit", "errors", "missing"):
            table.add_column(column)
        for s in runs:
            counts = [str(s.outcomes.get(k, 0)) for k in ("invalid_action", "round_limit", "error", "missing")]
            table.add_row(
                s.run, board.success_cell(s), board.pct(s.query.accuracy), board.pct(s.action.accuracy), *counts
            )
        console.print(table)
