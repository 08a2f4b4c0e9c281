"""The HTML report in a real headless browser (Debian chromium driven by Playwright).

Opens the file from disk with the network cut off, checks the leaderboard against
leaderboard/<dataset>.json, uses a filter, opens questions, and stores a screenshot
as a test artifact (test-artifacts/report.png).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tests.test_report import DATASET, HOSTILE, build_scored

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (CI installs Debian's chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
JAPANESE_FONTS = {"IPAGothic", "IPAPGothic", "IPAexGothic", "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans",
                  "Hiragino Kaku Gothic ProN", "Yu Gothic", "Meiryo", "TakaoGothic", "VL Gothic"}  # fmt: skip


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> dict:
    return build_scored(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, scored) -> Iterator:
    """Return a page with the report open from disk; it fails the test on script errors or network use."""
    page = browser.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
               else (outside.append(route.request.url), route.abort()))  # fmt: skip
    page.goto(scored["html"].as_uri())
    page.wait_for_selector("body[data-ready=true]")
    yield page
    assert not errors, errors
    assert not outside, f"the report tried to reach the network: {outside}"
    page.close()


def _board(scored: dict) -> dict:
    return json.loads((scored["root"] / "leaderboard" / f"{DATASET}.json").read_text(encoding="utf-8"))


def test_leaderboard_rows_match_the_leaderboard_json(page, scored):
    board = _board(scored)
    for name in ("all", "text_only"):
        rows = page.locator(f'table[data-board="{name}"] tbody tr')
        assert rows.count() == len(board[name])
        for k, expected in enumerate(board[name]):
            row = rows.nth(k)
            assert row.get_attribute("data-run") == expected["run"]
            text = row.inner_text()
            assert expected["model"] in text
            assert f"{expected['points']:,}/{expected['points_max']:,}" in text
            assert f"{expected['correct']:,}/{expected['answered']:,}" in text
    # pass/fail per exam section, from the long exams table, is marked on the section cells
    exams = json.loads((scored["root"] / "leaderboard" / f"{DATASET}.exams.json").read_text(encoding="utf-8"))
    known = [
        (r["run"], flag) for r in exams["exams"] for flag in (r["required_pass"], r["general_pass"]) if flag is not None
    ]
    assert known
    for run in {run for run, _ in known}:
        row = page.locator(f'table[data-board="all"] tbody tr[data-run="{run}"]')
        assert row.locator("td.num.pass").count() == sum(flag for r, flag in known if r == run)
        assert row.locator("td.num.fail").count() == sum(not flag for r, flag in known if r == run)
    # sorting: the first click on a header puts the largest value first
    page.locator('table[data-board="all"] thead th', has_text="Accuracy").click()
    runs = page.locator('table[data-board="all"] tbody tr').evaluate_all("rows => rows.map(r => r.dataset.run)")
    assert runs == [r["run"] for r in sorted(board["all"], key=lambda r: -r["accuracy"])]


def test_wrong_in_every_run_filter_and_question_view(page, scored):
    lines = {
        run: [
            json.loads(x)
            for x in (scored["root"] / "scored" / DATASET / f"{run}.jsonl").read_text("utf-8").splitlines()
        ]
        for run in ("alpha", "beta", "gamma")
    }
    expected = []
    for items in zip(*lines.values(), strict=True):
        graded = [i for i in items if i["status"] in ("ok", "error")]
        if graded and not any(i["correct"] for i in graded):
            expected.append(items[0]["question_id"])
    page.locator("#f-wrongAll").check()
    assert page.locator("#f-shown").inner_text().startswith(f"{len(expected)} of 400 ")
    shown = page.locator("#qtable tbody tr").evaluate_all("rows => rows.map(r => r.dataset.qid)")
    assert shown == expected[:200]
    assert "✓" not in page.locator("#qtable tbody").inner_text()

    alpha = {i["question_id"]: i for i in lines["alpha"]}
    first = next(q for q in expected if alpha[q]["status"] == "ok")  # one with alpha's reasoning to open
    page.locator(f'#qtable tbody tr[data-qid="{first}"]').click()
    page.wait_for_selector("#qview .run-answer")
    question = next(q for q in scored["questions"] if q.id == first)
    assert page.locator("#qview h2").inner_text() == first
    assert page.locator("#qview .stem").inner_text().strip() == question.stem.strip()
    assert (
        f"Gold answer: {' or '.join(','.join(a) for a in question.accepted_answers)}"
        in page.locator("#qview .gold-line").inner_text()
    )
    assert page.locator("#qview .run-answer").count() == 3
    # the reasoning is collapsed and only becomes DOM when opened
    block = page.locator('#qview .run-answer[data-run="alpha"]')
    assert block.locator("details.reasoning pre").count() == 0
    block.locator("details.reasoning summary").click()
    assert block.locator("details.reasoning pre").inner_text().strip()

    for target in (REPO / "test-artifacts" / "report.png", scored["root"] / "report.png"):
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target))
    assert (REPO / "test-artifacts" / "report.png").stat().st_size > 10_000


def _japanese_fonts() -> set[str] | None:
    """Return the font families fontconfig (which Chromium uses on Linux) has for Japanese; None without fc-list."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    listed = subprocess.run([fc_list, ":lang=ja", "family"], capture_output=True, text=True, timeout=60).stdout
    return {name.strip() for line in listed.splitlines() for name in line.split(",") if name.strip()}


def test_japanese_text_renders_with_a_japanese_font_not_as_boxes(page, scored):
    installed = _japanese_fonts()
    if installed is None:
        pytest.skip("no fc-list on PATH: cannot tell whether a Japanese font is installed")
    if not installed:
        pytest.skip("no Japanese font installed (e.g. Debian's fonts-ipafont-gothic or fonts-noto-cjk)")
    page.evaluate(f"location.hash = '#q={scored['questions'][0].id}'")
    page.wait_for_selector("#qview .stem")
    cdp = page.context.new_cdp_session(page)
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#qview .stem"})["nodeId"]
    cdp.send("CSS.enable")
    fonts = {f["familyName"] for f in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]}
    assert fonts & (JAPANESE_FONTS | installed), f"stem rendered with {fonts}; Japanese fonts here: {installed}"


def test_hostile_model_output_is_shown_as_text_and_never_runs(page):
    page.evaluate("location.hash = '#q=120A-1'")  # a deep link opens the question
    page.wait_for_selector('#qview .run-answer[data-run="alpha"] pre.answer-text')
    shown = page.locator('#qview .run-answer[data-run="alpha"] pre.answer-text').text_content()
    assert shown.startswith(HOSTILE.split("\u2028")[0])
    page.locator('#qview .run-answer[data-run="alpha"] details.reasoning summary').click()
    assert page.evaluate("window.__pwned") is None
    assert page.locator('#qview img[src="x"]').count() == 0
    # the leaderboard shows the display name with its markup as text too
    assert "Alpha <b>大型</b> モデル" in page.locator('table[data-board="all"]').inner_text()


def test_clinical_images_are_shown_downscaled(page):
    page.evaluate("location.hash = '#q=120C-73'")
    page.wait_for_selector("#qview .images img")
    sizes = page.locator("#qview .images img").evaluate_all(
        "imgs => Promise.all(imgs.map(i => i.decode().then(() => [i.naturalWidth, i.naturalHeight])))"
    )
    assert len(sizes) == 2 and all(0 < max(w, h) <= 640 for w, h in sizes)
    page.keyboard.press("ArrowRight")  # next question in the list shares the same case images
    page.wait_for_function("document.querySelector('#qview h2').textContent === '120C-74'")
    page.keyboard.press("Escape")
    assert page.locator("#qview").is_hidden()


def test_question_table_pages_and_runs_skip_cells(page, scored):
    assert page.locator("#qtable tbody tr").count() == 200  # the DOM holds one page, not every question
    page.locator("#pager-top button", has_text="next").click()
    assert page.locator("#qtable tbody tr").first.get_attribute("data-qid") == scored["questions"][200].id
    page.locator("#f-image").check()
    cells = page.locator("#qtable tbody tr td.m-none")  # gamma skipped image questions: blank, not wrong
    assert cells.count() == page.locator("#qtable tbody tr").count() > 0
    page.locator("#f-search").fill("進行性核上性麻痺")  # a choice of 120A-16 (an image question)
    assert "120A-16" in page.locator("#qtable tbody tr").evaluate_all("rows => rows.map(r => r.dataset.qid)")
    page.locator("#f-search").fill("ｂａｂｉｎｓｋｉ")  # full-width input finds "Babinski"
    assert page.locator("#qtable tbody tr").count() >= 1
