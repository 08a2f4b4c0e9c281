"""Leaderboard tables of the HTML report: ``leaderboard/<dataset>.json`` as sortable HTML tables.

Known columns of the score stage (points, accuracy with CI, per-exam sections and
verdicts, parse failures, tokens, cost, the judge's score and the per-rubric judge
columns) are combined into readable cells; a column
this module does not know is still shown, as is, so a new leaderboard field never
disappears from the report. Every value is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jmle_eval.schema import ANSWER_MARKER

Row = Mapping[str, Any]
TITLES = {"all": "All questions", "text_only": "Text-only questions"}
VERDICTS = {"pass", "fail", "unknown", "incomplete"}
_EXAM = re.compile(r"^(?:(\d+)_)?required_points$")


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _int(value: Any) -> str:
    return "–" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def _pct(fraction: Any) -> str:
    return "–" if fraction is None else f"{100 * fraction:.1f} %"


def _tokens(value: Any) -> str:
    if value is None:
        return "–"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return str(value)


def _cost(value: Any) -> str:
    return "–" if value is None else f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _ci(low: Any, high: Any, scale: float) -> str:
    """Return the CI as ``[low, high]`` in percent (``scale`` turns the bounds into percent)."""
    if not all(isinstance(b, (int, float)) for b in (low, high)):
        return ""
    return f'<span class="muted ci">[{scale * low:.1f}, {scale * high:.1f}]</span>'


def _td(shown: str, sort: Any, cls: str = "num", raw: bool = False, title: str = "") -> str:
    """Return a cell; ``raw`` marks ``shown`` as already-escaped HTML built here."""
    key = "" if sort is None else _esc(sort)
    tip = f' title="{_esc(title)}"' if title else ""
    return f'<td class="{cls}" data-sort="{key}"{tip}>{shown if raw else _esc(shown)}</td>'


def _verdict(value: Any) -> str:
    word = str(value).lower() if value is not None else "unknown"
    cls = word if word in ("pass", "fail") else "unknown"
    return _td("–" if value is None else str(value), word, cls=cls)


@dataclass(frozen=True)
class Column:
    """One leaderboard column: the exam it belongs to, its header, the row keys it shows and how."""

    group: str
    head: str
    keys: Sequence[str]
    cell: Callable[[Row], str]
    help: str = ""


def _plain(group: str, head: str, key: str, fmt: Callable[[Any], str] = _int, help: str = "") -> Column:
    """Return a column that shows one key, formatted, and sorts by its raw value."""
    if key.endswith("verdict"):
        return Column(group, head, [key], lambda r: _verdict(r.get(key)), help)

    def cell(row: Row) -> str:
        value = row.get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return _td(fmt(value) if number or value is None else str(value), value)

    return Column(group, head, [key], cell, help)


def _exam_columns(
    prefix: str, group: str, stand_in: str | None, exam: str, sections: Mapping[tuple[str, str], Row]
) -> list[Column]:
    """Return one exam's columns; ``sections`` (the long exams table) says whether each section passes."""
    p = prefix

    def section(name: str) -> Callable[[Row], str]:
        def cell(row: Row) -> str:
            points, most = row.get(f"{p}{name}_points"), row.get(f"{p}{name}_max")
            shown = f"{_int(points)}/{_int(most)}"
            if row.get(f"{p}{name}_pct") is not None:
                shown += f" ({row[f'{p}{name}_pct']:.1f} %)"
            result = sections.get((str(row.get("run")), exam)) or {}
            passed, mark = result.get(f"{name}_pass"), result.get(f"{name}_threshold")
            if passed is None:
                return _td(shown, points, title="pass mark unknown" if result else "")
            cls = "num pass" if passed else "num fail"
            return _td(f"{shown} {'✓' if passed else '✗'}", points, cls=cls, title=f"pass mark {mark}")

        return cell

    return [
        Column(group, "Required", [f"{p}required_points", f"{p}required_max", f"{p}required_pct"], section("required"),
               "必修: points / the candidate's maximum"),
        Column(group, "General", [f"{p}general_points", f"{p}general_max", f"{p}general_pct"], section("general"),
               "一般・臨床: points / maximum"),
        _plain(group, "Pass", f"{p}verdict",
               help="pass/fail against this exam's published criteria (unknown when they are not published)"),
        _plain(group, stand_in or "Stand-in", f"{p}stand_in_verdict",
               help="verdict against another exam's criteria, clearly not the official result"),
        _plain(group, "Kinki", f"{p}kinki_picks", help="prohibited-choice picks (unofficial labels)"),
        _plain(group, "Missing", f"{p}missing", help="questions of this exam without an answer file"),
    ]  # fmt: skip


def _columns(rows: Sequence[Row], criteria: Mapping[str, Any], sections: Mapping[tuple[str, str], Row]) -> list[Column]:
    def model(row: Row) -> str:
        settings = f'<br><span class="muted">{_esc(row["settings"])}</span>' if row.get("settings") else ""
        return _td(f"{_esc(row.get('model') or row.get('run'))}{settings}", row.get("model"), cls="model", raw=True)

    def fraction(points: str, most: str, pct: str, low: str, high: str, scale: float) -> Callable[[Row], str]:
        def cell(row: Row) -> str:
            value, top = row.get(pct), row.get(high)
            shown = f"{_esc(_int(row.get(points)))}/{_esc(_int(row.get(most)))}"
            if isinstance(value, (int, float)):
                shown += f" ({value * scale:.1f} %)"
            ci_scale = scale  # the bounds share the value's unit, unless they are a fraction of a percentage
            if isinstance(top, (int, float)) and isinstance(value, (int, float)) and top <= 1.0 < value * scale:
                ci_scale = 100.0
            return _td(f"{shown} {_ci(row.get(low), top, ci_scale)}", value, raw=True)

        return cell

    keys = list(dict.fromkeys(k for row in rows for k in row))
    prefixes = [m.group(1) for k in keys if (m := _EXAM.match(k))]
    cols = [
        Column("", "Model", ["model", "settings"], model, "display name; settings below"),
        Column("", "Run", ["run"], lambda r: _td(str(r.get("run")), r.get("run"), cls="muted")),
        *_record_columns(),
        Column("", "Score", ["points", "points_max", "score_pct", "score_ci_low", "score_ci_high"],
               fraction("points", "points_max", "score_pct", "score_ci_low", "score_ci_high", 1.0),
               "exam points / maximum (%), [95 % bootstrap CI]"),
        Column("", "Accuracy", ["correct", "answered", "accuracy", "accuracy_ci_low", "accuracy_ci_high"],
               fraction("correct", "answered", "accuracy", "accuracy_ci_low", "accuracy_ci_high", 100.0),
               "questions right / answered (%), [95 % bootstrap CI]"),
    ]  # fmt: skip
    for prefix in prefixes:
        exam = prefix or (next(iter(criteria), None) if len(criteria) == 1 else None) or ""
        stand_in = ((criteria.get(exam) or {}).get("stand_in_pass") or {}).get("label")
        group = f"{prefix}th exam" if prefix else ""
        cols += _exam_columns(f"{prefix}_" if prefix else "", group, stand_in, exam, sections)
    cols += [
        _plain("", "Parse failures", "parse_failures"),
        _plain("", "Strict format", "strict_rate", _pct, f"answers given on the required {ANSWER_MARKER} line exactly"),
        _plain("", "Errors", "errors"),
        _plain("", "Prompt tokens", "prompt_tokens", _tokens),
        _plain("", "Completion tokens", "completion_tokens", _tokens, "includes reasoning tokens"),
        _plain("", "Reasoning tokens", "reasoning_tokens", _tokens),
        _plain("", "Cost", "cost_usd", _cost, "USD; – = unknown"),
        _plain("", "Judge cost", "judge_cost_usd", _cost, "USD, every judge of the run; apart from the model's cost"),
        *_rubric_columns(keys),
    ]  # fmt: skip
    cols = [c for c in cols if any(k in keys for k in c.keys)]
    used = {k for c in cols for k in c.keys}
    for key in keys:  # columns this module does not know: shown as they are
        if key not in used:
            cols.append(Column("", key, [key], _generic_cell(key)))
    return cols


def _kappa(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _percent(value: Any) -> str:
    """Return a value that already is a percentage: ``93.0 %``."""
    return "–" if value is None else f"{value:.1f} %"


def _text(value: Any) -> str:
    return "–" if value is None else str(value)


def _record_columns() -> list[Column]:
    """Return the columns of a data set graded by a judge: its score (ranked), the judges, the 0–10 shares."""

    def score(row: Row) -> str:
        value, judged, n = row.get("judge_score_pct"), row.get("judge_judged"), row.get("judge_n")
        shown = "–" if not isinstance(value, (int, float)) else f"{value:.1f} %"
        shown = _esc(shown) + " " + _ci(row.get("judge_score_ci_low"), row.get("judge_score_ci_high"), 1.0)
        if isinstance(judged, int) and isinstance(n, int) and judged < n:
            shown += f'<br><span class="muted">judged {judged:,}/{n:,}</span>'
        return _td(shown, value, raw=True)

    def judges(row: Row) -> str:
        rubric = f'<br><span class="muted">{_esc(row["judge_rubric"])}</span>' if row.get("judge_rubric") else ""
        return _td(f"{_esc(row.get('judge_model') or 'not judged yet')}{rubric}", row.get("judge_model"), "", True)

    return [
        Column("Judge", "Judge score", ["judge_score_pct", "judge_score_ci_low", "judge_score_ci_high", "judge_judged",
               "judge_n"], score, "mean grade per counted question (unjudged count 0), [95 % bootstrap CI]; ranked"),
        Column("Judge", "Judges", ["judge_model", "judge_rubric"], judges, "judge model(s); rubric below"),
        _plain("Judge", "10/10", "judge_exact_rate", _pct, "0–10 rubric: share of questions scored 10"),
        _plain("Judge", "≥ 7", "judge_at_least_7_rate", _pct, "0–10 rubric: share of questions scored 7 or more"),
    ]  # fmt: skip


RUBRIC_KEYS: dict[str, tuple[str, Callable[[Any], str], str]] = {
    "judge": ("Judges", _text, "the judge model(s) of this rubric"),
    "score_pct": ("Judge grade", _percent, "mean grade per counted question, unjudged count 0"),
    "rescued": ("Rescued", _int, "parse failures the judge read an answer from"),
    "agreement": ("Agreement", _pct, "parser and judge agree, of the answered questions both decided"),
    "kappa": ("κ", _kappa, "Cohen's κ, parser vs judge"),
    "disagreements": ("Disagreements", _int, "questions where parser and judge decided differently"),
    "inter_judge_kappa": ("Inter-judge κ", _kappa, "mean pairwise κ of the judges (quadratic-weighted for scores)"),
    "stale": ("Stale", _int, "judgments of an answer predicted again since: not used"),
}


def _assisted(p: str) -> Callable[[Row], str]:
    def cell(row: Row) -> str:
        value = row.get(f"{p}assisted_accuracy")
        ci = _ci(row.get(f"{p}assisted_ci_low"), row.get(f"{p}assisted_ci_high"), 100.0)
        return _td(f"{_esc(_pct(value))} {ci}", value, raw=True)

    return cell


def _rubric_columns(keys: Sequence[str]) -> list[Column]:
    """Return the per-rubric judge columns (``<rubric>_…``), one group per rubric."""
    cols = []
    for rubric in [k.removesuffix("_stale") for k in keys if k.endswith("_stale")]:
        p = f"{rubric}_"
        plain = [_plain(rubric, head, p + key, fmt, help) for key, (head, fmt, help) in RUBRIC_KEYS.items()]
        assisted = Column(
            rubric, "Assisted", [f"{p}assisted_accuracy", f"{p}assisted_ci_low", f"{p}assisted_ci_high"],
            _assisted(p), "accuracy with the judge's letters where the parser read none, [95 % bootstrap CI]",
        )  # fmt: skip
        cols += [*plain[:2], assisted, *plain[2:]]
    return cols


def _generic_cell(key: str) -> Callable[[Row], str]:
    return lambda row: _generic(row.get(key))


def _generic(value: Any) -> str:
    if isinstance(value, str) and value.lower() in VERDICTS:
        return _verdict(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return _td(_int(value) if not isinstance(value, bool) else str(value).lower(), value)
    return _td(", ".join(map(str, value)) if isinstance(value, list) else str(value), None, cls="")


def table_html(
    name: str, rows: Sequence[Row], criteria: Mapping[str, Any], sections: Mapping[tuple[str, str], Row]
) -> str:
    """Return one leaderboard table (rows in the file's order, which is its rank order)."""
    cols = _columns(rows, criteria, sections)
    head = ""
    if any(c.group for c in cols):
        groups: list[list[Any]] = []
        for c in cols:
            if groups and groups[-1][0] == c.group:
                groups[-1][1] += 1
            else:
                groups.append([c.group, 1])
        head += "<tr>" + "".join(f'<th colspan="{n}" class="group">{_esc(g)}</th>' for g, n in groups) + "</tr>"
    head += "<tr>" + "".join(f'<th title="{_esc(c.help or c.head)}">{_esc(c.head)}</th>' for c in cols) + "</tr>"
    body = "".join(
        f'<tr data-rank="{rank}" data-run="{_esc(row.get("run", ""))}">' + "".join(c.cell(row) for c in cols) + "</tr>"
        for rank, row in enumerate(rows)
    )
    title = TITLES.get(name, name)
    return (
        f'<h3>{_esc(title)}</h3>\n<div class="table-wrap"><table class="sortable lb" data-board="{_esc(name)}">'
        f"<thead>{head}</thead><tbody>{body}</tbody></table></div>"
    )


def leaderboard_html(doc: Any, exams: Any = None) -> str:
    """Return every table of a leaderboard document (``all``, ``text_only``, …) as HTML.

    ``exams`` is the long per-exam table (``leaderboard/<dataset>.exams.json``); with it the
    required and general cells show whether that section passes.
    """
    if not isinstance(doc, dict):
        return '<p class="warn">The leaderboard file is not a JSON object.</p>'
    criteria: dict[str, Any] = doc["criteria"] if isinstance(doc.get("criteria"), dict) else {}
    rows = exams.get("exams") if isinstance(exams, dict) else None
    sections = {(str(r.get("run")), str(r.get("exam"))): r for r in rows or [] if isinstance(r, dict)}
    tables = [
        table_html(name, rows, criteria, sections)
        for name, rows in doc.items()
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)
    ]
    return "\n".join(tables) or '<p class="warn">The leaderboard file has no table.</p>'
