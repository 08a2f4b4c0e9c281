"""HTML report: content, safety, size and determinism (no browser; see test_report_browser.py).

The fixture is real: prediction folders in the documented store format, scored by the
real ``score.py report=true`` (which calls ``jmle_eval.report.write``).
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from jmle_eval.config import compose, load_questions
from jmle_eval.report import html as report_html
from jmle_eval.report import html_report as report
from jmle_eval.schema import Question
from tests.conftest import DATA_DIR, run_python

DATASET = "jmle2026"
SECRET = "sk-test-DO-NOT-LEAK-1234567890"
LONG = 25_000
HOSTILE = '</script><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\u2028'
"""Model output that would run code if the report ever inserted it as HTML."""


def _answer_for(q: Question, rng: random.Random, skill: float) -> str:
    """Return an answer (letters or a number) that is right with probability ``skill``."""
    if rng.random() < skill:
        return ",".join(q.accepted_answers[0])
    if q.type == "numeric":
        return str(rng.randint(1, 999))
    letters = [letter for letter, _ in q.choices] or list("abcde")
    return ",".join(sorted(rng.sample(letters, min(q.select, len(letters)))))


def write_run(
    predictions: Path,
    dataset: str,
    run: str,
    questions: Sequence[Question],
    *,
    seed: int = 0,
    skill: float = 0.7,
    display: str | None = None,
    image_mode: str = "vision",
    reasoning_chars: int = 400,
    special: dict[str, dict] | None = None,
) -> Path:
    """Write a run folder in the prediction store format (run.json + one file per question); return it.

    Most answers end with the required 【回答】 line; some are parse failures, some are
    request errors. ``special`` replaces fields of chosen questions' files.
    """
    rng = random.Random(seed)
    folder = predictions / dataset / run
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint = f"fp-{run}"
    meta = {
        "format": 1, "run": run, "dataset": dataset, "dataset_version": "test", "fingerprint": fingerprint,
        "fingerprint_inputs": {}, "provider": "vllm", "image_mode": image_mode, "prompt_version": "v1",
        "parse_mode": "lenient", "created_at": "2026-01-01T00:00:00+00:00",
        "model": {"name": run, "id": f"org/{run}", "display_name": display or run, "vision": image_mode == "vision",
                  "reasoning_effort": None, "price": {"input": 1.0, "output": 4.0, "source": "test"}},
        "config": {"provider": {"api_key_env": "TEST_API_KEY"}},
    }  # fmt: skip
    (folder / "run.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    filler = "".join(q.stem for q in questions[:20]) or "所見"
    for q in questions:
        if image_mode == "skip" and q.requires_image:
            continue
        roll = rng.random()
        start = rng.randrange(max(1, len(filler) - 50))
        reasoning = (filler[start:] + filler)[:reasoning_chars]
        record = {
            "question_id": q.id, "status": "ok", "finish_reason": "stop", "attempts": 1, "error": None,
            "model": f"org/{run}", "fingerprint": fingerprint, "created_at": "2026-01-01T00:00:00+00:00",
            "usage": {"prompt_tokens": 300 + len(q.stem), "completion_tokens": 40 + reasoning_chars // 2,
                      "reasoning_tokens": reasoning_chars // 2},
            "latency_s": round(0.5 + rng.random() * 5, 3), "reasoning_text": reasoning or None,
        }  # fmt: skip
        if roll < 0.03:
            record.update(status="error", answer_text=None, reasoning_text=None, error="HTTP 503: server overloaded")
        elif roll < 0.07:
            record["answer_text"] = "どれも当てはまらないと考えます。"  # no answer line: a parse failure
        else:
            record["answer_text"] = f"{q.stem[:30]}…より判断する。\n【回答】{_answer_for(q, rng, skill)}"
        record.update((special or {}).get(q.id, {}))
        (folder / f"{q.id}.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    return folder


# ---- a scored fixture: three runs of jmle2026 through the real score.py --------------------------------------------


def build_scored(root: Path) -> dict:
    """Write three runs (one hostile, one with a huge reasoning, one skipping image questions) and score them."""
    questions = load_questions(compose([f"dataset={DATASET}"]))
    predictions = root / "predictions"
    special = {
        "120A-1": {"answer_text": HOSTILE + "\n【回答】a", "reasoning_text": HOSTILE},
        "120A-2": {"reasoning_text": "長考" * (LONG // 2)},
    }
    alpha = write_run(predictions, DATASET, "alpha", questions, seed=1, skill=0.85, reasoning_chars=1200,
                      display="Alpha <b>大型</b> モデル", special=special)  # fmt: skip
    meta = json.loads((alpha / "run.json").read_text(encoding="utf-8"))
    meta["config"]["provider"]["api_key"] = SECRET  # a run.json that leaked a key must not leak it further
    (alpha / "run.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    write_run(predictions, DATASET, "beta", questions, seed=2, skill=0.6, display="Beta")
    write_run(predictions, DATASET, "gamma", questions, seed=3, skill=0.5, display="Gamma (text only)",
              image_mode="skip", reasoning_chars=0)  # fmt: skip
    args = [f"paths.{name}={root / name}" for name in ("predictions", "scored", "leaderboard")]
    # with plots: the image_mode=skip run is partial on the all-questions board, the case that once broke them
    done = run_python(["score.py", f"dataset={DATASET}", *args, "report=true"], timeout=180)
    assert done.returncode == 0, done.stderr
    return {"root": root, "questions": questions, "html": root / "leaderboard" / f"{DATASET}.html", "args": args}


def page_data(text: str) -> dict:
    """Return the report's JSON blob (as the page's script reads it)."""
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert blob, "the report has no data blob"
    return json.loads(blob.group(1))


def answer_texts(text: str) -> dict:
    """Return every question's per-run details, unpacked from the deflated blocks."""
    details: dict = {}
    for chunk in re.findall(r'<script type="application/octet-stream" id="chunk-\d+">(.*?)</script>', text, re.S):
        details.update(json.loads(zlib.decompress(base64.b64decode(chunk))))
    return details


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> dict:
    return build_scored(tmp_path_factory.mktemp("report"))


def test_score_with_report_true_writes_one_self_contained_file(scored):
    text = scored["html"].read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
    # nothing is fetched when the file is opened: no external scripts, styles, fonts or images
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"<link\b|@import|url\(", text)
    data = page_data(text)
    board = json.loads((scored["root"] / "leaderboard" / f"{DATASET}.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in data["runs"]] == [row["run"] for row in board["all"]]
    assert len(data["questions"]) == 400 and len(data["marks"]) == 400
    assert text.count("data:image/png;base64,") >= 3  # the score stage's three plots


def test_plots_are_embedded_as_png_data(scored, tmp_path):
    from PIL import Image

    board = tmp_path / "leaderboard"
    board.mkdir()
    for f in (scored["root"] / "leaderboard").glob(f"{DATASET}.*json"):
        (board / f.name).write_bytes(f.read_bytes())
    for suffix, colour in (("", "navy"), (".cost", "teal")):  # no .blocks.png: it is left out, not broken
        Image.new("RGB", (120, 80), colour).save(board / f"{DATASET}{suffix}.png")
    paths = {"predictions": scored["root"] / "predictions", "scored": scored["root"] / "scored", "leaderboard": board}
    text = report.write(DATASET, paths=paths, runs=["beta"]).read_text(encoding="utf-8")
    assert text.count('<img src="data:image/png;base64,') == 2
    for suffix in ("", ".cost"):
        data = base64.b64encode((board / f"{DATASET}{suffix}.png").read_bytes()).decode("ascii")
        assert f'<img src="data:image/png;base64,{data}"' in text
    assert f"{DATASET}.blocks.png" not in text


def test_marks_follow_the_scored_lines(scored):
    data = page_data(scored["html"].read_text(encoding="utf-8"))
    for k, run in enumerate(data["runs"]):
        lines = scored["root"] / "scored" / DATASET / f"{run['name']}.jsonl"
        items = [json.loads(line) for line in lines.read_text(encoding="utf-8").splitlines()]
        by_id = {i["question_id"]: i for i in items}
        for q, marks, answers in zip(data["questions"], data["marks"], data["answers"], strict=True):
            item = by_id[q["id"]]
            expected = {"ok": "C" if item["correct"] else ("W" if item["predicted"] else "P"), "error": "E",
                        "missing": "M", "not_asked": "-"}[item["status"]]  # fmt: skip
            if item["correct"]:
                expected = "C"
            assert marks[k] == expected, (run["name"], q["id"])
            assert answers[k] == ",".join(item["predicted"] or [])
    gamma = [r["name"] for r in data["runs"]].index("gamma")
    assert all(m[gamma] == "-" for q, m in zip(data["questions"], data["marks"], strict=True) if q["image"])


def test_model_output_is_data_never_markup(scored):
    text = scored["html"].read_text(encoding="utf-8")
    # only our own script elements close: hostile text cannot end one early
    assert text.count("</script>") == text.count("<script")
    assert "onerror" not in text.split('id="report-data">')[0]  # the leaderboard escapes the display name too
    assert "Alpha &lt;b&gt;大型&lt;/b&gt; モデル" in text
    assert "\u2028" not in text
    details = answer_texts(text)
    alpha = [r["name"] for r in page_data(text)["runs"]].index("alpha")
    assert details["120A-1"][alpha]["answer_text"].startswith(HOSTILE)  # shown verbatim, as text


def test_long_reasoning_is_cut_with_a_visible_note(scored):
    text = scored["html"].read_text(encoding="utf-8")
    alpha = [r["name"] for r in page_data(text)["runs"]].index("alpha")
    shown = answer_texts(text)["120A-2"][alpha]
    assert len(shown["reasoning_text"]) < report_html.TEXT_CAP + 200
    assert f"[truncated: {LONG - report_html.TEXT_CAP:,} more characters" in shown["reasoning_text"]
    assert f"predictions/{DATASET}/alpha/120A-2.json" in shown["reasoning_text"]
    assert shown["reasoning_chars"] == LONG


def test_no_secret_or_machine_path_reaches_the_report(scored):
    text = scored["html"].read_text(encoding="utf-8")
    unpacked = json.dumps(answer_texts(text), ensure_ascii=False)
    for needle in (SECRET, str(scored["root"]), str(DATA_DIR.resolve()), "TEST_API_KEY"):
        assert needle not in text and needle not in unpacked, needle


def test_images_are_downscaled_and_embedded_once(scored):
    from PIL import Image

    text = scored["html"].read_text(encoding="utf-8")
    data = page_data(text)
    files = {path for q in scored["questions"] for path in q.images}
    assert len(data["images"]) == len(files)  # 120C-73-75_1.png serves three questions, stored once
    urls = re.findall(r'<script type="text/plain" id="img-\d+">data:image/jpeg;base64,(.*?)</script>', text)
    assert len(urls) == len(files)
    for url, meta in zip(urls[:10], data["images"], strict=False):
        with Image.open(io.BytesIO(base64.b64decode(url))) as img:
            assert img.format == "JPEG" and max(img.size) <= report_html.IMAGE_MAX_PX
            assert img.size == (meta["width"], meta["height"])
    shared = next(q for q in data["questions"] if q["id"] == "120C-74")
    assert shared["images"] and set(shared["images"]) <= set(
        next(q for q in data["questions"] if q["id"] == "120C-73")["images"]
    )


def test_rebuilding_gives_a_byte_identical_file(scored, tmp_path):
    again = report.write(DATASET, paths={n: scored["root"] / n for n in ("predictions", "scored", "leaderboard")},
                         out=tmp_path / "again.html")  # fmt: skip
    assert again.read_bytes() == scored["html"].read_bytes()


def test_module_cli_limits_the_report_to_chosen_runs(scored, tmp_path):
    out = tmp_path / "leaderboard"
    args = [a for a in scored["args"] if not a.startswith("paths.leaderboard")]
    # the report reads the leaderboard folder; copy it so this test writes elsewhere
    out.mkdir()
    for f in (scored["root"] / "leaderboard").iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    done = run_python(["-m", "jmle_eval.report", f"dataset={DATASET}", "runs=[gamma,beta]", *args,
                       f"paths.leaderboard={out}"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / (DATASET + '.html')}" in done.stdout
    data = page_data((out / f"{DATASET}.html").read_text(encoding="utf-8"))
    assert [r["name"] for r in data["runs"]] == ["beta", "gamma"]  # leaderboard order, not the order asked


def test_report_without_scoring_first_says_what_to_run(tmp_path):
    done = run_python(["-m", "jmle_eval.report", f"dataset={DATASET}", f"paths.leaderboard={tmp_path}",
                       f"paths.scored={tmp_path}"])  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "python score.py" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing written


def test_unknown_run_name_lists_the_scored_runs(scored, tmp_path):
    done = run_python(["-m", "jmle_eval.report", "runs=[nosuch]", *scored["args"]])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "nosuch" in done.stderr and "score.py" in done.stderr


def test_script_json_escapes_everything_that_could_end_a_script():
    text = report_html.json_for_script({"a": "</script><!-- \u2028\u2029 <b>"})
    assert "<" not in text and "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"a": "</script><!-- \u2028\u2029 <b>"}


def test_leaderboard_table_keeps_unknown_columns_and_reads_ci_in_either_unit():
    from jmle_eval.report.html_leaderboard import leaderboard_html

    row = {"run": "a", "model": "<i>A</i>", "points": 413, "points_max": 500, "score_pct": 82.6,
           "accuracy": 0.75, "correct": 3, "answered": 4, "accuracy_ci_low": 0.5, "accuracy_ci_high": 1.0,
           "new_metric": "x<y"}  # fmt: skip
    for low, high in ((78.46, 86.45), (0.7846, 0.8645)):  # percent, or a fraction
        html = leaderboard_html({"all": [{**row, "score_ci_low": low, "score_ci_high": high}]})
        assert "413/500 (82.6 %)" in html and "[78.5, 86.5]" in html and "[50.0, 100.0]" in html
        assert "<th" in html and ">new_metric</th>" in html and "x&lt;y" in html
        assert "&lt;i&gt;A&lt;/i&gt;" in html and "<i>" not in html
