"""The group figures of ``snakemake --report``: Table 1 as a figure and the R distributions.

``report.html`` (:func:`neurobolt.report.run_report`) embeds its figures; Snakemake's own
report (``snakemake --report report.zip``) shows files that rules mark with ``report(...)``.
The ``report_figures`` rule writes those from ``group/metrics.tsv``: ``table1.png`` (mean ±
sd test R per ROI and model, one panel per analysis, with the number of scans whose
permutation p is below ``report.alpha``) and ``r_distributions_<analysis>.png`` (every
scan's R, :func:`neurobolt.report.fig_r_distributions`). The subject pages' QC figures are
written by :func:`neurobolt.report.run_subject_report` next to the pages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .provenance import atomic_path

logger = logging.getLogger("neurobolt.report_figures")

#: The columns of ``group/metrics.tsv`` the figures read.
COLUMNS = ("analysis", "scan", "roi", "model", "r", "p_permutation")


def save_png(fig, path: str | Path, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def table1_summary(metrics: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Mean, sd and significant-scan count of the test R per analysis, ROI and model.

    Parameters
    ----------
    metrics : DataFrame
        One row per analysis, scan, ROI and model: ``r`` and ``p_permutation`` (NaN when
        the test split was too short for the null; counted as not significant).
    alpha : float
        Significance level of the count.

    Returns
    -------
    summary : DataFrame
        Columns ``analysis``, ``roi``, ``model``, ``mean``, ``sd`` (ddof=1; 0 for one
        scan), ``n`` (scans) and ``n_significant``, in the input's order of appearance.
    """
    rows = []
    for (analysis, roi, model), g in metrics.groupby(["analysis", "roi", "model"], sort=False):
        r = g["r"].to_numpy(dtype=float)
        p = g["p_permutation"].to_numpy(dtype=float)
        rows.append(
            {
                "analysis": analysis,
                "roi": roi,
                "model": model,
                "mean": float(np.mean(r)),
                "sd": float(np.std(r, ddof=1)) if r.size > 1 else 0.0,
                "n": int(r.size),
                "n_significant": int(np.sum(p < alpha)),
            }
        )
    return pd.DataFrame(
        rows, columns=["analysis", "roi", "model", "mean", "sd", "n", "n_significant"]
    )


def fig_table1(metrics: pd.DataFrame, *, alpha: float = 0.05):
    """Table 1 as a figure: mean ± sd test R per ROI (groups) and model (bars).

    One panel per analysis; each bar is annotated ``k/n``: ``k`` of ``n`` scans with a
    permutation p < ``alpha``.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from .report import ANALYSIS_NAMES, _color, _subplots

    summary = table1_summary(metrics, alpha=alpha)
    analyses = list(dict.fromkeys(summary["analysis"])) or ["none"]
    rois = list(dict.fromkeys(summary["roi"]))
    models = list(dict.fromkeys(summary["model"]))
    width = 0.8 / max(len(models), 1)
    fig, axes = _subplots(
        len(analyses),
        1,
        figsize=(max(5.0, 1.2 * len(rois) * max(len(models), 1) / 1.5), 2.8 * len(analyses)),
        squeeze=False,
    )
    for ax, analysis in zip(axes[:, 0], analyses, strict=True):
        sub = summary[summary["analysis"] == analysis]
        for j, model in enumerate(models):
            rows = sub[sub["model"] == model].set_index("roi").reindex(rois)
            x = np.arange(len(rois)) + (j - (len(models) - 1) / 2) * width
            ax.bar(
                x,
                rows["mean"].to_numpy(dtype=float),
                width * 0.9,
                yerr=rows["sd"].to_numpy(dtype=float),
                color=_color(model),
                label=model,
                capsize=3,
            )
            for xi, (_, row) in zip(x, rows.iterrows(), strict=True):
                if np.isfinite(row["mean"]):
                    ax.annotate(
                        f"{int(row['n_significant'])}/{int(row['n'])}",
                        (xi, max(row["mean"], 0) + (row["sd"] if np.isfinite(row["sd"]) else 0)),
                        ha="center",
                        va="bottom",
                        fontsize=6,
                    )
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(range(len(rois)), rois, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("test R (mean ± sd)")
        ax.set_title(
            f"{ANALYSIS_NAMES.get(analysis, analysis)}: k/n scans with permutation p < {alpha:g}",
            fontsize=9,
        )
        if models:
            ax.legend(fontsize=7)
    return fig


def read_metrics(path: str | Path) -> pd.DataFrame:
    """``group/metrics.tsv`` with the columns the figures need (``p_permutation`` may be
    missing: NaN)."""
    metrics = pd.read_csv(path, sep="\t", dtype={"scan": str})
    if "p_permutation" not in metrics.columns:
        metrics["p_permutation"] = np.nan
    missing = [c for c in COLUMNS if c not in metrics.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {missing}")
    return metrics


def run_report_figures(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any], params: Mapping[str, Any]
) -> list[Path]:
    """Write the group figures of ``snakemake --report``.

    Parameters
    ----------
    inputs : mapping
        ``metrics``: ``group/metrics.tsv``.
    outputs : mapping
        ``table1`` and one ``r_<analysis>`` per analysis (PNG paths).
    params : mapping
        ``cfg``: the ``report`` section (``alpha``).

    Returns
    -------
    paths : list of Path
    """
    from .report import _options, fig_r_distributions

    opts = _options(params.get("cfg"))
    alpha = float(opts["alpha"])
    metrics = read_metrics(inputs["metrics"])
    written = [save_png(fig_table1(metrics, alpha=alpha), outputs["table1"])]
    for key, path in outputs.items():
        if key.startswith("r_"):
            analysis = key.removeprefix("r_")
            fig = fig_r_distributions(metrics, analysis=analysis, alpha=alpha)
            written.append(save_png(fig, path))
    logger.info("wrote %s", ", ".join(p.name for p in written))
    return written
