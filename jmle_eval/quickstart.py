"""The quick start: answer a few exam questions, score them, and say where the leaderboard and plots are.

    python -m jmle_eval.quickstart                      # 20 JMLE2026 questions, embedded SmolLM2-135M, no GPU/key
    python -m jmle_eval.quickstart --questions 100      # more questions (the run resumes: answers are kept)
    python -m jmle_eval.quickstart model=qwen3_32b provider=vllm   # any predict.py overrides

It runs the two commands a user would type, ``python predict.py run.limit=N …`` and ``python score.py
dataset=<dataset> …``, and stops at the first that fails (with its exit code).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from jmle_eval.cli import fail
from jmle_eval.errors import UserError
from jmle_eval.resolvers import run_name

REPO = Path(__file__).resolve().parents[1]
DEFAULT_QUESTIONS = 20


def _run(argv: list[str]) -> int:
    """Run a command in the foreground and return its exit code; Ctrl-C/SIGTERM reach it and it finishes cleanly."""
    here = Path.cwd().resolve()
    shown = [
        "python"
        if part == sys.executable
        else str(Path(part).relative_to(here))
        if part.startswith(f"{here}/")
        else part
        for part in argv
    ]
    print(f"\n$ {shlex.join(shown)}", flush=True)
    child = subprocess.Popen(argv, cwd=Path.cwd())

    def forward(signum: int, frame: object) -> None:
        child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # the terminal sent SIGINT to both of us; make sure the child has it
                child.send_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Predict, score, print where the outputs are; return the exit code."""
    from jmle_eval.config import compose

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=DEFAULT_QUESTIONS, help="how many questions to answer")
    args, overrides = parser.parse_known_args(argv)
    if args.questions < 1:
        fail("--questions must be at least 1.")
    try:
        cfg = compose(overrides)
    except UserError as exc:
        fail(str(exc))
    dataset = cfg.dataset.name
    run = run_name(cfg.model.name, overrides, list(cfg.run.name_ignore), dict(cfg.run.name_aliases))
    paths = [f"paths.{key}={cfg.paths[key]}" for key in ("data", "predictions", "scored", "leaderboard")]

    code = _run([sys.executable, str(REPO / "predict.py"), f"run.limit={args.questions}", *overrides])
    if code:
        return code
    code = _run([sys.executable, str(REPO / "score.py"), f"dataset={dataset}", *paths])
    if code not in (0, 3):  # 3: scored, but some unrelated files in predictions/ were skipped
        return code

    board = Path(str(cfg.paths.leaderboard)) / dataset
    print(
        f"\nDone. {args.questions} questions of {dataset} answered by {cfg.model.display_name}.\n"
        f"  answers     {Path(str(cfg.paths.predictions)) / dataset / run}/\n"
        f"  scored      {Path(str(cfg.paths.scored)) / dataset / run}.jsonl (+ .summary.json)\n"
        f"  leaderboard {board}.md  ({board}.csv, {board}.json)\n"
        f"  plots       {board}.png  ({board}.blocks.png, {board}.cost.png)"
    )
    if cfg.model.get("notice"):
        print(f"Note: {cfg.model.notice}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
