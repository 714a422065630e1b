"""The configuration: its JSON schema (shipped inside the package), defaults and sections.

The schema ``neurobolt/config.schema.yaml`` is the one place where a key's type, default and
meaning are written. Everything else derives from it: :func:`defaults` fills a section's
defaults, :func:`section` merges a user's values over them and refuses unknown keys, the
typed sections (:class:`BidsSection`, :class:`StoreSection`, ...) hold them as frozen
dataclasses, and :func:`load` validates a whole configuration and fills its defaults as
the workflow's ``snakemake.utils.validate`` does. :data:`DEPRECATED` keys still validate,
with a warning. The checks the schema cannot express (``evaluate.rois`` within
``fmri.rois``, ``finetune`` needs ``zero_shot``, ...) are :func:`neurobolt.checks.check_config`.
This module imports no other neurobolt module: every stage reads its defaults here.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import warnings
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


def section(
    path: str, values: Mapping[str, Any] | None = None, *, strict: bool = True
) -> dict[str, Any]:
    """A section's defaults with ``values`` merged over them (nested objects recursively).

    Parameters
    ----------
    path : str
        The section's dotted key, e.g. ``"store"`` or ``"eeg.bcg"``.
    values : mapping | None
        The user's values for that section; ``None`` gives the defaults.
    strict : bool
        Refuse a key the schema does not know (``False``: leave it out, for checks that
        report unknown keys on their own).

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
    _merge_into(merged, values or {}, node, path, strict=strict)
    return merged


def _merge_into(
    target: dict, values: Mapping, node: Mapping, path: str, *, strict: bool = True
) -> None:
    props = node.get("properties", {})
    for key, value in values.items():
        dotted = f"{path}.{key}" if path else str(key)
        if props and key not in props and node.get("additionalProperties") is False:
            if not strict:
                continue
            close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
            hint = f"; did you mean `{path + '.' if path else ''}{close[0]}`?" if close else ""
            raise ValueError(f"unknown config key `{dotted}`{hint}")
        sub = props.get(key, {})
        if isinstance(value, Mapping) and "properties" in sub and isinstance(target.get(key), dict):
            _merge_into(target[key], value, sub, dotted, strict=strict)
        else:
            target[key] = copy.deepcopy(value)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged over ``base``, nested mappings key by key; no schema involved.

    Parameters
    ----------
    base, override : mapping
        Neither is changed.

    Returns
    -------
    merged : dict
        A new dictionary (values deep-copied).
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(out.get(key), Mapping) and isinstance(value, Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --------------------------------------------------------------------------------------------
# Typed sections: the keys the workflow reads, with the schema's defaults
# --------------------------------------------------------------------------------------------


class _Section:
    """A config section as a frozen dataclass; :meth:`from_section` fills the defaults."""

    PATH = ""

    @classmethod
    def from_section(cls, values: Mapping[str, Any] | None = None):
        """The section's defaults with ``values`` merged over them (see :func:`section`).

        Parameters
        ----------
        values : mapping | None
            The user's values for the section.

        Raises
        ------
        ValueError
            For a key the schema does not know.
        """
        merged = section(cls.PATH, values)
        return cls(**{f.name: merged[f.name] for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class BidsSection(_Section):
    """``bids``: the input dataset, its fMRIPrep folder, space and entity filters."""

    PATH = "bids"
    root: str
    fmriprep_dir: str | None
    space: str
    subjects: list[str]
    sessions: list[str]
    tasks: list[str]


@dataclasses.dataclass(frozen=True)
class AtlasSection(_Section):
    """``fmri.atlas``: where the DiFuMo maps and labels come from."""

    PATH = "fmri.atlas"
    dimension: int
    resolution_mm: int
    data_dir: str | None
    download: bool
    maps: str | None
    labels: str | None
    template: str | None


@dataclasses.dataclass(frozen=True)
class StoreSection(_Section):
    """``store``: the window length and how volume markers are paired with volumes."""

    PATH = "store"
    window_s: float
    dummy_markers: int
    tr_tolerance: float
    compression: str | None


@dataclasses.dataclass(frozen=True)
class EvaluateSection(_Section):
    """``evaluate``: which models, analyses and ROIs are trained and tested, and how."""

    PATH = "evaluate"
    models: list[str]
    analyses: list[str]
    rois: list[str]
    n_permutations: int
    seed: int
    test: str
    alpha: float
    n_boot: int
    block_s: float
    control_rois: list[str]


@dataclasses.dataclass(frozen=True)
class PredictSection(_Section):
    """``predict``: the recordings predicted from their EEG alone, and the options."""

    PATH = "predict"
    held_out: bool
    recordings: list[str]
    intra_scan: str | None
    model: str
    rois: list[str]
    step_s: float | None
    tr_s: float
    gradient: str
    bcg: str
    n_slices: int | None
    droppable_channels: list[str]
    batch_size: int


@dataclasses.dataclass(frozen=True)
class GeneralisationSection(_Section):
    """``generalisation``: the cross-dataset analyses' source, target and target split."""

    PATH = "generalisation"
    source: str | None
    target: str | None
    target_counts: list[int]
    target_fractions: list[float] | None
    target_split_file: str | None
    channels: list[str] | None
    finetune: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Loading: the schema's validation with its defaults filled in (as snakemake.utils.validate)
# --------------------------------------------------------------------------------------------

_MISSING = object()

#: Keys kept for one release only; setting one warns (``key -> what to use instead``).
DEPRECATED = {
    "store.marker": "eeg.volume_marker (the one key naming the volume markers)",
}


def _default_setting_validator():
    """Draft 2020-12 with defaults filled in while validating (``snakemake.utils.validate``'s
    ``set_default=True``: a property's default is set before the object's properties are
    validated, so nested defaults and those under ``if``/``then`` are filled too)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        for name, sub in properties.items():
            if "default" in sub and isinstance(instance, dict):
                instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def schema_errors(values: Mapping[str, Any]) -> list[str]:
    """The schema's complaints about a configuration, one message each.

    Parameters
    ----------
    values : mapping
        A configuration as read from YAML.

    Returns
    -------
    errors : list of str
        ``"<dotted key>: <message>"``; empty when it validates.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    return [
        f"{'.'.join(str(p) for p in err.absolute_path) or '(top level)'}: {err.message}"
        for err in validator.iter_errors(copy.deepcopy(dict(values)))
    ]


def deprecated_keys(values: Mapping[str, Any]) -> list[str]:
    """Warnings for the deprecated keys a configuration sets (its datasets' overrides too)."""
    found = []
    scopes = [("", values)] + [
        (f"datasets[{i}].", entry)
        for i, entry in enumerate(values.get("datasets") or [])
        if isinstance(entry, Mapping)
    ]
    for prefix, scope in scopes:
        for dotted, instead in DEPRECATED.items():
            node: Any = scope
            for part in dotted.split("."):
                node = node.get(part, _MISSING) if isinstance(node, Mapping) else _MISSING
            if node is not _MISSING:
                found.append(f"{prefix}{dotted} is deprecated: use {instead}")
    return found


def load(config: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A configuration validated against the schema, with every default filled in.

    The same as the workflow's ``snakemake.utils.validate(config, SCHEMA_PATH)``; a
    deprecated key that is set gives a :class:`DeprecationWarning`.

    Parameters
    ----------
    config : path-like | mapping
        A YAML file, or the configuration itself (not changed).

    Returns
    -------
    config : dict
        A new dictionary.

    Raises
    ------
    ValueError
        Listing every schema error.
    """
    if isinstance(config, Mapping):
        values = copy.deepcopy(dict(config))
    else:
        values = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{config}: the config is not a mapping of keys")
    errors = schema_errors(values)
    if errors:
        raise ValueError("invalid configuration:\n  " + "\n  ".join(errors))
    for message in deprecated_keys(values):
        warnings.warn(message, DeprecationWarning, stacklevel=2)
    _default_setting_validator()(_schema()).validate(values)
    return values


# --------------------------------------------------------------------------------------------
# Cross-field checks: what the schema cannot say (the workflow and `neurobolt validate`)
# --------------------------------------------------------------------------------------------


def filled(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with the schema's defaults filled in, whatever its errors."""
    values = copy.deepcopy(dict(config))
    for _ in _default_setting_validator()(_schema()).iter_errors(values):
        pass
    return values
