"""Progress while predicting (a rich bar on a terminal, periodic log lines elsewhere) and the summary line."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger("jmle_eval.predict")


class Progress:
    """Counts answers as they arrive and shows done/total, errors and tokens per second."""

    def __init__(self, label: str, total: int, *, mode: bool | str, every_s: float = 30.0) -> None:
        self.label, self.total, self.every_s = label, total, every_s
        self.done = self.errors = self.tokens = 0
        self.limit: int | None = None
        self._logged = 0
        self.started = self._last = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        if mode is True:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[errors]} errors  {task.fields[tps]} tok/s"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, errors=0, tps=0)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.done and self.done != self._logged:
            self._log()

    def rate(self) -> float:
        """Return completion tokens per second since the start."""
        return self.tokens / max(1e-9, time.monotonic() - self.started)

    def advance(self, *, ok: bool, tokens: int, limit: int | None = None) -> None:
        """Count one finished question."""
        self.done += 1
        self.errors += not ok
        self.tokens += tokens
        self.limit = limit
        if self._bar is not None:
            self._bar.update(self._task, advance=1, errors=self.errors, tps=f"{self.rate():,.0f}")
            return
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._log()

    def _log(self) -> None:
        self._logged = self.done
        log.info(
            "%s: %d/%d done, %d errors, %.0f tok/s, %.0f s elapsed%s",
            self.label, self.done, self.total, self.errors, self.rate(), time.monotonic() - self.started,
            f", in-flight limit {self.limit}" if self.limit is not None else "",
        )  # fmt: skip


def _count(n: int) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return str(n)


def summary_line(run: str, selected: int, totals: dict[str, Any] | None, out: Any, run_dir: Path) -> str:
    """Return the one-line summary of a run: answered, errors, tokens, cost, wall time, folder."""
    t = totals or {"answered": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}
    cost = t.get("cost_usd")
    parts = [
        f"{run}: answered {t['answered']}, errors {t['errors']} ({selected} selected)",
        f"this call asked {out.asked}: {out.ok} ok, {out.errors} errors" if out else "this call asked 0",
        f"tokens {_count(t['prompt_tokens'])} in, {_count(t['completion_tokens'])} out "
        f"({_count(t['reasoning_tokens'])} reasoning)",
        f"cost ${cost:,.4f}" if cost is not None else "cost n/a (no price)",
        f"wall {out.wall_s:.1f} s" if out else "wall 0.0 s",
        str(run_dir),
    ]
    return " | ".join(parts)
