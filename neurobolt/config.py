"""The configuration: its JSON schema (shipped inside the package), defaults and checks.

The schema ``neurobolt/config.schema.yaml`` is the one place where a key's type, default and
meaning are written. Everything else derives from it: :func:`defaults` fills a section's
defaults, :func:`section` merges a user's values over them and refuses unknown keys.
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: The configuration's JSON schema (draft 2020-12), inside the installed package.
SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema() -> dict:
    """The configuration's JSON schema, as a new dictionary.

    Returns
    -------
    schema : dict
        The parsed ``config.schema.yaml``.
    """
    return copy.deepcopy(_schema())


def _node(path: str) -> dict:
    node = _schema()
    for part in [p for p in path.split(".") if p]:
        props = node.get("properties", {})
        if part not in props:
            raise KeyError(f"the config schema has no key `{path}`")
        node = props[part]
    return node


def _fill(node: Mapping) -> Any:
    if node.get("type") == "object" and "properties" in node:
        value = copy.deepcopy(node.get("default", {})) or {}
        for key, sub in node["properties"].items():
            if key not in value and ("default" in sub or "properties" in sub):
                value[key] = _fill(sub)
        return value
    return copy.deepcopy(node.get("default"))


def defaults(path: str = "") -> Any:
    """The schema's defaults for the whole configuration or one key.

    Parameters
    ----------
    path : str
        A dotted key (``"store"``, ``"store.window_s"``); empty for the whole configuration.

    Returns
    -------
    value : Any
        A new object: nested objects are filled with their properties' defaults.
    """
    return _fill(_node(path))


def section(path: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A section's defaults with ``values`` merged over them (nested objects recursively).

    Parameters
    ----------
    path : str
        The section's dotted key, e.g. ``"store"`` or ``"eeg.bcg"``.
    values : mapping | None
        The user's values for that section; ``None`` gives the defaults.

    Returns
    -------
    merged : dict
        A new dictionary.

    Raises
    ------
    ValueError
        For a key the schema does not know, naming it and the closest known key.
    """
    node = _node(path)
    merged = _fill(node)
    _merge_into(merged, values or {}, node, path)
    return merged


def _merge_into(target: dict, values: Mapping, node: Mapping, path: str) -> None:
    props = node.get("properties", {})
    for key, value in values.items():
        dotted = f"{path}.{key}" if path else str(key)
        if props and key not in props and node.get("additionalProperties") is False:
            close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
            hint = f"; did you mean `{path + '.' if path else ''}{close[0]}`?" if close else ""
            raise ValueError(f"unknown config key `{dotted}`{hint}")
        sub = props.get(key, {})
        if isinstance(value, Mapping) and "properties" in sub and isinstance(target.get(key), dict):
            _merge_into(target[key], value, sub, dotted)
        else:
            target[key] = copy.deepcopy(value)
