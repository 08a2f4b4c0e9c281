"""Embedded model: questions per second of the default SmolLM2-135M (llama.cpp, launched by predict.py).

Timed: ``python predict.py run.limit=N paths.predictions=<fresh>`` with the
default configuration (jmle2026, smollm2_135m on the local llama.cpp server,
``provider.max_concurrency`` 2, ``max_tokens`` 64), each repeat into a new
folder. Reported: start-up (spawn → predict's "asking N of M" log line: Hydra,
data load, llama.cpp server start, model load, health wait), the answering
loop (that line → the last prediction file written) and questions per second
over that loop, the whole process (start-up + loop + server stop), and CPU
(predict and the llama.cpp server it waited for) and peak RSS (the largest of
the two processes). No target in the issue: exit 0 unless the run fails.

    python -m bench.embedded            # N = 10, 3 repeats
    python -m bench.embedded --quick    # N = 10, 1 repeat
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench import _harness as h

BENCH = "embedded"


def main(argv: list[str] | None = None) -> int:
    """Time the embedded default predict run, print the table, return 1 only if it fails to run."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("-n", type=int, default=10, help="questions per run (run.limit)")
    p.add_argument("--keep", action="store_true", help="keep the run folders under bench/out/")
    p.add_argument("overrides", nargs="*", help="extra predict.py overrides, e.g. 'server.extra_args=[--n_threads,2]'")
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    info = h.announce_machine()

    startup, loop, qps, whole, cpu, rss, others = (h.Series() for _ in range(7))
    dirs, problems, runs = [], [], []
    for rep in range(repeats):
        work = h.fresh_dir(BENCH, f"n{args.n}")
        dirs.append(work)
        argv_ = [
            h.PYTHON,
            "predict.py",
            f"run.limit={args.n}",
            f"paths.predictions={work}",
            "run.progress=false",
            *args.overrides,
        ]
        child = h.run_child(argv_, timeout_s=300 + 30 * args.n, log=work / "predict.log")
        run_dirs = [r.parent for r in work.glob("*/*/run.json")]
        asking = h.log_time(child.output, r"asking \d+ of \d+")
        ok = h.count_predictions(run_dirs[0]).get("ok", 0) if len(run_dirs) == 1 else 0
        if child.rc != 0 or asking is None or ok != args.n:
            problems.append(f"run {rep + 1}: exit {child.rc}, {ok}/{args.n} answered: {child.output[-1000:]}")
            continue
        answering = h.last_file_landed(run_dirs[0]) - asking
        startup.add(asking - child.started_at)
        loop.add(answering)
        qps.add(args.n / answering)
        whole.add(child.wall_s)
        cpu.add(child.cpu_s)
        rss.add(child.max_rss_mb)
        others.add(100 * h.others_share(child))
        runs.append(
            {
                "startup_s": round(asking - child.started_at, 3),
                "loop_s": round(answering, 3),
                "summary_wall_s": h.summary_wall(child.output),
                "process_wall_s": round(child.wall_s, 3),
                "user_s": child.user_s,
                "sys_s": child.sys_s,
                "max_rss_mb": round(child.max_rss_mb, 1),
            }
        )
        print(
            f"  run #{rep + 1}: start-up {asking - child.started_at:.2f} s, {args.n} answers in {answering:.2f} s "
            f"({args.n / answering:.2f} q/s), process {child.wall_s:.2f} s",
            flush=True,
        )

    print()
    print(
        f"default predict.py (SmolLM2-135M Q4_1 on llama.cpp, 2 in flight, max_tokens 64), run.limit={args.n}; "
        f"{''.join(o + '; ' for o in args.overrides)}{repeats} repeat(s): median (min–max)"
    )
    print(
        h.table(
            ["measure", "value"],
            [
                ["questions per second (answering loop)", qps.show()],
                ["answering loop, s", loop.show()],
                ["start-up until the first question is asked, s", startup.show()],
                ["whole process wall, s", whole.show()],
                ["CPU s, predict + llama.cpp server", cpu.show()],
                ["peak RSS MB (largest process)", rss.show(0)],
                ["other load % (CPU of other processes, share of all cores)", others.show(0)],
            ],
        )
    )
    record: dict[str, Any] = {
        "machine": info,
        "n": args.n,
        "overrides": args.overrides,
        "runs": runs,
    }
    return h.finish(BENCH, record, problems, dirs, args.keep)


if __name__ == "__main__":
    sys.exit(main())
