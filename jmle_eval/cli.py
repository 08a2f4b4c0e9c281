"""Glue between Hydra and the library: config resolvers and user-error handling.

Entry points stay thin: ``@hydra.main`` hands the composed config to one
library function wrapped by :func:`guarded`, which turns a :class:`UserError`
into one clear paragraph on stderr and a non-zero exit, and removes the Hydra
output folder a refused invocation created, so that a bad command leaves
nothing behind.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from jmle_eval.errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def run_name(model_name: str, task_overrides: list[str], ignore: list[str], aliases: Mapping[str, str]) -> str:
    """Return ``<model>`` plus the answer-changing overrides, e.g. ``gpt_oss_120b-effort_high``.

    Only ``model.*``, ``prompt.*`` and ``image_mode`` overrides change answers;
    the rest (provider, run, paths, server, dataset selection) do not, so a
    resumed or re-sharded run keeps its name.
    """
    parts = [model_name]
    for item in sorted(task_overrides):
        key, _, value = item.lstrip("+~").partition("=")
        if not (key.startswith(("model.", "prompt.")) or key == "image_mode"):
            continue
        if any(key == i or key.startswith(i + ".") for i in ignore):
            continue
        alias = aliases.get(key)
        label = value if alias == "" else f"{alias or key.rsplit('.', 1)[-1]}_{value}"
        parts.append(_UNSAFE.sub("_", label).strip("_"))
    return "-".join(p for p in parts if p)


def _resolve_run_name(model_name: str, *, _root_: DictConfig) -> str:
    from hydra.core.hydra_config import HydraConfig

    try:
        overrides = list(HydraConfig.get().overrides.task)
    except ValueError:  # composed outside @hydra.main (tests, compose API): no overrides known
        overrides = []
    run = _root_.get("run", {})
    return run_name(
        model_name,
        overrides,
        list(run.get("name_ignore") or []),
        dict(run.get("name_aliases") or {}),
    )


def _job_tag() -> str:
    """Return a tag unique per process, so concurrent shards never share a log folder."""
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}"


def _run_folder(name: Any) -> str:
    """Return ``name`` as the run folder, or a placeholder when it is not one safe folder name.

    Hydra makes its log folder inside the run folder before predict starts, so
    a name such as ``../../etc`` must not reach the path; predict then refuses
    the name itself (``plan.check_run_name``) and the placeholder folder is
    removed with the rest of a refused start.
    """
    text = str(name)
    unsafe = not text.strip() or text.startswith(".") or any(c in text for c in "/\\\0") or not text.isprintable()
    return "_refused-run-name_" if unsafe else text


def _log_root(run_dir: Any) -> str:
    """Return ``run_dir`` for Hydra's log folder, or a temporary folder when it cannot be made there.

    Hydra creates its output folder before predict starts; when a part of the
    path is a file (``paths.predictions=<a file>``) that would be a traceback, so
    the log goes to the temporary folder and predict refuses the path itself.
    """
    path = Path(str(run_dir))
    for folder in (path, *path.parents):
        if folder.exists():
            if folder.is_dir():
                return str(path)
            break
    return os.path.join(tempfile.gettempdir(), "jmle-eval-refused", _job_tag())


def register_resolvers() -> None:
    """Register the ``jmle_*`` OmegaConf resolvers (idempotent)."""
    if not OmegaConf.has_resolver("jmle_log_root"):
        OmegaConf.register_new_resolver("jmle_log_root", _log_root)
    if not OmegaConf.has_resolver("jmle_run_folder"):
        OmegaConf.register_new_resolver("jmle_run_folder", _run_folder)
    if not OmegaConf.has_resolver("jmle_run_name"):
        OmegaConf.register_new_resolver("jmle_run_name", _resolve_run_name)
    if not OmegaConf.has_resolver("jmle_job_tag"):
        OmegaConf.register_new_resolver("jmle_job_tag", _job_tag, use_cache=True)


def fail(message: str, code: int = 2) -> None:
    """Print the message as one paragraph (no traceback) to stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def check_argv(argv: list[str]) -> None:
    """Refuse command-line overrides Hydra would answer with a traceback (an empty key such as ``=5``)."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key = arg.split("=", 1)[0].lstrip("+~")
        if not key.strip():
            fail(
                f"The override {arg!r} has no key before '='. Write overrides as key=value, e.g. run.limit=5 or "
                "model=qwen3_32b (see conf/config.yaml for the keys)."
            )


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


def _remove_hydra_output(stop_at: str | None) -> None:
    """Delete this invocation's Hydra output folder and any parents it left empty."""
    try:
        from hydra.core.hydra_config import HydraConfig

        out = Path(HydraConfig.get().runtime.output_dir)
    except (ValueError, ImportError):
        return
    if not out.exists() or out.resolve() == Path.cwd().resolve():
        return
    shutil.rmtree(out, ignore_errors=True)
    cwd = Path.cwd().resolve()
    stop = Path(stop_at).resolve() if stop_at else cwd
    parent = out.parent.resolve()
    # up to and including the output root (a refused first run leaves no empty predictions/), never the cwd
    while parent != cwd and (parent == stop or stop in parent.parents):
        try:
            parent.rmdir()  # only succeeds when empty
        except OSError:
            break
        parent = parent.parent


def guarded(fn: Callable[[DictConfig], int | None]) -> Callable[[DictConfig], None]:
    """Wrap a Hydra task function: UserError → clear message, cleanup, exit code 2."""

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig) -> None:
        try:
            code = fn(cfg)
        except UserError as exc:
            if exc.keep_output:  # a run that did work keeps its log, with why it stopped
                _log_to_files(str(exc))
            else:  # a refused start leaves nothing
                _remove_hydra_output(OmegaConf.select(cfg, "paths.predictions", default=None))
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            print("interrupted: finished work is kept; run the same command again to resume.", file=sys.stderr)
            raise SystemExit(130) from None
        if code:
            raise SystemExit(code)

    return wrapper


def to_plain(cfg: Any) -> Any:
    """Return a resolved plain-Python copy of a config node (dicts and lists)."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except Exception as exc:  # omegaconf raises several types for bad interpolations
            raise UserError(f"The configuration cannot be resolved: {exc}") from exc
    return cfg
