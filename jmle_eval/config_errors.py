"""Config mistakes in one paragraph: keys the schema lacks (naming the nearest key), wrong types, Hydra's errors.

:func:`check_overrides` runs on the command line before Hydra composes
anything; :func:`explain` turns whatever Hydra or OmegaConf raised while
composing into a message that says what to fix (``jmle_eval.cli.run_hydra``
and :func:`jmle_eval.config.compose` use both).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from omegaconf import OmegaConf

from jmle_eval import config_schema
from jmle_eval.errors import UserError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
_FILES = {"config": "conf/config.yaml", "score": "conf/score.yaml", "judge": "conf/judge.yaml"}


def _fields(cls: type) -> dict[str, Any]:
    """Return ``{key: type}`` of a schema dataclass, keyed as in the YAML."""
    hints = get_type_hints(cls)
    return {f.name.rstrip("_"): hints[f.name] for f in dataclasses.fields(cls)}


def _unwrap(kind: Any) -> Any:
    """Return ``X`` for ``X | None``."""
    args = [a for a in get_args(kind) if a is not type(None)]
    return args[0] if len(args) == 1 and type(None) in get_args(kind) else kind


def is_open(kind: Any) -> bool:
    """Return True for a node that takes any key below it (``Any`` or a dict)."""
    kind = _unwrap(kind)
    return kind is Any or kind is dict or get_origin(kind) is dict


def lookup(config_name: str, key: str) -> tuple[Any, str]:
    """Return ``(type, "")`` of a dotted key, or ``(None, known_part)`` where the schema has no such key.

    Below an open node (``Any``, a dict) every key is allowed and its type is ``Any``.
    """
    kind: Any = config_schema.ROOTS[config_name]
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if is_open(kind):
            return Any, ""
        kind = _unwrap(kind)
        if not dataclasses.is_dataclass(kind):
            return None, ".".join(parts[:depth])
        fields = _fields(kind)  # type: ignore[arg-type]
        if part not in fields:
            return None, ".".join(parts[:depth])
        kind = fields[part]
    return kind, ""


def all_keys(config_name: str) -> list[str]:
    """Return every dotted key of a schema (open nodes as one key)."""
    out: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        for name, kind in _fields(cls).items():
            out.append(prefix + name)
            inner = _unwrap(kind)
            if dataclasses.is_dataclass(inner) and not is_open(kind):
                walk(inner, f"{prefix}{name}.")  # type: ignore[arg-type]

    walk(config_schema.ROOTS[config_name], "")
    return out


def describe(kind: Any) -> str:
    """Return what a value of ``kind`` must be, in a user's words (``a whole number``)."""
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    inner = _unwrap(kind)
    if get_origin(inner) is list or inner is list:
        return "a list"
    if dataclasses.is_dataclass(inner) or get_origin(inner) is dict:
        return "a mapping of settings"
    return words.get(inner, "a value of another type")


def _is_group(key: str) -> bool:
    return "/" in key or "@" in key or (CONF_DIR / key).is_dir() or key == "hydra" or key.startswith("hydra.")


def check_overrides(overrides: Sequence[str], config_name: str = "config") -> None:
    """Raise UserError for an override whose key the schema does not have, naming the nearest key.

    This runs before Hydra, because Hydra accepts ``+key=value`` for any key,
    even one no code reads (``+model.temprature=0.7`` would send no temperature).
    Keys below a free-form node (``model.extra_body``, ``provider.request_extra``) are Hydra's to check.
    """
    for item in overrides:
        if item.startswith("-") or "=" not in item:
            continue
        key = item.split("=", 1)[0].lstrip("+~").strip()
        if not key:  # Hydra would answer "=5" with a traceback
            raise UserError(
                f"The override {item!r} has no key before '='. Write overrides as key=value, e.g. run.limit=5 or "
                "model=qwen3_32b (see conf/config.yaml for the keys)."
            )
        if _is_group(key):
            continue
        kind, known = lookup(config_name, key)
        if kind is None:
            raise UserError(unknown_key(config_name, key, known, repr(item)))


def suggest(config_name: str, key: str) -> list[str]:
    """Return the schema keys a mistyped ``key`` most likely meant (a sibling first, then by the last part)."""
    keys = all_keys(config_name)
    parent, _, leaf = key.rpartition(".")
    siblings = [k for k in keys if k.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(key, siblings, n=1, cutoff=0.7)
    if close:
        return close
    section = key.split(".")[0] + "." if parent else ""
    leaves = {k.rsplit(".", 1)[-1] for k in keys if k.startswith(section)}
    near = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.7)
    return [k for k in keys if k.startswith(section) and near and k.rsplit(".", 1)[-1] == near[0]][:2]


def unknown_key(config_name: str, key: str, known: str, where: str) -> str:
    """Return the message for a key the schema does not have (``where``: the override or the file), with hints."""
    names = suggest(config_name, key)
    text = f"Unknown setting {key} in {where}" + (f": did you mean {' or '.join(names)}?" if names else ".")
    if known == "model.params":
        text += " Request fields model.params does not list go in model.extra_body (+model.extra_body.<field>=<value>)."
    elif where.startswith("'+"):
        text += " A '+' adds keys only inside free-form settings such as model.extra_body or provider.request_extra."
    schema = "jmle_eval/config_schema.py"
    return f"{text} Every setting, with its type and default, is in {_FILES[config_name]} and {schema}."


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return out


def explain(exc: BaseException, config_name: str = "config", prefix: str = "") -> str:
    """Return one paragraph saying what is wrong with the config and how to fix it, for any composition error.

    ``prefix``: where the failing node sits in the full config (``dataset.`` for a card merged on its own).
    """
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ConfigTypeError, ValidationError

    for err in _chain(exc):
        key = prefix + str(getattr(err, "full_key", None) or "")
        if isinstance(err, OverrideParseException):
            return (
                f"Cannot read the override {err.override!r}: {err.message.splitlines()[0]}. Write overrides as "
                "key=value; quote a value holding spaces or brackets, e.g. run.ids='[120A-1,120B-30]'."
            )
        if isinstance(err, MissingConfigException) and err.missing_cfg_file:
            return _missing_option(err.missing_cfg_file, list(err.options or []))
        if isinstance(err, ValidationError) and key:
            return _wrong_type(config_name, key, err.value, str(err.msg or err))
        if isinstance(err, ConfigKeyError | ConfigAttributeError) and key:
            return _missing_key(exc, config_name, key, err.parent_node)
        if isinstance(err, ConfigTypeError) and "deletion" in str(err) and key:
            return f"Settings of the schema cannot be deleted (~{key}): give {key} another value (null where allowed)."
    return _other(exc)


def _missing_key(exc: BaseException, config_name: str, key: str, parent: Any) -> str:
    """Return the message for a key that is not in the config: unknown to the schema, or not (yet) in a dict."""
    file = re.match(r"In '([^']+)'", str(exc))  # Hydra names the YAML it was merging
    where = f"conf/{file[1]}.yaml" if file else repr(_override_text(exc) or key)
    kind, known = lookup(config_name, key)
    if kind is None:
        return unknown_key(config_name, key, known, where)
    siblings = [str(k) for k in parent.keys()] if OmegaConf.is_dict(parent) else []
    near = difflib.get_close_matches(key.rsplit(".", 1)[-1], siblings, n=1, cutoff=0.7)
    hint = f" Did you mean {key.rpartition('.')[0]}.{near[0]}?" if near else ""
    return f"{key} is not set in this config.{hint} To add it, write +{_override_text(exc) or key + '=...'}."


def _other(exc: BaseException) -> str:
    """Return the message for the rarer errors, or Hydra's own words on one line."""
    if "Unexpected type for root: NoneType" in str(exc):  # OmegaConf, for a key below a null node
        return (
            "An override sets a key below a setting that is null here (e.g. dataset.path before a data set is "
            "chosen with dataset=<name>): choose or set that setting first."
        )
    already = re.search(r"An item is already at '([^']+)'", str(exc))
    if already:
        return f"{already[1]} already has a value: set it without the '+' ({already[1]}=...)."
    detail = " ".join(line.strip() for line in str(exc).split("\nConfig search path")[0].splitlines() if line.strip())
    return f"The configuration is not valid: {detail or type(exc).__name__}"


def _override_text(exc: BaseException) -> str:
    """Return the override Hydra names in its message (``key=value``), or an empty string."""
    found = re.search(r"(?:override|use \+)\s*'?([^'\s]+=[^'\s]*)", str(exc))
    return found[1].lstrip("+~") if found else ""


def _missing_option(missing: str, options: list[str]) -> str:
    group, _, name = missing.rpartition("/")
    near = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    hint = f" Did you mean {group}={near[0]}?" if near else ""
    return f"{group}={name}: there is no conf/{missing}.yaml.{hint} The choices are: {', '.join(options) or '(none)'}."


def _wrong_type(config_name: str, key: str, value: Any, detail: str) -> str:
    kind, _ = lookup(config_name, key)
    if kind is None:
        return f"{key}={value!r} is not valid: {detail.splitlines()[0]}."
    return f"{key} must be {describe(kind)} (got {value!r})."
