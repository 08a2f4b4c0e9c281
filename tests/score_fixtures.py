"""Helpers for score-stage tests: prediction folders written in the documented store format."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jmle_eval.config import compose, load_questions
from jmle_eval.schema import Question
from jmle_eval.score.parse import format_answer

FINGERPRINT = "fp-test"


@functools.cache
def questions(dataset: str) -> tuple[Question, ...]:
    """Return every question of a data set (loaded once per test session)."""
    return tuple(load_questions(compose([f"dataset={dataset}", "dataset.years=null", "dataset.blocks=null"])))


def gold_text(q: Question) -> str:
    """Return a reply in the required format with the question's first accepted answer."""
    return f"考えた過程。\n【回答】{format_answer(q.gold, q.type)}"


def wrong_text(q: Question) -> str:
    """Return a well-formed reply that is wrong for the question."""
    if q.type == "numeric":
        return "【回答】99999"
    letters = [letter for letter, _ in q.choices] or list("abcde")
    wrong = next(x for x in letters if [x] not in q.accepted_answers)
    return f"【回答】{wrong}"


def write_run(
    root: Path,
    dataset: str,
    run: str,
    answer: Callable[[Question], str | None] = gold_text,
    *,
    image_mode: str = "blind",
    parse_mode: str = "lenient",
    price: Mapping[str, float | None] | None = None,
    usage: Mapping[str, int] | None = None,
    only: Callable[[Question], bool] = lambda q: True,
    display_name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``root/<dataset>/<run>/`` with run.json and one file per question; ``answer`` None = status error."""
    folder = root / dataset / run
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "format": 1,
        "run": run,
        "dataset": dataset,
        "dataset_version": "test",
        "fingerprint": FINGERPRINT,
        "fingerprint_inputs": {},
        "model": {
            "name": run,
            "id": f"{run}-id",
            "display_name": display_name or run,
            "vision": image_mode == "vision",
            "reasoning_effort": None,
            "price": dict(price or {"input": None, "output": None, "source": None}),
        },
        "provider": "test",
        "image_mode": image_mode,
        "prompt_version": "v1",
        "parse_mode": parse_mode,
        "created_at": "2026-01-01T00:00:00Z",
        "config": {"prompt": {"answer_marker": "【回答】"}},
        **(extra or {}),
    }
    (folder / "run.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    for q in questions(dataset):
        if not only(q) or (image_mode == "skip" and q.requires_image):
            continue
        text = answer(q)
        record = {
            "question_id": q.id,
            "status": "ok" if text is not None else "error",
            "answer_text": text,
            "reasoning_text": "reasoning" if text is not None else None,
            "finish_reason": "stop" if text is not None else None,
            "usage": dict(usage or {"prompt_tokens": 100, "completion_tokens": 20, "reasoning_tokens": 5}),
            "latency_s": 1.0 + (q.number % 10) / 10,
            "attempts": 1,
            "error": None if text is not None else "HTTP 500 after 4 attempts",
            "model": f"{run}-id",
            "fingerprint": FINGERPRINT,
            "created_at": "2026-01-01T00:00:00Z",
        }
        (folder / f"{q.id}.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    return folder


def settings(root: Path, **overrides: Any) -> dict[str, Any]:
    """Return score settings (as conf/score.yaml resolves them) with every output under ``root``."""
    base: dict[str, Any] = {
        "paths": {
            "data": str(root / "data"),
            "predictions": str(root / "predictions"),
            "scored": str(root / "scored"),
            "leaderboard": str(root / "leaderboard"),
        },
        "dataset": None,
        "runs": None,
        "compare": None,
        "import": {"jmle2026_bench": None, "igakuqa_baseline": None, "system": None, "parse": None},
        "bootstrap": {"samples": 500, "seed": 0},
        "plots": False,
        "report": False,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def read_summary(root: Path, dataset: str, run: str) -> dict[str, Any]:
    """Return a run's summary JSON."""
    return json.loads((root / "scored" / dataset / f"{run}.summary.json").read_text(encoding="utf-8"))


def read_lines(root: Path, dataset: str, run: str) -> list[dict[str, Any]]:
    """Return a run's scored lines."""
    path = root / "scored" / dataset / f"{run}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
