"""Human readers as a reference row (the NEJM Image Challenge), and the per-run columns beside them.

The readers are not a run: their row has no settings and is never ranked. It gives a
random reader's accuracy (the mean vote share of the right option) over the run's
question set; each run's row adds the readers' mean on the cases it answered and how
often it chose the option most readers chose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from jmle_eval.score.records import RunSummary

LABEL = "Readers (mean vote share)"


def columns(summary: RunSummary) -> dict[str, Any]:
    """Return a run's reader columns (agreement, the readers on the same cases) and whether images were shown."""
    r = summary.readers
    out: dict[str, Any] = {}
    if r is not None:
        out["readers_mean_same_cases"] = summary.vs_human.human_mean_accuracy if summary.vs_human else None
        out["readers_choice_agreement"] = r.agreement_rate
    if r is not None or (summary.judges and summary.judges.grade_of_record):  # image benchmarks: say so per row
        out["images_shown"] = summary.settings.image_mode == "vision"
    return out


def reference_row(ranked: Sequence[RunSummary]) -> dict[str, Any] | None:
    """Return the readers' row (from the first run with votes), or None when no run has reader votes."""
    first = next((s for s in ranked if s.readers), None)
    if first is None or first.readers is None:
        return None
    r = first.readers
    return {"run": None, "model": LABEL, "settings": "reference (not ranked)", "answered": r.cases,
            "accuracy": r.mean_accuracy, "readers_majority_accuracy": r.majority_accuracy}  # fmt: skip


def markdown(ranked: Sequence[RunSummary], settings: Callable[[RunSummary], str]) -> list[str]:
    """Return the "Human baseline" Markdown section, or nothing without reader votes."""
    ref = reference_row(ranked)
    if ref is None:
        return []
    lines = [
        "", "## Human baseline", "",
        f"{LABEL}: {100 * ref['accuracy']:.1f}% over {ref['answered']} cases (a random reader's chance of being "
        f"right); the readers' most-voted option is right in {100 * ref['readers_majority_accuracy']:.1f}%.", "",
        "| Model | Settings | Accuracy | Readers on the same cases | Chose the readers' favourite |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for s in ranked:
        if s.readers is None:
            continue
        acc, human = s.accuracy.all.accuracy, s.vs_human.human_mean_accuracy if s.vs_human else None
        agree = s.readers.agreement_rate
        cells = [s.label, settings(s), _pct(acc), _pct(human), _pct(agree)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"
