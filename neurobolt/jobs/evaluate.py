"""Job of the ``evaluate_intra`` / ``evaluate_inter`` / ``evaluate_transfer`` rules.

Predict the test split of a trained model and write ``predictions.tsv`` and
``metrics.json`` for each of its ROIs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config as nbconfig
from ..evaluate import predict_test_rows
from ..heads import record_rois
from ..inference import load_model
from ..metrics import fold_metrics
from ..provenance import provenance, write_json, write_text
from ..splits import scan_subject

logger = logging.getLogger("neurobolt.evaluate")


def run(inputs: Mapping, outputs: Mapping, params: Mapping, *, threads: int = 1) -> dict:
    """Predict the test split and write ``predictions.tsv`` and ``metrics.json`` per ROI.

    Parameters
    ----------
    inputs : mapping
        ``model`` (``model.pt``), ``splits`` (``splits.tsv``), ``stores``.
    outputs : mapping
        ``predictions``, ``metrics``: one path each, or one per ROI of the model in its
        output order (a ``model.heads: shared`` model writes every ROI's files into the
        same ``roi-<label>/model-<name>/`` folders as one-ROI models).
    params : mapping
        ``cfg``: the ``evaluate`` section (``test``, ``alpha``, ``n_boot``, ``block_s``,
        ``seed``: see :func:`neurobolt.stats.scan_metrics`); optionally ``scans``, each
        store's scan key in ``splits.tsv`` (default: the store's file name).
    threads : int
        Unused (the rule's script limits the thread pools).

    Returns
    -------
    metrics : dict
        The (last) ROI's ``metrics.json`` content.
    """
    described = dict(params.get("cfg") or {})
    if "scans" in params:  # each store's scan key (cross-dataset analyses)
        described["scans"] = list(params["scans"])
    opts = nbconfig.section("evaluate", params.get("cfg"))
    options = {
        "test": str(opts["test"]),
        "alpha": float(opts["alpha"]),
        "n_boot": int(opts["n_boot"]),
        "block_s": float(opts["block_s"]),
        "seed": int(opts["seed"]),
    }
    model, record = load_model(inputs["model"])
    rois = record_rois(record)
    pred_paths = [str(p) for p in np.atleast_1d(outputs["predictions"])]
    metric_paths = [str(p) for p in np.atleast_1d(outputs["metrics"])]
    if not len(pred_paths) == len(metric_paths) == len(rois):
        raise ValueError(
            f"{inputs['model']} predicts {len(rois)} ROI(s) {rois}: give as many predictions"
            f" and metrics files ({len(pred_paths)}, {len(metric_paths)} given)"
        )
    table = pd.read_csv(inputs["splits"], sep="\t", dtype={"subject": str})
    stores = [str(p) for p in np.atleast_1d(inputs["stores"])]
    keys = list(described.get("scans") or [scan_subject(p)[0] for p in stores])
    rows, paths = predict_test_rows(
        inputs["model"], table, stores=stores, keys=keys, rois=rois, model=model, record=record
    )
    if rows.empty:
        raise ValueError(f"{inputs['splits']}: the test split is empty")
    tr = _store_tr(paths)
    val_r = record.get("val_r") or {}
    for j, roi in enumerate(rois):
        roi_rows = rows.rename(columns={f"truth:{j}": "truth", f"prediction:{j}": "prediction"})
        write_text(
            pred_paths[j],
            roi_rows[["scan", "volume", "onset_s", "truth", "prediction"]].to_csv(
                sep="\t", index=False, float_format="%.6g"
            ),
        )
        roi_rows = roi_rows[np.isfinite(roi_rows["truth"])]  # a missing target is not scored
        scans = {
            scan: fold_metrics(g, tr=tr, **options)
            for scan, g in roi_rows.groupby("scan", sort=True)
        }
        metrics = {
            "analysis": record["analysis"],
            "roi": roi,
            "model": record["model"],
            "best_val_r": float(val_r.get(roi, record["best_val_r"])),
            "pretrained": record.get("pretrained"),
            "warning": record.get("warning"),
            "scans": scans,
            **provenance(described),
        }
        if len(rois) > 1:  # trained with the other ROIs (model.heads: shared)
            metrics.update(heads="shared", model_rois=rois, mean_best_val_r=record["best_val_r"])
        train_dir, out_dir = Path(inputs["model"]).parent, Path(metric_paths[j]).parent
        if train_dir.resolve() != out_dir.resolve():  # the training log is with model.pt
            metrics["train_log"] = os.path.relpath(train_dir / "log.tsv", out_dir)
        write_json(metric_paths[j], metrics)
    return metrics


def _store_tr(paths) -> float:
    """The TR (s) of the stores (the first one's; stores of one analysis share it)."""
    from ..store import open_h5

    with open_h5(paths[0]) as f:
        return float(f.attrs["tr"])
