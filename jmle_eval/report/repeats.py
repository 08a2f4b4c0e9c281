"""How a ``run.repeats=k`` run shows on a leaderboard: its k, mean ± SD with a CI, majority vote, pass@k.

A repeats run's ordinary columns (accuracy, points, verdicts) are those of its
majority answers (``score.repeats``); these columns add what the k samples say,
so its row compares with one-sample rows through ``repeat_mean`` (the expected
accuracy of one sample). Rows of one-sample runs have none of these columns, so
their bytes are what they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jmle_eval.score.records import RunSummary

NOTES = [
    "A run with k repeats asked every question k times. Its accuracy, points and verdicts above are those of the "
    "majority answer of each question (self-consistency; ties go to the answer given first). Mean ± SD = the mean "
    "and the standard deviation of the k one-sample accuracies: compare this with one-sample runs. Its 95 % CI "
    "resamples questions, each with the mean of its k samples, so it covers both question and sampling variance. "
    "Consistency = the mean share of a question's samples that give its majority answer; pass@k = questions that "
    "at least one sample answers correctly."
]


def columns(summary: RunSummary) -> dict[str, Any]:
    """Return a repeats run's leaderboard columns (none for a one-sample run)."""
    r = summary.repeats
    if r is None:
        return {}
    low, high = r.ci95 or (None, None)
    row: dict[str, Any] = {
        "repeats": r.k,
        "repeat_mean": r.mean,
        "repeat_sd": r.sd,
        "repeat_ci_low": low,
        "repeat_ci_high": high,
        "majority_accuracy": r.majority,
        "consistency": r.consistency,
        "pass_at_k": r.pass_at_k,
    }
    if r.score_pct_by_repeat is not None:
        row.update(repeat_score_pct_mean=r.score_pct_mean, repeat_score_pct_sd=r.score_pct_sd)
        row.update({f"passes_{exam}": f"{n}/{r.k}" for exam, n in (r.passes or {}).items()})
    return row


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


HEADER = ["Model", "k", "Mean ± SD (95% CI)", "Majority", "Consistency", "pass@k", "Score % mean ± SD", "Passes"]
"""The columns of the Markdown "Repeated samples" table (``render`` draws it)."""


def rows(ranked: Sequence[RunSummary]) -> list[list[Any]]:
    """Return the cells of the repeats runs: k, mean ± SD [CI], majority, consistency, pass@k, score, passes."""
    out = []
    for s in ranked:
        r = s.repeats
        if r is None:
            continue
        ci = f" [{100 * r.ci95[0]:.1f}–{100 * r.ci95[1]:.1f}]" if r.ci95 else ""
        mean = "—" if r.mean is None else f"{100 * r.mean:.1f}" + ("" if r.sd is None else f" ± {100 * r.sd:.1f}") + "%"
        score = (
            "—"
            if r.score_pct_mean is None
            else f"{r.score_pct_mean:.1f}" + ("" if r.score_pct_sd is None else f" ± {r.score_pct_sd:.1f}")
        )
        passes = ", ".join(f"{exam}: {n}/{r.k}" for exam, n in (r.passes or {}).items()) or "—"
        cells = [s.label, r.k, f"{mean}{ci}", _pct(r.majority), _pct(r.consistency), _pct(r.pass_at_k)]
        out.append([*cells, score, passes])
    return out
