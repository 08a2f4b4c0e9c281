"""Human-readable views of the results: the leaderboard in Markdown, and the console summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def _ci(ci: Sequence[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"


def _count(n: int | float | None) -> str:
    if n is None:
        return "—"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n:,}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def score_cell(score: Mapping[str, Any], summary: Mapping[str, Any], text_only: bool = False) -> str:
    """Return ``488/500 (97.6%)``, flagged when the run did not answer every question (of the table)."""
    q = summary["questions"]
    gap = q["text_only_unanswered"] if text_only else q["missing"] + q["not_asked"]
    text = f"{score['points']}/{score['max']} ({_pct(score['pct'])})"
    return text + (f" (partial: {gap} not answered)" if gap else "")


def accuracy_cell(acc: Mapping[str, Any]) -> str:
    """Return ``388/400 = 97.0% [95.3–98.5]`` (accuracy with its 95 % CI)."""
    if not acc["n"]:
        return "—"
    return f"{acc['correct']}/{acc['n']} = {_pct(100 * acc['accuracy'])}{_ci(acc['ci95'])}"


def exam_cell(exam: Mapping[str, Any]) -> str:
    """Return ``161/200, 221/299: pass (kinki 0)`` for one exam."""
    req, gen = exam["required"], exam["general"]
    sections = f"{req['points']}/{req['candidate_max']}, {gen['points']}/{gen['max']}"
    return f"{sections}: {exam['verdict']} (kinki {exam['kinki']['picks']})"


def settings_label(summary: Mapping[str, Any]) -> str:
    """Return the run settings in a few words: ``blind, effort high, parse extracted``."""
    s, model = summary["settings"], summary["model"]
    parts = [s["image_mode"]]
    if model.get("reasoning_effort"):
        parts.append(f"effort {model['reasoning_effort']}")
    if s["parse_mode"] != "lenient":
        parts.append(f"parse {s['parse_mode']}")
    return ", ".join(p for p in parts if p)


def markdown(
    dataset: str, card: Mapping[str, Any], ranked: Sequence[Mapping[str, Any]], ranked_text: Sequence[Mapping[str, Any]]
) -> str:
    """Return ``leaderboard/<dataset>.md``: the all-questions and the text-only tables, with notes."""
    exams = sorted({e for s in ranked for e in s["exams"]})
    single = len(exams) == 1
    stand_in = next((s["exams"][exams[0]].get("stand_in") for s in ranked if single), None)
    header = ["#", "Model", "Settings", "Score", "Accuracy (95% CI)"]
    if single:
        header += ["Required", "General", "Pass/fail"]
        if stand_in:
            header.append(f"vs {stand_in['label']}")
    else:
        header += [f"{e}th (req, gen: verdict)" for e in exams]
    header += ["Kinki", "Parse fail", "Strict", "Errors", "Tokens", "Cost"]
    rows = []
    for n, s in enumerate(ranked, 1):
        row = [
            n,
            s["model"].get("display_name") or s["run"],
            settings_label(s),
            score_cell(s["score"], s),
            accuracy_cell(s["accuracy"]["all"]),
        ]
        if single:
            e = s["exams"][exams[0]]
            row += [f"{e['required']['points']}/{e['required']['candidate_max']} ({_pct(e['required']['pct'])})"]
            row += [f"{e['general']['points']}/{e['general']['max']}", e["verdict"]]
            if stand_in:
                row.append((e.get("stand_in") or {}).get("verdict", "—"))
        else:
            row += [exam_cell(s["exams"][x]) if x in s["exams"] else "—" for x in exams]
        tokens = s["tokens"] or {}
        row += [
            sum(e["kinki"]["picks"] for e in s["exams"].values()),
            s["parse"]["failures"],
            _pct(None if s["parse"]["strict_rate"] is None else 100 * s["parse"]["strict_rate"], 0),
            s["errors"],
            _count(tokens.get("total")),
            "—" if s["cost_usd"] is None else f"${s['cost_usd']:.2f}",
        ]
        rows.append(row)
    text_rows = [
        [
            n,
            s["model"].get("display_name") or s["run"],
            settings_label(s),
            score_cell(s["score_text_only"], s, text_only=True),
            accuracy_cell(s["accuracy"]["text_only"]),
            s["parse"]["failures"],
            s["errors"],
        ]
        for n, s in enumerate(ranked_text, 1)
    ]
    n_text = max((s["accuracy"]["text_only"]["n"] for s in ranked_text), default=0)
    notes = [
        f"# Leaderboard: {card.get('title') or dataset}",
        "",
        "Score = points over the exam maximum (excluded questions count nowhere); accuracy over the questions "
        "the run answered, with a 95 % bootstrap CI. Pass/fail uses each exam's published criteria from "
        f"`conf/dataset/{dataset}.yaml`; `unknown` where a criterion is not published, `incomplete` where the run "
        "did not answer every question. Kinki = unofficial prohibited-choice picks (IgakuQA labels), not a "
        "pass/fail reason on their own. Strict = share of answers given in the required format exactly.",
    ]
    if stand_in:
        notes += [
            "",
            f"The `vs {stand_in['label']}` column is a stand-in, not the official result ({stand_in['source']}).",
        ]
    return (
        "\n".join(
            notes
            + ["", f"## All questions ({len(ranked)} runs)", "", _table(header, rows)]
            + [
                "",
                f"## Text-only questions ({n_text} answered)",
                "",
                _table(["#", "Model", "Settings", "Score", "Accuracy (95% CI)", "Parse fail", "Errors"], text_rows),
            ]
        )
        + "\n"
    )


def print_results(results: Mapping[str, Sequence[Any]]) -> None:
    """Print one compact table per data set to stdout."""
    from rich.console import Console
    from rich.table import Table

    from jmle_eval.leaderboard import rank

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    for dataset, runs in results.items():
        table = Table(title=f"{dataset}: {len(runs)} run(s) scored", title_justify="left")
        for column in ("run", "score", "accuracy (95% CI)", "verdict", "parse fail", "errors"):
            table.add_column(column)
        for s in rank([r.summary for r in runs]):
            verdicts = ", ".join(
                f"{n}: {e['verdict']}" + (f" (stand-in: {e['stand_in']['verdict']})" if "stand_in" in e else "")
                for n, e in s["exams"].items()
            )
            table.add_row(
                s["run"],
                score_cell(s["score"], s),
                accuracy_cell(s["accuracy"]["all"]),
                verdicts,
                str(s["parse"]["failures"]),
                str(s["errors"]),
            )
        console.print(table)
