"""Leaderboard figures (matplotlib, Agg, PNG): score bars with CIs and pass lines, block heat map, cost scatter.

The pass lines are the card's criteria (``exams.<n>.pass``: the general-section minimum
over its maximum, the required-section ratio); runs graded by ``choice`` get accuracy
bars without pass lines.

PNG files are byte-identical on rerun: the Agg backend, fixed sizes and DPI, no
timestamp and no software version in the metadata. Japanese labels render with
the font that ``matplotlib_fontja`` registers (when installed).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmle_eval.report.judge_columns import grade_of_record
from jmle_eval.score.records import RunSummary

DPI = 110
_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "unknown": "#78909c", "incomplete": "#b0bec5"}
_NO_VERDICT = "#5c6bc0"
"""Bars and points of runs graded without pass criteria (``choice``)."""


def pyplot() -> Any:
    """Return ``matplotlib.pyplot`` set up for these plots (Agg, a Japanese font where installed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        import matplotlib_fontja  # noqa: F401  (registers a Japanese font)
    except ImportError:
        pass
    plt.rcParams["svg.hashsalt"] = "jmle-eval"
    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def _overall_verdict(summary: RunSummary) -> str:
    verdicts = [
        e.stand_in.verdict if e.verdict == "unknown" and e.stand_in else e.verdict
        for e in (summary.exams or {}).values()
    ]
    for v in ("incomplete", "fail", "unknown"):
        if v in verdicts:
            return v
    return "pass"


def _colour(summary: RunSummary) -> str:
    return _NO_VERDICT if summary.exams is None else _COLOURS[_overall_verdict(summary)]


def _bar(summary: RunSummary) -> tuple[float, tuple[float, float] | None]:
    """Return the bar of a run in percent with its CI: the score (exam grader), the judge's grade (judge
    grader; 0 for a run not judged yet), else the accuracy."""
    if summary.judges is not None and summary.judges.grade_of_record is not None:
        grade = grade_of_record(summary)
        return (grade.pct or 0.0, grade.pct_ci95) if grade else (0.0, None)
    if summary.score is not None:
        return summary.score.pct or 0.0, summary.score.pct_ci95
    acc = summary.accuracy.all
    ci = (100 * acc.ci95[0], 100 * acc.ci95[1]) if acc.ci95 else None
    return 100 * (acc.accuracy or 0.0), ci


def pass_lines(ax: Any, card: Mapping[str, Any]) -> tuple[list[float], str]:
    """Draw each exam's general-section pass line(s) and required-section ratio from the card; return them."""
    general, required, note = [], set(), ""
    for exam in (card.get("exams") or {}).values():
        rules = {**(exam.get("pass") or {})}
        if rules.get("required_ratio") is not None:
            required.add(100 * float(rules["required_ratio"]))
        if rules.get("general_min") is None and exam.get("stand_in_pass"):
            rules["general_min"] = exam["stand_in_pass"].get("general_min")
            note = f" ({exam['stand_in_pass'].get('label', 'stand-in')})"
        if rules.get("general_min") is not None and rules.get("general_max"):
            general.append(100 * rules["general_min"] / rules["general_max"])
    if general:
        lo, hi = min(general), max(general)
        if hi - lo < 0.5:
            ax.axvline(lo, color="#333333", linestyle="--", linewidth=1, label=f"general pass line {lo:.1f}%{note}")
        else:
            ax.axvspan(lo, hi, color="#ffcc80", alpha=0.4, label=f"general pass lines {lo:.1f}-{hi:.1f}%{note}")
    for ratio in sorted(required):
        ax.axvline(ratio, color="#6a1b9a", linestyle=":", linewidth=1, label=f"required section {ratio:g}%")
    return sorted(required), note


def score_bars(dataset: str, card: Mapping[str, Any], ranked: Sequence[RunSummary]) -> bytes:
    """Return a horizontal bar chart of score % (accuracy % for ``choice``) with 95 % CIs and the card's pass lines."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.38 * max(len(ranked), 1)), layout="constrained")
    labels = [s.label for s in ranked][::-1]
    bars = [_bar(s) for s in ranked][::-1]
    values = [v for v, _ in bars]
    low = [v - c[0] if c else 0 for v, c in bars]
    high = [c[1] - v if c else 0 for v, c in bars]
    colours = [_colour(s) for s in ranked][::-1]
    ax.barh(range(len(labels)), values, xerr=[low, high], color=colours, capsize=3, ecolor="#333333")
    ax.set_yticks(range(len(labels)), labels)
    exam = any(s.exams is not None for s in ranked)
    required, note = pass_lines(ax, card) if exam else ([], "")
    ax.set_xlim(max(0.0, min(values + required, default=100.0) - 15), 100)
    if exam:
        ax.set_xlabel("score (% of points), 95% bootstrap CI")
        verdicts = "green pass, red fail, grey unknown/incomplete" + (", verdicts vs stand-in criteria" if note else "")
        ax.set_title(f"{dataset}: score ({verdicts})", fontsize=10)
        if ax.get_legend_handles_labels()[0]:  # a card without criteria has no pass line to explain
            fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    elif record := next((s.judges.grade_of_record for s in ranked if s.judges and s.judges.grade_of_record), None):
        ax.set_xlabel(f"judge score (%, rubric {record}; unjudged questions count 0), 95% bootstrap CI")
        ax.set_title(f"{dataset}: judge score", fontsize=10)
    else:
        ax.set_xlabel("accuracy (% of answered questions), 95% bootstrap CI")
        ax.set_title(f"{dataset}: accuracy", fontsize=10)
    data = _png(fig)
    plt.close(fig)
    return data


def block_heatmap(dataset: str, ranked: Sequence[RunSummary]) -> bytes:
    """Return a heat map of accuracy, runs × blocks, with the values written in the cells."""
    plt = pyplot()
    import numpy as np

    blocks = sorted({b for s in ranked for b in s.by_block})
    grid = np.full((len(ranked), len(blocks)), np.nan)
    for r, s in enumerate(ranked):
        for c, b in enumerate(blocks):
            accuracy = s.by_block[b].accuracy if b in s.by_block else None
            if accuracy is not None:
                grid[r, c] = 100 * accuracy
    fig, ax = plt.subplots(figsize=(1.6 + 0.45 * max(len(blocks), 1), 1.2 + 0.38 * max(len(ranked), 1)))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=40, vmax=100, aspect="auto")
    ax.set_xticks(range(len(blocks)), blocks, rotation=90 if len(blocks) > 8 else 0, fontsize=8)
    ax.set_yticks(range(len(ranked)), [s.label for s in ranked], fontsize=8)
    if len(blocks) * len(ranked) <= 400:
        for r in range(len(ranked)):
            for c in range(len(blocks)):
                if not np.isnan(grid[r, c]):
                    ax.text(c, r, f"{grid[r, c]:.0f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="accuracy %")
    ax.set_title(f"{dataset}: accuracy per block", fontsize=10)
    data = _png(fig)
    plt.close(fig)
    return data


def cost_scatter(dataset: str, ranked: Sequence[RunSummary]) -> bytes:
    """Return accuracy against completion tokens per question (cost in the label where known)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [
        (s, s.tokens.completion_per_question, 100 * s.accuracy.all.accuracy)
        for s in ranked
        if s.tokens and s.tokens.completion_per_question and s.accuracy.all.accuracy is not None
    ]
    for s, tokens, acc in points:
        ax.scatter(tokens, acc, color=_colour(s))
        cost = "" if s.cost_usd is None else f" (${s.cost_usd:.2f})"
        ax.annotate(s.label + cost, (tokens, acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if points:
        ax.set_xscale("log")
    else:
        ax.text(0.5, 0.5, "no run has token usage recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("completion tokens per question (incl. reasoning)")
    ax.set_ylabel("accuracy %")
    ax.set_ylim(0, 100)
    ax.set_title(f"{dataset}: accuracy vs tokens", fontsize=10)
    data = _png(fig)
    plt.close(fig)
    return data


def judge_panels(dataset: str, ranked: Sequence[RunSummary]) -> bytes | None:
    """Return two panels for a set graded by a 0–10 judge: overall score % and exact rate %, each with its CI."""
    graded = [(s, g) for s in ranked if (g := grade_of_record(s)) is not None and g.exact is not None]
    if not graded:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(graded) + 1.6), sharey=True)
    labels = [s.label + ("" if s.settings.image_mode == "vision" else " (text only)") for s, _ in graded]
    panels = (
        ("Overall score (mean / 10)", [(g.pct or 0.0, g.pct_ci95) for _, g in graded]),
        ("Exact diagnosis rate (score 10)", [_share_pct(g.exact) for _, g in graded]),
    )
    for ax, (title, bars) in zip(axes, panels, strict=True):
        values = [v for v, _ in bars]
        errors = [[v - ci[0] if ci else 0 for v, ci in bars], [ci[1] - v if ci else 0 for v, ci in bars]]
        ax.barh(range(len(bars)), values, xerr=errors, color=_NO_VERDICT, capsize=3)
        for y, v in enumerate(values):
            ax.text(v + 1, y, f"{v:.1f}%", va="center", fontsize=8)
        ax.set_xlim(0, 105)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("% with 95 % bootstrap CI")
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    rubric = graded[0][0].judges.grade_of_record if graded[0][0].judges else ""
    fig.suptitle(f"{dataset}: judged by {rubric}", y=1.04)
    data = _png(fig)
    plt.close(fig)
    return data


def _share_pct(share: Any) -> tuple[float, tuple[float, float] | None]:
    rate = 100 * (share.rate or 0.0)
    return rate, (100 * share.ci95[0], 100 * share.ci95[1]) if share.ci95 else None


def write_all(dataset: str, card: Mapping[str, Any], ranked: Sequence[RunSummary], folder: Path) -> list[Path]:
    """Write ``<dataset>.png``, ``.blocks.png`` (sets with blocks), ``.cost.png`` and, for a 0–10 judge,
    ``.judge.png``; return their paths."""
    from jmle_eval.io import write_file as write_atomic
    from jmle_eval.score.parallel import ordered_map

    suffix = {"score": "", "blocks": ".blocks", "cost": ".cost", "judge": ".judge"}
    # The heat map, the slowest, is drawn first: on two cores the three figures are then done sooner.
    wanted = [*(["blocks"] if any(s.by_block for s in ranked) else []), "score", "cost", "judge"]
    jobs = [(kind, dataset, dict(card), list(ranked)) for kind in wanted]
    drawn = dict(zip(wanted, ordered_map(_draw, jobs), strict=True))  # one core each
    figures: dict[Path, bytes] = {  # a figure with nothing to show (no 0–10 judge: no panels) is not written
        folder / f"{dataset}{suffix[kind]}.png": data for kind in suffix if (data := drawn.get(kind))
    }
    for path, data in figures.items():
        write_atomic(path, data)
    return list(figures)


def _draw(job: tuple[str, str, dict[str, Any], list[RunSummary]]) -> bytes | None:
    """Return one figure's PNG bytes (a worker process draws it): score, blocks, cost or judge."""
    kind, dataset, card, ranked = job
    if kind == "score":
        return score_bars(dataset, card, ranked)
    if kind == "blocks":  # sets without blocks (English, NEJM) get no empty heat map
        return block_heatmap(dataset, ranked)
    if kind == "cost":
        return cost_scatter(dataset, ranked)
    return judge_panels(dataset, ranked)
