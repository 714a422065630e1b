"""Evaluation on the test split: predictions, Pearson R, MSE, a permutation null; group tables.

The test rows are read here and nowhere else: :mod:`neurobolt.train` only ever
sees the training and validation rows of the split table.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from .provenance import provenance, write_json, write_text
from .train import datasets_for, pearson_r, pick_device, predict, scan_subject

logger = logging.getLogger("neurobolt.evaluate")


def permutation_p(
    pred: np.ndarray, true: np.ndarray, *, n_permutations: int = 1000, min_shift: int = 10, seed=0
) -> float:
    """One-sided p-value of R against circularly shifted predictions.

    Shifting the prediction in time keeps its autocorrelation (slow BOLD-like signals make
    naive shuffles far too optimistic). Shifts are drawn from ``min_shift`` to
    ``n - min_shift``; ``p = (1 + #{R_shift >= R}) / (1 + n_permutations)``. NaN when the
    series is too short for such shifts or ``n_permutations`` is 0.
    """
    pred, true = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    n = pred.size
    if n < 2 * min_shift + 2 or n_permutations < 1:
        return float("nan")
    r = pearson_r(pred, true)[0]
    shifts = np.random.default_rng(seed).integers(min_shift, n - min_shift, n_permutations)
    null = pearson_r(
        np.stack([np.roll(pred, s) for s in shifts], axis=1),
        np.tile(true[:, None], (1, n_permutations)),
    )
    return float((1 + np.sum(null >= r)) / (1 + n_permutations))


def load_model(path: str | os.PathLike):
    """Rebuild a trained model from ``model.pt`` (``torch.load(weights_only=True)``)."""
    from .models import build_model
    from .models.baselines import RidgeBandpower
    from .train import load_checkpoint

    record = load_checkpoint(path)
    if record["model"] == "ridge_bandpower":
        return RidgeBandpower().load_state_dict(record["state_dict"]), record
    model = build_model(record["model"], **record["options"])
    model.load_state_dict(record["state_dict"])
    return model, record


def run_evaluate(inputs: Mapping, outputs: Mapping, params: Mapping) -> dict:
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
        The ``evaluate`` section: ``n_permutations``, ``seed``; and optionally ``scans``,
        each store's scan key in ``splits.tsv`` (default: the store's file name).

    Returns
    -------
    metrics : dict
        The (last) ROI's ``metrics.json`` content.
    """
    from .heads import record_rois

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
    keys = list(params.get("scans") or [scan_subject(p)[0] for p in stores])
    key_of = dict(zip(stores, keys, strict=True))
    # the model's own channels, by name: a recording without one of them is refused
    test = datasets_for(stores, table, "test", rois=rois, scans=keys, channels=record["ch_names"])
    if len(test) == 0:
        raise ValueError(f"{inputs['splits']}: the test split is empty")
    loader = DataLoader(test, batch_size=64)
    if record["model"] == "ridge_bandpower":
        xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in loader), strict=True)
        pred, true = model.predict(np.concatenate(xs)), np.concatenate(ys)
    else:
        device = pick_device("auto")
        model.to(device)
        pred, true = predict(model, loader, record["ch_names"], device)
    pred, true = pred.reshape(len(test), -1), true.reshape(len(test), -1)
    # Rows in the Dataset's order: store by store, rows in split order.
    split_rows = pd.concat(
        [table[(table["scan"] == key_of[str(p)]) & (table["split"] == "test")] for p in test.paths]
    )
    val_r = record.get("val_r") or {}
    for j, roi in enumerate(rois):
        rows = split_rows.assign(truth=true[:, j], prediction=pred[:, j])
        write_text(
            pred_paths[j],
            rows[["scan", "volume", "onset_s", "truth", "prediction"]].to_csv(
                sep="\t", index=False, float_format="%.6g"
            ),
        )
        rows = rows[np.isfinite(rows["truth"])]  # a missing target (NaN) is not scored
        scans = {}
        for scan, group in rows.groupby("scan", sort=True):
            scans[scan] = {
                "r": float(pearson_r(group["prediction"], group["truth"])[0]),
                "mse": float(np.mean((group["prediction"] - group["truth"]) ** 2)),
                "n_test": int(len(group)),
                "p_permutation": permutation_p(
                    group["prediction"].to_numpy(),
                    group["truth"].to_numpy(),
                    n_permutations=int(params.get("n_permutations", 1000)),
                    seed=int(params.get("seed", 0)),
                ),
            }
        metrics = {
            "analysis": record["analysis"],
            "roi": roi,
            "model": record["model"],
            "best_val_r": float(val_r.get(roi, record["best_val_r"])),
            "pretrained": record.get("pretrained"),
            "warning": record.get("warning"),
            "scans": scans,
            **provenance(params),
        }
        if len(rois) > 1:  # trained with the other ROIs (model.heads: shared)
            metrics.update(heads="shared", model_rois=rois, mean_best_val_r=record["best_val_r"])
        train_dir, out_dir = Path(inputs["model"]).parent, Path(metric_paths[j]).parent
        if train_dir.resolve() != out_dir.resolve():  # the training log is with model.pt
            metrics["train_log"] = os.path.relpath(train_dir / "log.tsv", out_dir)
        write_json(metric_paths[j], metrics)
    return metrics


def collect_metrics(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per (analysis, scan, roi, model) from ``metrics.json`` files."""
    rows = []
    for path in paths:
        m = json.loads(Path(path).read_text(encoding="utf-8"))
        for scan, s in m["scans"].items():
            rows.append(
                {
                    "analysis": m["analysis"],
                    "scan": scan,
                    "roi": m["roi"],
                    "model": m["model"],
                    "r": s["r"],
                    "mse": s["mse"],
                    "n_test": s["n_test"],
                    "p_permutation": s["p_permutation"],
                }
            )
    return pd.DataFrame(rows)


def table1(metrics: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Mean ± sd R per ROI and model (rows: analysis, model; columns: ROIs + average).

    A cell is ``mean ± sd (k/n)``: ``k`` of ``n`` scans have a permutation p < ``alpha``.
    """
    cells = {}
    for (analysis, model, roi), g in metrics.groupby(["analysis", "model", "roi"], sort=False):
        sig = int((g["p_permutation"] < alpha).sum())
        cells.setdefault((analysis, model), {})[roi] = (
            f"{g['r'].mean():.3f} ± {g['r'].std(ddof=1) if len(g) > 1 else 0.0:.3f}"
            f" ({sig}/{len(g)})"
        )
    out = pd.DataFrame.from_dict(cells, orient="index")
    averages = metrics.groupby(["analysis", "model"])["r"].mean()
    out["average"] = [f"{averages[idx]:.3f}" for idx in out.index]
    out.index = pd.MultiIndex.from_tuples(out.index, names=["analysis", "model"])
    return out.reset_index()


def run_group_metrics(inputs: Mapping, outputs: Mapping, params: Mapping) -> pd.DataFrame:
    """Write ``group/metrics.tsv`` and ``group/table.tsv`` from every ``metrics.json``, and
    ``group/generalisation.tsv`` (zero_shot / finetune / joint per ROI) when asked."""
    metrics = collect_metrics(list(np.atleast_1d(inputs["metrics"])))
    metrics = metrics.sort_values(["analysis", "roi", "model", "scan"], kind="stable")
    write_text(outputs["metrics"], metrics.to_csv(sep="\t", index=False, float_format="%.6g"))
    write_text(outputs["table"], table1(metrics).to_csv(sep="\t", index=False))
    if outputs.get("generalisation"):  # the cross-dataset analyses side by side
        from .transfer import transfer_table

        write_text(
            outputs["generalisation"],
            transfer_table(metrics).to_csv(sep="\t", index=False, float_format="%.4f"),
        )
    return metrics


__all__ = [
    "collect_metrics",
    "load_model",
    "permutation_p",
    "run_evaluate",
    "run_group_metrics",
    "table1",
]
