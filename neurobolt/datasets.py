"""Several BIDS datasets in one configuration (sites, caps, tasks).

Without a ``datasets`` list the configuration describes one dataset (its ``bids`` and
``simulate`` sections) and runs are keyed by their BIDS name, ``sub-01_task-rest``. With
one, every entry gives a ``label`` and overrides of the ``bids``, ``simulate``, ``eeg``,
``fmri`` and ``store`` sections (its root and fMRIPrep folder, its volume marker name,
its channel set, its task filter, ...); each entry's *view* is the whole configuration
with those overrides merged in, and is checked against the schema like a configuration
of its own. Runs are then keyed ``<label>/<BIDS name>`` and their derivatives are
written under ``<results_dir>/<label>/``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from .config import merge

__all__ = ["SECTIONS", "dataset_views", "run_key", "split_key"]

#: The configuration sections a ``datasets`` entry may override.
SECTIONS = ("bids", "simulate", "eeg", "fmri", "store")

_LABEL = re.compile(r"^[A-Za-z0-9]+$")


def dataset_views(config: Mapping[str, Any]) -> dict[str, dict]:
    """Label -> that dataset's configuration (``{"": config}`` without ``datasets``).

    Parameters
    ----------
    config : mapping
        The workflow configuration.

    Returns
    -------
    views : dict
        In the ``datasets`` list's order. Each view has no ``datasets`` key and the
        entry's section overrides merged in (nested mappings key by key).

    Raises
    ------
    ValueError
        For a missing or malformed label, a repeated label or root, or an entry key that
        is not a section it may override.
    """
    entries = config.get("datasets") or []
    if not entries:
        return {"": dict(config)}
    base = {k: v for k, v in config.items() if k != "datasets"}
    views: dict[str, dict] = {}
    roots: dict[str, str] = {}
    for i, entry in enumerate(entries):
        label = str(entry.get("label", ""))
        if not _LABEL.match(label):
            raise ValueError(
                f"datasets[{i}]: label {label!r} must be letters and digits only (it names"
                " the dataset's output folder and its rows in the tables)"
            )
        if label in views:
            raise ValueError(f"datasets: the label {label!r} is used twice")
        unknown = sorted(set(entry) - {"label", *SECTIONS})
        if unknown:
            raise ValueError(
                f"datasets[{i}] ({label}): unknown key(s) {unknown}; an entry overrides only"
                f" the sections {list(SECTIONS)}"
            )
        view = copy.deepcopy(base)
        for name in SECTIONS:
            view[name] = merge(base.get(name) or {}, entry.get(name) or {})
        root = str(view.get("bids", {}).get("root"))
        if root in roots:
            raise ValueError(
                f"datasets {roots[root]!r} and {label!r} have the same bids.root {root}"
            )
        roots[root] = label
        views[label] = view
    return views


def run_key(label: str, name: str) -> str:
    """A run's key: its BIDS name, prefixed ``<label>/`` when datasets are labelled."""
    return f"{label}/{name}" if label else name


def split_key(key: str) -> tuple[str, str]:
    """``(label, BIDS name)`` of a run key (label ``""`` for a single dataset)."""
    label, _, name = key.rpartition("/")
    return label, name
