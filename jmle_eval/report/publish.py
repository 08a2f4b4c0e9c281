"""Write a data set's leaderboard files: the tables as CSV, JSON and Markdown, and the plots.

The long per-exam table (``.exams.{csv,json}``) belongs to the ``exam`` grader: a data set
graded by ``choice`` has no exams and gets no such files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmle_eval.io import dump_json
from jmle_eval.io import write_file as write_atomic
from jmle_eval.report import baselines, breakdowns
from jmle_eval.report.leaderboard import rank, settings_label, tables
from jmle_eval.report.render import markdown
from jmle_eval.score.records import RunSummary


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Return the rows as CSV: one column per key in order of first appearance, an absent or None value empty.

    The same bytes as ``pandas.DataFrame(rows, dtype=object).to_csv(index=False)`` (which wraps this
    very ``csv`` writer), without importing pandas: about 0.4 s of every ``score.py`` run (measured).
    """
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if row.get(c) is None else row[c] for c in columns] for row in rows)
    return buf.getvalue()


def write(
    dataset: str, card: Mapping[str, Any], summaries: Sequence[RunSummary], folder: Path, plots: bool = True
) -> list[Path]:
    """Write ``leaderboard/<dataset>.{csv,json,md}``, ``.exams.{csv,json}`` and the plots; return the paths."""
    data = tables(summaries)

    exam = any(s.exams is not None for s in summaries)
    exams = (card.get("exams") or {}) if exam else {}
    criteria = {str(k): {"pass": v.get("pass"), "stand_in_pass": v.get("stand_in_pass")} for k, v in exams.items()}
    written = {
        folder / f"{dataset}.csv": to_csv(data["all"]),
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
    }
    if any(s.readers for s in summaries):  # human readers as a reference (NEJM Image Challenge)
        written[folder / f"{dataset}.md"] += "\n".join(baselines.markdown(rank(summaries), settings_label)) + "\n"
    if any(s.by_attribute for s in summaries):  # the card's breakdowns (English benchmarks)
        long = breakdowns.rows(rank(summaries))
        written[folder / f"{dataset}.breakdowns.csv"] = to_csv(long)
        written[folder / f"{dataset}.breakdowns.json"] = dump_json({"dataset": dataset, "breakdowns": long})
        written[folder / f"{dataset}.md"] += "\n".join(breakdowns.markdown(rank(summaries))) + "\n"
    if exam:
        written[folder / f"{dataset}.exams.csv"] = to_csv(data["exams"])
        written[folder / f"{dataset}.exams.json"] = dump_json({"dataset": dataset, "exams": data["exams"]})
    for path, text in written.items():
        write_atomic(path, text)
    paths = list(written)
    if plots:
        from jmle_eval.report import plots as figures

        paths += figures.write_all(dataset, card, rank(summaries), folder)
    return paths
