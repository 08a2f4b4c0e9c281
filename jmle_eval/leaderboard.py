"""Per-run summaries and the leaderboard tables (``leaderboard/<dataset>.{csv,json,md}``).

A summary holds everything about one run that a reader needs without opening the
scored lines: points and verdict per exam, accuracy with bootstrap CIs (all,
text-only, image), breakdowns, parse statistics, errors, tokens, cost, latency.
The leaderboard is built from summaries only; two tables like JMLE2026-Bench's
README (all questions, text-only questions), plus a long per-exam table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmle_eval import stats
from jmle_eval.exams import breakdowns, exam_results, graded_pairs
from jmle_eval.grade import Key
from jmle_eval.render import settings_label

FORMAT = 1


def _accuracy(pairs: Sequence[tuple[Key, Mapping[str, Any]]], bootstrap: Mapping[str, int]) -> dict[str, Any]:
    correct = sum(bool(i["correct"]) for _, i in pairs)
    n = len(pairs)
    return {
        "correct": correct,
        "n": n,
        "accuracy": round(correct / n, 4) if n else None,
        "ci95": stats.accuracy_ci(correct, n, bootstrap["samples"], bootstrap["seed"]),
    }


def _points(keys: Sequence[Key], items: Sequence[Mapping[str, Any]], text_only: bool) -> dict[str, Any]:
    chosen = [(k, i) for k, i in zip(keys, items, strict=True) if k.counted and not (text_only and k.requires_image)]
    earned = sum(i["points"] for _, i in chosen)
    possible = sum(k.points for k, _ in chosen)
    return {"points": earned, "max": possible, "pct": round(100 * earned / possible, 2) if possible else None}


def _usage(tally: Mapping[str, Any], answered: int) -> dict[str, Any]:
    total = tally["prompt"] + tally["completion"]
    tokens = None
    if total:  # imported runs carry no usage: unknown, not zero
        tokens = {
            "prompt": tally["prompt"],
            "completion": tally["completion"],
            "reasoning": tally["reasoning"],
            "total": total,
            "completion_per_question": round(tally["completion"] / answered, 1) if answered else None,
        }
    known = answered > 0 and tally["cost_known"]
    return {
        "tokens": tokens,
        "cost_usd": round(tally["cost"], 6) if known else None,
        "cost_source": ("price" if tally["cost_from_price"] else "predictions") if known else None,
        "latency_s": stats.percentiles(tally["latency"]),
        "finish_reasons": dict(sorted(tally["finish"].items())),
    }


def run_summary(
    run: str,
    dataset: str,
    info: Mapping[str, Any],
    keys: Sequence[Key],
    items: Sequence[Mapping[str, Any]],
    tally: Mapping[str, Any],
    card: Mapping[str, Any],
    bootstrap: Mapping[str, int],
    bad_files: Sequence[str] = (),
    current_version: str | None = None,
) -> dict[str, Any]:
    """Return the summary of one graded run (written as ``scored/<dataset>/<run>.summary.json``).

    ``dataset_version`` is the version the run was asked on (run.json); ``dataset_version_scored``
    the card's version now (a key fix changes it: the run is graded with the fixed key).
    """
    pairs = graded_pairs(keys, items)
    status = Counter(i["status"] for i in items)
    ok = [i for k, i in pairs if i["status"] == "ok"]
    failures = sorted(i["question_id"] for i in ok if i["parse_rule"] is None)
    strict = sum(i["strict"] for i in ok)
    mode = info.get("parse_mode") or "lenient"
    model = info.get("model") or {}
    # The CI describes the same population as the score: every counted question, where an
    # unanswered one (missing, or left out by image_mode=skip) earns nothing.
    counted = [(k, i) for k, i in zip(keys, items, strict=True) if k.counted]
    score_ci = stats.score_ci(
        [k.points for k, _ in counted],
        [bool(i["correct"]) for _, i in counted],
        bootstrap["samples"],
        bootstrap["seed"],
    )
    return {
        "format": FORMAT,
        "run": run,
        "dataset": dataset,
        "dataset_version": info.get("dataset_version"),
        "dataset_version_scored": current_version,
        "model": {k: model.get(k) for k in ("name", "id", "display_name", "vision", "reasoning_effort")},
        "settings": {
            "image_mode": info.get("image_mode"),
            "parse_mode": info.get("parse_mode") or "lenient",
            "prompt_version": info.get("prompt_version"),
            "provider": info.get("provider"),
        },
        "source": info.get("source"),
        "questions": {
            "total": len(items),
            "excluded": sum(not k.counted for k in keys),
            "answered": status["ok"] + status["error"],
            "missing": status["missing"],
            "not_asked": status["not_asked"],
            "text_only_unanswered": sum(
                i["status"] in ("missing", "not_asked")
                for k, i in zip(keys, items, strict=True)
                if not k.requires_image
            ),
        },
        "accuracy": {
            "all": _accuracy(pairs, bootstrap),
            "text_only": _accuracy([p for p in pairs if not p[0].requires_image], bootstrap),
            "image": _accuracy([p for p in pairs if p[0].requires_image], bootstrap),
        },
        "score": {
            **_points(keys, items, text_only=False),
            "pct_ci95": [round(100 * v, 2) for v in score_ci] if score_ci else None,
        },
        "score_text_only": _points(keys, items, text_only=True),
        "exams": exam_results(keys, items, card),
        **breakdowns(keys, items),
        "parse": {  # over graded questions (excluded ones left out), like every other count
            "mode": mode,
            "failures": len(failures),
            "failure_ids": failures,
            "strict": strict if mode == "lenient" else None,
            "strict_rate": round(strict / len(ok), 4) if ok and mode == "lenient" else None,
            "rules": dict(sorted(Counter(i["parse_rule"] or "failed" for i in ok).items())),
        },
        "errors": status["error"],
        "error_ids": sorted(i["question_id"] for i in items if i["status"] == "error"),
        **_usage(tally, status["ok"] + status["error"]),
        "skipped_files": list(bad_files),
        "bootstrap": dict(bootstrap),
    }


def _exam_columns(exam: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    req, gen = exam["required"], exam["general"]
    row = {
        f"{prefix}required_points": req["points"],
        f"{prefix}required_max": req["candidate_max"],
        f"{prefix}required_pct": req["pct"],
        f"{prefix}general_points": gen["points"],
        f"{prefix}general_max": gen["max"],
        f"{prefix}verdict": exam["verdict"],
        f"{prefix}kinki_picks": exam["kinki"]["picks"],
        f"{prefix}missing": exam["missing"] + exam["not_asked"],
    }
    if "stand_in" in exam:
        row[f"{prefix}stand_in_verdict"] = exam["stand_in"]["verdict"]
    return row


def _base_row(summary: Mapping[str, Any], acc: Mapping[str, Any], score: Mapping[str, Any]) -> dict[str, Any]:
    """Return the columns both leaderboards share: who, points, score (and its CI where known), accuracy + CI."""
    row: dict[str, Any] = {
        "run": summary["run"],
        "model": summary["model"].get("display_name") or summary["run"],
        "settings": settings_label(summary),
        "points": score["points"],
        "points_max": score["max"],
        "score_pct": score["pct"],
    }
    if "pct_ci95" in score:
        row["score_ci_low"], row["score_ci_high"] = score["pct_ci95"] or (None, None)
    row.update(correct=acc["correct"], answered=acc["n"], accuracy=acc["accuracy"])
    row["accuracy_ci_low"], row["accuracy_ci_high"] = acc["ci95"] or (None, None)
    return row


def row_all(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Return the summary's row of the all-questions leaderboard (flat, CSV-ready)."""
    usage = summary["tokens"] or {}
    row = _base_row(summary, summary["accuracy"]["all"], summary["score"])
    exams = summary["exams"]
    for name, exam in exams.items():
        row.update(_exam_columns(exam, "" if len(exams) == 1 else f"{name}_"))
    row.update(
        parse_failures=summary["parse"]["failures"],
        strict_rate=summary["parse"]["strict_rate"],
        errors=summary["errors"],
        prompt_tokens=usage.get("prompt"),
        completion_tokens=usage.get("completion"),
        reasoning_tokens=usage.get("reasoning"),
        cost_usd=summary["cost_usd"],
    )
    return row


def row_text_only(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Return the summary's row of the text-only leaderboard."""
    row = _base_row(summary, summary["accuracy"]["text_only"], summary["score_text_only"])
    row.update(parse_failures=summary["parse"]["failures"], errors=summary["errors"])
    return row


def exam_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return one long-table row per exam of the run (``leaderboard/<dataset>.exams.csv``)."""
    rows = []
    for name, exam in summary["exams"].items():
        req, gen = exam["required"], exam["general"]
        stand_in = exam.get("stand_in") or {}
        rows.append(
            {
                "run": summary["run"],
                "model": summary["model"].get("display_name") or summary["run"],
                "exam": int(name),
                "year": exam["year"],
                "required_points": req["points"],
                "required_max": req["candidate_max"],
                "required_threshold": req["threshold"],
                "required_pass": req["passed"],
                "general_points": gen["points"],
                "general_max": gen["max"],
                "general_threshold": gen["threshold"],
                "general_pass": gen["passed"],
                "verdict": exam["verdict"],
                "stand_in_verdict": stand_in.get("verdict"),
                "kinki_picks": exam["kinki"]["picks"],
                "kinki_max": exam["kinki"]["max"],
                "missing": exam["missing"],
                "not_asked": exam["not_asked"],
            }
        )
    return rows


def rank(summaries: Sequence[Mapping[str, Any]], text_only: bool = False) -> list[Mapping[str, Any]]:
    """Return the summaries sorted by score (points), then accuracy, then run name."""
    part = "score_text_only" if text_only else "score"
    acc = "text_only" if text_only else "all"

    def key(s: Mapping[str, Any]) -> tuple[float, float, str]:
        return (-s[part]["points"], -(s["accuracy"][acc]["accuracy"] or 0.0), s["run"])

    return sorted(summaries, key=key)


def tables(summaries: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Return the leaderboard tables: ``all``, ``text_only`` and the long ``exams`` table."""
    ranked = rank(summaries)
    return {
        "all": [row_all(s) for s in ranked],
        "text_only": [row_text_only(s) for s in rank(summaries, text_only=True)],
        "exams": [r for s in ranked for r in exam_rows(s)],
    }


def write(
    dataset: str, card: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]], folder: Path, plots: bool = True
) -> list[Path]:
    """Write ``leaderboard/<dataset>.{csv,json,md}``, ``.exams.{csv,json}`` and the plots; return the paths."""
    import pandas as pd

    from jmle_eval.render import markdown
    from jmle_eval.runs import dump_json, write_atomic

    data = tables(summaries)

    def csv(rows: list[dict[str, Any]]) -> str:
        return pd.DataFrame(rows, dtype=object).to_csv(index=False, lineterminator="\n")

    criteria = {
        str(k): {"pass": v.get("pass"), "stand_in_pass": v.get("stand_in_pass")} for k, v in card["exams"].items()
    }
    written = {
        folder / f"{dataset}.csv": csv(data["all"]),
        folder / f"{dataset}.json": dump_json(
            {
                "dataset": dataset,
                "title": card.get("title"),
                "criteria": criteria,
                "all": data["all"],
                "text_only": data["text_only"],
            }
        ),
        folder / f"{dataset}.md": markdown(dataset, card, rank(summaries), rank(summaries, text_only=True)),
        folder / f"{dataset}.exams.csv": csv(data["exams"]),
        folder / f"{dataset}.exams.json": dump_json({"dataset": dataset, "exams": data["exams"]}),
    }
    for path, text in written.items():
        write_atomic(path, text)
    paths = list(written)
    if plots:
        from jmle_eval import plots as figures

        paths += figures.write_all(dataset, card, rank(summaries), folder)
    return paths
