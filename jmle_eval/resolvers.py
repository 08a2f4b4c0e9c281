"""OmegaConf resolvers of ``conf/*.yaml``: the default run name, safe run and log folders, a per-process tag.

Registered by :func:`register_resolvers` before any config is composed (the
entry points and :func:`jmle_eval.config.compose` call it).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from jmle_eval.io import blocking_file

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


_ANSWER_GROUPS = ("model.", "prompt.")
_ANSWER_KEYS = ("image_mode", "dataset.language", "run.repeats")  # language=en: the exam in its translation


def run_name(model_name: str, task_overrides: list[str], ignore: list[str], aliases: Mapping[str, str]) -> str:
    """Return ``<model>`` plus the answer-changing overrides, e.g. ``gpt_oss_120b-effort_high`` or ``gpt_oss_120b-en``.

    Only ``model.*``, ``prompt.*``, ``image_mode``, ``dataset.language`` and
    ``run.repeats`` overrides change answers; the rest (provider, run, paths, server,
    dataset selection) do not, so a resumed or re-sharded run keeps its name.
    """
    parts = [model_name]
    for item in sorted(task_overrides):
        key, _, value = item.lstrip("+~").partition("=")
        if not (key.startswith(_ANSWER_GROUPS) or key in _ANSWER_KEYS):
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


_BAD_NAME_CHARS = frozenset('/\\\0:*?"<>|')


def run_name_problem(name: Any) -> str | None:
    """Return why ``name`` cannot be one folder under ``predictions/<dataset>/``, or None when it can."""
    text = str(name) if name is not None else ""
    bad = sorted({c for c in text if c in _BAD_NAME_CHARS or not c.isprintable()})
    if not text.strip():
        return "it is empty"
    if text.startswith("."):
        return "it starts with '.' (hidden, or a path like '..')"
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad)}"
    if len(text.encode()) > 200:
        return "it is longer than 200 bytes"
    return None


def _run_folder(name: Any) -> str:
    """Return ``name`` as the run folder, or a placeholder when it is not one safe folder name.

    Hydra makes its log folder inside the run folder before predict starts, so
    a name such as ``../../etc`` must not reach the path; predict then refuses
    the name itself (``plan.check_run_name``) and the placeholder folder is
    removed with the rest of a refused start.
    """
    return "_refused-run-name_" if run_name_problem(name) else str(name)


def _log_root(run_dir: Any) -> str:
    """Return ``run_dir`` for Hydra's log folder, or a temporary folder when it cannot be made there.

    Hydra creates its output folder before predict starts; when a part of the
    path is a file (``paths.predictions=<a file>``) that would be a traceback, so
    the log goes to the temporary folder and predict refuses the path itself.
    """
    if blocking_file(Path(str(run_dir))) is None:
        return str(run_dir)
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
