"""Accuracy broken down by the fields a data set card names (``breakdowns``: e.g. medical_task, body_system).

English benchmarks have no exam sections; what a reader asks instead is where a model
is strong or weak: MedXpertQA's medical task, body system and question type, MedMCQA's
subject. The summary holds them (``RunSummary.by_attribute``); here they become a long
table (``leaderboard/<dataset>.breakdowns.{csv,json}``: run × field × value) and one
Markdown table per field (runs × values).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jmle_eval.score.records import RunSummary, Tally


def fields(ranked: Sequence[RunSummary]) -> list[str]:
    """Return the breakdown fields any run has, in the order the card lists them."""
    return list(dict.fromkeys(name for s in ranked for name in s.by_attribute or {}))


def rows(ranked: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """Return the long table: one row per run, field and value, with correct / n / accuracy."""
    out = []
    for s in ranked:
        for name, tallies in (s.by_attribute or {}).items():
            for value, tally in tallies.items():
                out.append(
                    {
                        "run": s.run,
                        "model": s.label,
                        "field": name,
                        "value": value,
                        "correct": tally.correct,
                        "n": tally.n,
                        "accuracy": tally.accuracy,
                    }  # fmt: skip
                )
    return out


def _pct(accuracy: float | None) -> str:
    return "—" if accuracy is None else f"{100 * accuracy:.1f}%"


def _tallies(summary: RunSummary, name: str) -> dict[str, Tally]:
    return (summary.by_attribute or {}).get(name, {})


def markdown(ranked: Sequence[RunSummary]) -> list[str]:
    """Return the Markdown sections: per field, runs × values (accuracy %; the header gives each value's n)."""
    lines: list[str] = []
    for name in fields(ranked):
        values = sorted({v for s in ranked for v in _tallies(s, name)})
        if not values:  # e.g. free-text answers: no parsed accuracy to break down
            continue
        sizes = {v: max(_tallies(s, name)[v].n for s in ranked if v in _tallies(s, name)) for v in values}
        header = ["Model", *(f"{v} (n={sizes[v]})" for v in values)]
        lines += ["", f"## Accuracy by {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for s in ranked:
            cells = [s.label, *(_pct(_tallies(s, name)[v].accuracy) if v in _tallies(s, name) else "—" for v in values)]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return lines
