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
from .stats import scan_metrics
from .train import datasets_for, pick_device, predict, scan_subject

logger = logging.getLogger("neurobolt.evaluate")


def permutation_p(
    pred: np.ndarray,
    true: np.ndarray,
    *,
    tr: float | None = None,
    method: str = "autocorr",
    alpha: float = 0.05,
    min_shift_s: float = 30.0,
    n_permutations: int | None = None,
    min_shift: int | None = None,
    seed=None,
) -> float:
    """One-sided p-value of the test R (prediction vs measured series) being above chance.

    Parameters
    ----------
    pred, true : ndarray, shape (n,)
        Predicted and measured series over consecutive test volumes.
    tr : float
        Repetition time (s). Required by ``method="shift"``; pass it always.
    method : str
        ``"autocorr"`` (default, calibrated): Pearson R against the null variance of R
        between two independent autocorrelated series, estimated from both series'
        sample autocorrelations (Bartlett's formula, short-series bias corrected,
        Tukey-tapered; see :func:`neurobolt.stats.autocorr_p`). Never NaN for a
        non-constant pair of three or more volumes.
        ``"shift"``: exact circular-shift test, every shift of at least ``min_shift_s``
        seconds enumerated, ``p = (1 + #{R_shift >= R}) / (1 + n_shifts)``; NaN when
        it cannot resolve ``alpha``. Its false-positive rate on short autocorrelated
        series is about twice alpha: use it for comparison only.
    alpha : float
        Level the shift test must be able to resolve.
    min_shift_s : float
        Smallest circular shift of the shift test (s).
    n_permutations, min_shift, seed
        Deprecated (the earlier random-shift test): every shift is now enumerated, so
        ``n_permutations`` and ``seed`` are ignored; ``min_shift`` (volumes) is
        converted to ``min_shift_s = min_shift * tr``.

    Returns
    -------
    p : float
        NaN when the test cannot be computed or cannot resolve ``alpha``.
    """
    import warnings

    from .stats import scan_p

    if n_permutations is not None or seed is not None:
        warnings.warn(
            "permutation_p: n_permutations and seed are ignored (all shifts are enumerated;"
            " the default test is analytic)",
            DeprecationWarning,
            stacklevel=2,
        )
    if min_shift is not None:
        warnings.warn(
            "permutation_p: min_shift (volumes) is deprecated, pass min_shift_s (seconds)",
            DeprecationWarning,
            stacklevel=2,
        )
        if tr is not None:
            min_shift_s = float(min_shift) * float(tr)
    if tr is None:
        warnings.warn(
            "permutation_p: pass tr= (seconds); it will be required",
            DeprecationWarning,
            stacklevel=2,
        )
        if method == "shift":
            if min_shift is None:
                raise ValueError("permutation_p(method='shift') needs tr")
            tr, min_shift_s = 1.0, float(min_shift)
    pred, true = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    if method == "shift":
        return scan_p(pred, true, tr=tr, method="shift", alpha=alpha, min_shift_s=min_shift_s)
    return scan_p(pred, true, tr=tr, method=method, alpha=alpha)


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


def _store_tr(paths) -> float:
    """The TR (s) of the stores (the first one's; stores of one analysis share it)."""
    from .store import open_h5

    with open_h5(paths[0]) as f:
        return float(f.attrs["tr"])


def _test_options(params: Mapping) -> dict:
    """Keyword options of :func:`neurobolt.stats.scan_metrics` from the ``evaluate`` section."""
    return {
        "test": str(params.get("test", "autocorr")),
        "alpha": float(params.get("alpha", 0.05)),
        "n_boot": int(params.get("n_boot", 1000)),
        "block_s": float(params.get("block_s", 30.0)),
        "seed": int(params.get("seed", 0)),
    }


def _test_rows(model, record: Mapping, table: pd.DataFrame, stores, keys, rois) -> tuple:
    """Predict the test rows of ``table``: (split-table rows with ``truth:<j>`` and
    ``prediction:<j>`` columns for each ROI ``j`` of the model, the stores read)."""
    key_of = dict(zip(stores, keys, strict=True))
    # the model's own channels, by name: a recording without one of them is refused
    test = datasets_for(stores, table, "test", rois=rois, scans=keys, channels=record["ch_names"])
    if len(test) == 0:
        return table.iloc[:0], []
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
    rows = pd.concat(
        [table[(table["scan"] == key_of[str(p)]) & (table["split"] == "test")] for p in test.paths]
    )
    columns = {f"truth:{j}": true[:, j] for j in range(len(rois))}
    columns |= {f"prediction:{j}": pred[:, j] for j in range(len(rois))}
    return pd.concat([rows, pd.DataFrame(columns, index=rows.index)], axis=1), test.paths


def _fold_metrics(rows: pd.DataFrame, **options) -> dict:
    """:func:`neurobolt.stats.scan_metrics` of one scan's test rows.

    Blocked k-fold rows (a ``fold`` column) are centred within each fold's test block
    first (prediction and truth), so R is the pooled within-block R: each fold's model
    predicts around its own training mean, which is anti-correlated with its test
    block's mean (the blocks partition the scan), and would bias a plain R over the
    joined series below zero. MSE stays on the raw values.
    """
    pred, true = rows["prediction"], rows["truth"]
    if "fold" in rows.columns:
        by = rows["fold"]
        pred = pred - pred.groupby(by).transform("mean")
        true = true - true.groupby(by).transform("mean")
    out = scan_metrics(pred.to_numpy(), true.to_numpy(), **options)
    out["mse"] = float(np.mean((rows["prediction"] - rows["truth"]) ** 2))
    return out


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
        The ``evaluate`` section: ``test``, ``alpha``, ``n_boot``, ``block_s``, ``seed``
        (see :func:`neurobolt.stats.scan_metrics`); and optionally ``scans``,
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
    if record.get("folds"):  # blocked k-fold: each fold's model on its own test block
        parts = [
            _test_rows(
                *load_model(Path(inputs["model"]).with_name(name)),
                table[table["fold"] == k],
                stores,
                keys,
                rois,
            )
            for k, name in enumerate(record["folds"])
        ]
        order = {key: i for i, key in enumerate(keys)}
        rows = pd.concat([r for r, _ in parts])
        rows = rows.sort_values(
            ["scan", "row"], key=lambda c: c.map(order) if c.name == "scan" else c
        )
        paths = next((p for _, p in parts if p), [])
    else:
        rows, paths = _test_rows(model, record, table, stores, keys, rois)
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
            scan: _fold_metrics(g, tr=tr, **_test_options(params))
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
            **provenance(params),
        }
        if len(rois) > 1:  # trained with the other ROIs (model.heads: shared)
            metrics.update(heads="shared", model_rois=rois, mean_best_val_r=record["best_val_r"])
        train_dir, out_dir = Path(inputs["model"]).parent, Path(metric_paths[j]).parent
        if train_dir.resolve() != out_dir.resolve():  # the training log is with model.pt
            metrics["train_log"] = os.path.relpath(train_dir / "log.tsv", out_dir)
        write_json(metric_paths[j], metrics)
    return metrics


METRIC_COLUMNS = [
    "analysis",
    "scan",
    "subject",
    "roi",
    "model",
    "r",
    "r_ci_low",
    "r_ci_high",
    "mse",
    "n_test",
    "p_permutation",
]


def subject_of(scan: str) -> str:
    """The subject part of a scan key: ``[dataset/]sub-XX`` of ``[dataset/]sub-XX_ses-YY_...``."""
    head, _, name = str(scan).rpartition("/")
    sub = name.split("_")[0]
    return f"{head}/{sub}" if head else sub


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


def group_table(
    metrics: pd.DataFrame,
    series: Mapping | None = None,
    *,
    control_rois: Sequence[str] = (),
    alpha: float = 0.05,
    n_permutations: int = 10000,
    seed=0,
) -> pd.DataFrame:
    """Group-level figures per (analysis, roi, model); see :func:`neurobolt.stats.group_test`.

    Columns: ``analysis, roi, model, control, mean_r, sd, n_subjects, n_scans, ci_low,
    ci_high, p_group, n_significant, n_tested``: mean R in Fisher z over subjects
    (sessions averaged first), SD of the subjects' R, 95 % CI of the mean, the group p
    of the between-scan (mismatched) null (NaN when ``series`` lacks a scan or the
    subjects are too few to resolve ``alpha``), and ``n_significant`` of ``n_tested``
    scans with a per-scan p < ``alpha`` (NaN p's are not tested).
    """
    from .stats import group_summary, group_test

    series = series or {}
    rows = []
    for (analysis, roi, model), g in metrics.groupby(["analysis", "roi", "model"], sort=False):
        keys = [(analysis, roi, model, str(s)) for s in g["scan"]]
        subjects = g["subject"].astype(str).tolist()
        if all(k in series for k in keys):
            res = group_test(
                [series[k][0] for k in keys],
                [series[k][1] for k in keys],
                subjects,
                n_permutations=n_permutations,
                alpha=alpha,
                seed=seed,
            )
        else:
            res = group_summary(g["r"].to_numpy(float), subjects)
        p = g["p_permutation"].to_numpy(dtype=float)
        rows.append(
            {
                "analysis": analysis,
                "roi": roi,
                "model": model,
                "control": roi in set(control_rois),
                **res,
                "n_significant": int(np.sum(p < alpha)),
                "n_tested": int(np.sum(np.isfinite(p))),
            }
        )
    return pd.DataFrame(rows)


def _fmt(v: float, spec: str = ".3f") -> str:
    return "n/a" if v is None or not np.isfinite(v) else format(v, spec)


def table1(
    metrics: pd.DataFrame,
    *,
    alpha: float = 0.05,
    group: pd.DataFrame | None = None,
    control_rois: Sequence[str] = (),
) -> pd.DataFrame:
    """Table 1 for display: rows (analysis, model), one column per ROI and ``average``.

    A cell is ``mean ± sd [ci_low, ci_high] p=… (k/n)``: mean R over subjects in Fisher z,
    the SD of the subjects' R ("n/a" for one subject), the 95 % CI of the mean, the group
    p (``n/a`` when it cannot resolve alpha or was not computed), and ``k`` of ``n``
    scans with a per-scan p < ``alpha`` (scans whose test cannot resolve alpha are not
    counted in ``n``). ``average`` is the Fisher-z mean of the non-control ROIs' means
    (control ROIs, e.g. the null ROI, are left out).
    """
    if group is None:
        group = group_table(metrics, control_rois=control_rois, alpha=alpha)
    controls = set(control_rois) | set(group.loc[group["control"], "roi"])
    cells = {}
    for _, row in group.iterrows():
        cells.setdefault((row["analysis"], row["model"]), {})[row["roi"]] = (
            f"{_fmt(row['mean_r'])} ± {_fmt(row['sd'])}"
            f" [{_fmt(row['ci_low'], '.2f')}, {_fmt(row['ci_high'], '.2f')}]"
            f" p={_fmt(row['p_group'], '.3g')}"
            f" ({row['n_significant']}/{row['n_tested']})"
        )
    out = pd.DataFrame.from_dict(cells, orient="index")
    kept = group[~group["roi"].isin(controls)]
    averages = kept.groupby(["analysis", "model"])["mean_r"].apply(
        lambda v: float(np.tanh(np.mean(np.arctanh(np.clip(v, -0.9999999, 0.9999999)))))
    )
    out["average"] = [_fmt(averages.get(idx, float("nan"))) for idx in out.index]
    out.index = pd.MultiIndex.from_tuples(out.index, names=["analysis", "model"])
    return out.reset_index()


def run_group_metrics(inputs: Mapping, outputs: Mapping, params: Mapping) -> pd.DataFrame:
    """Write ``group/metrics.tsv`` (one row per scan, ``METRIC_COLUMNS``) and
    ``group/table.tsv`` (group figures per analysis, ROI and model, see
    :func:`group_table`) from every ``metrics.json`` and the ``predictions.tsv`` next to
    it, and ``group/generalisation.tsv`` (zero_shot / finetune / joint per ROI) when asked.

    ``params`` is the ``evaluate`` section: ``control_rois``, ``alpha``,
    ``n_permutations`` (of the group null), ``seed``.
    """
    paths = list(np.atleast_1d(inputs["metrics"]))
    metrics = collect_metrics(paths)
    metrics = metrics.sort_values(["analysis", "roi", "model", "scan"], kind="stable")
    write_text(outputs["metrics"], metrics.to_csv(sep="\t", index=False, float_format="%.6g"))
    group = group_table(
        metrics,
        read_test_series(paths),
        control_rois=list(params.get("control_rois", ["Cerebellum Crus II"])),
        alpha=float(params.get("alpha", 0.05)),
        n_permutations=int(params.get("n_permutations", 10000)),
        seed=int(params.get("seed", 0)),
    )
    write_text(outputs["table"], group.to_csv(sep="\t", index=False, float_format="%.6g"))
    if outputs.get("generalisation"):  # the cross-dataset analyses side by side
        from .transfer import transfer_table

        write_text(
            outputs["generalisation"],
            transfer_table(metrics).to_csv(sep="\t", index=False, float_format="%.4f"),
        )
    return metrics


__all__ = [
    "METRIC_COLUMNS",
    "collect_metrics",
    "group_table",
    "load_model",
    "permutation_p",
    "read_test_series",
    "run_evaluate",
    "run_group_metrics",
    "subject_of",
    "table1",
]
