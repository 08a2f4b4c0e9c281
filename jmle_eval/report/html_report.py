"""HTML results report: ``leaderboard/<dataset>.html``, one self-contained file per data set.

The file needs no server and no network: leaderboard tables, the score stage's plots,
a filterable per-question table (every run's answer, ✓/✗) and a question view (stem,
choices, clinical images, gold answer, and per run the parsed answer, the raw answer
text, the reasoning and each judge's grade with its short rationale). With judgments,
the table marks where a judge decided differently from the parser and can be filtered
on it. It reads what score.py wrote (scored/, leaderboard/; the judgments are in the
scored lines) and the prediction files for the texts, so run the score stage first.

python -m jmle_eval.report                                   # every scored data set
python -m jmle_eval.report dataset=jmle2026 runs='[a,b]'     # the same keys as score.py
python score.py report=true                                  # score, then write the reports
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from jmle_eval.errors import UserError
from jmle_eval.io import write_file
from jmle_eval.schema import Question

PLOTS = (
    ("", "Score with 95 % CI and the pass lines"),
    (".blocks", "Accuracy per block"),
    (".cost", "Accuracy against tokens and cost"),
)
DEFAULT_PATHS = {
    "data": Path("data"),
    "predictions": Path("predictions"),
    "scored": Path("scored"),
    "leaderboard": Path("leaderboard"),
}
_RUN_META = ("image_mode", "provider", "parse_mode", "prompt_version")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def load_run(dataset: str, run: str, scored_dir: Path, predictions_dir: Path) -> dict[str, Any]:
    """Return one run's label and settings (from run.json) and its scored lines keyed by question id."""
    items: dict[str, dict[str, Any]] = {}
    path = scored_dir / dataset / f"{run}.jsonl"
    # split on "\n" only: a judge's rationale may hold U+2028 or other characters splitlines() breaks on
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            items[item["question_id"]] = item
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path} line {number} is not a scored line ({exc}); run score.py again.") from exc
    meta = _read_json(predictions_dir / dataset / run / "run.json")
    meta = meta if isinstance(meta, dict) else {}
    model: dict[str, Any] = meta["model"] if isinstance(meta.get("model"), dict) else {}
    info = {"name": run, "label": str(model.get("display_name") or model.get("name") or run), "model": model.get("id")}
    info.update({key: meta.get(key) for key in _RUN_META})  # only these: run.json's config stays out of the report
    if judges := _judge_names(scored_dir / dataset / f"{run}.summary.json"):
        info["judges"] = judges
    return {"info": info, "items": items}


def _judge_names(summary_path: Path) -> dict[str, str]:
    """Return the display name of each judge run of a scored run (from its summary), by judge run name."""
    summary = _read_json(summary_path)
    judges = summary.get("judges") if isinstance(summary, dict) else None
    found = judges.get("judges") if isinstance(judges, dict) else None
    names = {}
    for judge in found if isinstance(found, list) else []:
        model = judge.get("model") if isinstance(judge, dict) else None
        if isinstance(model, dict) and isinstance(judge.get("run"), str):
            names[judge["run"]] = str(model.get("display_name") or model.get("name") or judge["run"])
    return names


def leaderboard_runs(doc: Any) -> list[str]:
    """Return the run names of the leaderboard document's first table, in its (rank) order."""
    for rows in doc.values() if isinstance(doc, dict) else []:
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            return [str(r["run"]) for r in rows if r.get("run") is not None]
    return []


def _load_questions(dataset: str, data_dir: Path) -> list[Question]:
    """Return every question of the data set (the card's years/blocks filters ignored, as in scoring)."""
    from omegaconf import OmegaConf

    from jmle_eval import datasets
    from jmle_eval.config import CONF_DIR, to_plain

    path = CONF_DIR / "dataset" / f"{dataset}.yaml"
    if not path.is_file():
        raise UserError(f"There is no data set card conf/dataset/{dataset}.yaml for the scored data set '{dataset}'.")
    card = {**to_plain(OmegaConf.load(path)), "years": None, "blocks": None}
    return datasets.load(card, data_dir=data_dir)


def write(
    dataset: str,
    *,
    paths: Mapping[str, str | Path] | None = None,
    runs: Sequence[str] | None = None,
    questions: Sequence[Question] | None = None,
    out: str | Path | None = None,
) -> Path:
    """Write the data set's HTML report (default ``<leaderboard>/<dataset>.html``) and return its path.

    ``paths`` are score.yaml's ``paths`` (data, predictions, scored, leaderboard). The report
    shows the runs of ``leaderboard/<dataset>.json`` in its order, limited to ``runs`` when
    given. ``questions`` saves loading the data set again (pass all of it, unfiltered).
    """
    from jmle_eval.report.html import build

    where = {**DEFAULT_PATHS, **{k: Path(v) for k, v in (paths or {}).items()}}
    predictions, scored, leaderboard = where["predictions"], where["scored"], where["leaderboard"]
    board_path = leaderboard / f"{dataset}.json"
    board = _read_json(board_path)
    if not isinstance(board, dict):
        raise UserError(
            f"No readable leaderboard {board_path}: the report is built from the score stage's outputs. "
            f"Run `python score.py dataset={dataset}` first (or `python score.py report=true`)."
        )
    on_board = [r for r in leaderboard_runs(board) if (scored / dataset / f"{r}.jsonl").is_file()]
    names = [r for r in on_board if r in set(runs)] if runs else on_board
    if not names:
        asked = f" named {', '.join(runs)}" if runs else ""
        raise UserError(
            f"No scored run{asked} on the leaderboard {board_path} (with scored lines in {scored / dataset}/). "
            f"Runs there: {', '.join(on_board) or 'none'}. Score runs with `python score.py dataset={dataset}`."
        )
    loaded = [load_run(dataset, name, scored, predictions) for name in names]
    if questions is None:
        questions = _load_questions(dataset, where["data"])

    def read_prediction(run: str, question_id: str) -> dict[str, Any] | None:
        found = _read_json(predictions / dataset / run / f"{question_id}.json")
        return found if isinstance(found, dict) else None

    plots = [(caption, leaderboard / f"{dataset}{suffix}.png") for suffix, caption in PLOTS]
    exams = _read_json(leaderboard / f"{dataset}.exams.json")
    text = build(dataset, questions, loaded, board, exams, plots, read_prediction)
    target = Path(out) if out is not None else leaderboard / f"{dataset}.html"
    write_file(target, text)  # a reader never sees a half-written report
    return target


def write_all(cfg: DictConfig) -> list[Path]:
    """Write the report of each data set a score config selects (``dataset``, ``runs``, ``paths``); return the paths."""
    paths = {str(k): Path(str(v)) for k, v in cfg.paths.items()}
    card = cfg.get("dataset")  # score.yaml: null, or the card chosen with dataset=<name>
    if card is not None:
        datasets = [str(card.get("name") if isinstance(card, DictConfig) else card)]
    else:
        boards = paths["leaderboard"].glob("*.json")
        datasets = sorted(p.stem for p in boards if (paths["scored"] / p.stem).is_dir())
        if not datasets:
            raise UserError(f"No scored data set with a leaderboard under {paths['leaderboard']}; run score.py first.")
    runs = [str(r) for r in cfg.get("runs") or []] or None
    if runs and len(datasets) > 1:  # a run filter across data sets: only those that have one of the runs
        datasets = [
            d for d in datasets if set(runs) & set(leaderboard_runs(_read_json(paths["leaderboard"] / f"{d}.json")))
        ]
        if not datasets:
            raise UserError(f"None of the runs {runs} is on a leaderboard under {paths['leaderboard']}.")
    return [write(name, paths=paths, runs=runs) for name in datasets]


def main(argv: list[str]) -> int:
    """Compose the score config from ``key=value`` arguments, write the reports, print their paths."""
    from jmle_eval.config import compose

    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return 0
    cfg = compose(argv, config_name="score")
    for path in write_all(cfg):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
