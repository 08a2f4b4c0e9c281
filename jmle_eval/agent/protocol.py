"""One model reply read as an action (GET, POST, FINISH or invalid), and the harness's answers to it.

This follows MedAgentBench's harness (src/server/tasks/medagentbench/__init__.py upstream): code fences
are removed, the reply is stripped, and its start decides the action. A GET gets ``_format=json`` added
and is sent to the FHIR server; a POST must carry a JSON body on the lines after its URL and is only
acknowledged, never sent; ``FINISH(...)`` ends the episode with the text between ``FINISH(`` and the
reply's last character; anything else ends the episode as an invalid action.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FINISH_PREFIX = "FINISH("
_FENCES = ("```tool_code", "```")  # upstream removes exactly these two marks, anywhere in the reply


@dataclass(frozen=True)
class Get:
    """Read from the FHIR server: ``url`` as it will be sent (``_format=json`` added)."""

    url: str


@dataclass(frozen=True)
class Post:
    """Write to the record: ``url`` (the first line), the parsed JSON ``body``, or why the body is not JSON."""

    url: str
    body: Any = None
    json_error: str | None = None

    @property
    def accepted(self) -> bool:
        """Return True when the body is JSON, so the harness acknowledges the POST."""
        return self.json_error is None


@dataclass(frozen=True)
class Finish:
    """The end: ``raw`` is the text inside ``FINISH(...)``; ``answers`` its JSON list, or None if it is not one."""

    raw: str
    answers: list[Any] | None


@dataclass(frozen=True)
class Invalid:
    """A reply that is none of the three forms; the episode ends."""

    reason: str


Action = Get | Post | Finish | Invalid


def strip_fences(text: str) -> str:
    """Return the reply without code-fence marks and surrounding whitespace, as the harness reads it."""
    for fence in _FENCES:
        text = text.replace(fence, "")
    return text.strip()


def with_json_format(url: str) -> str:
    """Return ``url`` with ``_format=json`` added as a query parameter.

    Upstream always appends ``&_format=json``; for a URL without a query that makes the last path
    segment ``…&_format=json``, so here the first parameter is joined with ``?`` instead.
    """
    return f"{url}{'&' if '?' in url else '?'}_format=json"


def parse_finish(raw: str) -> list[Any] | None:
    """Return the answers inside FINISH(...) when they load as a JSON list, else None."""
    try:
        answers = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return answers if isinstance(answers, list) else None


def parse_action(reply: str) -> Action:
    """Return the action one model reply asks for."""
    text = strip_fences(reply)
    if text.startswith("GET"):
        return Get(with_json_format(text[3:].strip()))
    if text.startswith("POST"):
        first, _, rest = text.partition("\n")
        try:
            return Post(first[4:].strip(), json.loads(rest))
        except (ValueError, RecursionError) as exc:
            return Post(first[4:].strip(), None, f"the payload is not JSON ({exc})")
    if text.startswith(FINISH_PREFIX):
        raw = text[len(FINISH_PREFIX) : -1]  # upstream drops the last character, whatever it is
        return Finish(raw, parse_finish(raw))
    shown = text[:80] + ("…" if len(text) > 80 else "")
    return Invalid(f"the reply is not GET, POST or FINISH: {shown!r}" if text else "the reply is empty")


# The harness's answers. Upstream's wording, paraphrased; the POST acknowledgement keeps the phrase
# "POST request accepted", which upstream's grader looks for after each POST.
def get_feedback(body: str) -> str:
    """Return the next user turn after a GET the server answered: its body and a reminder to FINISH."""
    return (
        f"The GET request returned:\n{body}\n"
        "If you now have every answer and have finished every requested task, call FINISH."
    )


def get_error_feedback(error: str) -> str:
    """Return the next user turn after a GET that failed (an HTTP error, or a URL that could not be sent)."""
    return f"The GET request failed: {error}"


POST_ACCEPTED = (
    "POST request accepted: it was carried out. If you now have every answer and have finished every "
    "requested task, call FINISH."
)
POST_INVALID = "The POST request is invalid: its payload is not valid JSON."
