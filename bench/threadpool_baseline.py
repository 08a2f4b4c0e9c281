"""Baseline client: a thread pool of blocking ``openai`` calls, the JMLE2026-Bench design.

Sends the same prompts as ``predict.py`` (same data set, same template, same
``reasoning_effort``) to the same server with ``--parallel`` worker threads,
each call going through the SDK's typed ``chat.completions.create`` with its
own retries (which honour ``Retry-After``). Prints one JSON line with the wall
time of the request loop (start-up and prompt building excluded) and the
number of answers and errors; ``bench.client_overhead`` measures its CPU and
peak RSS from outside, as it does for ``predict.py``.

    python -m bench.threadpool_baseline --base-url http://127.0.0.1:8000/v1 --parallel 256 --limit 2000
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jmle_eval.config import compose, load_questions
from jmle_eval.predict import prompts


def main() -> None:
    """Run the thread-pool loop once and print its measurements as JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", required=True)
    p.add_argument("--parallel", type=int, default=8, help="worker threads (JMLE2026-Bench --parallel)")
    p.add_argument("--limit", type=int, default=2000)
    p.add_argument("--dataset", default="igakuqa")
    p.add_argument("--model", default="openai/gpt-oss-20b")
    p.add_argument("--reasoning-effort", default="medium")
    p.add_argument("--timeout", type=float, default=300, help="per request, seconds (JMLE2026-Bench default)")
    args = p.parse_args()

    from openai import OpenAI  # after argparse: --help stays fast

    questions = [q for q in load_questions(compose([f"dataset={args.dataset}"])) if prompts.wants(q, "blind")]
    messages = [prompts.build_messages(q, "blind") for q in questions[: args.limit]]
    client = OpenAI(base_url=args.base_url, api_key="bench", timeout=args.timeout, max_retries=5)
    extra: dict[str, Any] = {"reasoning_effort": args.reasoning_effort} if args.reasoning_effort else {}

    def ask(msgs: list[dict[str, Any]]) -> str | None:
        try:
            resp = client.chat.completions.create(model=args.model, messages=msgs, extra_body=extra)  # type: ignore[arg-type]
        except Exception:  # an error is counted and the loop moves on, as the baseline does
            return None
        return resp.choices[0].message.content

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        answers = list(pool.map(ask, messages))
    wall = time.perf_counter() - t0
    answered = sum(a is not None for a in answers)
    print(
        json.dumps(
            {
                "client": "threadpool",
                "n": len(answers),
                "answered": answered,
                "errors": len(answers) - answered,
                "loop_wall_s": round(wall, 4),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
