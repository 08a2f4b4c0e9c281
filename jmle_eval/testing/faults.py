"""What the fake server sends: a normal chat-completion reply, and each fault a real server shows.

The responses of :mod:`jmle_eval.testing.fakeserver`, which counts requests and
picks the fault; every function here takes the server's configuration (see
``fakeserver.DEFAULTS``) and what it needs of the request.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

FAULTS = (
    "429",  # rate limit with Retry-After
    "429-no-retry-after",
    "500",
    "502",
    "503",
    "hang",  # sleep past the client's timeout
    "reset",  # drop the connection without a response
    "malformed",  # 200 with a body that is not JSON
    "truncated",  # 200 with JSON cut in half
    "stall",  # 200, headers and half the body sent, then a sleep of hang_s before the rest
    "empty-choices",
    "null-content",
    "length",  # finish_reason=length, reasoning only (a model outcome, not a fault)
    "401",
    "400",
    "404",
)


def quoted_headers(request: web.Request) -> str:
    """Return the request's headers as an error page quotes them, Authorization first."""
    headers = sorted(request.headers.items(), key=lambda kv: kv[0].lower() != "authorization")
    return " (request headers: " + "; ".join(f"{k}: {v}" for k, v in headers) + ")"


async def failure(cfg: dict[str, Any], request: web.Request, fault: str | None) -> web.StreamResponse | None:
    """Return the response of a fault that replaces the answer (an HTTP error, a reset, a non-JSON body)."""
    echo = quoted_headers(request) if cfg["echo_headers"] else ""
    if fault in ("429", "503"):
        return web.json_response(
            {"error": {"message": f"slow down{echo}"}},
            status=int(fault),
            headers={"Retry-After": str(cfg["retry_after"])},
        )
    if fault == "429-no-retry-after":
        return web.json_response({"error": {"message": f"rate limited{echo}"}}, status=429)
    if fault in ("500", "502", "400", "401", "404"):
        return web.json_response({"error": {"message": f"injected {fault}{echo}"}}, status=int(fault))
    if fault == "hang":
        await asyncio.sleep(float(cfg["hang_s"]))
    if fault == "reset":
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=200)
    if fault == "malformed":
        return web.Response(text=f"<html>bad gateway{echo}</html>", content_type="application/json")
    return None


async def answer(
    cfg: dict[str, Any], request: web.Request, qid: str, attempt: int, body: dict[str, Any], fault: str | None
) -> web.StreamResponse:
    """Return the answer to one question, spoilt by a fault that keeps status 200 (no text, cut, stalled)."""
    letters = cfg["answers"].get(qid, cfg["answer"])
    content: Any = cfg["content"].get(qid, cfg["default_content"])
    if isinstance(content, list):  # one reply per sample: the request's seed picks it (run.repeats with a seed)
        content = content[int(body.get("seed") or 0) % len(content)]
    if content is None:
        content = f"考察…\n{cfg['marker']}{letters}"
    finish = "stop"
    if fault == "null-content":
        content = None
    if fault == "length":
        content, finish = None, "length"
    payload = reply_payload(cfg, qid, attempt, body, content)
    payload["choices"][0]["finish_reason"] = finish
    if fault == "empty-choices":
        payload["choices"] = []
    data = json.dumps(payload, ensure_ascii=False)
    if fault == "truncated":
        data = data[: len(data) // 2]
    if fault == "stall":
        return await stall(cfg, request, data.encode())
    return web.Response(text=data, content_type="application/json")


def reply_payload(
    cfg: dict[str, Any], qid: str, attempt: int, body: dict[str, Any], content: str | None
) -> dict[str, Any]:
    """Return a normal chat-completion reply with ``content`` (the shape a real server sends)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if cfg["reasoning_field"]:
        message[cfg["reasoning_field"]] = cfg["reasoning_text"]
    usage = dict(cfg["usage"])
    return {
        "id": f"chatcmpl-{qid}-{attempt}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", cfg["served_name"]),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"],
            "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
            "completion_tokens_details": {"reasoning_tokens": usage["reasoning_tokens"]},
        },
    }


def odd_reply(cfg: dict[str, Any], odd: dict[str, Any], qid: str, attempt: int, body: dict[str, Any]) -> web.Response:
    """Answer with a configured odd reply: a patched normal reply, or a raw body, with status and headers."""
    if "raw" in odd:
        text = str(odd["raw"])
    else:
        letters = cfg["answers"].get(qid, cfg["answer"])
        payload = reply_payload(cfg, qid, attempt, body, f"考察…\n{cfg['marker']}{letters}")
        text = json.dumps(deep_merge(payload, odd.get("patch") or {}))  # ASCII escapes, NaN allowed
    return web.Response(
        text=text,
        status=int(odd.get("status", 200)),
        headers=odd.get("headers") or {},
        content_type="application/json",
    )


async def stall(cfg: dict[str, Any], request: web.Request, data: bytes) -> web.StreamResponse:
    """Send the headers and half the body, sleep ``hang_s``, then send the rest."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(data)
    await response.prepare(request)
    await response.write(data[: len(data) // 2])
    await asyncio.sleep(float(cfg["hang_s"]))
    await response.write(data[len(data) // 2 :])
    await response.write_eof()
    return response


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``patch`` merged in; a list in the patch whose items are objects patches item by item."""
    out = dict(base)
    for key, value in patch.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = deep_merge(old, value)
        elif isinstance(value, list) and isinstance(old, list) and value and all(isinstance(v, dict) for v in value):
            out[key] = [deep_merge(o, v) if isinstance(o, dict) else v for o, v in zip(old, value, strict=False)]
        else:
            out[key] = value
    return out
