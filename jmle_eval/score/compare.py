"""Paired comparison of two runs on the same questions: ``python score.py compare='[run_a,run_b]'``.

Both runs are compared on the questions both answered (excluded questions left
out): the accuracy difference with a paired-bootstrap 95 % CI, and the exact
McNemar test on the questions only one of them got right. Written to
``leaderboard/<dataset>.compare.<a>__<b>.json`` and printed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from jmle_eval.errors import UserError
from jmle_eval.io import dump_json
from jmle_eval.io import write_file as write_atomic
from jmle_eval.schema import ScoredItem
from jmle_eval.score import stats
from jmle_eval.score.runs import read_scored


def compare(
    scored: Mapping[str, Collection[str]], names: Sequence[str], bootstrap: Mapping[str, int], paths: Mapping[str, Path]
) -> dict[str, Any]:
    """Compare two runs scored just now (``scored``: run names by data set) on the questions both answered.

    Their scored lines are read from ``paths["scored"]``; the result is written to ``paths["leaderboard"]``
    and printed.
    """
    if len(names) != 2 or names[0] == names[1]:
        raise UserError(f"compare needs two different run names, e.g. compare='[run_a,run_b]'; got {list(names)}.")
    both = [ds for ds, runs in scored.items() if set(names) <= set(runs)]
    if not both:
        listed = sorted({f"{ds}/{run}" for ds, runs in scored.items() for run in runs})
        raise UserError(
            f"compare: runs {names[0]} and {names[1]} were not both scored in one data set. "
            f"Scored runs: {', '.join(listed) or 'none'}. Check the names, dataset= and runs=."
        )
    if len(both) > 1:
        raise UserError(f"compare: both runs exist in data sets {', '.join(both)}; choose one with dataset=<name>.")
    dataset = both[0]
    a, b = ({i.question_id: i for i in read_scored(paths["scored"] / dataset / f"{n}.jsonl")} for n in names)
    common = [q for q, i in a.items() if _graded(i) and _graded(b[q])]
    result = {
        "dataset": dataset,
        "run_a": names[0],
        "run_b": names[1],
        **stats.paired_difference([a[q].correct for q in common], [b[q].correct for q in common], **bootstrap),
        "points_a": sum(a[q].points for q in common),
        "points_b": sum(b[q].points for q in common),
        "points_max": sum(a[q].points_possible for q in common),
        "bootstrap": dict(bootstrap),
        "method": "accuracy difference a - b on questions both runs answered (excluded questions left out); "
        "paired bootstrap 95 % CI; exact McNemar test on the discordant questions",
    }
    write_atomic(paths["leaderboard"] / f"{dataset}.compare.{names[0]}__{names[1]}.json", dump_json(result))
    diff = result["difference"]
    print(
        f"compare {dataset}: {names[0]} vs {names[1]} on {result['n']} common questions: "
        f"accuracy {result['accuracy_a']} vs {result['accuracy_b']}, difference "
        f"{diff if diff is None else f'{diff:+.4f}'} [95% CI {result['ci_low']}, {result['ci_high']}], "
        f"only {names[0]} right {result['only_a_correct']}, only {names[1]} right {result['only_b_correct']}, "
        f"McNemar exact p = {result['mcnemar_p']}"
    )
    return result


def _graded(item: ScoredItem) -> bool:
    return item.points_possible > 0 and item.status in ("ok", "error")
