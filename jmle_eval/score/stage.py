"""The score stage: prediction folders → scored lines, run summaries, leaderboards, plots.

``predictions/<dataset>/<run>/`` (one JSON per question + ``run.json``) is read,
every answer is parsed and graded against the data set's key, and the results are
written as ``scored/<dataset>/<run>.jsonl`` (one ``schema.ScoredItem`` a line) +
``.summary.json`` (a ``records.RunSummary``, as the card's grader makes it) and
``leaderboard/<dataset>.*``. Nothing here talks to a model; the same inputs give
byte-identical outputs. A corrupt or foreign file is reported by path and skipped,
the other runs are still scored, and the exit code is then 3.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from jmle_eval.config import load_card, register_resolvers, to_plain
from jmle_eval.errors import UserError
from jmle_eval.io import dump_json
from jmle_eval.io import write_file as write_atomic
from jmle_eval.schema import ScoredItem
from jmle_eval.score import parallel
from jmle_eval.score.grade import Key, compile_keys
from jmle_eval.score.graders import grader_of
from jmle_eval.score.judged import judge_section
from jmle_eval.score.judgments import judgments_folder, read_judge_runs
from jmle_eval.score.lines import score_predictions
from jmle_eval.score.records import RunSummary
from jmle_eval.score.repeats import repeats_of, score_repeats
from jmle_eval.score.runs import (
    SELECTION,
    Skipped,
    check_predictions_dir,
    discover,
    read_predictions,
    read_run_info,
    run_card,
    select_runs,
    stored_summaries,
)
from jmle_eval.score.summary import run_summary

EXIT_SKIPPED = 3
_LINE = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
"""Encodes a scored line as ``json.dumps(line, ensure_ascii=False, sort_keys=True)`` does, built once, not per line."""


@dataclass
class ScoredRun:
    """One graded run: its scored lines (exam order) and summary."""

    name: str
    dataset: str
    items: list[ScoredItem]
    summary: RunSummary


def load_keys(card: Mapping[str, Any], data_dir: str) -> list[Key]:
    """Return the grading keys of every question of the data set, in exam order."""
    from jmle_eval import datasets

    return list(compile_keys(datasets.load(card, data_dir=data_dir)).values())


def score_run(
    run_dir: Path,
    dataset: str,
    keys: Sequence[Key],
    card: Mapping[str, Any],
    bootstrap: Mapping[str, Any],
    skipped: Skipped,
    version: str | None = None,
    judgments: Path | None = None,
) -> ScoredRun | None:
    """Return one graded run, or None (reported in ``skipped``) when the folder is not a usable run.

    ``judgments`` is ``paths.judgments``: the run's judge runs are read from ``<judgments>/<dataset>/<run>/``
    when that folder exists (one stat for a run without).
    """
    try:
        info = read_run_info(run_dir, dataset)
    except ValueError as exc:
        skipped.add(run_dir, str(exc))
        return None
    before = len(skipped.entries)
    by_id = {k.question_id: k for k in keys}
    judged_dir = judgments_folder(judgments, dataset, run_dir.name)
    hashes: dict[str, str] | None = {} if judged_dir else None  # a judgment names the file it judged
    k = repeats_of(info)
    try:
        predictions = read_predictions(run_dir, by_id, info.get("fingerprint"), skipped, hashes, repeats=k)
    except OSError as exc:  # the folder itself cannot be listed (permissions, a network share gone)
        skipped.add(run_dir, f"cannot be listed ({exc.strerror or exc})")
        return None
    repeated = None
    if k > 1:  # the lines are the majority answers; judge.py does not judge samples, so no judge section
        items, tally, repeated = score_repeats(keys, info, predictions, card, bootstrap, k)
        judged_dir = None
    else:
        items, tally = score_predictions(keys, info, predictions)
    judges = read_judge_runs(judged_dir, dataset, run_dir.name, by_id, hashes or {}, skipped) if judged_dir else []
    bad_files = skipped.names(skipped.entries[before:], judged_dir)
    where = f"{Path(judgments or 'judgments').name}/{dataset}/{run_dir.name}/"  # no machine path in a summary
    section = judge_section(keys, items, judges, card, bootstrap, where)
    summary = run_summary(run_dir.name, dataset, info, keys, items, tally, card, bootstrap, bad_files, version, section)
    summary.repeats = repeated
    return ScoredRun(run_dir.name, dataset, items, summary)


def _line(item: ScoredItem) -> dict[str, Any]:
    """Return a scored line as written: ``judges`` only where the question has judgments."""
    line = item.model_dump()
    for part in ("judges", "repeats"):  # only where the question has them: other lines keep their bytes
        if line[part] is None:
            del line[part]
    return line


def write_run(run: ScoredRun, scored_dir: Path) -> None:
    """Write ``scored/<dataset>/<run>.jsonl`` and ``<run>.summary.json``."""
    folder = scored_dir / run.dataset
    lines = "".join(_LINE.encode(_line(i)) + "\n" for i in run.items)
    write_atomic(folder / f"{run.name}.jsonl", lines)
    write_atomic(folder / f"{run.name}.summary.json", dump_json(run.summary.model_dump(mode="json")))


@dataclass(frozen=True)
class RunJob:
    """What grading one run needs, sent whole to a worker process."""

    run_dir: Path
    dataset: str
    keys: list[Key]
    card: dict[str, Any]
    bootstrap: Mapping[str, Any]
    version: str | None
    judgments: Path | None
    scored: Path


def grade_one(job: RunJob) -> tuple[RunSummary | None, list[tuple[str, str]]]:
    """Grade one run and write its scored lines and summary; return the summary and what was skipped."""
    skipped = Skipped()
    run = score_run(job.run_dir, job.dataset, job.keys, job.card, job.bootstrap, skipped, job.version, job.judgments)
    if run is not None:
        write_run(run, job.scored)
    return (run.summary if run else None), skipped.entries


def _import_plotting() -> None:
    """Import matplotlib (about 0.4 s) so that the plot workers, forked later, start with it loaded."""
    from jmle_eval.report import plots

    plots.pyplot()


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _bootstrap(spec: Mapping[str, Any]) -> dict[str, int]:
    try:
        samples, seed = int(spec.get("samples", 2000)), int(spec.get("seed", 0))
    except (TypeError, ValueError):
        samples = seed = -1
    if samples < 1 or seed < 0:
        raise UserError(
            "bootstrap.samples must be a positive whole number and bootstrap.seed a non-negative one; "
            f"got {dict(spec)}."
        )
    return {"samples": samples, "seed": seed}


def _score_dataset(
    name: str,
    run_dirs: Sequence[Path],
    settings: Mapping[str, Any],
    bootstrap: Mapping[str, int],
    skipped: Skipped,
) -> list[RunSummary]:
    """Grade the data set's runs, write their scored lines and summaries and the leaderboard; return the summaries."""
    from jmle_eval.datasets import dataset_version
    from jmle_eval.report import publish

    paths = {k: Path(v) for k, v in settings["paths"].items()}
    card = load_card(name, settings.get("dataset") or None)
    if grader_of(card) == "agent":  # a grader that does not exist (or not yet) stops here, before any run is read
        from jmle_eval.agent import scoring  # episodes, not questions: their own lines, summary and leaderboard

        chosen = settings.get("dataset") or {}
        if chosen.get("name") == name and "task_types" in chosen:  # dataset.task_types=[…] on the command line
            card = {**card, "task_types": chosen["task_types"]}
        scoring.print_agent_results(scoring.score_agent_dataset(card, run_dirs, settings, bootstrap, skipped))
        return []
    variants: dict[str, tuple[dict[str, Any], list[Key], str]] = {}
    jobs = []
    for run_dir in run_dirs:
        own = run_card(card, run_dir)
        tag = json.dumps({k: own.get(k) for k in SELECTION}, sort_keys=True)
        if tag not in variants:  # each question set (e.g. a sample) is loaded once
            variants[tag] = (own, load_keys(own, os.fspath(paths["data"])), dataset_version(own))
        own, keys, version = variants[tag]
        jobs.append(RunJob(run_dir, name, keys, own, bootstrap, version, paths.get("judgments"), paths["scored"]))
    scored = []
    warm = _import_plotting if settings.get("plots") else None  # matplotlib loads while the runs are graded
    for summary, entries in parallel.ordered_map(grade_one, jobs, warm):  # in run order
        skipped.entries += entries
        if summary is not None:
            scored.append(summary)
    if scored:
        summaries = list(scored)
        if settings.get("runs") is not None:  # a partial re-score keeps the other runs on the leaderboard
            summaries += stored_summaries(paths, name, {s.run for s in scored}, RunSummary)
        publish.write(name, card, summaries, paths["leaderboard"], plots=bool(settings.get("plots")))
    return scored


def run(settings: Mapping[str, Any]) -> int:
    """Score everything the settings select; return the exit code (0, or 3 when something was skipped)."""
    from jmle_eval.report import render
    from jmle_eval.score import importers
    from jmle_eval.score.compare import compare as compare_runs

    paths = {k: Path(v) for k, v in settings["paths"].items()}
    selected = settings.get("dataset") or None
    runs = _as_list(settings.get("runs"))
    compare = _as_list(settings.get("compare"))
    if compare is not None and (len(compare) != 2 or compare[0] == compare[1]):
        raise UserError(f"compare needs two different run names, e.g. compare='[run_a,run_b]'; got {compare}.")
    bootstrap = _bootstrap(settings.get("bootstrap") or {})
    skipped = Skipped()
    check_predictions_dir(paths["predictions"])  # before an import tries to write into it
    imported = importers.run_imports(settings.get("import") or {}, paths["predictions"])
    # An import scores the data sets it wrote to (every run there), unless dataset= says otherwise.
    datasets = {selected["name"]} if selected else {d for d, _ in imported} or None
    found = select_runs(discover(paths["predictions"], datasets, skipped), runs)
    results: dict[str, list[RunSummary]] = {}
    for name, run_dirs in found.items():
        if scored := _score_dataset(name, run_dirs, {**settings, "runs": runs}, bootstrap, skipped):
            results[name] = scored
    if compare:
        compare_runs({name: [s.run for s in scored] for name, scored in results.items()}, compare, bootstrap, paths)
    if settings.get("report"):
        _report(list(results), {k: os.fspath(v) for k, v in paths.items()}, runs)
    render.print_results(results)
    for summary in (s for scored in results.values() for s in scored):
        if summary.judges and summary.judges.note:
            print(f"note: {summary.dataset}/{summary.run}: {summary.judges.note}", file=sys.stderr)
    for path, reason in skipped.entries:
        print(f"skipped: {path} {reason}", file=sys.stderr)
    if skipped.entries:
        print(
            f"done, but {len(skipped.entries)} file(s)/folder(s) were skipped (exit code {EXIT_SKIPPED}).",
            file=sys.stderr,
        )
        return EXIT_SKIPPED
    return 0


def _report(datasets: list[str], paths: dict[str, str], runs: list[str] | None) -> None:
    """Write the HTML report of each data set (``jmle_eval.report``, when that module is installed)."""
    try:
        from jmle_eval.report import html_report as report
    except ImportError as exc:
        raise UserError("report=true needs jmle_eval.report, which is not available in this installation.") from exc
    for name in datasets:
        report.write(name, runs=runs, paths=paths)


def main(cfg: DictConfig) -> int:
    """Hydra entry point of ``score.py``: resolve the config and score."""
    register_resolvers()
    settings = to_plain(cfg)
    if not isinstance(settings, dict):  # pragma: no cover - Hydra always gives a mapping
        raise UserError("score.py needs a configuration mapping.")
    return run(settings)
