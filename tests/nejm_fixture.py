"""A synthetic NEJM Image Challenge file in the upstream schema (the real one has no licence and is not shipped).

``write_cases(folder, n)`` writes ``n`` cases where the card expects them; ``nejm_card(name, folder)`` returns
the card pointed at that folder with the synthetic file's sha256 pinned, so the loader checks it as it would
check the real file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jmle_eval.datasets import fetch
from tests.test_datasets import card

FILE = "image_challenge_dataset_20231223.json"
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def synthetic_case(i: int) -> dict[str, Any]:
    """Return case ``i`` (0-based): a weekly date from 2005, every fourth without clinical context."""
    year, week = 2005 + i // 52, i % 52
    month, day = week // 5 + 1, week % 5 * 5 + 1  # distinct dates: weeks 0-51 → jan-01 … nov-06
    correct = "ABCDE"[i % 5]
    shares = [10, 10, 10, 10, 10]
    shares["ABCDE".index(correct)] = 60
    return {
        "image_id": i + 1,
        "date": f"{MONTHS[month - 1]}-{day:02d}-{year}",
        "question": "What is the diagnosis?" if i % 4 == 3 else f"A {20 + i}-year-old patient has a rash. Diagnosis?",
        "relevant_context": "no" if i % 4 == 3 else "yes",
        **{f"option_{x}": f"Disease {i}-{x}" for x in "ABCDE"},
        **{f"option_{x}_votes": f"{share}%" for x, share in zip("ABCDE", shares, strict=True)},
        "option_most_voted": correct,
        "correct_answer": correct,
        "total_number_votes": f"{1000 + i:,}",
        "brier_score": 0.05,
    }


def write_cases(
    folder: Path, n: int = 20, changes: dict[int, dict[str, Any]] | None = None, keyed: bool = False
) -> Path:
    """Write ``n`` synthetic cases (case i updated by ``changes[i]``) as the card's file in ``folder``; return it.

    ``keyed``: write an object keyed by image id instead of a list (the loader accepts both).
    """
    cases = [{**synthetic_case(i), **(changes or {}).get(i, {})} for i in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    data: Any = {str(c["image_id"]): c for c in cases} if keyed else cases
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def nejm_card(name: str, folder: Path, **changes: object) -> dict:
    """Return card ``name`` (nejm or nejm_dx) reading ``folder``, the synthetic file's sha256 pinned."""
    data = card(name, path=str(folder), **changes)
    data["source"] = {**data["source"], "files": {FILE: fetch.sha256_of(folder / FILE)}}
    return data
