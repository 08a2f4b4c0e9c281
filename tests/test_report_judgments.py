"""The HTML report with judgments: judge grades and rationales in the question view, the parser ≠ judge filter.

The fixture is real: two runs in the prediction store format (test_report's writer: right,
wrong, unparseable and failed answers), judgments in judge.py's format, scored by the real
score stage with ``report=true`` for a data set graded by a judge (``match_answer``), with an
``extract_choice`` judge beside it. The browser part drives Debian's chromium like
test_report_browser.py.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jmle_eval.config import load_card
from jmle_eval.report import html_report as report
from jmle_eval.schema import Question
from jmle_eval.score import stage as scoring
from jmle_eval.score.parse import parse
from tests.score_fixtures import questions, settings
from tests.test_report import HOSTILE, answer_texts, page_data, write_run
from tests.test_score_judgments import choice, verdict, write_judge_run

DS = "jmle2026"
RATIONALE = "最終行で c を選んでいるが、本文では a を推している。"


def _parsed(root: Path, run: str, q: Question) -> tuple[str, ...] | None:
    record = json.loads((root / "predictions" / DS / run / f"{q.id}.json").read_text(encoding="utf-8"))
    return parse(record.get("answer_text"), q.type, "".join(c for c, _ in q.choices) or "abcde").answer


def build_judged(root: Path) -> dict[str, Any]:
    """Write runs alpha and beta with judgments, score them (grader judge, match_answer) with report=true."""
    qs = list(questions(DS))
    write_run(root / "predictions", DS, "alpha", qs, seed=1, skill=0.8, display="Alpha")
    write_run(root / "predictions", DS, "beta", qs, seed=2, skill=0.6, display="Beta")
    rng = random.Random(7)
    flips = {q.id for q in qs if rng.random() < 0.1}  # the verdict judge overrules the key on these

    def match(run: str) -> Any:
        def reply(q: Question) -> dict[str, Any]:
            answer = _parsed(root, run, q)
            right = answer is not None and [*answer] in q.accepted_answers
            return verdict("correct" if right != (q.id in flips) else "incorrect", confidence=80)

        return reply

    def extract(q: Question) -> dict[str, Any]:
        answer = _parsed(root, "alpha", q)
        if q.id == "120A-3":
            return {"rationale": HOSTILE, "answer": "none"}
        if answer is None or q.id in flips:  # reads the failures, and other letters where it "flips"
            letter = next(c for c, _ in q.choices if [c] != [*(answer or ())]) if q.choices else "none"
            return {"rationale": RATIONALE, "answer": letter.upper()}
        return choice(",".join(answer))

    for run in ("alpha", "beta"):
        write_judge_run(root, run, "match_answer-judge", "match_answer", match(run), display_name="Judge GPT")
    write_judge_run(root, "alpha", "extract_choice-judge", "extract_choice", extract, display_name="Judge GPT")
    card = {**load_card(DS), "grader": "judge", "rubric": "match_answer"}
    run_settings = settings(root, dataset=card, report=True, plots=False)
    run_settings["paths"]["judgments"] = str(root / "judgments")
    assert scoring.run(run_settings) == 0
    html = root / "leaderboard" / f"{DS}.html"
    summaries = {
        r: json.loads((root / "scored" / DS / f"{r}.summary.json").read_text("utf-8")) for r in ("alpha", "beta")
    }
    return {"root": root, "html": html, "text": html.read_text(encoding="utf-8"), "summaries": summaries}


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> dict[str, Any]:
    return build_judged(tmp_path_factory.mktemp("judged_report"))


def _disagreeing(summary: dict[str, Any]) -> set[str]:
    return {d["question_id"] for r in summary["judges"]["rubrics"] for d in r["disagreements"]}


def test_question_view_data_holds_each_judges_grade_and_rationale(judged):
    data = page_data(judged["text"])
    alpha = [r["name"] for r in data["runs"]].index("alpha")
    assert data["runs"][alpha]["judges"] == {"extract_choice-judge": "Judge GPT", "match_answer-judge": "Judge GPT"}
    details = answer_texts(judged["text"])
    with_rationale = [q for q, per_run in details.items() if per_run[alpha] and
                      per_run[alpha]["judges"]["extract_choice-judge"]["rationale"] == RATIONALE]  # fmt: skip
    assert with_rationale
    entry = details[with_rationale[0]][alpha]["judges"]["match_answer-judge"]
    assert (
        entry["rubric"] == "match_answer" and entry["confidence"] == 80 and entry["grade"] in ("correct", "incorrect")
    )


def test_disagreement_marks_match_the_summaries(judged):
    data = page_data(judged["text"])
    ids = [q["id"] for q in data["questions"]]
    for k, run in enumerate(data["runs"]):
        marked = {ids[i] for i, marks in enumerate(data["judge_marks"]) if marks[k] == "D"}
        assert marked == _disagreeing(judged["summaries"][run["name"]]) != set()


def test_cells_show_the_grade_of_record(judged):
    data = page_data(judged["text"])
    assert data["grade_of_record"] == "match_answer"
    beta = [r["name"] for r in data["runs"]].index("beta")
    lines = (judged["root"] / "scored" / DS / "beta.jsonl").read_text("utf-8").splitlines()
    for line, grades in zip(map(json.loads, lines), data["judge_grades"], strict=True):
        entry = (line.get("judges") or {}).get("match_answer-judge")
        expected = "" if not entry or entry["status"] != "ok" else "✓" if entry["correct"] else "✗"
        assert grades[beta] == expected


def test_leaderboard_html_names_the_judge_and_its_columns(judged):
    board = judged["text"].split('<section id="plots">')[0]
    for text in ("Judge score", "Judge GPT", "match_answer", "Assisted", "κ", "Stale", "Judge cost"):
        assert text in board, text
    assert "extract_choice" in board  # the per-rubric group


def test_hostile_rationale_is_data_never_markup(judged):
    text = judged["text"]
    assert text.count("</script>") == text.count("<script")
    alpha = [r["name"] for r in page_data(text)["runs"]].index("alpha")
    assert answer_texts(text)["120A-3"][alpha]["judges"]["extract_choice-judge"]["rationale"] == HOSTILE


def test_rebuilding_the_judged_report_is_byte_identical(judged, tmp_path):
    paths = {n: judged["root"] / n for n in ("predictions", "scored", "leaderboard")}
    assert report.write(DS, paths=paths, out=tmp_path / "again.html").read_bytes() == judged["html"].read_bytes()


# ---- in a real browser -----------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]


@pytest.fixture(scope="module")
def page(judged, tmp_path_factory) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (CI installs Debian's chromium)")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(judged["html"].as_uri())
        page.wait_for_selector("body[data-ready=true]")
        yield page
        assert not errors, errors
        context.close()


def test_browser_parser_judge_filter_shows_exactly_the_disagreements(page, judged):
    data = page_data(judged["text"])
    expected = [q["id"] for q, marks in zip(data["questions"], data["judge_marks"], strict=True) if "D" in marks]
    assert set(expected) == _disagreeing(judged["summaries"]["alpha"]) | _disagreeing(judged["summaries"]["beta"])
    label = page.locator("label", has=page.locator("#f-judgeDisagree"))
    assert f"({len(expected)})" in label.inner_text()
    page.locator("#f-judgeDisagree").check()
    assert page.locator("#f-shown").inner_text().startswith(f"{len(expected)} of 400 ")
    shown = page.locator("#qtable tbody tr").evaluate_all("rows => rows.map(r => r.dataset.qid)")
    assert shown == expected[:200]
    assert page.locator("#qtable tbody tr").first.locator("td.jd").count() >= 1
    page.locator("#f-judgeDisagree").uncheck()
    assert page.locator("#f-shown").inner_text().startswith("400 of 400 ")


def test_browser_question_view_shows_the_judges_rationale_and_disagreement(page, judged):
    alpha = {d["question_id"]: d for d in judged["summaries"]["alpha"]["judges"]["rubrics"][0]["disagreements"]}
    qid = sorted(alpha)[0]
    page.evaluate(f"location.hash = '#q={qid}'")
    page.wait_for_selector('#qview .run-answer[data-run="alpha"] .judge')
    block = page.locator('#qview .run-answer[data-run="alpha"] .judge[data-judge="extract_choice-judge"]')
    assert "disagree" in (block.get_attribute("class") or "")
    assert "Judge GPT" in block.inner_text() and "disagrees with the parser" in block.inner_text()
    assert block.locator(".rationale").inner_text() == RATIONALE
    page.evaluate("location.hash = '#q=120A-3'")
    page.wait_for_selector('#qview .run-answer[data-run="alpha"] .judge .rationale')
    assert page.evaluate("window.__pwned") is None
    assert page.locator('#qview img[src="x"]').count() == 0
    page.screenshot(path=str(judged["root"] / "report-judges.png"))
