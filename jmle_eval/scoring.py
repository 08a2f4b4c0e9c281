"""The score stage: prediction folders → scored lines, run summaries, leaderboards, plots.

``predictions/<dataset>/<run>/`` (one JSON per question + ``run.json``) is read,
every answer is parsed and graded against the data set's key, and the results are
written as ``scored/<dataset>/<run>.jsonl`` + ``.summary.json`` and
``leaderboard/<dataset>.*``. Nothing here talks to a model; the same inputs give
byte-identical outputs. A corrupt or foreign file is reported by path and skipped,
the other runs are still scored, and the exit code is then 3.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from jmle_eval.cli import register_resolvers, to_plain
from jmle_eval.config import CONF_DIR
from jmle_eval.errors import UserError
from jmle_eval.grade import Key, compile_keys, grade
from jmle_eval.parse import parse
from jmle_eval.runs import (
    Skipped,
    check_predictions_dir,
    discover,
    dump_json,
    read_predictions,
    read_run_info,
    select_runs,
    write_atomic,
)

EXIT_SKIPPED = 3
DEFAULT_MARKER = "【回答】"


@dataclass
class ScoredRun:
    """One graded run: its run.json, scored lines (exam order) and summary."""

    name: str
    dataset: str
    info: dict[str, Any]
    items: list[dict[str, Any]]
    summary: dict[str, Any]


def load_card(name: str, selected: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the data set card ``name`` with its selection filters removed (scoring grades every question)."""
    if selected and selected.get("name") == name and "exams" in selected:
        card = dict(selected)
    else:
        path = CONF_DIR / "dataset" / f"{name}.yaml"
        if not path.is_file():
            raise UserError(f"no data set card conf/dataset/{name}.yaml")
        card = to_plain(OmegaConf.load(path))
    card["years"] = None
    card["blocks"] = None
    return card


def load_keys(card: Mapping[str, Any], data_dir: str) -> list[Key]:
    """Return the grading keys of every question of the data set, in exam order."""
    from jmle_eval import datasets

    return list(compile_keys(datasets.load(card, data_dir=data_dir)).values())


def _wants(key: Key, image_mode: str) -> bool:
    return not (image_mode == "skip" and key.requires_image)


def _cost(record: Mapping[str, Any], usage: Mapping[str, Any], price: Mapping[str, Any]) -> float | None:
    if record.get("cost_usd") is not None:
        return float(record["cost_usd"])
    if price.get("input") is None or price.get("output") is None:
        return None
    return (usage.get("prompt_tokens", 0) * price["input"] + usage.get("completion_tokens", 0) * price["output"]) / 1e6


def score_predictions(
    keys: Sequence[Key], info: Mapping[str, Any], predictions: Mapping[str, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return one scored line per question (exam order) and the run's usage tally."""
    image_mode = info["image_mode"]
    mode = info.get("parse_mode") or "lenient"
    marker = ((info.get("config") or {}).get("prompt") or {}).get("answer_marker") or DEFAULT_MARKER
    price = ((info.get("model") or {}).get("price")) or {}
    tally: dict[str, Any] = {"prompt": 0, "completion": 0, "reasoning": 0, "latency": [], "cost": 0.0}
    tally.update(cost_known=True, cost_from_price=False, finish=Counter())
    items = []
    for key in keys:
        record = predictions.get(key.question_id)
        status = "not_asked" if not _wants(key, image_mode) else "missing" if record is None else record["status"]
        parsed = None
        usage: Mapping[str, Any] = {}
        if record is not None and status != "not_asked":
            usage = record.get("usage") or {}
            for name in ("prompt", "completion", "reasoning"):
                tally[name] += int(usage.get(f"{name}_tokens") or 0)
            if record.get("latency_s") is not None:
                tally["latency"].append(float(record["latency_s"]))
            cost = _cost(record, usage, price)
            tally["cost_known"] &= cost is not None
            tally["cost_from_price"] |= record.get("cost_usd") is None and cost is not None
            tally["cost"] += cost or 0.0
            tally["finish"][record.get("finish_reason") or "none"] += 1
            if status == "ok":
                parsed = parse(record.get("answer_text"), key.type, key.letters, mode=mode, marker=marker)
        answer = parsed.answer if parsed else None
        verdict = grade(key, answer) if status in ("ok", "error") else None
        items.append(
            {
                "question_id": key.question_id,
                "exam": key.exam,
                "block": key.block,
                "section": key.section,
                "type": key.type,
                "requires_image": key.requires_image,
                "points_possible": key.points,
                "status": status,
                "predicted": list(answer) if answer else None,
                "gold": [list(g) for g in key.gold],
                "correct": bool(verdict and verdict.correct),
                "points": verdict.points if verdict else 0,
                "parse_rule": parsed.rule if parsed else None,
                "strict": bool(parsed and parsed.strict),
                "kinki_hits": list(verdict.kinki_hits) if verdict else [],
                "finish_reason": record.get("finish_reason") if record else None,
                "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                "completion_tokens": int(usage.get("completion_tokens") or 0),
                "reasoning_tokens": int(usage.get("reasoning_tokens") or 0),
                "error": (record.get("error") or None) if record and status == "error" else None,
            }
        )
    return items, tally


def score_run(
    run_dir: Path,
    dataset: str,
    keys: Sequence[Key],
    card: Mapping[str, Any],
    bootstrap: Mapping[str, Any],
    skipped: Skipped,
    version: str | None = None,
) -> ScoredRun | None:
    """Return one graded run, or None (reported in ``skipped``) when the folder is not a usable run."""
    from jmle_eval.leaderboard import run_summary

    try:
        info = read_run_info(run_dir, dataset)
    except ValueError as exc:
        skipped.add(run_dir, str(exc))
        return None
    before = len(skipped.entries)
    by_id = {k.question_id: k for k in keys}
    try:
        predictions = read_predictions(run_dir, by_id, info.get("fingerprint"), skipped)
    except OSError as exc:  # the folder itself cannot be listed (permissions, a network share gone)
        skipped.add(run_dir, f"cannot be listed ({exc.strerror or exc})")
        return None
    bad_files = sorted(f"{Path(p).name}: {why}" for p, why in skipped.entries[before:])
    items, tally = score_predictions(keys, info, predictions)
    summary = run_summary(run_dir.name, dataset, info, keys, items, tally, card, bootstrap, bad_files, version)
    return ScoredRun(run_dir.name, dataset, info, items, summary)


def write_run(run: ScoredRun, scored_dir: Path) -> None:
    """Write ``scored/<dataset>/<run>.jsonl`` and ``<run>.summary.json``."""
    folder = scored_dir / run.dataset
    lines = "".join(json.dumps(i, ensure_ascii=False, sort_keys=True) + "\n" for i in run.items)
    write_atomic(folder / f"{run.name}.jsonl", lines)
    write_atomic(folder / f"{run.name}.summary.json", dump_json(run.summary))


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


def run(settings: Mapping[str, Any]) -> int:
    """Score everything the settings select; return the exit code (0, or 3 when something was skipped)."""
    from jmle_eval import importers, leaderboard, render
    from jmle_eval.compare import compare as compare_runs
    from jmle_eval.datasets import dataset_version

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
    results: dict[str, list[ScoredRun]] = {}
    for name, run_dirs in found.items():
        card = load_card(name, selected)
        keys = load_keys(card, os.fspath(paths["data"]))
        version = dataset_version(card)
        scored = [r for d in run_dirs if (r := score_run(d, name, keys, card, bootstrap, skipped, version))]
        for r in scored:
            write_run(r, paths["scored"])
        if scored:
            summaries = [r.summary for r in scored]
            if runs is not None:  # a partial re-score keeps the other runs on the leaderboard
                summaries += _other_summaries(paths, name, {r.name for r in scored})
            leaderboard.write(name, card, summaries, paths["leaderboard"], plots=bool(settings.get("plots")))
            results[name] = scored
    if compare:
        compare_runs(results, compare, bootstrap, paths["leaderboard"])
    if settings.get("report"):
        _report(list(results), {k: os.fspath(v) for k, v in paths.items()}, runs)
    render.print_results(results)
    for path, reason in skipped.entries:
        print(f"skipped: {path} {reason}", file=sys.stderr)
    if skipped.entries:
        print(
            f"done, but {len(skipped.entries)} file(s)/folder(s) were skipped (exit code {EXIT_SKIPPED}).",
            file=sys.stderr,
        )
        return EXIT_SKIPPED
    return 0


def _other_summaries(paths: Mapping[str, Path], dataset: str, exclude: set[str]) -> list[dict[str, Any]]:
    """Return the existing summaries of the data set's other runs whose prediction folder still exists."""
    out = []
    for path in sorted((paths["scored"] / dataset).glob("*.summary.json")):
        name = path.name.removesuffix(".summary.json")
        if name in exclude or not (paths["predictions"] / dataset / name / "run.json").is_file():
            continue
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue  # an unreadable old summary: that run is re-scored by a plain `python score.py`
    return out


def _report(datasets: list[str], paths: dict[str, str], runs: list[str] | None) -> None:
    """Write the HTML report of each data set (``jmle_eval.report``, when that module is installed)."""
    try:
        from jmle_eval import report
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
