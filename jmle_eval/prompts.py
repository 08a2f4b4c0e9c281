"""Question + image mode → chat messages, in Japanese, with a required final-answer line.

Templates are versioned: ``TEMPLATES[version]`` holds every fixed string, and
:func:`template_hash` of the chosen version is part of the run fingerprint, so
editing a template without bumping its version still cannot mix two prompts in
one run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from pathlib import Path
from typing import Any, Literal

from jmle_eval.errors import UserError
from jmle_eval.schema import Question

ImageMode = Literal["skip", "blind", "vision"]
IMAGE_MODES = ("auto", "skip", "blind", "vision")

TEMPLATES: dict[str, dict[str, str]] = {
    "v1": {
        "system": (
            "あなたは日本の医師国家試験を受験している医師です。"
            "問題文と選択肢をよく読み、医学的に最も適切な解答を選んでください。"
        ),
        "header": "【問題 {id}】",
        "case": "【症例】（この症例について複数の問題があります）\n{case}",
        "choose_one": "選択肢から1つ選んでください。",
        "choose_n": "選択肢から{n}つ選んでください（{n}つ選ばなければ正解になりません）。",
        "numeric": (
            "計算問題です。問題の指示どおりに端数を処理した数値を答えてください。"
            "解答欄の記号（①②など）ではなく、数値そのもの（例: 0.40、315）を書いてください。単位は不要です。"
        ),
        "blind": (
            "※この問題には画像（別冊の写真や図）がありますが、ここでは表示されません。"
            "本文の情報だけから、最も可能性の高い解答を選んでください。"
        ),
        "vision": "※問題の画像（別冊）を添付します。",
        "answer_line": (
            "考えた過程を書いてもかまいませんが、最後の行には必ず次の形式で解答だけを書いてください。\n"
            "{marker}{example}"
        ),
    },
}


def template_hash(version: str) -> str:
    """Return a short hash of the template strings of ``version``."""
    return hashlib.sha256(json.dumps(_template(version), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


def _template(version: str) -> dict[str, str]:
    try:
        return TEMPLATES[version]
    except KeyError:
        raise UserError(
            f"Unknown prompt.version '{version}'. Available versions: {', '.join(sorted(TEMPLATES))}."
        ) from None


def resolve_image_mode(image_mode: str, model_vision: bool) -> ImageMode:
    """Return the effective image mode: ``auto`` becomes vision or blind by model support."""
    if image_mode not in IMAGE_MODES:
        raise UserError(f"image_mode={image_mode!r} is not one of {', '.join(IMAGE_MODES)}.")
    if image_mode == "auto":
        return "vision" if model_vision else "blind"
    if image_mode == "vision" and not model_vision:
        raise UserError(
            "image_mode=vision but this model's config says vision: false. Use image_mode=blind or skip, "
            "or set model.vision=true if the served model really accepts images."
        )
    return image_mode  # type: ignore[return-value]


def wants(question: Question, image_mode: ImageMode) -> bool:
    """Return whether the question is part of a run in this image mode."""
    return not (image_mode == "skip" and question.requires_image)


def _example(question: Question) -> str:
    if question.type == "numeric":
        return "0.40"
    return ",".join("ace"[: question.select] if question.select <= 3 else "abcde"[: question.select])


def render_text(question: Question, image_mode: ImageMode, version: str = "v1", marker: str = "【回答】") -> str:
    """Return the user message text for one question (images not included)."""
    t = _template(version)
    parts = [t["header"].format(id=question.id)]
    if question.case_text:
        parts.append(t["case"].format(case=question.case_text.strip()))
    if question.requires_image:
        has_files = bool(question.images)
        parts.append(t["vision"] if image_mode == "vision" and has_files else t["blind"])
    parts.append(question.stem.strip())
    if question.choices:
        parts.append("\n".join(f"{letter}　{text}" for letter, text in question.choices))
    if question.type == "numeric":
        parts.append(t["numeric"])
    else:
        parts.append(t["choose_one"] if question.select == 1 else t["choose_n"].format(n=question.select))
    parts.append(t["answer_line"].format(marker=marker, example=_example(question)))
    return "\n\n".join(parts)


def _data_url(path: str) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"Image file {p} cannot be read ({exc}); the data set copy is incomplete.") from exc
    mime = mimetypes.guess_type(p.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_messages(
    question: Question, image_mode: ImageMode, version: str = "v1", marker: str = "【回答】"
) -> list[dict[str, Any]]:
    """Return the chat messages (system + user) for one question."""
    t = _template(version)
    text = render_text(question, image_mode, version, marker)
    user: Any = text
    if image_mode == "vision" and question.images:
        user = [{"type": "text", "text": text}] + [
            {"type": "image_url", "image_url": {"url": _data_url(path)}} for path in question.images
        ]
    return [{"role": "system", "content": t["system"]}, {"role": "user", "content": user}]
