"""The report at the size the issue names: 20 runs × 2,000 questions, opened in chromium.

Reasoning texts are real model output (the gpt-oss-20b reference result's reasoning,
about 2,200 characters on average), so the file size is what a reasoning-model
comparison gives. Prints the numbers the README quotes.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from tests.conftest import REFERENCE_RESULTS, run_python
from tests.test_report import write_run

RUNS, DATASET = 20, "igakuqa"
pytestmark = pytest.mark.slow


def test_twenty_runs_of_two_thousand_questions_open_quickly(tmp_path):
    from jmle_eval.config import compose, load_questions
    from tests.test_report_browser import ARGS, CHROMIUM, sync_api  # skips this test without playwright

    if CHROMIUM is None:
        pytest.skip("no chromium on PATH")
    questions = load_questions(compose([f"dataset={DATASET}"]))
    assert len(questions) == 2000
    source = REFERENCE_RESULTS / "jmle2026" / "openai_gpt-oss-20b_medium.json"
    texts = [r["reasoning"] for r in json.loads(source.read_text(encoding="utf-8"))["results"] if r.get("reasoning")]
    for k in range(RUNS):
        rng = random.Random(k)
        special = {q.id: {"reasoning_text": rng.choice(texts)} for q in questions}
        write_run(tmp_path / "predictions", DATASET, f"model_{k:02d}", questions, seed=k, skill=0.5 + k / 50,
                  display=f"Model {k:02d}", reasoning_chars=0, special=special)  # fmt: skip
    args = [f"paths.{name}={tmp_path / name}" for name in ("predictions", "scored", "leaderboard")]
    done = run_python(["score.py", f"dataset={DATASET}", *args, "plots=false"], timeout=300)
    assert done.returncode == 0, done.stderr
    started = time.perf_counter()
    done = run_python(["-m", "jmle_eval.report", f"dataset={DATASET}", *args], timeout=300)
    build_s = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    html = tmp_path / "leaderboard" / f"{DATASET}.html"
    size_mb = html.stat().st_size / 1e6

    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS
        )
        page = context.new_page()
        started = time.perf_counter()
        page.goto(html.as_uri())
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        open_s = time.perf_counter() - started
        started = time.perf_counter()
        page.evaluate("location.hash = '#q=116F-30'")
        page.wait_for_selector("#qview .run-answer", timeout=30_000)
        question_s = time.perf_counter() - started
        started = time.perf_counter()
        page.locator("#f-disagree").check()
        filter_s = time.perf_counter() - started
        nodes = page.evaluate("document.getElementsByTagName('*').length")
        runs_shown = page.locator("#qview .run-answer").count()
        context.close()
    print(
        f"\n20 x 2000 report: {size_mb:.1f} MB, built in {build_s:.1f} s; chromium: ready {open_s:.2f} s, "
        f"question opened {question_s:.2f} s, filter {filter_s:.2f} s, {nodes} DOM elements"
    )
    assert runs_shown == RUNS
    assert nodes < 20_000  # one page of the table, not 2,000 × 20 cells
    assert open_s < 15 and question_s < 5 and filter_s < 5
    assert size_mb < 80
