"""Glue between the entry points and the library: user errors become one paragraph and an exit code.

Entry points stay thin: ``@hydra.main`` hands the composed config to one
library function wrapped by :func:`guarded`, which turns a :class:`UserError`
into one clear paragraph on stderr and a non-zero exit, and removes the Hydra
output folder a refused invocation created, so that a bad command leaves
nothing behind.

Config mistakes never reach the task: :func:`run_hydra` checks the override
keys against the schema first (no composition, so no start-up cost), and sets
``HYDRA_FULL_ERROR`` so that Hydra raises its composition errors instead of
printing two paragraphs and exiting 1; they are then explained in our words
(:func:`jmle_eval.config_errors.explain`) with exit code 2. An exception from
the task itself is a bug: :func:`guarded` marks it, and it ends in a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from jmle_eval.errors import UserError, restore_interrupts
from jmle_eval.hydra_output import remove_output

_RAISE = "HYDRA_FULL_ERROR"
_CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
_SOURCE_FLAGS = ("-cd", "--config-dir", "-cp", "--config-path", "-cn", "--config-name")
_MODE_KEY = re.compile(r"^\s*mode\s*:", re.M)


def fail(message: str, code: int = 2) -> None:
    """Print the message as one paragraph (no traceback) to stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_hydra(main: Callable[[], Any], config_name: str) -> None:
    """Run an ``@hydra.main`` entry point; any config mistake, Hydra's own included, is one paragraph and exit 2."""
    from jmle_eval.config import setup
    from jmle_eval.config_errors import check_overrides, explain

    argv = sys.argv[1:]
    setup(config_name)
    try:
        check_overrides(argv, config_name)
    except UserError as exc:
        fail(str(exc), exc.exit_code)
    try:
        if os.environ.get(_RAISE):  # the user asked for Hydra's own report, traceback included
            with _skip_mode_probe(argv):
                main()
            return
        os.environ[_RAISE] = "1"
        try:
            with _skip_mode_probe(argv):
                main()
        except Exception as exc:
            if getattr(exc, "jmle_task_error", False):  # a bug in the task, not a config mistake
                raise
            _remove_sweep_record(exc)
            fail(explain(exc, config_name))
    finally:
        # The process exits next. Frozen, its objects are skipped by Python's last garbage collection,
        # which otherwise scans them all for nothing: 0.1 s after scoring 20 runs (bench/RESULTS.md).
        gc.freeze()


def mode_may_be_set(argv: list[str]) -> bool:
    """Return True unless neither the command line nor a YAML file in conf/ can set ``hydra.mode``.

    An override of a ``hydra`` key or group, another config source (``--config-dir`` …), or any
    ``mode:`` key in conf/ (a false alarm at worst) counts as "may be set".
    """
    for arg in argv:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key in _SOURCE_FLAGS or key == "hydra" or key.startswith(("hydra.", "hydra/")):
            return True
    return any(_MODE_KEY.search(path.read_text(errors="replace")) for path in _CONF_DIR.rglob("*.yaml"))


@contextlib.contextmanager
def _skip_mode_probe(argv: list[str]) -> Iterator[None]:
    """Skip Hydra's extra composition of the whole config (``Hydra.get_mode``) when it can only find no mode.

    Hydra composes every run's config twice: first only to read ``hydra.mode`` (None unless a config or
    override sets it; then ``-m`` alone decides), then for real. The first costs about 0.1 s of start-up.
    """
    from hydra._internal.hydra import Hydra

    if mode_may_be_set(argv):
        yield
        return
    probe = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hydra.get_mode = probe  # type: ignore[method-assign]


def _remove_sweep_record(exc: BaseException) -> None:
    """Delete the ``multirun.yaml`` a refused sweep wrote before Hydra composed its points, and emptied folders.

    Hydra's sweeper saves it, then validates every point; its folder is found in the sweeper's frame.
    """
    tb, sweep = exc.__traceback__, None
    while tb is not None and sweep is None:
        if tb.tb_frame.f_code.co_name == "sweep" and isinstance(tb.tb_frame.f_locals.get("sweep_dir"), Path):
            sweep = tb.tb_frame.f_locals["sweep_dir"]
        tb = tb.tb_next
    record = sweep / "multirun.yaml" if sweep else None
    if sweep and record and record.is_file() and not [p for p in sweep.iterdir() if p != record]:
        record.unlink()
        for folder in (sweep, sweep.parent):  # predictions/<dataset>, then predictions/ (never the cwd)
            if folder.resolve() != Path.cwd().resolve():
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only succeeds when empty


def _log_to_files(message: str) -> None:
    """Append an error to the log files of this invocation (predict.log), not to the console."""
    record = logging.LogRecord("jmle_eval", logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def run_module(main: Callable[[list[str]], int]) -> None:
    """Run a module command's ``main(argv)`` and exit with its code; a UserError becomes one clear paragraph."""
    try:
        code = main(sys.argv[1:])
    except UserError as exc:
        fail(str(exc), exc.exit_code)
    raise SystemExit(code)


def _checked(fn: Callable[[DictConfig], int | None], cfg: DictConfig) -> int | None:
    from jmle_eval.config_schema import check_values

    check_values(cfg)
    return fn(cfg)


def guarded(
    fn: Callable[[DictConfig], int | None], output_root: str = "paths.predictions"
) -> Callable[[DictConfig], None]:
    """Wrap a Hydra task function: UserError → clear message, cleanup up to ``output_root``, exit code 2."""

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig) -> None:
        restore_interrupts()  # from here on Ctrl-C cancels the work and keeps what is done
        try:
            code = _checked(fn, cfg)
        except UserError as exc:
            if exc.keep_output:  # a run that did work keeps its log, with why it stopped
                _log_to_files(str(exc))
            else:  # a refused start leaves nothing
                remove_output(OmegaConf.select(cfg, output_root, default=None))
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            print("interrupted: finished work is kept; run the same command again to resume.", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as exc:
            exc.jmle_task_error = True  # type: ignore[attr-defined]  # run_hydra: not a config mistake
            raise
        if code:
            raise SystemExit(code)

    return wrapper
