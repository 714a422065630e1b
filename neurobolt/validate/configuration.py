"""Checks of the configuration: keys and types, paths, cross-field rules, splits."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import bids as nbids
from .. import checks as nbchecks
from .. import config as nbconfig
from .report import CONFIG, DATASET, Finding

#: The config schema, inside the package.
SCHEMA = nbconfig.SCHEMA_PATH
#: Config keys that name an input file or folder: (dotted key, "file" | "dir").
CONFIG_PATHS = (
    ("bids.fmriprep_dir", "dir"),
    ("fmri.atlas.maps", "file"),
    ("fmri.atlas.labels", "file"),
    ("model.labram_checkpoint", "file"),
    ("train.inter_split_file", "file"),
)

# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _load_schema(schema: str | os.PathLike | Mapping | None) -> Mapping | None:
    if isinstance(schema, Mapping):
        return schema
    path = Path(schema) if schema else SCHEMA
    if not path.is_file():
        return None
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def check_config(
    config: Mapping[str, Any],
    *,
    schema: str | os.PathLike | Mapping | None = None,
    source: str = "config",
) -> list[Finding]:
    """Unknown (misspelled) keys and wrongly typed values of a configuration.

    Parameters
    ----------
    config : mapping
        The configuration as read from YAML (before defaults are filled in).
    schema : path-like | mapping | None
        The JSON schema; default ``neurobolt/config.schema.yaml`` of the source
        checkout (:data:`SCHEMA`). When it cannot be found the keys cannot be checked,
        and that is an error finding saying how to get it.
    source : str
        The configuration file's name, for the table.

    Returns
    -------
    findings : list of Finding
        One per unknown key (with the closest known key) and per type error; one error
        when the schema file is missing.
    """
    wanted = schema
    schema = _load_schema(schema)
    if schema is None:
        missing = Path(wanted) if wanted is not None else SCHEMA
        return [
            Finding(
                CONFIG,
                source,
                f"the config schema {missing} was not found, so the config's keys and types"
                " cannot be checked (neurobolt was installed without its workflow/ folder)",
                "install neurobolt from its repository as an editable install (git clone, then"
                " pip install -e .) or run it from the repository, where"
                " neurobolt/config.schema.yaml is",
            )
        ]
    found: list[Finding] = []

    def walk(values, sub, prefix):
        props = sub.get("properties", {})
        for key, value in values.items():
            dotted = f"{prefix}{key}"
            if key not in props:
                close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
                hint = f"did you mean `{prefix}{close[0]}`? " if close else ""
                found.append(
                    Finding(
                        CONFIG,
                        source,
                        f"unknown config key `{dotted}`",
                        hint + f"known keys here: {', '.join(sorted(props))}",
                    )
                )
            elif isinstance(value, Mapping) and "properties" in props[key]:
                walk(value, props[key], f"{dotted}.")

    if not isinstance(config, Mapping):
        return [Finding(CONFIG, source, "the config is not a mapping of keys", "fix the YAML")]
    walk(config, schema, "")
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - installed with snakemake
        return found
    validator = jsonschema.Draft202012Validator(schema)
    for err in validator.iter_errors(copy.deepcopy(dict(config))):
        if err.validator == "additionalProperties":
            continue  # reported above, with a suggestion
        dotted = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        found.append(
            Finding(
                CONFIG,
                source,
                f"`{dotted}`: {err.message}",
                "see neurobolt/config.schema.yaml",
            )
        )
    return found + check_cross_fields(config, source=source)


def check_cross_fields(config: Mapping[str, Any], *, source: str = "config") -> list[Finding]:
    """The checks the schema cannot express (:func:`neurobolt.checks.check_config`, which
    the workflow stops on), as error findings, and a warning per deprecated key set.

    Parameters
    ----------
    config : mapping
        The configuration as read from YAML (defaults are filled in).
    source : str
        The configuration file's name, for the table.

    Returns
    -------
    findings : list of Finding
    """
    fix = "fix the config (see neurobolt/config.schema.yaml)"
    found = [
        Finding(CONFIG, source, message, "remove the key", "warning")
        for message in nbconfig.deprecated_keys(config)
    ]
    try:
        errors = nbchecks.check_config(config, warn=False, output_dir=False)
    except (TypeError, KeyError, AttributeError, ValueError) as err:  # a malformed section
        errors = [f"the cross-field checks could not run: {err}"]
    return found + [Finding(CONFIG, source, message, fix) for message in errors]


def _get(config: Mapping, dotted: str):
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def check_config_paths(
    config: Mapping[str, Any],
    *,
    bids_root: str | os.PathLike,
    results_dir: str | os.PathLike | None = None,
    base: str | os.PathLike | None = None,
    source: str = "config",
) -> list[Finding]:
    """Every path the configuration names, resolved and checked.

    Parameters
    ----------
    config : mapping
        The configuration.
    bids_root : path-like
        The input BIDS dataset.
    results_dir : path-like | None
        Where the outputs go; refused inside ``bids_root``.
    base : path-like | None
        Relative paths are resolved against it (default: the working directory).
    source : str
        The configuration file's name, for the table.

    Returns
    -------
    findings : list of Finding
    """
    base = Path(base) if base else Path.cwd()
    found: list[Finding] = []
    root = (base / Path(bids_root).expanduser()).resolve()
    if not (root / "dataset_description.json").is_file():
        found.append(
            Finding(
                DATASET,
                str(root),
                "not a BIDS dataset: dataset_description.json is missing"
                + ("" if root.is_dir() else " (the folder does not exist)"),
                "point `bids.root` (or the command's BIDS_DIR) at the dataset's top folder",
            )
        )
    if results_dir is not None:
        try:
            nbids.check_output_dir(base / Path(results_dir).expanduser(), root)
        except ValueError as err:
            found.append(
                Finding(
                    CONFIG,
                    str(results_dir),
                    f"output directory inside the input dataset: {err}",
                    "set `results_dir` to a folder outside the BIDS dataset",
                )
            )
    for dotted, kind in CONFIG_PATHS:
        value = _get(config, dotted)
        if not value:
            continue
        path = (base / Path(str(value)).expanduser()).resolve()
        ok = path.is_dir() if kind == "dir" else path.is_file()
        if not ok:
            what = "folder" if kind == "dir" else "file"
            found.append(
                Finding(
                    CONFIG,
                    str(path),
                    f"`{dotted}` names a {what} that does not exist ({value!r} resolves to {path})",
                    f"fix `{dotted}` in {source} (relative paths are taken from {base})",
                )
            )
    return found


def resolve_sections(config: Mapping[str, Any] | None) -> dict[str, dict]:
    """The ``bids``, ``eeg``, ``fmri`` and ``store`` sections with defaults filled in (keys
    the schema does not know are left out: :func:`check_config` reports them)."""
    config = dict(config or {})
    return {
        name: nbconfig.section(name, config.get(name), strict=False)
        for name in ("bids", "eeg", "fmri", "store")
    }


#: Smallest gap (s) between training and held-out blocks that the statistics trust:
#: BOLD stays autocorrelated over about 10 TR (≈ 20 s) after the 0.15 Hz low-pass.
MIN_GAP_S = 20.0


def check_gap(train: Mapping[str, Any] | None, *, source: str = "config") -> list[Finding]:
    """A warning when ``train.gap_s`` is below :data:`MIN_GAP_S` (leakage through
    the autocorrelation of the BOLD targets across the block boundaries)."""
    gap = float((train or {}).get("gap_s", MIN_GAP_S))
    if gap >= MIN_GAP_S:
        return []
    return [
        Finding(
            CONFIG,
            f"{source}: train.gap_s",
            f"train.gap_s is {gap:g} s: below {MIN_GAP_S:g} s the BOLD targets on both sides"
            " of a block boundary are still correlated, so intra-subject test R is inflated",
            f"set train.gap_s to at least {MIN_GAP_S:g}",
            "warning",
        )
    ]


def check_inter_split(scans: Sequence[str], *, train: Mapping[str, Any] | None) -> list[Finding]:
    """Whether the inter-subject split the training rules will draw exists.

    Parameters
    ----------
    scans : sequence of str
        The selected runs' names (``sub-XX[_ses-YY]_task-...``).
    train : mapping | None
        The ``train`` config section (``inter_counts``, ``inter_fractions``,
        ``inter_split_file``, ``seed``); None checks nothing.

    Returns
    -------
    findings : list of Finding
        One error when the counts, fractions or split file do not fit the scans.
    """
    if train is None or not scans:
        return []
    from ..splits import held_out_scans

    try:
        held_out_scans(scans, train_section=train)
    except (ValueError, FileNotFoundError) as err:
        return [
            Finding(
                DATASET,
                "config: train",
                f"no inter-subject split of the {len(scans)} selected scans: {err}",
                "make train.inter_counts (train, val, test scans) fit the scans, or use"
                " train.inter_fractions or train.inter_split_file; or drop 'inter' from"
                " evaluate.analyses",
            )
        ]
    return []
