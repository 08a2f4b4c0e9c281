"""Model answer text → the final answer (letters or a number) and the rule that found it.

Two modes:

* ``lenient`` (model free text): reasoning blocks are dropped, the answer markers
  (the required ``【回答】`` and its near misses: ``【解答】``, ``回答：``, ``答え:``,
  ``Answer:``, ``正解は`` …) are found, and the last one outside reasoning whose answer
  can be read wins. Without a marker, a reply (or last line) that is nothing but an
  answer, or a ``\\boxed{}``, is accepted. Anything else is a parse failure, never a guess.
* ``extracted`` (the text already is an extracted answer, like IgakuQA's
  ``prediction``): only a bare letter list (``a``, ``a,c``, ``ac``) or a bare number.

English replies (a run whose marker is not Japanese, like ``Answer: ``) are read by the
forms of ``parse_en``: the marker, ``Final answer:``, ``The answer is (C)``, ``\\boxed{C}``;
the last form that can be read wins, and a letter that may be a word ("A 45-year-old") is none.

Every result says which rule matched, so a summary can report strict format
compliance (the required marker line, well formed) next to lenient accuracy.
Pure functions: no I/O, no pydantic, fast enough to run in the scoring hot loop.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from jmle_eval.schema import ANSWER_MARKER
from jmle_eval.score import parse_en
from jmle_eval.score.nfkc import nfkc

PARSE_MODES = ("lenient", "extracted")
DEFAULT_LETTERS = "abcde"


@dataclass(frozen=True, slots=True)
class Parsed:
    """What the parser read: sorted unique letters or one number string; ``None`` = failure."""

    answer: tuple[str, ...] | None
    rule: str | None
    strict: bool = False

    @property
    def ok(self) -> bool:
        """Return whether an answer was read."""
        return self.answer is not None


FAILED = Parsed(None, None, False)

_THINK_BLOCK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.IGNORECASE)
_HARMONY_FINAL = "<|channel|>final<|message|>"
# Circled digits are the answer boxes of numeric questions (①②.③); NFKC would turn
# them into digits and glue them onto the number, so they are removed first.
_CIRCLED = re.compile("[\u2460-\u2473]")
_MARKDOWN = re.compile(r"\*\*|__|`|~~")
_WORDS = r"最終回答|最終解答|最終的な答え|回答|解答|答え|答|正解|final answer|answer"
# Decisive markers: a bracketed label. An unreadable answer after one is a failure.
_BRACKET = re.compile(rf"[【\[［〔]\s*(?:{_WORDS})\s*[】\]］〕]\s*[:：]?")
_BRACKET_ANY_CASE = re.compile(_BRACKET.pattern, re.IGNORECASE)  # "[Answer] C" in an English reply
# Tentative markers: "回答:", "答えは", "the answer is"; skipped when prose follows them.
_INLINE = re.compile(rf"(?:{_WORDS})\s*(?:[:=]|は|is\b)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_OPENERS = " \t*_\"'`「『(（[［{〈<【#>:=-"
_CHOICE_PREFIX = re.compile(r"^(?:選択肢|option|choice)\s*[:：]?\s*")
# A run of choice letters is a whole word: never glued to more letters or to a digit ("b12"), and a run of
# several letters not glued to kanji or katakana either ("ace阻害薬", "ca拮抗薬" are drugs, not a, c, e). One
# letter may be: models write a choice with its text ("d急性喉頭蓋炎"). Hiragana may follow ("bです", "aとc").
_CJK_WORD = "\u3005\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_GROUP = re.compile(rf"[a-z](?![a-z0-9])|[a-z]{{2,}}(?![a-z0-9{_CJK_WORD}])")
_SEP = re.compile(r"\s*(?:[,、/・&+]|と|および|及び|\band\b|\bor\b)\s*|\s+")
_LETTERS_STRICT = r"[a-z](?:, ?[a-z])*"
_NUMBER_STRICT = r"-?\d+(?:\.\d+)?"
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_NUMBER_PREFIX = re.compile(r"^(?:約|およそ|≒|≈|~|〜)\s*")
_BARE_TAIL = re.compile(r"[\s.。、,）)」』\]】*_`]*")
_UNIT_TAIL = re.compile(r"\s*[^\d\s.,]{0,12}[\s.。]*")
_EXTRACTED_LETTERS = re.compile(r"[a-z](?:,[a-z])*|[a-z]+")
_EXTRACTED_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def strip_reasoning(text: str) -> str:
    """Return the reply without ``<think>`` blocks (closed, unclosed or half-stripped) or analysis channels."""
    if "<" not in text:  # every tag and channel starts with one; most replies have none
        return text
    if _HARMONY_FINAL in text:
        text = text.rsplit(_HARMONY_FINAL, 1)[1]
    text = _THINK_BLOCK.sub("\n", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:  # the server dropped the opening tag: everything before the last close is reasoning
        text = text[closes[-1].end() :]
    opened = _THINK_OPEN.search(text)
    if opened:  # reasoning that never ended: no answer after it
        text = text[: opened.start()]
    return text


def normalise(text: str) -> str:
    """Return the text in the parser's canonical form: NFKC (full-width → ASCII), lower case, no markdown."""
    text = nfkc(_CIRCLED.sub("", text)).lower()
    return _MARKDOWN.sub("", text)


@functools.lru_cache(maxsize=64)
def _normalised_marker(marker: str) -> str:
    return normalise(marker).strip()


def _segment(text: str, start: int) -> str:
    """Return the answer text after a marker: the rest of its line, else the next non-empty line."""
    end = text.find("\n", start)
    line = text[start : end if end >= 0 else len(text)].strip()
    if line or end < 0:
        return line[:300]
    for nxt in text[end + 1 :].split("\n", 3)[:3]:
        if nxt.strip():
            return nxt.strip()[:300]
    return ""


def _letter_run(seg: str, letters: str) -> tuple[list[str], int] | None:
    """Return the letters at the start of ``seg`` and where they end: ``a,c``, ``a、c``, ``ac``, ``a と c``.

    Concatenated letters count only as a whole word ("ac"); a later word that is not
    made of choice letters ("c because …") ends the run instead of spoiling it.
    """
    first = _GROUP.match(seg)
    if not first or any(ch not in letters for ch in first.group(0)):
        return None
    found, end = list(first.group(0)), first.end()
    while sep := _SEP.match(seg, end):
        group = _GROUP.match(seg, sep.end())
        if not group or any(ch not in letters for ch in group.group(0)):
            break
        found += group.group(0)
        end = group.end()
    return found, end


def _letters(segment: str, letters: str) -> tuple[str, ...] | None:
    run = _letter_run(_CHOICE_PREFIX.sub("", segment.lstrip(_OPENERS)), letters)
    return tuple(sorted(set(run[0]))) if run else None


def _number(segment: str) -> tuple[str, ...] | None:
    seg = _NUMBER_PREFIX.sub("", segment.lstrip(_OPENERS))
    m = _NUMBER.match(seg)
    if not m:
        return None
    rest = seg[m.end() :]
    if re.match(r"\s*\d", rest) or re.match(r"[.,]\d", rest):  # "2 8", "1,13": not one number
        return None
    return (m.group(0).replace(",", "").lstrip("+"),)


def read_answer(segment: str, qtype: str, letters: str = DEFAULT_LETTERS) -> tuple[str, ...] | None:
    """Return the answer at the start of ``segment`` (already normalised), or None."""
    return _number(segment) if qtype == "numeric" else _letters(segment, letters)


@functools.lru_cache(maxsize=64)
def _strict_pattern(marker: str, qtype: str, english: bool) -> re.Pattern[str]:
    value = _NUMBER_STRICT if qtype == "numeric" else parse_en.STRICT_LETTERS if english else _LETTERS_STRICT
    return re.compile(rf"^[ \t]*{re.escape(marker.strip())}[ \t]*({value})[ \t]*$", re.MULTILINE)


def _strict_line(text: str, marker: str, qtype: str, english: bool = False) -> tuple[str, ...] | None:
    """Return the answer of the last exact required line (``【回答】a,c`` / ``Answer: A,C`` / ``0.40``), else None.

    Strict means the prompt's format to the letter: the marker as given at the start of
    a line, ASCII letters (lower case; in English either case) joined by commas, or one
    plain number, and nothing else.
    """
    found = _strict_pattern(marker, qtype, english).findall(text)
    if not found:
        return None
    last = found[-1]
    return (last,) if qtype == "numeric" else tuple(sorted(set(re.findall(r"[a-z]", last.lower()))))


def _bare(text: str, qtype: str, letters: str, english: bool = False) -> tuple[str, ...] | None:
    """Return the answer if ``text`` is nothing but an answer (plus brackets, bold, a unit, a full stop)."""
    seg = text.strip().lstrip(_OPENERS)
    if qtype == "numeric":
        m = _NUMBER.match(seg)
        return _number(seg) if m and _UNIT_TAIL.fullmatch(seg[m.end() :]) else None
    run: tuple[Sequence[str], int] | None = parse_en.letter_run(seg, letters) if english else _letter_run(seg, letters)
    if run and _BARE_TAIL.fullmatch(seg[run[1] :]):
        return tuple(sorted(set(run[0])))
    return None


@functools.lru_cache(maxsize=64)
def _literal(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text))


def _marker_hits(body: str, marker: str) -> list[tuple[int, str]]:
    """Return (answer start, rule) of every answer marker in ``body``, in the order they are tried.

    Bracketed markers (the required one, then near misses) outrank inline labels
    ("正解は…" is common inside explanations); within each kind the last one wins.
    """
    decisive = [(m.start(), m.end(), "marker") for m in _literal(marker).finditer(body)] if marker else []
    taken = {start for start, _, _ in decisive}
    decisive += [(m.start(), m.end(), "marker_variant") for m in _BRACKET.finditer(body) if m.start() not in taken]
    decisive.sort(reverse=True)  # (start, end, rule): the last first
    labels = [m.span() for m in _INLINE.finditer(body)]  # in order of start already
    return [(end, rule) for _, end, rule in decisive] + [
        (end, "label") for start, end in reversed(labels) if not any(s <= start < e for s, e, _ in decisive)
    ]


def _unmarked(body: str, qtype: str, letters: str, english: bool = False) -> Parsed:
    """Return the answer of a reply without a marker: a ``\\boxed{}``, or nothing but the answer (or last line)."""
    boxed = [] if english else _BOXED.findall(body)  # English: a form of its own, found with the markers
    if boxed:
        answer = read_answer(boxed[-1], qtype, letters)
        return Parsed(answer, "boxed") if answer else FAILED
    answer = _bare(body, qtype, letters, english)
    if answer:
        return Parsed(answer, "bare")
    lines = [line for line in body.split("\n") if line.strip()]
    if len(lines) > 1:
        answer = _bare(lines[-1], qtype, letters, english)
        if answer:
            return Parsed(answer, "last_line")
    return FAILED


def _parse_english(reply: str, qtype: str, letters: str, marker: str) -> Parsed:
    """Return the answer of an English reply: the last answer form that can be read (see ``parse_en``).

    An answer the required line (well formed) gives too is credited to it: rule ``marker``, strict.
    """
    body = parse_en.normalise(reply)
    for end, rule, decisive in parse_en.hits(body, parse_en.forms(marker, _BRACKET_ANY_CASE)):
        segment = _segment(body, end)
        if not segment:
            continue
        answer = _number(segment) if qtype == "numeric" else parse_en.read_letters(segment, letters)
        if answer is None:
            if decisive:
                return FAILED
            continue  # "the answer is not A": prose, not an answer
        if marker.strip() and _strict_line(reply, marker, qtype, english=True) == answer:
            return Parsed(answer, "marker", True)
        return Parsed(answer, rule)
    return _unmarked(body, qtype, letters, english=True)


def parse_lenient(
    text: str | None,
    qtype: str,
    letters: str = DEFAULT_LETTERS,
    marker: str = ANSWER_MARKER,
    language: str | None = None,
) -> Parsed:
    """Return the final answer in a model's free-text reply, with the rule that found it.

    ``language`` (``ja`` or ``en``) picks the forms read; None: the marker's (``parse_en.marker_language``).
    """
    if not text:
        return FAILED
    reply = strip_reasoning(text)
    if (language or parse_en.marker_language(marker)) == "en":
        return _parse_english(reply, qtype, letters, marker)
    body = normalise(reply)
    for end, rule in _marker_hits(body, _normalised_marker(marker)):
        segment = _segment(body, end)
        if not segment:
            continue
        answer = read_answer(segment, qtype, letters)
        if answer is None:
            if rule == "label":
                continue  # "回答は以下のとおり": prose, not an answer
            return FAILED
        strict = rule == "marker" and _strict_line(reply, marker, qtype) == answer
        return Parsed(answer, rule, strict)
    return _unmarked(body, qtype, letters)


def parse_extracted(text: str | None, qtype: str, letters: str = DEFAULT_LETTERS) -> Parsed:
    """Return the answer if ``text`` is exactly a letter list (``a``, ``a,c``, ``ac``) or a number."""
    if not text:
        return FAILED
    value = text.strip()
    if qtype == "numeric":
        return Parsed((value.lstrip("+"),), "extracted") if _EXTRACTED_NUMBER.fullmatch(value) else FAILED
    if not _EXTRACTED_LETTERS.fullmatch(value):
        return FAILED
    found = value.replace(",", "")
    if any(ch not in letters for ch in found):
        return FAILED
    return Parsed(tuple(sorted(set(found))), "extracted")


def parse(
    text: str | None,
    qtype: str,
    letters: str = DEFAULT_LETTERS,
    *,
    mode: str = "lenient",
    marker: str = ANSWER_MARKER,
    language: str | None = None,
) -> Parsed:
    """Return the answer read from ``text`` in ``mode`` (``lenient`` or ``extracted``)."""
    if mode == "extracted":
        return parse_extracted(text, qtype, letters)
    return parse_lenient(text, qtype, letters, marker, language)


def format_answer(answer: tuple[str, ...] | list[str], qtype: str) -> str:
    """Return an answer written the way the prompt asks for it (``a,c`` or ``0.40``)."""
    return answer[0] if qtype == "numeric" else ",".join(answer)
