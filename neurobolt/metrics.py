"""Metrics: Pearson R, the per-scan and group test statistics, and Table 1.

The one home of the figures a model is judged by. The statistical tests themselves are
implemented in :mod:`neurobolt.stats` (per-scan autocorrelation-corrected test, block
bootstrap, between-scan group null); this module gathers them with the Pearson R used in
training and validation and the group tables of the results:

* :func:`pearson_r`, :func:`masked_pearson_r`: R per output column (training, validation,
  the ridge baseline's choice of alpha);
* :func:`permutation_p`, :func:`scan_metrics`, :func:`fold_metrics`: one scan's test series;
* :func:`group_table`, :func:`table1`: the group figures per (analysis, ROI, model).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .stats import evaluate_default, group_summary, group_test, scan_metrics, scan_p

__all__ = [
    "METRIC_COLUMNS",
    "fold_metrics",
    "group_table",
    "masked_pearson_r",
    "pearson_r",
    "permutation_p",
    "scan_metrics",
    "subject_of",
    "table1",
]

#: The columns of ``group/metrics.tsv``: one row per (analysis, scan, roi, model).
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


def pearson_r(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson R per column of ``(n, k)`` arrays (0 where either column is constant)."""
    pred = np.asarray(pred, float).reshape(len(pred), -1)
    true = np.asarray(true, float).reshape(len(true), -1)
    pc, tc = pred - pred.mean(0), true - true.mean(0)
    denom = np.sqrt((pc**2).sum(0) * (tc**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (pc * tc).sum(0) / denom
    return np.where(denom > 0, r, 0.0)


def masked_pearson_r(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson R per column over the rows where both are finite.

    0 where a column is constant (as :func:`pearson_r`), NaN where fewer than two rows
    are finite.
    """
    pred = np.asarray(pred, float).reshape(len(pred), -1)
    true = np.asarray(true, float).reshape(len(true), -1)
    ok = np.isfinite(pred) & np.isfinite(true)
    if ok.all():
        return pearson_r(pred, true)
    out = np.full(pred.shape[1], np.nan)
    for j in range(pred.shape[1]):
        rows = ok[:, j]
        if rows.sum() >= 2:
            out[j] = pearson_r(pred[rows, j], true[rows, j])[0]
    return out


def permutation_p(
    pred: np.ndarray,
    true: np.ndarray,
    *,
    tr: float | None = None,
    method: str | None = None,
    alpha: float | None = None,
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
    method : str | None
        ``"autocorr"`` (the default, ``evaluate.test``'s; calibrated): Pearson R against the
        null variance of R between two independent autocorrelated series, estimated from
        both series' sample autocorrelations (Bartlett's formula, short-series bias corrected,
        Tukey-tapered; see :func:`neurobolt.stats.autocorr_p`). Never NaN for a
        non-constant pair of three or more volumes.
        ``"shift"``: exact circular-shift test, every shift of at least ``min_shift_s``
        seconds enumerated, ``p = (1 + #{R_shift >= R}) / (1 + n_shifts)``; NaN when
        it cannot resolve ``alpha``. Its false-positive rate on short autocorrelated
        series is about twice alpha: use it for comparison only.
    alpha : float | None
        Level the shift test must be able to resolve (None: ``evaluate.alpha``'s default).
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
    method = evaluate_default("test", method)
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


def fold_metrics(rows: pd.DataFrame, **options) -> dict:
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


def subject_of(scan: str) -> str:
    """The subject part of a scan key: ``[dataset/]sub-XX`` of ``[dataset/]sub-XX_ses-YY_...``."""
    head, _, name = str(scan).rpartition("/")
    sub = name.split("_")[0]
    return f"{head}/{sub}" if head else sub


def group_table(
    metrics: pd.DataFrame,
    series: Mapping | None = None,
    *,
    control_rois: Sequence[str] = (),
    alpha: float | None = None,
    n_permutations: int | None = None,
    seed=None,
) -> pd.DataFrame:
    """Group-level figures per (analysis, roi, model); see :func:`neurobolt.stats.group_test`.

    Columns: ``analysis, roi, model, control, mean_r, sd, n_subjects, n_scans, ci_low,
    ci_high, p_group, n_significant, n_tested``: mean R in Fisher z over subjects
    (sessions averaged first), SD of the subjects' R, 95 % CI of the mean, the group p
    of the between-scan (mismatched) null (NaN when ``series`` lacks a scan or the
    subjects are too few to resolve ``alpha``), and ``n_significant`` of ``n_tested``
    scans with a per-scan p < ``alpha`` (NaN p's are not tested). ``alpha``,
    ``n_permutations`` and ``seed`` left None take the ``evaluate`` section's defaults.
    """
    alpha = evaluate_default("alpha", alpha)
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
    alpha: float | None = None,
    group: pd.DataFrame | None = None,
    control_rois: Sequence[str] = (),
) -> pd.DataFrame:
    """Table 1 for display: rows (analysis, model), one column per ROI and ``average``.

    A cell is ``mean ± sd [ci_low, ci_high] p=… (k/n)``: mean R over subjects in Fisher z,
    the SD of the subjects' R ("n/a" for one subject), the 95 % CI of the mean, the group
    p (``n/a`` when it cannot resolve alpha or was not computed), and ``k`` of ``n``
    scans with a per-scan p < ``alpha`` (scans whose test cannot resolve alpha are not
    counted in ``n``). ``average`` is the Fisher-z mean of the non-control ROIs' means
    (control ROIs, e.g. the null ROI, are left out). ``alpha`` None: ``evaluate.alpha``'s
    default.
    """
    alpha = evaluate_default("alpha", alpha)
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
