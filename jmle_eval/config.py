"""Compose the Hydra config outside ``@hydra.main`` (module CLIs, tests), and small accessors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from jmle_eval import config_schema
from jmle_eval.config_errors import check_overrides, explain
from jmle_eval.errors import UserError
from jmle_eval.resolvers import register_resolvers

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def setup(config_name: str | None = None) -> None:
    """Register what composing ``conf/<config_name>.yaml`` needs: the ``jmle_*`` resolvers and its schema."""
    register_resolvers()
    config_schema.register(config_name)


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Return the composed config for ``overrides``, raising UserError (one paragraph) on any config mistake."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    setup(config_name)
    overrides = list(overrides or [])
    check_overrides(overrides, config_name)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides)
    except Exception as exc:  # Hydra and OmegaConf raise many types (even AssertionError) for a bad config
        raise UserError(explain(exc, config_name)) from exc
    config_schema.check_values(cfg)
    return cfg


def dataset_card(cfg: DictConfig) -> dict[str, Any]:
    """Return the resolved ``dataset`` node as a plain dict (the loaders are Hydra-free)."""
    card = to_plain(cfg.dataset)
    assert isinstance(card, dict)
    return card


def load_questions(cfg: DictConfig) -> list:
    """Return the questions of ``cfg.dataset`` (filters applied), fetching files if needed."""
    from jmle_eval import datasets

    return datasets.load(dataset_card(cfg), data_dir=os.fspath(cfg.paths.data))


def to_plain(cfg: Any) -> Any:
    """Return a resolved plain-Python copy of a config node (dicts and lists)."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except Exception as exc:  # omegaconf raises several types for bad interpolations
            raise UserError(f"The configuration cannot be resolved: {exc}") from exc
    return cfg


def load_card(name: str, selected: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the data set card ``name`` with its selection filters removed (scoring grades every question)."""
    if selected and selected.get("name") == name and "exams" in selected:
        card = dict(selected)
    else:
        path = CONF_DIR / "dataset" / f"{name}.yaml"
        if not path.is_file():
            raise UserError(f"no data set card conf/dataset/{name}.yaml")
        try:  # the schema fills in defaults (grader) and refuses an unknown key, as composing would
            card = to_plain(OmegaConf.merge(OmegaConf.structured(config_schema.Dataset), OmegaConf.load(path)))
        except Exception as exc:
            raise UserError(f"conf/dataset/{name}.yaml: {explain(exc, prefix='dataset.')}") from exc
    card["years"] = None
    card["blocks"] = None
    return card
