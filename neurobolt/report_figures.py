"""The group figures of ``snakemake --report``: Table 1 as a figure and the R distributions.

``report.html`` (:func:`neurobolt.report.run_report`) embeds its figures; Snakemake's own
report (``snakemake --report report.zip``) shows files that rules mark with ``report(...)``.
The ``report_figures`` rule writes those from ``group/table.tsv`` and ``group/metrics.tsv``:
``table1.png`` (the group mean test R per ROI and model with its 95 % CI and group p, one
panel per analysis, with the number of scans whose per-scan p is below ``report.alpha``)
and ``r_distributions_<analysis>.png`` (every scan's R,
:func:`neurobolt.report.fig_r_distributions`). The subject pages' QC figures are written by
:func:`neurobolt.report.run_subject_report` next to the pages.
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


def fig_table1(group: pd.DataFrame, *, alpha: float = 0.05):
    """Table 1 as a figure: the group mean test R per ROI (groups) and model (bars).

    One panel per analysis, from ``group/table.tsv`` (:func:`neurobolt.evaluate.group_table`):
    each bar is the mean R over subjects (Fisher z) with its 95 % CI, annotated with the
    group p ("n/a" where the null cannot resolve ``alpha``) and ``k/n``: ``k`` of the ``n``
    scans whose per-scan test could be computed have p < ``alpha``.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from .report import ANALYSIS_NAMES, _color, _subplots

    analyses = list(dict.fromkeys(group["analysis"])) or ["none"]
    rois = list(dict.fromkeys(group["roi"]))
    models = list(dict.fromkeys(group["model"]))
    width = 0.8 / max(len(models), 1)
    fig, axes = _subplots(
        len(analyses),
        1,
        figsize=(max(5.0, 1.2 * len(rois) * max(len(models), 1) / 1.5), 2.8 * len(analyses)),
        squeeze=False,
    )
    for ax, analysis in zip(axes[:, 0], analyses, strict=True):
        sub = group[group["analysis"] == analysis]
        for j, model in enumerate(models):
            rows = sub[sub["model"] == model].set_index("roi").reindex(rois)
            x = np.arange(len(rois)) + (j - (len(models) - 1) / 2) * width
            mean = rows["mean_r"].to_numpy(dtype=float)
            low = np.nan_to_num(mean - rows["ci_low"].to_numpy(dtype=float))
            high = np.nan_to_num(rows["ci_high"].to_numpy(dtype=float) - mean)
            ax.bar(
                x,
                mean,
                width * 0.9,
                yerr=np.vstack([low, high]),
                color=_color(model),
                label=model,
                capsize=3,
            )
            for xi, m, h, (_, row) in zip(x, mean, high, rows.iterrows(), strict=True):
                if np.isfinite(m):
                    p = float(row["p_group"])
                    ax.annotate(
                        (f"p={p:.2g}" if np.isfinite(p) else "p n/a")
                        + f"\n{int(row['n_significant'])}/{int(row['n_tested'])}",
                        (xi, max(m, 0) + h),
                        ha="center",
                        va="bottom",
                        fontsize=6,
                    )
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(range(len(rois)), rois, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("test R (mean, 95% CI)")
        ax.set_title(
            f"{ANALYSIS_NAMES.get(analysis, analysis)}: group p; k/n scans with p < {alpha:g}",
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
        ``metrics``: ``group/metrics.tsv``; ``table``: ``group/table.tsv``.
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
    group = pd.read_csv(inputs["table"], sep="\t")
    written = [save_png(fig_table1(group, alpha=alpha), outputs["table1"])]
    for key, path in outputs.items():
        if key.startswith("r_"):
            analysis = key.removeprefix("r_")
            fig = fig_r_distributions(metrics, analysis=analysis, alpha=alpha)
            written.append(save_png(fig, path))
    logger.info("wrote %s", ", ".join(p.name for p in written))
    return written
