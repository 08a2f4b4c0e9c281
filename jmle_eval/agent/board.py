"""An agent run's summary record, and the leaderboard of an agent data set built from those summaries.

``scored/<dataset>/<run>.summary.json`` is an :class:`AgentSummary`; ``leaderboard/<dataset>.{csv,json,md}``
rank the runs by overall success, and ``<dataset>.png`` is a heat map of success per task type. The
record lives here, beside its only reader, so that :mod:`jmle_eval.agent.scoring` (which builds and
writes it) imports this module and not the other way round. Same summaries → byte-identical files.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmle_eval.agent.rules import NOW_TEXT
from jmle_eval.agent.tasks import ACTION_TYPES, QUERY_TYPES
from jmle_eval.io import dump_json, write_file
from jmle_eval.report.publish import to_csv
from jmle_eval.score.parts import Accuracy, SummaryPart, Tokens
from jmle_eval.score.records import Bootstrap, RunModel, RunValue

TYPE_ORDER = (*sorted(QUERY_TYPES), *sorted(ACTION_TYPES))
"""Query types first, then action types: the paper's split, as the table and the heat map show it."""
TYPE_NAMES = {
    1: "patient search",
    2: "age",
    3: "record BP",
    4: "latest Mg",
    5: "Mg order",
    6: "mean glucose",
    7: "latest glucose",
    8: "referral",
    9: "K order + recheck",
    10: "HbA1c",
}
DPI = 110
_OUTCOME_COLUMNS = (
    ("invalid_action", "invalid_action"),
    ("round_limit", "round_limit"),
    ("errors", "error"),
    ("missing", "missing"),
)  # (CSV column, outcome)


class AgentSummary(SummaryPart):
    """One graded agent run; every rate's denominator is all selected tasks (no file, an error, an invalid
    action or the round limit count as failures)."""

    format: int
    run: str
    dataset: str
    dataset_version: str | None
    model: RunModel
    provider: RunValue
    task_types: list[int] | None  # the selection graded; None: all ten
    max_rounds: RunValue  # model replies per episode, as run.json records them
    tasks: int  # selected tasks: the denominator
    answered: int  # task files with status ok
    overall: Accuracy
    query: Accuracy
    action: Accuracy
    by_type: dict[str, Accuracy]  # "1".."10", the selected types only
    outcomes: dict[str, int]  # finished, invalid_action, round_limit, error, missing
    rounds_mean: float | None  # model replies per answered episode
    tokens: Tokens | None
    cost_usd: float | None
    skipped_files: list[str]
    bootstrap: Bootstrap

    @property
    def label(self) -> str:
        """Return the name a reader knows the run by: the model's display name, else the run name."""
        return self.model.display_name or self.run


def rank(summaries: Sequence[AgentSummary]) -> list[AgentSummary]:
    """Return the summaries by overall success (highest first), then run name."""
    return sorted(summaries, key=lambda s: (-(s.overall.accuracy or 0.0), s.run))


def settings_label(summary: AgentSummary) -> str:
    """Return the run's settings in a few words: ``effort high, types 1,3,4, 8 rounds``."""
    parts = []
    if summary.model.reasoning_effort:
        parts.append(f"effort {summary.model.reasoning_effort}")
    if summary.task_types is not None:
        parts.append("types " + ",".join(map(str, summary.task_types)))
    if summary.max_rounds is not None:
        parts.append(f"{summary.max_rounds} rounds")
    return ", ".join(parts)


def row(summary: AgentSummary) -> dict[str, Any]:
    """Return the run's leaderboard row (flat, CSV-ready; rates as fractions, a type not graded empty)."""
    low, high = summary.overall.ci95 or (None, None)
    out: dict[str, Any] = {
        "run": summary.run,
        "model": summary.label,
        "settings": settings_label(summary),
        "tasks": summary.tasks,
        "correct": summary.overall.correct,
        "overall": summary.overall.accuracy,
        "overall_ci_low": low,
        "overall_ci_high": high,
        "query": summary.query.accuracy,
        "action": summary.action.accuracy,
    }
    for t in range(1, 11):
        found = summary.by_type.get(str(t))
        out[f"T{t}"] = found.accuracy if found else None
    out.update({name: summary.outcomes.get(key, 0) for name, key in _OUTCOME_COLUMNS})
    out["completion_tokens"] = summary.tokens.completion if summary.tokens else None
    out["cost_usd"] = summary.cost_usd
    return out


NOTES = [
    "Success = tasks done right / all selected tasks: a task without a file, a failed episode (error), an "
    "invalid action or the round limit counts as a failure. Tasks are graded by the paper's rule for each type "
    f'(jmle_eval/agent/graders.py) against the FHIR server; the tasks\' "now" is fixed at {NOW_TEXT}.',
    "",
    "Query tasks (types " + ", ".join(map(str, sorted(QUERY_TYPES))) + ") only read the record; action tasks "
    "(types " + ", ".join(map(str, sorted(ACTION_TYPES))) + ") must also write orders or observations. "
    "The paper reports the two separately. CI: 95 % bootstrap over tasks.",
]


def pct(value: float | None) -> str:
    """Return a rate as ``41.3%`` (``—`` when there is none)."""
    return "—" if value is None else f"{100 * value:.1f}%"


def success_cell(summary: AgentSummary) -> str:
    """Return ``12/90 = 13.3% [6.7–21.1]``: tasks done right of all selected, with the 95 % CI."""
    ci = summary.overall.ci95
    shown = f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]" if ci else ""
    return f"{summary.overall.correct}/{summary.tasks} = {pct(summary.overall.accuracy)}{shown}"


def markdown(dataset: str, card: Mapping[str, Any], ranked: Sequence[AgentSummary]) -> str:
    """Return ``leaderboard/<dataset>.md``: a notes paragraph and one ranked table."""
    header = ["#", "Model", "Settings", "Success (95% CI)", "Query", "Action"]
    header += [f"T{t} {TYPE_NAMES[t]}" for t in TYPE_ORDER]
    header += ["Invalid", "Round limit", "Errors", "Missing", "Cost"]
    lines = [f"# Leaderboard: {card.get('title') or dataset}", "", *NOTES, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for n, s in enumerate(ranked, 1):
        cells = [str(n), s.label, settings_label(s), success_cell(s), pct(s.query.accuracy), pct(s.action.accuracy)]
        cells += [pct(s.by_type[str(t)].accuracy) if str(t) in s.by_type else "—" for t in TYPE_ORDER]
        cells += [str(s.outcomes.get(key, 0)) for _, key in _OUTCOME_COLUMNS]
        cells.append(
            "—" if s.cost_usd is None else f"${s.cost_usd:.2f}" if s.cost_usd >= 0.01 else f"${s.cost_usd:.4f}"
        )
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def heatmap(dataset: str, ranked: Sequence[AgentSummary]) -> bytes:
    """Return a PNG heat map of success %, runs × the ten task types (query types, then action types)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(ranked), len(TYPE_ORDER)), np.nan)
    for r, s in enumerate(ranked):
        for c, t in enumerate(TYPE_ORDER):
            found = s.by_type.get(str(t))
            if found is not None and found.accuracy is not None:
                grid[r, c] = 100 * found.accuracy
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.4 * max(len(ranked), 1)), layout="constrained")
    ax.set_facecolor("#eeeeee")  # a type not graded: grey, marked —
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    labels = [f"T{t} {TYPE_NAMES[t]}" for t in TYPE_ORDER]
    ax.set_xticks(range(len(TYPE_ORDER)), labels, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(ranked)), [s.label for s in ranked], fontsize=8)
    ax.axvline(len(QUERY_TYPES) - 0.5, color="#333333", linewidth=1.5)  # query | action
    for r in range(len(ranked)):
        for c in range(len(TYPE_ORDER)):
            text = "—" if np.isnan(grid[r, c]) else f"{grid[r, c]:.0f}"
            ax.text(c, r, text, ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="success %")
    ax.set_title(f"{dataset}: success per task type (query types | action types)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})  # no version: same bytes on rerun
    plt.close(fig)
    return buf.getvalue()


def write(
    dataset: str, card: Mapping[str, Any], summaries: Sequence[AgentSummary], folder: Path, plots: bool = True
) -> list[Path]:
    """Write ``leaderboard/<dataset>.{csv,json,md}`` and, with ``plots``, ``<dataset>.png``; return the paths."""
    ranked = rank(summaries)
    rows = [row(s) for s in ranked]
    written: dict[Path, str | bytes] = {
        folder / f"{dataset}.csv": to_csv(rows),
        folder / f"{dataset}.json": dump_json({"dataset": dataset, "title": card.get("title"), "all": rows}),
        folder / f"{dataset}.md": markdown(dataset, card, ranked),
    }
    if plots:
        written[folder / f"{dataset}.png"] = heatmap(dataset, ranked)
    for path, data in written.items():
        write_file(path, data)
    return list(written)
