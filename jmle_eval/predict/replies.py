"""What a chat-completion reply means: the answer and its usage, or why the question gets none.

:func:`parse_completion` never raises: whatever a server sends, a question ends
with a :class:`Reply` or a reason it can be retried for and recorded with. The
status sets say which HTTP answers stop the run, refuse one question, or slow
the client down.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

FATAL_STATUSES = frozenset({401, 403, 404})
"""The key, the permission or the model/URL is wrong: no question can succeed, so the run stops."""
REJECTED_STATUSES = frozenset({400, 413, 422})
"""The server refuses this request as sent: recorded as an error at once, never retried."""
RATE_LIMIT_STATUSES = frozenset({429, 503})
"""Slow down: honour Retry-After and cut the in-flight limit."""


@dataclass(slots=True)
class Reply:
    """The outcome of one question: the model's answer, or why there is none."""

    status: str  # ok | error
    answer_text: str | None = None
    reasoning_text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_s: float | None = None
    attempts: int = 0
    error: str | None = None
    model: str | None = None
    cost_usd: float | None = None  # as reported by the provider (OpenRouter usage accounting)
    http_status: int | None = None


class Fatal(Exception):
    """An HTTP answer that no question can get past (401, 403, 404): the run must stop."""

    def __init__(self, status: int, message: str, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}: {message}")
        self.status = status
        self.message = message
        self.url = url


def retry_after_s(headers: Any) -> float | None:
    """Return the server's requested wait in seconds (``retry-after-ms`` or ``Retry-After``), if it is readable."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            wait = float(raw_ms) / 1000
        except ValueError:
            wait = math.nan
        if math.isfinite(wait):
            return max(0.0, wait)
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        wait = float(raw)
    except ValueError:
        try:  # an HTTP date; anything else ("soon") is ignored and the usual back-off applies
            wait = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, wait) if math.isfinite(wait) else None


def error_message(content: bytes) -> str:
    try:
        body = json.loads(content)
    except ValueError:
        return content[:300].decode("utf-8", "replace").strip() or "(empty body)"
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        return str(err.get("message") or err)[:500]
    return str(err)[:500]


class Unusable(ValueError):
    """A 200 reply the client cannot use (no answer, a field of the wrong type): retried, then recorded."""


def _text(content: Any) -> str | None:
    if isinstance(content, list):  # content parts: text parts are joined, others (images, refusals) skipped
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type", "text") == "text" and "text" in part:
                if not isinstance(part["text"], str):
                    raise Unusable(f"a content part's text is not a string ({part['text']!r:.60})")
                parts.append(part["text"])
        return "".join(parts) or None
    return content if isinstance(content, str) else None


def _tokens(value: Any, name: str) -> int:
    """Return a usage count; whole numbers, also written as float or digit string, are accepted."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise Unusable(f"usage.{name} is not a token count ({value!r:.60})")


def _usage(raw: Any) -> dict[str, int]:
    if raw is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}
    if not isinstance(raw, dict):
        raise Unusable(f"usage is not an object ({raw!r:.60})")
    details = raw.get("completion_tokens_details")
    nested = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return {
        "prompt_tokens": _tokens(raw.get("prompt_tokens"), "prompt_tokens"),
        "completion_tokens": _tokens(raw.get("completion_tokens"), "completion_tokens"),
        "reasoning_tokens": _tokens(nested if nested is not None else raw.get("reasoning_tokens"), "reasoning_tokens"),
    }


def _reply(data: dict[str, Any], content: bytes) -> Reply | str:
    choices = data.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        if data.get("error"):
            return f"error in response body: {error_message(content)}"
        return "response has no choices"
    choice = choices[0]
    raw_message = choice.get("message")
    message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
    answer = _text(message.get("content"))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    finish = choice.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise Unusable(f"finish_reason is not a string ({finish!r:.60})")
    if not answer and finish != "length":  # cut off by the token limit is a model outcome; empty is not
        return f"response has no answer text (content {message.get('content')!r:.80}, finish_reason {finish!r})"
    raw_usage = data.get("usage")
    cost = raw_usage.get("cost") if isinstance(raw_usage, dict) else None
    # a cost that is not a finite non-negative number is unknown, not a reason to drop the answer
    valid = isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0
    cost_usd = float(cost) if valid and cost is not None else None
    return Reply(
        status="ok",
        answer_text=answer,
        reasoning_text=reasoning if isinstance(reasoning, str) else None,
        finish_reason=finish,
        usage=_usage(raw_usage),
        model=data.get("model") if isinstance(data.get("model"), str) else None,
        cost_usd=cost_usd,
    )


def parse_completion(content: bytes) -> Reply | str:
    """Return the Reply in a chat-completion body, or a string saying why the body is unusable.

    Never raises: whatever a server sends, the question gets a reason it can be
    retried for and recorded with.
    """
    try:
        data = json.loads(content)
    except ValueError:
        return f"malformed response body: {content[:120].decode('utf-8', 'replace')!r}"
    except RecursionError:
        return "malformed response body: nested too deeply"
    if not isinstance(data, dict):
        return "response body is not a JSON object"
    try:
        return _reply(data, content)
    except Unusable as exc:
        return f"unusable response: {exc}"
    except Exception as exc:
        return f"unusable response: {type(exc).__name__}: {exc}"
