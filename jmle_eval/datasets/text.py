"""Text clean-up shared by the loaders: choice extraction, ids, numeric answer templates."""

from __future__ import annotations

import re
import unicodedata

_ID = re.compile(r"^(\d{3})([A-I])-?(\d{1,3})$")
# A choice line: optional indent (ASCII or full-width), one letter, a separator, the text.
_CHOICE_LINE = re.compile(
    r"^[ \t\u3000]*(?:([a-zA-Z])[ \t\u3000.．、:：]+(\S.*)"
    # or a markdown table row whose first cell is the letter: | a | 220 | 0 |
    r"|\|[ \t\u3000]*([a-zA-Z])[ \t\u3000]*\|(.*?)\|?[ \t]*)$"
)
# Choices written inline after the stem: " a「…」 b「…」" or " aアトロピン bジアゼパム".
_INLINE = re.compile(r"(?:^|[\s\u3000])([a-eA-E])(?=[「\u3040-\u30ff\u4e00-\u9fff（(〈])")
_CHOICE_PREFIX = re.compile(r"^\s*([a-zA-Z])\s*[.．、:：]\s*")
_TEMPLATE = re.compile(r"解答[：:]\s*([^\n]*?[①-⑨][^\n]*)")
_CIRCLED = "①②③④⑤⑥⑦⑧⑨"


def normalise_id(raw: str) -> str:
    """Return the id in ``120A-1`` form for ``120A-1``, ``120A1`` or ``112B30``."""
    m = _ID.match(raw.strip())
    if not m:
        raise ValueError(f"not a JMLE question id: {raw!r} (expected e.g. 120A-1 or 112B30)")
    exam, block, number = m.groups()
    return f"{exam}{block}-{int(number)}"


def split_id(qid: str) -> tuple[int, str, int]:
    """Return (exam, block, number) of a normalised id."""
    m = _ID.match(qid)
    if not m:
        raise ValueError(f"not a JMLE question id: {qid!r}")
    return int(m.group(1)), m.group(2), int(m.group(3))


def letters(n: int) -> list[str]:
    """Return the first ``n`` choice letters: a, b, c, …"""
    return [chr(ord("a") + i) for i in range(n)]


def _choice(line: str) -> tuple[str, str] | None:
    m = _CHOICE_LINE.match(line)
    if not m:
        return None
    if m.group(1):
        return m.group(1).lower(), m.group(2).strip()
    cells = [c.strip() for c in m.group(4).split("|")]
    return m.group(3).lower(), " | ".join(cells)


def split_choices(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a question text with embedded choice lines into (stem, choices).

    Choices are the last run of lines labelled a, b, c, … in order; everything
    before the first of them is the stem. Text without such a run is all stem.
    """
    lines = text.split("\n")
    best: tuple[int, list[tuple[str, str]]] | None = None
    i = 0
    while i < len(lines):
        m = _choice(lines[i])
        if m and m[0] == "a":
            run: list[tuple[str, str]] = []
            j = i
            while j < len(lines):
                if not lines[j].strip():
                    j += 1
                    continue
                m2 = _choice(lines[j])
                if not m2 or m2[0] != chr(ord("a") + len(run)):
                    break
                run.append(m2)
                j += 1
            if len(run) >= 2:
                best = (i, run)
            i = max(j, i + 1)
        else:
            i += 1
    if best is None:
        return text.strip(), []
    start, run = best
    return "\n".join(lines[:start]).strip(), run


def split_inline_choices(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split choices written on one line after the stem (``… どれか。 a「…」 b「…」``)."""
    marks = [m for m in _INLINE.finditer(text)]
    # keep the last run a, b, c, … in order
    for start in range(len(marks)):
        if marks[start].group(1).lower() != "a":
            continue
        run = [marks[start]]
        for m in marks[start + 1 :]:
            if m.group(1).lower() == chr(ord("a") + len(run)):
                run.append(m)
        if len(run) >= 4 and all(run[k].group(1).lower() == chr(ord("a") + k) for k in range(len(run))):
            choices = []
            for k, m in enumerate(run):
                end = run[k + 1].start() if k + 1 < len(run) else len(text)
                choices.append((m.group(1).lower(), text[m.end() : end].strip()))
            return text[: run[0].start()].strip(), choices
    return text.strip(), []


def strip_choice_prefix(choice: str) -> str:
    """Remove an OCR'd ``a. `` / ``a．`` label and stray whitespace from a choice."""
    return _CHOICE_PREFIX.sub("", choice, count=1).strip()


def strip_leading_number(stem: str, number: int) -> str:
    """Drop the question number the exam prints before the stem (``1　胃癌…``)."""
    return re.sub(rf"^\s*{number}[\s\u3000]+", "", stem, count=1)


def numeric_from_template(stem: str, raw: str) -> str | None:
    """Turn mark-sheet digits into the number the answer template means, or None.

    IgakuQA stores some numeric keys as the digits filled into the sheet's
    boxes: template ``①.②`` with key ``21`` means 2.1, ``1, ①②③ kcal`` with
    ``130`` means 1130. Keys that already contain a decimal point are left alone.
    """
    m = _TEMPLATE.search(stem)
    if not m or "." in raw or not raw.isdigit():
        return None
    template = m.group(1)
    last_box = max(template.rfind(c) for c in _CIRCLED)
    template = template[: last_box + 1]
    if sum(c in _CIRCLED for c in template) != len(raw):
        return None
    digits = iter(raw)
    out = []
    for c in template:
        if c in _CIRCLED:
            out.append(next(digits))
        else:
            plain = unicodedata.normalize("NFKC", c)
            if plain == "." or plain.isdigit():
                out.append(plain)
    value = "".join(out)
    return None if value == raw else value
