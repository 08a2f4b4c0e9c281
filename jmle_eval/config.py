"""Compose the Hydra config outside ``@hydra.main`` (module CLIs, tests), and small accessors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from jmle_eval.cli import register_resolvers, to_plain
from jmle_eval.errors import UserError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Return the composed config for ``overrides``, raising UserError on a bad override."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides or []))
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        detail = str(exc).split("\nConfig search path")[0].replace("\n", " ")
        raise UserError(f"Bad configuration override(s) {overrides}: {detail}") from exc


def dataset_card(cfg: DictConfig) -> dict[str, Any]:
    """Return the resolved ``dataset`` node as a plain dict (the loaders are Hydra-free)."""
    card = to_plain(cfg.dataset)
    assert isinstance(card, dict)
    return card


def load_questions(cfg: DictConfig) -> list:
    """Return the questions of ``cfg.dataset`` (filters applied), fetching files if needed."""
    from jmle_eval import datasets

    return datasets.load(dataset_card(cfg), data_dir=os.fspath(cfg.paths.data))
