"""Leaderboard figures (matplotlib, Agg, PNG): score bars with CIs and pass lines, block heat map, cost scatter.

PNG files are byte-identical on rerun: the Agg backend, fixed sizes and DPI, no
timestamp and no software version in the metadata. Japanese labels render with
the font that ``matplotlib_fontja`` registers (when installed).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DPI = 110
_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "unknown": "#78909c", "incomplete": "#b0bec5"}


def _pyplot() -> Any:
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


def _label(summary: Mapping[str, Any]) -> str:
    return summary["model"].get("display_name") or summary["run"]


def _overall_verdict(summary: Mapping[str, Any]) -> str:
    verdicts = [
        e.get("stand_in", e)["verdict"] if e["verdict"] == "unknown" else e["verdict"]
        for e in summary["exams"].values()
    ]
    for v in ("incomplete", "fail", "unknown"):
        if v in verdicts:
            return v
    return "pass"


def score_bars(dataset: str, card: Mapping[str, Any], ranked: Sequence[Mapping[str, Any]]) -> bytes:
    """Return a horizontal bar chart of score % with 95 % CI whiskers and the general-section pass line(s)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.38 * max(len(ranked), 1)), layout="constrained")
    labels = [_label(s) for s in ranked][::-1]
    values = [s["score"]["pct"] or 0.0 for s in ranked][::-1]
    cis = [s["score"]["pct_ci95"] for s in ranked][::-1]
    low = [v - c[0] if c else 0 for v, c in zip(values, cis, strict=True)]
    high = [c[1] - v if c else 0 for v, c in zip(values, cis, strict=True)]
    colours = [_COLOURS[_overall_verdict(s)] for s in ranked][::-1]
    ax.barh(range(len(labels)), values, xerr=[low, high], color=colours, capsize=3, ecolor="#333333")
    ax.set_yticks(range(len(labels)), labels)
    lines, note = [], ""
    for exam in (card.get("exams") or {}).values():
        rules = {**(exam.get("pass") or {})}
        if rules.get("general_min") is None and exam.get("stand_in_pass"):
            rules["general_min"] = exam["stand_in_pass"].get("general_min")
            note = f" ({exam['stand_in_pass'].get('label', 'stand-in')})"
        if rules.get("general_min") is not None and rules.get("general_max"):
            lines.append(100 * rules["general_min"] / rules["general_max"])
    if lines:
        lo, hi = min(lines), max(lines)
        if hi - lo < 0.5:
            ax.axvline(lo, color="#333333", linestyle="--", linewidth=1, label=f"general pass line {lo:.1f}%{note}")
        else:
            ax.axvspan(lo, hi, color="#ffcc80", alpha=0.4, label=f"general pass lines {lo:.1f}-{hi:.1f}%{note}")
    ax.axvline(80, color="#6a1b9a", linestyle=":", linewidth=1, label="required section 80%")
    ax.set_xlim(max(0.0, min(values + [80.0]) - 15), 100)
    ax.set_xlabel("score (% of points), 95% bootstrap CI")
    colours_note = "green pass, red fail, grey unknown/incomplete" + (", verdicts vs stand-in criteria" if note else "")
    ax.set_title(f"{dataset}: score ({colours_note})", fontsize=10)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    data = _png(fig)
    plt.close(fig)
    return data


def block_heatmap(dataset: str, ranked: Sequence[Mapping[str, Any]]) -> bytes:
    """Return a heat map of accuracy, runs × blocks, with the values written in the cells."""
    plt = _pyplot()
    import numpy as np

    blocks = sorted({b for s in ranked for b in s["by_block"]})
    grid = np.full((len(ranked), len(blocks)), np.nan)
    for r, s in enumerate(ranked):
        for c, b in enumerate(blocks):
            if b in s["by_block"] and s["by_block"][b]["accuracy"] is not None:
                grid[r, c] = 100 * s["by_block"][b]["accuracy"]
    fig, ax = plt.subplots(figsize=(1.6 + 0.45 * max(len(blocks), 1), 1.2 + 0.38 * max(len(ranked), 1)))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=40, vmax=100, aspect="auto")
    ax.set_xticks(range(len(blocks)), blocks, rotation=90 if len(blocks) > 8 else 0, fontsize=8)
    ax.set_yticks(range(len(ranked)), [_label(s) for s in ranked], fontsize=8)
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


def cost_scatter(dataset: str, ranked: Sequence[Mapping[str, Any]]) -> bytes:
    """Return accuracy against completion tokens per question (cost in the label where known)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [(s, (s["tokens"] or {}).get("completion_per_question")) for s in ranked]
    points = [(s, t) for s, t in points if t and s["accuracy"]["all"]["accuracy"] is not None]
    for s, tokens in points:
        acc = 100 * s["accuracy"]["all"]["accuracy"]
        ax.scatter(tokens, acc, color=_COLOURS[_overall_verdict(s)])
        cost = "" if s["cost_usd"] is None else f" (${s['cost_usd']:.2f})"
        ax.annotate(_label(s) + cost, (tokens, acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
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


def write_all(dataset: str, card: Mapping[str, Any], ranked: Sequence[Mapping[str, Any]], folder: Path) -> list[Path]:
    """Write ``<dataset>.png``, ``.blocks.png`` and ``.cost.png``; return their paths."""
    from jmle_eval.runs import write_atomic

    figures = {
        folder / f"{dataset}.png": score_bars(dataset, card, ranked),
        folder / f"{dataset}.blocks.png": block_heatmap(dataset, ranked),
        folder / f"{dataset}.cost.png": cost_scatter(dataset, ranked),
    }
    for path, data in figures.items():
        write_atomic(path, data)
    return list(figures)
