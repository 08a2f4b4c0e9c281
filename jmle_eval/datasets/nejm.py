"""Reader of the NEJM Image Challenge (cx0/nejm-image-challenge): 947 image cases with NEJM readers' votes.

The upstream repository has no licence, so the file is never part of this repository: it is fetched at run
time (pinned sha256) like every other source. One JSON file holds the cases, as a list (or an object whose
values are the cases): ``date`` (``apr-01-2010``), ``question``, ``relevant_context`` (yes/no: does the text
alone carry clinical context), ``option_A`` … ``option_E``, ``option_A_votes`` … (the readers' share, ``"62%"``,
``62`` or ``0.62``), ``correct_answer`` (a letter) and ``total_number_votes``.

Two cards read it: ``nejm`` (loader ``nejm``: choose one of five options) and ``nejm_dx`` (loader ``nejm_dx``:
the same cases without options, type ``free``; the correct option's text is the reference diagnosis). Ids are
``nejm-YYYYMMDD`` from the date, in file order; a second case of one date gets ``-2`` (then ``-3`` …).
``human_accuracy`` is the readers' share for the correct option, in %; attributes: ``readers_choice`` (the
most-voted letter; a tie goes to the alphabetically first), ``relevant_context`` and ``year``. Cases with
``relevant_context: no`` (their text is only "What is the diagnosis?") are left out unless
``dataset.include_no_context=true``; the loader logs how many. Every case needs its image
(``requires_image``): :mod:`jmle_eval.datasets.remote_images` fetches it on request, or
``dataset.images_dir`` holds local copies named ``IC<YYYYMMDD>.<ext>``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jmle_eval.datasets import english, remote_images
from jmle_eval.datasets.choices import RowError
from jmle_eval.datasets.sources import Fields, read_json
from jmle_eval.errors import UserError

log = logging.getLogger(__name__)

LETTERS = "abcde"
FREE_LOADER = "nejm_dx"
_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_DATE = re.compile(r"^([a-z]{3})[a-z]*[-/ ](\d{1,2}),?[-/ ](\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(%?)\s*$")
_FIX = (
    "the file is not what this data set's loader expects (modified, or from another version): restore it from "
    "upstream and keep dataset.verify=true, which refuses a changed file by its hash before it is read"
)


def case_date(raw: Any) -> str:
    """Return a case's date as ``YYYYMMDD`` from ``apr-01-2010`` (also ``April 1, 2010`` or ``2010-04-01``)."""
    text = str(raw or "").strip().lower()
    if m := _ISO.match(text):
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif (m := _DATE.match(text)) and m.group(1) in _MONTHS:
        year, month, day = int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2))
    else:
        raise RowError(f"date {raw!r} is not a date like 'apr-01-2010'")
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise RowError(f"date {raw!r} is not a valid date")
    return f"{year:04d}{month:02d}{day:02d}"


def _number(raw: Any) -> tuple[float, bool] | None:
    """Return (value, written with %) of ``"62%"``, ``"62"``, ``62``, ``0.62``; None when absent."""
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw), False
    m = _NUMBER.match(str(raw).replace(",", ""))
    if not m:
        raise RowError(f"vote share {raw!r} is not a number")
    return float(m.group(1)), bool(m.group(2))


def vote_shares(record: Mapping[str, Any], letters: list[str]) -> dict[str, float]:
    """Return each option's share of the readers' votes in %, read leniently; options without a share are absent.

    A share written with ``%`` is a percentage; shares without one are fractions when they add up to about
    one (``0.62``), else percentages (``62``).
    """
    parsed = {x: _number(record.get(f"option_{x.upper()}_votes")) for x in letters}
    known = {x: v for x, v in parsed.items() if v is not None}
    fractions = bool(known) and not any(pct for _, pct in known.values()) and sum(v for v, _ in known.values()) <= 1.5
    return {x: (v * 100 if fractions else v) for x, (v, _) in known.items()}


def readers_choice(shares: Mapping[str, float]) -> str | None:
    """Return the most-voted letter (a tie: the alphabetically first), or None without votes."""
    if not shares:
        return None
    top = max(shares.values())
    return min(x for x, share in shares.items() if share == top)


def cases(path: Path) -> list[Any]:
    """Return the file's cases: a JSON list of them, or the values of an object keyed by anything."""
    data = read_json(path)
    if isinstance(data, Mapping):
        return list(data.values())
    if isinstance(data, list):
        return data
    raise UserError(f"{path} holds neither a list of cases nor an object of cases; {_FIX}.")


def case_ids(records: list[Any]) -> list[str]:
    """Return ``nejm-YYYYMMDD`` of each case in file order; a later case of the same date gets ``-2``, ``-3`` …."""
    seen: Counter[str] = Counter()
    ids = []
    for record in records:
        day = case_date(record.get("date") if isinstance(record, Mapping) else None)
        seen[day] += 1
        ids.append(f"nejm-{day}" + (f"-{seen[day]}" if seen[day] > 1 else ""))
    return ids


def _options(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = [(x, str(record.get(f"option_{x.upper()}") or "").strip()) for x in LETTERS]
    pairs = [(x, text) for x, text in pairs if text]
    if len(pairs) < 2 or [x for x, _ in pairs] != list(LETTERS[: len(pairs)]):
        raise RowError(f"options {[x for x, _ in pairs]}: expected option_A … option_E with text")
    return pairs


def _row(record: Any, qid: str, free: bool, images: Path | None, card: Mapping[str, Any]) -> Fields:
    """Return one case as Question fields; raise RowError saying what is wrong with it."""
    if not isinstance(record, Mapping):
        raise RowError("not a JSON object")
    stem = str(record.get("question") or "").strip()
    if not stem:
        raise RowError("no question text ('question')")
    pairs = _options(record)
    key = str(record.get("correct_answer") or "").strip().lower()
    if key not in dict(pairs):
        raise RowError(f"correct_answer {record.get('correct_answer')!r} is not one of the options")
    shares = vote_shares(record, [x for x, _ in pairs])
    attributes = {"year": qid[5:9]}
    if choice := readers_choice(shares) or str(record.get("option_most_voted") or "").strip().lower():
        attributes["readers_choice"] = choice
    if context := str(record.get("relevant_context") or "").strip().lower():
        attributes["relevant_context"] = context
    image = remote_images.local_image(images, remote_images.image_name(card, qid)) if images else None
    return {
        "id": qid,
        "type": "free" if free else "single",
        "select": 1,
        "stem": stem,
        "choices": [] if free else pairs,
        "accepted_answers": [[dict(pairs)[key]]] if free else [[key]],
        "points": 1,
        "images": [str(image)] if image else [],
        "requires_image": True,
        "human_accuracy": shares.get(key),
        "attributes": attributes,
    }


def data_file(folder: Path, card: Mapping[str, Any]) -> Path:
    """Return the card's cases file: its one ``.json`` source file."""
    names = [str(rel) for rel in (card.get("source") or {}).get("files") or {} if str(rel).endswith(".json")]
    if len(names) != 1:
        raise UserError(f"conf/dataset/{card.get('name')}.yaml must name exactly one .json file in source.files.")
    return folder / names[0]


def without_context(record: Any) -> bool:
    """Return whether a case's text alone carries no clinical context (``relevant_context: no``)."""
    return isinstance(record, Mapping) and str(record.get("relevant_context") or "").strip().lower() == "no"


def left_out(folder: Path, card: Mapping[str, Any]) -> int:
    """Return how many cases the card leaves out for want of clinical context (0 with include_no_context)."""
    if card.get("include_no_context"):
        return 0
    return sum(without_context(record) for record in cases(data_file(folder, card)))


def read(folder: Path, card: Mapping[str, Any]) -> list[Fields]:
    """Read the cases as questions: five options (loader ``nejm``), or free text without them (``nejm_dx``)."""
    path, name = data_file(folder, card), str(card.get("name"))
    records = cases(path)
    free, images = card.get("loader") == FREE_LOADER, english.images_dir(card)
    rows: list[Fields] = []
    try:
        ids = case_ids(records)
    except RowError as exc:
        raise UserError(f"{path}: {exc}; {_FIX}.") from exc
    for number, (record, qid) in enumerate(zip(records, ids, strict=True), 1):
        if without_context(record) and not card.get("include_no_context"):
            continue
        try:
            rows.append(_row(record, qid, free, images, card))
        except RowError as exc:
            raise UserError(f"{path} case {number} ({qid}): {exc}; {_FIX}.") from exc
    dropped = len(records) - len(rows)
    if dropped:
        log.warning(
            "%s: %d of %d cases left out (relevant_context: no); dataset.include_no_context=true keeps them",
            name,
            dropped,
            len(records),
        )
    return rows
