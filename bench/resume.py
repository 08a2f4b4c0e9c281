"""Resume cost: re-running a finished 2,000-question run, with nothing left to ask, must take < 2 s.

Setup (not timed): predict.py answers all 2,000 igakuqa questions from a
zero-latency fake server; then the server is stopped, so a re-run that tried
the network would fail or wait. Timed: the same ``python predict.py …``
command, whole process (interpreter start, Hydra, data load, reading the 2,000
files, the summary line). Also reported: the time from the spawn to the log
line saying there is nothing to ask (the point where the first network call
would otherwise be made). Exit 1 if the median whole-process wall is ≥ 2 s.

    python -m bench.resume            # 5 timed re-runs
    python -m bench.resume --quick    # 2 timed re-runs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench import _harness as h

BENCH = "resume"
TARGET_S = 2.0
SERVED = "openai/gpt-oss-20b"


def predict_argv(base_url: str, predictions: str, n: int) -> list[str]:
    """Return the predict.py command of the benchmark run (igakuqa, gpt_oss_20b on a vLLM-style endpoint)."""
    argv = [
        h.PYTHON,
        "predict.py",
        "dataset=igakuqa",
        "model=gpt_oss_20b",
        "provider=vllm",
        f"provider.base_url={base_url}",
        "provider.max_concurrency=256",
        "image_mode=blind",
        f"paths.predictions={predictions}",
        "run.progress=false",
    ]
    return argv + ([f"run.limit={n}"] if n < 2000 else [])


def _finish_setup_run(work: Path, n: int) -> str | None:
    """Answer every question into ``work`` from a fake server that is then stopped; return its URL (None: failed)."""
    with h.fake_server(latency=0.0, served_name=SERVED, workdir=work) as server:
        base_url = server.base_url
        setup = h.run_child(predict_argv(base_url, str(work), n), timeout_s=300, log=work / "setup.log")
    run_dirs = [r.parent for r in work.glob("igakuqa/*/run.json")]
    counts = h.count_predictions(run_dirs[0]) if len(run_dirs) == 1 else {}
    if setup.rc != 0 or counts.get("ok") != n:
        print(f"setup run failed (exit {setup.rc}, files {counts}):\n{setup.output[-1500:]}", file=sys.stderr)
        return None
    return base_url


def _print_table(series: dict[str, h.Series], n: int, repeats: int, ok: bool) -> None:
    print()
    print(f"re-run of a finished {n}-question run, server stopped; {repeats} repeat(s): median (min–max)")
    print(
        h.table(
            ["measure", "value", "target"],
            [
                ["whole process wall, s", series["wall"].show(), f"< {TARGET_S:g}: {h.verdict(ok)}"],
                ["spawn → 'nothing to ask' log line, s", series["decided"].show(), "—"],
                ["CPU s (user + sys)", series["cpu"].show(), "—"],
                ["peak RSS MB", series["rss"].show(0), "—"],
                ["other load % (CPU of other processes, share of all cores)", series["others"].show(0), "—"],
            ],
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Finish one run, time re-runs of it, print the table, return 1 if the target is missed."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 timed re-runs")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--keep", action="store_true", help="keep the run folder under bench/out/")
    args = p.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    info = h.announce_machine()
    work = h.fresh_dir(BENCH, "run")
    base_url = _finish_setup_run(work, args.n)
    if base_url is None:
        return 1
    time.sleep(2)  # let the setup's file writes settle before timing

    series = {name: h.Series() for name in ("wall", "decided", "cpu", "rss", "others")}
    problems: list[str] = []
    runs: list[dict[str, Any]] = []
    for rep in range(repeats):
        child = h.run_child(predict_argv(base_url, str(work), args.n), timeout_s=120, log=work / f"resume{rep}.log")
        at = h.log_time(child.output, r"nothing to ask")
        if child.rc != 0 or at is None or "this call asked 0" not in child.output:
            problems.append(f"re-run {rep + 1} exited {child.rc} without 'nothing to ask': {child.output[-600:]}")
            continue
        values = {"wall": child.wall_s, "decided": at - child.started_at, "cpu": child.cpu_s, "rss": child.max_rss_mb}
        for name, value in {**values, "others": 100 * h.others_share(child)}.items():
            series[name].add(value)
        runs.append(
            {
                "wall_s": round(child.wall_s, 3),
                "decided_s": round(at - child.started_at, 3),
                "user_s": child.user_s,
                "sys_s": child.sys_s,
                "max_rss_mb": round(child.max_rss_mb, 1),
            }
        )
        print(f"  re-run #{rep + 1}: {child.wall_s:.2f} s (nothing to ask after {at - child.started_at:.2f} s)")

    wall = series["wall"]
    _print_table(series, args.n, repeats, ok=not problems and wall.median < TARGET_S)
    if wall.values and wall.median >= TARGET_S:
        problems.append(f"median whole-process wall {wall.median:.2f} s >= {TARGET_S:g} s")
    return h.finish(BENCH, {"machine": info, "n": args.n, "runs": runs}, problems, [work], args.keep)


if __name__ == "__main__":
    sys.exit(main())
