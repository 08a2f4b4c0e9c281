"""The English half of the answer parser: the forms models write (``Answer: C``, ``The answer is (B).`` …).

English needs its own reading because a letter there can be a word: the article
"a" / "A", the pronoun "I", "B cells", "C-reactive protein", "e.g.". So the text keeps
its case, and a bare letter counts only when what follows it can end a choice: the
end, closing punctuation, a list separator, a connective ("because"), or, for letters
other than A and I, a choice text in capitals ("C Pneumonia"). ``(C)`` is always a
choice. "C or E" commits to nothing and is no answer.

The answer forms are a table of (rule, pattern, decisive); the last form in the reply
that can be read wins, so "Answer: B … wait … Answer: D" is D. A decisive form (a
label) that cannot be read is a parse failure; a tentative one ("the answer is") that
cannot be read ("the answer is not A") is passed over. Pure functions, like ``parse``.
"""

from __future__ import annotations

import functools
import re

from jmle_eval.score.nfkc import nfkc

Form = tuple[str, re.Pattern[str], bool]
"""(rule, where its answer starts: the match's end, decisive)."""

_JAPANESE = re.compile("[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_MARKDOWN = re.compile(r"\*\*|__|`|~~")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
_FINAL_ANSWER = r"\bfinal\s+answers?(?:\s*(?:[:=]|\b(?:is|are)\b)|[ \t]*$)"
_ADJECTIVE = r"(?:correct|right|best|most\s+(?:appropriate|likely|accurate))\s+"

FORMS: tuple[Form, ...] = (
    ("final_answer", re.compile(_FINAL_ANSWER, re.IGNORECASE | re.MULTILINE), True),
    ("label", re.compile(r"\banswers?\s*[:=]|^[ \t#>]*answers?[ \t]*$", re.IGNORECASE | re.MULTILINE), True),
    ("boxed", re.compile(r"\\boxed\s*\{"), True),
    (
        "answer_is",
        re.compile(rf"\b(?:answers?|{_ADJECTIVE}(?:options?|choices?))\s+(?:is|are)\b\s*:?", re.IGNORECASE),
        False,
    ),
)
"""The English answer forms besides the run's own marker, ahead of the ones they overlap."""

_PREFIX = re.compile(r"[\s*_\"'`#>:=-]*(?:(?:options?|choices?)\s*)?", re.IGNORECASE)
_TOKEN = re.compile(r"[(\[{]\s*([A-Za-z])\s*[)\]}]|([A-Za-z])(?![A-Za-z0-9])")
# After a bare letter: the end, closing punctuation ("C.", but not "e.g."), a list or clause, a dash, a connective.
_ENDS_CHOICE = re.compile(
    r"\s*$|[)\]}!\"'*_]|[.:](?![A-Za-z0-9])|\s*[,;&+]"
    r"|\s+(?:and\b|[-\u2013\u2014](?!\w)|(?:because|since|as|is|was|which|seems|appears)\b)"
)
_CHOICE_TEXT = re.compile(r"\s+[(A-Z]")  # "C Pneumonia": A and I are words, so never for them
_SEP = re.compile(r"\s*(?:[,;&+]\s*(?:and\s+)?|and\s+)(?:(?:options?|choices?)\s*)?", re.IGNORECASE)
_UNDECIDED = re.compile(r"\s*,?\s*(?:or\b|/)", re.IGNORECASE)
STRICT_LETTERS = r"[A-Z](?:, ?[A-Z])*|[a-z](?:, ?[a-z])*"
"""The required line's letters: one case, joined by commas (``Answer: A,C``)."""


def normalise(text: str) -> str:
    """Return English text in the parser's form: NFKC, no markdown, ``\\text{C}`` → ``C``; case kept."""
    return _LATEX_TEXT.sub(r"\1", _MARKDOWN.sub("", nfkc(text)))


def marker_language(marker: str) -> str:
    """Return the language a marker is written in: ``ja`` with any Japanese (or full-width) character, else ``en``."""
    return "ja" if _JAPANESE.search(marker) else "en"


@functools.lru_cache(maxsize=64)
def forms(marker: str, variants: re.Pattern[str]) -> tuple[Form, ...]:
    """Return the forms an English reply is read by: the run's marker (any case), ``FORMS``, then ``variants``."""
    own = normalise(marker).strip()
    mine: tuple[Form, ...] = (("marker", re.compile(re.escape(own), re.IGNORECASE), True),) if own else ()
    return (*mine, *FORMS, ("marker_variant", variants, True))


def hits(body: str, table: tuple[Form, ...]) -> list[tuple[int, str, bool]]:
    """Return (answer start, rule, decisive) of every form of ``table`` in ``body``, the last in the reply first.

    Where two forms overlap ("Final answer:" holds "answer:") the one that starts first
    wins, and at the same start the one earlier in ``table``.
    """
    found = [(m.start(), m.end(), i) for i, (_, pattern, _) in enumerate(table) for m in pattern.finditer(body)]
    kept: list[tuple[int, int, int]] = []
    for start, end, i in sorted(found, key=lambda hit: (hit[0], hit[2])):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end, i))
    return [(end, table[i][0], table[i][2]) for _, end, i in reversed(kept)]


def _choice(seg: str, pos: int, letters: str) -> tuple[str, int] | None:
    """Return the option letter at ``pos`` and where it ends, if it is a choice there and not a word."""
    token = _TOKEN.match(seg, pos)
    if not token:
        return None
    letter = (token.group(1) or token.group(2)).lower()
    if letter not in letters:
        return None
    if token.group(2):
        bare_end = _ENDS_CHOICE.match(seg, token.end())
        if not bare_end and (letter in "ai" or not _CHOICE_TEXT.match(seg, token.end())):
            return None
    return letter, token.end()


def letter_run(seg: str, letters: str) -> tuple[tuple[str, ...], int] | None:
    """Return the option letters at the start of ``seg`` (``C``, ``(C) Pneumonia``, ``C, D and E``) and their end.

    None when there is none, or when the letters leave a choice open ("A or B", "C/E").
    """
    found: list[str] = []
    prefix = _PREFIX.match(seg)
    pos = prefix.end() if prefix else 0
    while choice := _choice(seg, pos, letters):
        found.append(choice[0])
        pos = choice[1]
        sep = _SEP.match(seg, pos)
        if not sep or not _choice(seg, sep.end(), letters):
            break
        pos = sep.end()
    if not found or _UNDECIDED.match(seg, pos):
        return None
    return tuple(sorted(set(found))), pos


def read_letters(segment: str, letters: str) -> tuple[str, ...] | None:
    """Return the sorted option letters an answer segment commits to, or None."""
    run = letter_run(segment, letters)
    return run[0] if run else None
