"""Cross-dataset generalisation: zero-shot, fine-tuned and jointly trained models.

The paper's third experiment trains on one dataset (A, the *source*: resting state, one
site, one cap) and tests on another (B, the *target*: a task, another scanner, a partly
different cap). Three analyses per ROI and model, all tested on the same B test scans:

``zero_shot``
    Trained on A's training scans, selected on A's validation scans; B is never seen
    before the test.
``finetune``
    Starts from the ``zero_shot`` model; trained on B's training scans and selected on
    B's validation scans.
``joint``
    Trained on A's and B's training scans together, selected on B's validation scans.

A's split is the inter-subject split of the ``train`` section (``inter_counts`` /
``inter_fractions`` / ``inter_split_file``); B's is the ``generalisation`` section's
(9/3/4 scans by default, as the paper's auditory-task set), both grouped by subject
within their dataset. A's test scans are never used. Every analysis reads the same
electrodes, by name: those both caps have (or ``generalisation.channels``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from . import config as nbconfig
from .splits import inter_scan_split, inter_split_of, make_splits, scan_subject

logger = logging.getLogger("neurobolt.transfer")

#: The cross-dataset analyses, in the order tables show them.
ANALYSES = ("zero_shot", "finetune", "joint")

#: Which rows each analysis trains (``train``), selects (``val``) and tests (``test``)
#: on: (dataset role, the scan's split within its dataset) -> use.
ROLES = {
    "zero_shot": {("source", "train"): "train", ("source", "val"): "val"},
    "finetune": {("target", "train"): "train", ("target", "val"): "val"},
    "joint": {
        ("source", "train"): "train",
        ("target", "train"): "train",
        ("target", "val"): "val",
    },
}


def section(params: Mapping | None) -> dict:
    """The ``generalisation`` section with its (schema) defaults filled in; unknown keys
    refused (:func:`neurobolt.config.section`)."""
    return nbconfig.section("generalisation", params)


def source_target(gen: Mapping, labels: Sequence[str]) -> tuple[str, str]:
    """The source and target dataset labels: the configured ones, else the first dataset
    and the first other one.

    Raises
    ------
    ValueError
        When a label is not one of ``labels``, or source and target are the same dataset.
    """
    gen = section(gen)
    labels = list(labels)
    source = gen["source"] or (labels[0] if labels else None)
    target = gen["target"] or next((x for x in labels if x != source), None)
    for role, label in (("source", source), ("target", target)):
        if label not in labels:
            raise ValueError(f"generalisation.{role} {label!r} is not a dataset label ({labels})")
    if source == target:
        raise ValueError("generalisation: source and target are the same dataset")
    return source, target


def target_split(
    scans: Sequence[tuple[str, str]], gen: Mapping, *, seed: int | None = None
) -> pd.Series:
    """The target dataset's split of whole scans, grouped by subject.

    Parameters
    ----------
    scans : sequence of (str, str)
        ``(scan, subject)`` of the target dataset's scans.
    gen : mapping
        The ``generalisation`` section: ``target_counts`` (train, val, test scans),
        ``target_fractions`` (used when counts is null) or ``target_split_file``.
    seed : int | None
        Seed of the draw (the ``train`` section's ``seed``; None: its default).

    Returns
    -------
    split : Series
        Scan -> ``train``/``val``/``test``.
    """
    gen = section(gen)
    counts, fractions = gen["target_counts"], gen["target_fractions"]
    if counts is not None and fractions is not None:
        raise ValueError("generalisation: give target_counts or target_fractions, not both")
    return inter_scan_split(
        scans,
        counts=None if counts is None else tuple(counts),
        fractions=None if fractions is None else tuple(fractions),
        seed=seed,
        split_file=gen["target_split_file"],
    )


def scan_roles(
    source_split: Mapping[str, str], target_split: Mapping[str, str], *, analysis: str
) -> dict[str, str]:
    """Scan key -> ``train``/``val``/``test``/``unused`` for one cross-dataset analysis.

    Every analysis tests on the target's test scans, and only there; see :data:`ROLES`.
    """
    if analysis not in ROLES:
        raise ValueError(f"unknown cross-dataset analysis {analysis!r}; known: {ANALYSES}")
    common = sorted(set(source_split) & set(target_split))
    if common:
        raise ValueError(f"scans {common} are in both the source and the target dataset")
    roles = {}
    for role, split in (("source", source_split), ("target", target_split)):
        for scan, label in split.items():
            use = ROLES[analysis].get((role, label), "unused")
            roles[scan] = "test" if (role, label) == ("target", "test") else use
    return roles


def common_channels(
    source: Sequence[str], target: Sequence[str], *, configured: Sequence[str] | None = None
) -> list[str]:
    """The electrodes both caps have, in the source cap's order, or the configured set.

    Names are compared case-insensitively; the source's spelling is kept.

    Raises
    ------
    ValueError
        When a configured electrode is missing from a cap (naming them), or when the caps
        share no electrode.
    """
    upper_t = {name.upper() for name in target}
    upper_s = {name.upper() for name in source}
    if configured:
        for cap, names in (("source", upper_s), ("target", upper_t)):
            missing = [c for c in configured if c.upper() not in names]
            if missing:
                raise ValueError(
                    f"generalisation.channels {missing} are not in the {cap} dataset's"
                    f" channels {sorted(names)}; list only electrodes both caps have"
                )
        return list(configured)
    shared = [name for name in source if name.upper() in upper_t]
    if not shared:
        raise ValueError(f"the caps share no electrode: {list(source)} vs {list(target)}")
    return shared


def transfer_splits(
    source: Sequence[tuple[str, str]],
    target: Sequence[tuple[str, str]],
    *,
    analysis: str,
    config,
    gen: Mapping,
) -> pd.DataFrame:
    """The split table of one cross-dataset analysis over both datasets' stores.

    Parameters
    ----------
    source, target : sequence of (str, str)
        ``(store path, scan key)`` of each dataset's scans.
    analysis : str
        ``zero_shot``, ``finetune`` or ``joint``.
    config : TrainConfig
        Holds the source's inter-subject split settings and the seed.
    gen : mapping
        The ``generalisation`` section (the target's split).

    Returns
    -------
    table : DataFrame
        :func:`neurobolt.splits.make_splits`'s columns plus ``dataset`` (``source`` or
        ``target``) and ``dataset_split`` (the scan's split within its dataset);
        ``split`` is the scan's use in this analysis.
    """
    src_named = [scan_subject(path) for path, _ in source]
    tgt_named = [scan_subject(path) for path, _ in target]
    src_split = inter_scan_split(src_named, **inter_split_of(config))
    tgt_split = target_split(tgt_named, gen, seed=config.seed)
    # keyed by the workflow's scan keys (the file names may repeat across datasets)
    by_source = pd.Series([src_split[n] for n, _ in src_named], index=[k for _, k in source])
    by_target = pd.Series([tgt_split[n] for n, _ in tgt_named], index=[k for _, k in target])
    roles = scan_roles(by_source.to_dict(), by_target.to_dict(), analysis=analysis)
    stores = [path for path, _ in [*source, *target]]
    keys = [key for _, key in [*source, *target]]
    table = make_splits(stores, analysis=analysis, config=config, scans=keys, roles=roles)
    within = {**by_source.to_dict(), **by_target.to_dict()}
    table.insert(0, "dataset", np.where(table["scan"].isin(by_source.index), "source", "target"))
    table["dataset_split"] = table["scan"].map(within)
    return table


def transfer_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean test R per (model, ROI) of each cross-dataset analysis, side by side.

    Columns: ``model, roi, zero_shot, finetune, joint`` (those present), ``n_test_scans``.
    """
    rows = metrics[metrics["analysis"].isin(ANALYSES)]
    if rows.empty:
        return pd.DataFrame(columns=["model", "roi", *ANALYSES, "n_test_scans"])
    wide = rows.pivot_table(index=["model", "roi"], columns="analysis", values="r", aggfunc="mean")
    wide = wide[[a for a in ANALYSES if a in wide.columns]]
    wide["n_test_scans"] = rows.groupby(["model", "roi"])["scan"].nunique()
    return wide.reset_index().rename_axis(columns=None)


__all__ = [
    "ANALYSES",
    "common_channels",
    "source_target",
    "scan_roles",
    "target_split",
    "transfer_splits",
    "transfer_table",
]
