"""ChatClient against a real loopback server: retries, Retry-After, adaptive limit, odd bodies, fatal errors."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from jmle_eval.predict.client import ChatClient
from jmle_eval.predict.limit import AdaptiveLimit
from jmle_eval.predict.replies import Fatal, Reply, parse_completion, retry_after_s


def _body(qid: str) -> bytes:
    messages = [{"role": "user", "content": f"【問題 {qid}】 テスト"}]
    return json.dumps({"model": "fake-model", "messages": messages}, ensure_ascii=False).encode()


def _ask(base_url: str, ids: list[str], **settings) -> tuple[list[Reply], ChatClient]:
    """Ask every id concurrently through one client; return the replies (in id order) and the client."""
    options = {
        "max_concurrency": 8,
        "timeout_s": 5.0,
        "max_attempts": 4,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        **settings,
    }

    async def run() -> tuple[list[Reply], ChatClient]:
        client = ChatClient(base_url, "sk-test-key", **options)
        try:
            replies = await asyncio.gather(*(client.complete(lambda q=q: _body(q)) for q in ids))
        finally:
            await client.aclose()
        return list(replies), client

    return asyncio.run(run())


IDS = [f"120A-{n}" for n in range(1, 41)]
TRANSIENT = ["429", "429-no-retry-after", "500", "502", "503", "reset", "malformed", "truncated", "empty-choices",
             "null-content"]  # fmt: skip


@pytest.mark.parametrize("transport", ["lean", "sdk"])
def test_transient_faults_on_30_percent_all_end_ok(fake_server, transport):
    fake_server.configure(fault=TRANSIENT, fault_rate=0.3, fault_attempts=2, retry_after=0)
    replies, _ = _ask(fake_server.base_url, IDS, transport=transport)
    assert [r.status for r in replies] == ["ok"] * len(IDS)
    retried = [r for r in replies if r.attempts > 1]
    assert len(retried) >= 5 and all(r.attempts == 3 for r in retried)
    assert all(r.answer_text and r.answer_text.endswith("【回答】a") for r in replies)
    stats = fake_server.stats()
    assert stats["total"] == len(IDS) + 2 * len(retried)
    assert sum(v for k, v in stats["statuses"].items() if k != "ok") == 2 * len(retried)


def test_reply_captures_reasoning_usage_latency_and_model(fake_server):
    fake_server.configure(reasoning_field="reasoning", usage={"prompt_tokens": 7, "completion_tokens": 9,
                                                              "reasoning_tokens": 4})  # fmt: skip
    (reply,), _ = _ask(fake_server.base_url, ["120B-3"])
    assert reply.status == "ok" and reply.finish_reason == "stop" and reply.attempts == 1
    assert reply.reasoning_text == "考え中…"
    assert reply.usage == {"prompt_tokens": 7, "completion_tokens": 9, "reasoning_tokens": 4}
    assert reply.model == "fake-model" and reply.latency_s is not None and reply.latency_s >= 0


def test_finish_reason_length_is_a_model_outcome_not_retried(fake_server):
    fake_server.configure(fault="length", fault_rate=1.0, fault_attempts=99)
    replies, _ = _ask(fake_server.base_url, IDS[:5])
    assert all(r.status == "ok" and r.finish_reason == "length" and r.answer_text is None for r in replies)
    assert all(r.attempts == 1 and r.reasoning_text for r in replies)
    assert fake_server.stats()["total"] == 5


def test_persistent_failure_ends_as_error_after_bounded_attempts(fake_server):
    fake_server.configure(faults={"120A-2": "500", "120A-3": "malformed"})
    replies, _ = _ask(fake_server.base_url, IDS[:4], max_attempts=3)
    assert [r.status for r in replies] == ["ok", "error", "error", "ok"]
    assert replies[1].attempts == 3 and "HTTP 500" in replies[1].error
    assert "malformed" in replies[2].error
    assert fake_server.stats()["requests"] == {"120A-1": 1, "120A-2": 3, "120A-3": 3, "120A-4": 1}


def test_retry_after_is_honoured(fake_server):
    fake_server.configure(faults={}, fault="429", fault_rate=1.0, fault_attempts=1, retry_after=1)
    started = time.monotonic()
    (reply,), _ = _ask(fake_server.base_url, ["120C-1"], backoff_max_s=5)
    assert reply.status == "ok" and reply.attempts == 2
    assert time.monotonic() - started >= 1.0


def test_hung_request_times_out_and_is_retried(fake_server):
    fake_server.configure(fault="hang", fault_rate=1.0, fault_attempts=1, hang_s=30)
    started = time.monotonic()
    replies, _ = _ask(fake_server.base_url, IDS[:3], timeout_s=0.5)
    assert all(r.status == "ok" and r.attempts == 2 for r in replies)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("status", ["401", "404"])
def test_hard_4xx_raises_fatal_without_retry(fake_server, status):
    fake_server.configure(faults={"120A-1": status})
    with pytest.raises(Fatal) as info:
        _ask(fake_server.base_url, ["120A-1"])
    assert info.value.status == int(status) and f"injected {status}" in info.value.message
    assert fake_server.stats()["total"] == 1


def test_bad_request_is_an_error_without_retry(fake_server):
    fake_server.configure(faults={"120A-1": "400"})
    (reply,), _ = _ask(fake_server.base_url, ["120A-1"])
    assert reply.status == "error" and reply.http_status == 400 and reply.attempts == 1
    assert "injected 400" in reply.error


def test_sustained_429_cuts_in_flight_limit_then_all_succeed(fake_server):
    fake_server.configure(fault="429", fault_rate=1.0, fault_attempts=3, retry_after=0)
    replies, client = _ask(fake_server.base_url, IDS, max_concurrency=32, max_attempts=5)
    assert all(r.status == "ok" for r in replies)
    assert client.limit.cuts >= 2 and client.limit.lowest <= 8


def test_adaptive_limit_halves_once_per_epoch_and_grows_back():
    async def run() -> None:
        limit = AdaptiveLimit(8)
        epochs = [await limit.acquire() for _ in range(8)]
        for epoch in epochs:  # one burst of 429s from requests of the same epoch: one cut
            limit.rate_limited(epoch)
            limit.release()
        assert (limit.limit, limit.cuts) == (4, 1)
        blocked = [asyncio.ensure_future(limit.acquire()) for _ in range(6)]
        await asyncio.sleep(0)
        assert limit.in_flight == 4 and sum(t.done() for t in blocked) == 4
        limit.succeeded()  # below the maximum: one more in flight per limit // 8 successes
        await asyncio.sleep(0)
        assert limit.limit == 5 and limit.in_flight == 5
        for task in blocked:
            task.cancel()
        await asyncio.gather(*blocked, return_exceptions=True)

    asyncio.run(run())


def test_occasional_429s_leave_the_limit_alone():
    async def run() -> None:
        limit = AdaptiveLimit(256)
        for i in range(2000):  # 1 % of replies rate limited, spread out: not sustained
            epoch = await limit.acquire()
            limit.rate_limited(epoch) if i % 100 == 0 else limit.succeeded()
            limit.release()
        assert (limit.limit, limit.cuts) == (256, 0)
        for _ in range(30):  # a hard cap: every other reply a 429
            epoch = await limit.acquire()
            limit.rate_limited(epoch)
            limit.succeeded()
            limit.release()
        assert limit.cuts >= 1 and limit.limit <= 128

    asyncio.run(run())


def test_unreachable_server_raises_connection_error_naming_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes

    async def run() -> None:
        client = ChatClient(f"http://127.0.0.1:{port}/v1", "k", max_concurrency=1, timeout_s=1, max_attempts=1,
                            backoff_s=0, backoff_max_s=0)  # fmt: skip
        try:
            await client.models(1.5)
        finally:
            await client.aclose()

    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}/v1/models"):
        asyncio.run(run())
    assert time.monotonic() - started < 10


def test_models_lists_served_ids_and_rejects_bad_key(fake_server):
    fake_server.configure(served_name="org/model-x", api_key="right-key")

    async def models(key: str) -> list[str]:
        client = ChatClient(fake_server.base_url, key, max_concurrency=1, timeout_s=2, max_attempts=1, backoff_s=0,
                            backoff_max_s=0)  # fmt: skip
        try:
            return await client.models(2)
        finally:
            await client.aclose()

    assert asyncio.run(models("right-key")) == ["org/model-x"]
    with pytest.raises(Fatal) as info:
        asyncio.run(models("wrong-key"))
    assert info.value.status == 401 and "wrong-key" not in str(info.value)


def test_parse_completion_handles_odd_bodies():
    assert "malformed" in parse_completion(b"<html>")
    assert "no choices" in parse_completion(b'{"choices": []}')
    assert "error in response" in parse_completion(b'{"error": {"message": "upstream overloaded"}}')
    null_content = b'{"choices": [{"message": {"content": null}, "finish_reason": "stop"}]}'
    assert "no answer text" in parse_completion(null_content)
    parts = {"content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}
    body = {"choices": [{"message": parts, "finish_reason": "stop"}], "usage": {"reasoning_tokens": 3, "cost": 0.5}}
    reply = parse_completion(json.dumps(body).encode())
    assert isinstance(reply, Reply) and reply.answer_text == "AB"
    assert reply.usage["reasoning_tokens"] == 3 and reply.cost_usd == 0.5


def test_retry_after_header_forms():
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({}) is None
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
