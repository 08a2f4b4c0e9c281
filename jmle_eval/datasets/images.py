"""Whether the loaded questions' images can be shown: a vision run needs every image file.

Some sources name images they do not ship (MedXpertQA's multimodal questions: the files are not
in the upstream repository). Such a question has ``requires_image`` and no ``images`` until
``dataset.images_dir`` points at a local copy; predict asks :func:`check_images` before a
vision run, so that no question is silently posed without the image it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jmle_eval.errors import UserError
from jmle_eval.schema import Question


def missing_images(questions: Sequence[Question]) -> list[Question]:
    """Return the questions that need an image but have no image file (none named, or one not on disk)."""
    return [q for q in questions if q.requires_image and (not q.images or not all(Path(p).is_file() for p in q.images))]


def images_available(questions: Sequence[Question]) -> bool:
    """Return whether every question that needs an image has all its image files."""
    return not missing_images(questions)


def check_images(questions: Sequence[Question], image_mode: str) -> None:
    """Raise UserError when ``image_mode`` is vision and a question's image files are not available."""
    if image_mode != "vision":
        return
    lacking = missing_images(questions)
    if not lacking:
        return
    needing = sum(q.requires_image for q in questions)
    named = [p for q in lacking for p in q.images if not Path(p).is_file()]
    shown = ", ".join(q.id for q in lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
    where = (
        f"files such as {named[0]} do not exist"
        if named
        else "no image files are known (the source does not ship them)"
    )
    raise UserError(
        f"image_mode=vision, but {len(lacking)} of the {needing} questions of data set '{lacking[0].dataset}' "
        f"that need an image have none available ({shown}): {where}. Put a copy of the images in a folder "
        "(file names as in the data set, e.g. MM-0-a.jpeg for MedXpertQA) and pass dataset.images_dir=<folder>; "
        "or run image_mode=blind (the question text only, the prompt saying the image is not shown) or "
        "image_mode=skip (leave the image questions out)."
    )
