"""Images a source names by URL but does not ship: fetched on request into the data cache.

The NEJM Image Challenge's images are served by NEJM, not kept in the upstream repository (which has no
licence to redistribute them). The card's source says where each case's image is::

    source:
      images:
        url: "https://csvc.nejm.org/ContentServer/images?id=IC{date}"
        name: "IC{date}"

``{date}`` is the case's ``YYYYMMDD`` (from its id, ``nejm-YYYYMMDD`` or ``nejm-YYYYMMDD-2``). Nothing is
fetched while loading: predict calls :func:`fetch_images` only for ``image_mode=vision``. Each image is
downloaded once into ``<paths.data>/<folder>/images/<name>.<ext>`` (written to a temporary file, renamed into
place when complete, so an interrupted download never looks cached) and read from there afterwards.
``dataset.images_dir=<folder>`` uses local files ``<name>.<ext>`` instead and fetches nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jmle_eval.errors import UserError
from jmle_eval.schema import Question

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
TIMEOUT_S = 30.0
WORKERS = 8
_DATE = re.compile(r"-(\d{8})(?:-\d+)?$")
_SIGNATURES = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF87a", ".gif"), (b"GIF89a", ".gif"))


def _spec(card: Mapping[str, Any]) -> Mapping[str, Any]:
    return (card.get("source") or {}).get("images") or {}


def image_date(question_id: str) -> str:
    """Return the ``YYYYMMDD`` of a question id ``<name>-YYYYMMDD`` or ``<name>-YYYYMMDD-<n>``."""
    m = _DATE.search(question_id)
    if not m:
        raise UserError(f"Question {question_id} has no date in its id (…-YYYYMMDD), so its image cannot be named.")
    return m.group(1)


def image_name(card: Mapping[str, Any], question_id: str) -> str:
    """Return the file name (without extension) of a question's image: the card's ``source.images.name`` filled in."""
    return str(_spec(card).get("name") or "IC{date}").format(date=image_date(question_id))


def local_image(folder: Path, name: str) -> Path | None:
    """Return the file ``<name>.<ext>`` (or ``<name>``) in ``folder``, or None when there is none."""
    found = sorted(p for p in folder.glob(f"{glob_escape(name)}.*") if p.is_file() and not p.name.endswith(".part"))
    plain = folder / name
    return found[0] if found else (plain if plain.is_file() else None)


def glob_escape(name: str) -> str:
    """Return ``name`` with glob's special characters made literal."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def cache_dir(card: Mapping[str, Any], data_dir: str | os.PathLike[str]) -> Path:
    """Return the folder the card's fetched images are cached in: ``<data_dir>/<source folder>/images``."""
    root = (card.get("source") or {}).get("folder") or card["name"]
    return Path(data_dir) / str(root) / "images"


def _extension(data: bytes) -> str | None:
    for signature, ext in _SIGNATURES:
        if data.startswith(signature):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None


def _download(url: str, folder: Path, name: str) -> Path:
    """Fetch one image into ``folder/<name>.<ext>`` atomically; raise OSError or ValueError saying why not."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
        data = resp.read()
        kind = resp.headers.get("Content-Type") or "unknown type"
    ext = _extension(data)
    if ext is None:
        raise ValueError(f"not an image ({kind}, {len(data)} bytes)")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        target = folder / f"{name}{ext}"
        os.replace(tmp, target)
        return target
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _refuse(
    card: Mapping[str, Any], failed: list[tuple[str, str]], needed: int, where: str, note: str = ""
) -> UserError:
    pattern = str(_spec(card).get("name") or "IC{date}").replace("{date}", "<yyyymmdd>")
    shown = "; ".join(f"{qid}: {why}" for qid, why in failed[:3]) + (
        f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
    )
    return UserError(
        f"image_mode=vision: {len(failed)} of {needed} images of data set '{card['name']}' {where} ({shown}).{note} "
        f"Put the images in a folder as {pattern}.<ext> files and pass dataset.images_dir=<folder>, "
        "or run image_mode=blind (the question text only, the prompt saying the image is not shown)."
    )


def _from_folder(card: Mapping[str, Any], needing: list[Question], folder: Path) -> dict[str, Path]:
    found = {q.id: local_image(folder, image_name(card, q.id)) for q in needing}
    missing = [(qid, f"no {image_name(card, qid)}.* file") for qid, path in found.items() if path is None]
    if missing:
        raise _refuse(card, missing, len(needing), f"are not in dataset.images_dir={folder}")
    return {qid: path for qid, path in found.items() if path is not None}


def _from_cache(card: Mapping[str, Any], needing: list[Question], folder: Path) -> dict[str, Path]:
    template = str(_spec(card).get("url") or "")
    if not template:
        raise UserError(
            f"Data set '{card['name']}' has no source.images.url in its card: its images cannot be fetched."
        )
    names = {q.id: image_name(card, q.id) for q in needing}
    found = {qid: path for qid, name in names.items() if (path := local_image(folder, name)) is not None}
    todo = sorted({(name, image_date(qid)) for qid, name in names.items() if qid not in found})

    def fetch(item: tuple[str, str]) -> tuple[str, Path | str]:
        name, date = item
        try:
            return name, _download(template.format(date=date, name=name), folder, name)
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors; ValueError: not an image
            return name, str(exc)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        fetched = dict(pool.map(fetch, todo))
    failed = [(qid, str(fetched[name])) for qid, name in names.items() if isinstance(fetched.get(name), str)]
    if failed:
        note = f" Those fetched are cached in {folder}: running again fetches only the rest."
        raise _refuse(card, failed, len(needing), "could not be fetched", note)
    found.update({qid: got for qid, name in names.items() if isinstance(got := fetched.get(name), Path)})
    return found


def fetch_images(
    card: Mapping[str, Any], questions: Sequence[Question], data_dir: str | os.PathLike[str]
) -> list[Question]:
    """Return the questions with ``images`` set to their image files: local copies, cached, or fetched now.

    Only questions that need an image and lack its file are looked at. ``dataset.images_dir`` supplies local
    files and nothing is fetched; otherwise each image is fetched once from ``source.images.url`` into
    :func:`cache_dir`. Every failure is collected first, then reported in one UserError.
    """
    needing = [q for q in questions if q.requires_image and not (q.images and all(Path(p).is_file() for p in q.images))]
    if not needing:
        return list(questions)
    local = card.get("images_dir")
    if local:
        found = _from_folder(card, needing, Path(str(local)).expanduser())
    else:
        found = _from_cache(card, needing, cache_dir(card, data_dir))
    return [q.model_copy(update={"images": [str(found[q.id])]}) if q.id in found else q for q in questions]
