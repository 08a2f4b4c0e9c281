"""Judge overhead: judge.py over 2,000 predictions against a fixed-latency loopback server acting as judge.

The fake server answers every judge request after ``L`` seconds with a valid
``match_answer`` JSON object (that rubric applies to every question, numeric
ones too), so with ``C`` requests in flight the best possible loop takes
``ideal = ceil(N / C) × L`` (4 s for N = 2,000, C = 256, L = 0.5 s).
Target (issue 16): median ``loop wall / ideal`` ≤ 1.2.

The 2,000 prediction files (one igakuqa run, every question answered) are
written directly, so only the judge stage is measured. Loop wall = from judge's
"asking N of M" log line (after imports, data load, reading and hashing the
prediction files, and the ``/models`` preflight) to the mtime of the last
judgment file: every request, its prompt (rubric template + question + reply),
reading the judge's JSON, and the fsynced atomic write of every judgment.
Process wall (whole command) is reported beside it.

    python -m bench.judge             # 3 repeats (~1 min)
    python -m bench.judge --quick     # 1 repeat
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from bench import _harness as h

BENCH = "judge"
SERVED = "openai/gpt-oss-120b"  # conf/model/gpt_oss_120b.yaml model.id: the preflight checks the served name
TARGET = 1.2
REPLY = json.dumps(
    {"rationale": "Same option as the key.", "extracted_answer": "a", "verdict": "correct", "confidence": 90}
)


def _predictions(root: Path, n: int) -> Path:
    """Write one finished igakuqa run of ``n`` answered predictions (run.json + one file each); return its folder."""
    h.use_offline_data()
    from jmle_eval.config import compose, load_questions

    questions = load_questions(compose(["dataset=igakuqa"]))[:n]
    run = root / "igakuqa" / "model_x"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"format": 1, "run": "model_x", "dataset": "igakuqa",
                                              "fingerprint": "f" * 64, "image_mode": "blind"}))  # fmt: skip
    for q in questions:
        record = {"question_id": q.id, "status": "ok", "answer_text": f"考察…\n【回答】{q.gold[0]}",
                  "usage": {"prompt_tokens": 500, "completion_tokens": 300, "reasoning_tokens": 0}}  # fmt: skip
        (run / f"{q.id}.json").write_text(json.dumps(record, ensure_ascii=False))
    return run


def _once(server: h.Server, args: argparse.Namespace, rep: int) -> dict[str, Any]:
    """Run judge.py once over a fresh prediction run; return its measurements."""
    work = h.fresh_dir(BENCH, f"rep{rep}")
    _predictions(work / "predictions", args.n)
    server.reset(default_content=REPLY)
    argv = [h.PYTHON, "judge.py", "dataset=igakuqa", "model=gpt_oss_120b", "provider=vllm", "rubric=match_answer"]
    argv += [f"provider.base_url={server.base_url}", f"provider.max_concurrency={args.concurrency}"]
    argv += [f"paths.predictions={work / 'predictions'}", f"paths.judgments={work / 'judgments'}"]
    argv += ["run.progress=false"]
    child = h.run_child(argv, timeout_s=300.0, log=work / "judge.log")
    runs = list((work / "judgments").glob("igakuqa/model_x/*/run.json"))
    start = h.log_time(child.output, r"asking \d+ of \d+")
    if child.rc != 0 or len(runs) != 1 or start is None:
        return {"dir": work, "problem": f"judge exited {child.rc}: {child.output[-800:]}"}
    counts = h.count_predictions(runs[0].parent)
    return {
        "dir": work,
        "loop_wall_s": h.last_file_landed(runs[0].parent) - start,
        "process_wall_s": child.wall_s,
        "cpu_s": child.cpu_s,
        "max_rss_mb": child.max_rss_mb,
        "ok": counts.get("ok", 0),
        "requests": int(server.stats()["total"]),
        "others": h.others_share(child),
    }


def main(argv: list[str] | None = None) -> int:
    """Judge N predictions ``repeats`` times; print the table; return 1 if the median ratio misses the target."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--latency", type=float, default=0.5)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--keep", action="store_true", help="keep the folders under bench/out/")
    args = p.parse_args(argv)
    info = h.announce_machine()
    ideal = math.ceil(args.n / args.concurrency) * args.latency
    ratio, loop, process, cpu, rss, others = (h.Series() for _ in range(6))
    record: dict[str, Any] = {"machine": info, "n": args.n, "latency": args.latency, "ideal_s": ideal, "runs": []}
    problems: list[str] = []
    dirs: list[Path] = []
    with h.fake_server(latency=args.latency, served_name=SERVED, workdir=h.OUT / BENCH) as server:
        for rep in range(1 if args.quick else args.repeats):
            m = _once(server, args, rep)
            dirs.append(m.pop("dir"))
            if "problem" in m or m["ok"] != args.n or m["requests"] != args.n:
                problems.append(str(m.get("problem") or f"{m['ok']} ok, {m['requests']} requests for {args.n}"))
                continue
            ratio.add(m["loop_wall_s"] / ideal)
            loop.add(m["loop_wall_s"])
            process.add(m["process_wall_s"])
            cpu.add(m["cpu_s"])
            rss.add(m["max_rss_mb"])
            others.add(100 * m["others"])
            record["runs"].append({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()})
            print(f"  #{rep + 1}: ratio {m['loop_wall_s'] / ideal:.3f} (loop {m['loop_wall_s']:.2f} s, "
                  f"process {m['process_wall_s']:.2f} s)", flush=True)  # fmt: skip
    if ratio.values and not ratio.median <= TARGET:
        problems.append(f"median ratio {ratio.median:.3f} > target {TARGET}")
    headers = ["N", "C", "L s", "ideal s", "ratio", "loop wall s", "process wall s", "CPU s", "peak RSS MB", "other %"]
    row = [args.n, args.concurrency, args.latency, f"{ideal:g}", ratio.show(3), loop.show(), process.show()]
    print(h.table(headers, [row + [cpu.show(), rss.show(0), others.show(0)]]))
    record["verdict"] = problems or "pass"
    return h.finish(BENCH, record, problems, dirs, args.keep)


if __name__ == "__main__":
    sys.exit(main())
