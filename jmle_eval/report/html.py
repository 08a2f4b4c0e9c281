"""Render the HTML report: one self-contained page from questions, scored runs and the leaderboard.

Pure rendering (the only files read are the images and plots it embeds): html_report.py
gathers the inputs. Question metadata and per-run verdicts are one JSON blob; answer
and reasoning texts are deflated per group of CHUNK_QUESTIONS questions and only
unpacked (and turned into DOM) in the browser when a question is opened, so the page
stays usable at 20 runs × 2,000 questions. Same inputs give byte-identical HTML.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from jmle_eval.report.html_leaderboard import leaderboard_html
from jmle_eval.schema import Question

FORMAT = 1
TEXT_CAP = 20_000
"""Characters kept of each answer text and reasoning text; the rest is cut with a visible note."""
IMAGE_MAX_PX = 640
IMAGE_QUALITY = 70
CHUNK_QUESTIONS = 50
"""Questions per deflated block of answer texts: opening a question unpacks one block."""
ASSETS = Path(__file__).resolve().parent / "assets"


def json_for_script(value: Any) -> str:
    """Return compact, key-sorted JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def cap_text(text: str | None, where: str) -> str | None:
    """Return ``text`` cut to TEXT_CAP characters, with a note saying how much is left out and where it is."""
    if text is None or len(text) <= TEXT_CAP:
        return text
    return f"{text[:TEXT_CAP]}\n[truncated: {len(text) - TEXT_CAP:,} more characters; full text in {where}]"


def _mark(item: dict[str, Any]) -> str:
    """Return the one-letter verdict of a scored line.

    C correct, W wrong, P parse failure (graded wrong), E request error (graded wrong),
    M expected but no answer file, - not part of the run.
    """
    if item.get("correct"):
        return "C"
    status = item.get("status")
    if status == "error":
        return "E"
    if status == "missing":
        return "M"
    if status == "not_asked":  # e.g. an image question in an image_mode=skip run
        return "-"
    return "W" if item.get("predicted") else "P"


def _judge_mark(item: dict[str, Any] | None) -> str:
    """Return one letter for a run's judgments of a question: D a judge decided differently from the parser,
    A judged (agreeing, or nothing to compare), S only stale or errored judgments, - none."""
    entries = [e for e in ((item or {}).get("judges") or {}).values() if isinstance(e, dict)]
    if any(e.get("agrees") is False for e in entries):
        return "D"
    if any(e.get("status") == "ok" for e in entries):
        return "A"
    return "S" if entries else "-"


def _record_grade(item: dict[str, Any] | None, rubric: str | None) -> str:
    """Return the grade-of-record judges' grades of a run's answer ("8", "✓", "7 9"), or "" when none."""
    grades = []
    for entry in ((item or {}).get("judges") or {}).values():
        if isinstance(entry, dict) and entry.get("rubric") == rubric and entry.get("status") == "ok":
            grades.append(str(entry["score"]) if entry.get("kind") == "score" else "✓" if entry.get("correct") else "✗")
    return " ".join(grades)


def _judge_data(lines: list[list[dict[str, Any] | None]], leaderboard: dict[str, Any]) -> dict[str, Any]:
    """Return the report data of the judgments (none when no run has any): marks, grades of record, rubric."""
    if not any(i and i.get("judges") for row in lines for i in row):
        return {}
    rows = [r for r in leaderboard.get("all") or [] if isinstance(r, dict)]
    rubric = next((str(r["judge_rubric"]) for r in rows if r.get("judge_rubric")), None)
    return {
        "judge_marks": ["".join(_judge_mark(i) for i in row) for row in lines],
        "judge_grades": [[_record_grade(i, rubric) for i in row] for row in lines] if rubric else None,
        "grade_of_record": rubric,
    }


def _answer(item: dict[str, Any]) -> str:
    predicted = item.get("predicted")
    return ",".join(predicted) if predicted else ""


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _number(value: Any) -> float | int | None:
    """Return a finite number or None: a hand-edited file's NaN or text must not break the report."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def _details(item: dict[str, Any], prediction: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """Return what the question view shows for one run's answer (texts capped)."""
    pred = prediction or {}
    usage: dict[str, Any] = pred["usage"] if isinstance(pred.get("usage"), dict) else {}
    reasoning = _text(pred.get("reasoning_text"))
    return {
        "answer_text": cap_text(_text(pred.get("answer_text")), where),
        "reasoning_text": cap_text(reasoning, where),
        "reasoning_chars": len(reasoning or ""),
        "prompt_tokens": _number(usage.get("prompt_tokens", item.get("prompt_tokens"))),
        "completion_tokens": _number(usage.get("completion_tokens", item.get("completion_tokens"))),
        "reasoning_tokens": _number(usage.get("reasoning_tokens", item.get("reasoning_tokens"))),
        "latency_s": _number(pred.get("latency_s")),
        "cost_usd": _number(pred.get("cost_usd")),
        "attempts": _number(pred.get("attempts")),
        "finish_reason": _text(pred.get("finish_reason")),
        "error": _text(pred.get("error") or item.get("error")),
        "parse_rule": item.get("parse_rule"),
        "strict": bool(item.get("strict")),
        "kinki_hits": item.get("kinki_hits") or [],
        **({"judges": item["judges"]} if isinstance(item.get("judges"), dict) else {}),
    }


def encode_image(path: Path) -> tuple[str, int, int]:
    """Return a JPEG data URL of the image downscaled to IMAGE_MAX_PX, and its width and height."""
    from PIL import Image

    with Image.open(path) as opened:
        opened.load()
        img: Image.Image = opened
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.new("RGB", rgba.size, "white")
            img.paste(rgba, mask=rgba.getchannel("A"))
        elif img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        img.thumbnail((IMAGE_MAX_PX, IMAGE_MAX_PX), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=IMAGE_QUALITY, optimize=True)
        width, height = img.size
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), width, height


def _question_row(q: Question, image_ids: list[int]) -> dict[str, Any]:
    return {
        "id": q.id, "exam": q.exam, "block": q.block, "section": q.section, "type": q.type, "select": q.select,
        "points": q.points, "image": q.requires_image, "human": q.human_accuracy, "category": q.category,
        "gold": q.accepted_answers, "all_credited": q.all_credited, "stem": q.stem, "case": q.case_text,
        "choices": [list(c) for c in q.choices], "kinki": q.kinki, "images": image_ids, "notes": q.notes,
        **({"attributes": attributes} if (attributes := getattr(q, "attributes", None)) else {}),
    }  # fmt: skip


def _embed_images(questions: Sequence[Question]) -> tuple[list[list[int]], list[dict[str, Any]], list[str]]:
    """Return each question's image numbers, the images' names and sizes, and their script elements.

    An image shared by several questions (a case's figure) is embedded once.
    """
    index: dict[str, int] = {}
    meta: list[dict[str, Any]] = []
    blobs: list[str] = []
    per_question = []
    for q in questions:
        for path in q.images:
            if path not in index and Path(path).is_file():
                url, width, height = encode_image(Path(path))
                index[path] = len(meta)
                meta.append({"name": Path(path).name, "width": width, "height": height})  # never the full path
                blobs.append(f'<script type="text/plain" id="img-{index[path]}">{url}</script>')
        per_question.append([index[path] for path in q.images if path in index])
    return per_question, meta, blobs


def _answer_blocks(
    dataset: str,
    questions: Sequence[Question],
    runs: Sequence[dict[str, Any]],
    read_prediction: Callable[[str, str], dict[str, Any] | None],
) -> list[str]:
    """Return script elements holding every run's answer details, deflated per CHUNK_QUESTIONS questions."""
    blobs = []
    for start in range(0, len(questions), CHUNK_QUESTIONS):
        block: dict[str, list[Any]] = {}
        for q in questions[start : start + CHUNK_QUESTIONS]:
            block[q.id] = []
            for run in runs:
                item, name = run["items"].get(q.id), run["info"]["name"]
                if not item or item.get("status") not in ("ok", "error"):
                    block[q.id].append(None)
                    continue
                where = f"predictions/{dataset}/{name}/{q.id}.json"
                block[q.id].append(_details(item, read_prediction(name, q.id), where))
        packed = base64.b64encode(zlib.compress(json_for_script(block).encode("utf-8"), 6)).decode("ascii")
        blobs.append(f'<script type="application/octet-stream" id="chunk-{start // CHUNK_QUESTIONS}">{packed}</script>')
    return blobs


def _run_infos(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    infos = [dict(run["info"]) for run in runs]
    labels = [i["label"] for i in infos]
    for info in infos:  # two runs of one model (e.g. two efforts) must stay apart in the table
        if labels.count(info["label"]) > 1:
            info["label"] = f"{info['label']} [{info['name']}]"
    return infos


def fill(template: str, parts: dict[str, str]) -> str:
    """Return the template with each ``{{NAME}}`` replaced, in one pass (filled-in text is never re-read)."""
    pieces = template.split("{{")
    out = [pieces[0]]
    for piece in pieces[1:]:
        name, sep, rest = piece.partition("}}")
        out.append(parts[name] + rest if sep and name in parts else "{{" + piece)
    return "".join(out)


def _japanese(questions: Sequence[Question]) -> bool:
    """Return True when the questions are in Japanese (kana or kanji in the first stems)."""
    sample = "".join(q.stem for q in questions[:5])
    return any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in sample) or not questions


def build(
    dataset: str,
    questions: Sequence[Question],
    runs: Sequence[dict[str, Any]],
    leaderboard: dict[str, Any],
    exams: dict[str, Any] | None,
    plots: Iterable[tuple[str, Path]],
    read_prediction: Callable[[str, str], dict[str, Any] | None],
    title: str | None = None,
) -> str:
    """Return the report's HTML.

    ``runs`` are ``{"info": {name, label, …}, "items": {question_id: scored line}}`` in display
    order; ``leaderboard`` and ``exams`` are the score stage's leaderboard JSON documents;
    ``read_prediction(run, question_id)`` returns a prediction file's content or None.
    """
    asked = {qid for run in runs for qid in run["items"]}
    unknown = sorted(asked - {q.id for q in questions})
    questions = [q for q in questions if q.id in asked] or list(questions)
    image_ids, images, image_blobs = _embed_images(questions)
    lines = [[run["items"].get(q.id) for run in runs] for q in questions]
    data = {
        "format": FORMAT, "dataset": dataset, "runs": _run_infos(runs),
        "questions": [_question_row(q, ids) for q, ids in zip(questions, image_ids, strict=True)],
        "marks": ["".join(_mark(i) if i else "-" for i in row) for row in lines],
        "answers": [[_answer(i) if i else "" for i in row] for row in lines],
        "images": images, "chunk_size": CHUNK_QUESTIONS, "text_cap": TEXT_CAP,
        "multi_exam": len({q.exam for q in questions}) > 1, **_judge_data(lines, leaderboard),
        **({} if _japanese(questions) else {"lang": "en"}),  # the lang attribute of question texts (fonts)
    }  # fmt: skip
    title = title or f"jmle-eval report: {dataset}"
    subtitle = (
        f"{len(questions)} questions ({sum(q.requires_image for q in questions)} with images), {len(runs)} runs. "
        f"Answer and reasoning texts are cut at {TEXT_CAP:,} characters; images downscaled to {IMAGE_MAX_PX} px."
    )
    if unknown:
        subtitle += f" {len(unknown)} scored question id(s) are not in the data set and are left out: {unknown[:5]}."
    parts = {
        "FORMAT": str(FORMAT),
        "TITLE": html.escape(title),
        "SUBTITLE": html.escape(subtitle),
        "CSS": (ASSETS / "report.css").read_text(encoding="utf-8"),
        "JS": (ASSETS / "report.js").read_text(encoding="utf-8"),
        "LEADERBOARD": leaderboard_html(leaderboard, exams),
        "PLOTS": plots_html(plots),
        "DATA": json_for_script(data),
        "BLOBS": "\n".join(image_blobs + _answer_blocks(dataset, questions, runs, read_prediction)),
    }
    return fill((ASSETS / "report.html").read_text(encoding="utf-8"), parts)


def plots_html(plots: Iterable[tuple[str, Path]]) -> str:
    """Return ``<figure>`` elements with the plots embedded as PNG data URLs (missing plots are skipped)."""
    figures = []
    for caption, path in plots:
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            figures.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)} ({html.escape(path.name)})</figcaption></figure>"
            )
    inner = "\n".join(figures) or '<p class="muted">No plots (run score.py with plots=true).</p>'
    return f'<div class="plots">{inner}</div>'
