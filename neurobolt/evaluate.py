"""Evaluation on the test split: the test predictions, and the readers of the results.

The test rows are read here and nowhere else: :mod:`neurobolt.train` only ever
sees the training and validation rows of the split table. The job that writes
``predictions.tsv`` and ``metrics.json`` is :mod:`neurobolt.jobs.evaluate`; the metrics
themselves live in :mod:`neurobolt.metrics` (re-exported here).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from .inference import load_model, predict_loader
from .metrics import (  # noqa: F401  (re-exported)
    METRIC_COLUMNS,
    group_table,
    permutation_p,
    subject_of,
    table1,
)
from .splits import datasets_for


def predict_test_split(model, record: Mapping, table: pd.DataFrame, stores, keys, rois) -> tuple:
    """Predict the test rows of ``table``: (split-table rows with ``truth:<j>`` and
    ``prediction:<j>`` columns for each ROI ``j`` of the model, the stores read)."""
    key_of = dict(zip(stores, keys, strict=True))
    # the model's own channels, by name: a recording without one of them is refused
    test = datasets_for(stores, table, "test", rois=rois, scans=keys, channels=record["ch_names"])
    if len(test) == 0:
        return table.iloc[:0], []
    loader = DataLoader(test, batch_size=64)
    pred, true = predict_loader(model, record, loader, ch_names=record["ch_names"])
    pred, true = pred.reshape(len(test), -1), true.reshape(len(test), -1)
    # Rows in the Dataset's order: store by store, rows in split order.
    rows = pd.concat(
        [table[(table["scan"] == key_of[str(p)]) & (table["split"] == "test")] for p in test.paths]
    )
    columns = {f"truth:{j}": true[:, j] for j in range(len(rois))}
    columns |= {f"prediction:{j}": pred[:, j] for j in range(len(rois))}
    return pd.concat([rows, pd.DataFrame(columns, index=rows.index)], axis=1), test.paths


def predict_test_rows(
    model_path: str | os.PathLike,
    table: pd.DataFrame,
    *,
    stores: Sequence[str],
    keys: Sequence[str],
    rois: Sequence[str],
    model=None,
    record: Mapping | None = None,
) -> tuple[pd.DataFrame, list]:
    """Every test row of a split table predicted by a ``model.pt`` (its folds' models under
    blocked k-fold, each on its own test block).

    Parameters
    ----------
    model_path : path-like
        The ``model.pt``.
    table : DataFrame
        Its ``splits.tsv``.
    stores : sequence of str
        The window stores; ``keys``: each one's scan key in ``table``.
    rois : sequence of str
        The model's ROIs, in its output order.
    model, record
        The loaded ``model.pt`` (:func:`neurobolt.inference.load_model`); None loads it.

    Returns
    -------
    rows : DataFrame
        The test rows with ``truth:<j>`` and ``prediction:<j>`` columns.
    paths : list
        The stores read.
    """
    if record is None:
        model, record = load_model(model_path)
    if not record.get("folds"):
        return predict_test_split(model, record, table, stores, keys, rois)
    parts = [
        predict_test_split(
            *load_model(Path(model_path).with_name(name)),
            table[table["fold"] == k],
            stores,
            keys,
            rois,
        )
        for k, name in enumerate(record["folds"])
    ]
    order = {key: i for i, key in enumerate(keys)}
    rows = pd.concat([r for r, _ in parts])
    rows = rows.sort_values(["scan", "row"], key=lambda c: c.map(order) if c.name == "scan" else c)
    return rows, next((p for _, p in parts if p), [])


def collect_metrics(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per (analysis, scan, roi, model) from ``metrics.json`` files (``METRIC_COLUMNS``).

    Files written before the bootstrap CIs existed get NaN ``r_ci_low`` / ``r_ci_high``.
    """
    rows = []
    for path in paths:
        m = json.loads(Path(path).read_text(encoding="utf-8"))
        for scan, s in m["scans"].items():
            rows.append(
                {
                    "analysis": m["analysis"],
                    "scan": scan,
                    "subject": s.get("subject", subject_of(scan)),
                    "roi": m["roi"],
                    "model": m["model"],
                    **{k: s.get(k, float("nan")) for k in METRIC_COLUMNS[5:]},
                }
            )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def read_test_series(paths: Sequence[str | os.PathLike]) -> dict:
    """``{(analysis, roi, model, scan): (prediction, truth)}`` from the ``predictions.tsv``
    next to each ``metrics.json`` (a missing file is skipped: its group p is NaN)."""
    series = {}
    for path in paths:
        m = json.loads(Path(path).read_text(encoding="utf-8"))
        pred_path = Path(path).with_name("predictions.tsv")
        if not pred_path.exists():
            continue
        table = pd.read_csv(pred_path, sep="\t")
        if "roi" in table.columns:  # one file for several ROIs
            table = table[table["roi"] == m["roi"]]
        table = table[np.isfinite(table["truth"])]  # a missing target is not scored (evaluate)
        for scan, g in table.groupby("scan", sort=False):
            g = g.sort_values("volume") if "volume" in g.columns else g
            key = (m["analysis"], m["roi"], m["model"], str(scan))
            series[key] = (g["prediction"].to_numpy(float), g["truth"].to_numpy(float))
    return series


__all__ = [
    "METRIC_COLUMNS",
    "collect_metrics",
    "group_table",
    "load_model",
    "permutation_p",
    "predict_test_split",
    "read_test_series",
    "subject_of",
    "table1",
    "predict_test_rows",
]
