"""The report's figures: pure functions, data in, :class:`matplotlib.figure.Figure` out.

No pyplot (no global state, any backend). The subject pages show the EEG cleaning
(:func:`fig_spectra`, :func:`fig_bcg_epochs`, :func:`fig_marker_timing`), the ROI
signals, the test predictions and the learning curves; the group report the R
distributions, R against the simulator's ceiling, validation against test R, the
EEG-only predictions and Table 1 as a figure (:func:`fig_table1`, for ``snakemake --report``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import config as nbconfig
from ..provenance import atomic_path

__all__ = [
    "ANALYSIS_NAMES",
    "MAX_TRACES",
    "fig_bcg_epochs",
    "fig_held_out",
    "fig_learning_curves",
    "fig_marker_timing",
    "fig_r_distributions",
    "fig_r_vs_ceiling",
    "fig_roi_confounds",
    "fig_spectra",
    "fig_table1",
    "fig_test_traces",
    "fig_val_vs_test",
    "save_png",
]

#: How the figures name each analysis.
ANALYSIS_NAMES = {
    "intra": "intra-subject",
    "inter": "inter-subject",
    "zero_shot": "zero-shot on the target dataset",
    "finetune": "fine-tuned on the target dataset",
    "joint": "trained on both datasets",
}

_MODEL_COLORS = {
    "neurobolt": "tab:blue",
    "labram": "tab:green",
    "spectral": "tab:purple",
    "ridge_bandpower": "tab:orange",
}


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, layout="constrained", **kwargs):
    """A figure and its axes without pyplot (no global state, any backend)."""
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _color(model: str) -> str:
    return _MODEL_COLORS.get(model, "tab:gray")


def save_png(fig, path: str | Path, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def fig_spectra(
    spectra: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    slice_freq: float | None,
    volume_freq: float | None,
    fmax: float = 100.0,
    title: str = "",
):
    """EEG power spectra at each cleaning step, slice and volume frequencies marked.

    Parameters
    ----------
    spectra : mapping of str to (ndarray, ndarray)
        Step label (legend) -> (frequencies in Hz, PSD in µV²/Hz), at most three steps.
    slice_freq : float | None
        Slice frequency (Hz); its harmonics are drawn as dashed lines. None: none.
    volume_freq : float | None
        Volume frequency (Hz); its harmonics are ticked at the top. None: none.
    fmax : float
        Upper frequency limit (Hz).
    title : str
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    fig, ax = _subplots(figsize=(8, 4), layout="constrained")
    for (label, (f, p)), color in zip(
        spectra.items(), ("tab:red", "tab:orange", "tab:blue"), strict=False
    ):
        ax.semilogy(f, p, color=color, lw=1, label=label)
    if slice_freq:
        for k in range(1, int(fmax / slice_freq) + 1):
            ax.axvline(k * slice_freq, color="k", ls="--", lw=0.6, alpha=0.6)
        ax.plot([], [], "k--", lw=0.6, label=f"slice frequency {slice_freq:.2f} Hz x k")
    if volume_freq:
        ticks = np.arange(volume_freq, fmax, volume_freq)
        ax.plot(
            ticks,
            np.full(ticks.size, 0.98),
            "|",
            color="tab:green",
            ms=6,
            transform=ax.get_xaxis_transform(),
            label=f"volume frequency {volume_freq:.3f} Hz x k",
        )
    ax.set(xlim=(0, fmax), xlabel="frequency (Hz)", ylabel="PSD (µV²/Hz), mean of channels")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def fig_bcg_epochs(
    times: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    *,
    ch_names: Sequence[str],
    n_beats: int | None = None,
):
    """Average BCG (R-peak-locked) epoch per channel before and after BCG removal.

    Parameters
    ----------
    times : ndarray, shape (n_times,)
        Time from the R-peak (s).
    before, after : ndarray, shape (n_channels, n_times)
        Average epochs (µV) before and after BCG removal (from :func:`bcg_epochs`).
    ch_names : sequence of str
        Channel names, one per row.
    n_beats : int | None
        Heartbeats averaged, shown in the title when given.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    fig, axes = _subplots(1, 2, figsize=(8, 3.2), sharey=True, layout="constrained")
    for ax, data, label in zip(axes, (before, after), ("before", "after"), strict=True):
        for row, name in zip(data, ch_names, strict=True):
            ax.plot(times, row, lw=1, label=name)
        ax.axvline(0, color="k", lw=0.6, ls=":")
        ax.set(title=f"{label} BCG removal", xlabel="time from R-peak (s)")
    axes[0].set_ylabel("µV")
    axes[1].legend(fontsize=7, loc="upper right")
    if n_beats is not None:
        fig.suptitle(f"average of {n_beats} heartbeats", fontsize=9)
    return fig


def fig_marker_timing(markers: np.ndarray, *, sfreq: float, tr: float):
    """Volume-marker intervals minus the TR (ms), per volume.

    Parameters
    ----------
    markers : ndarray of int
        Volume-marker samples.
    sfreq : float
        Sampling rate of ``markers`` (Hz).
    tr : float
        Repetition time (s).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    d = (np.diff(np.asarray(markers, float)) / sfreq - tr) * 1e3
    fig, ax = _subplots(figsize=(8, 2.8), layout="constrained")
    ax.plot(np.arange(1, d.size + 1), d, ".-", ms=3, lw=0.6)
    ax.axhline(0, color="k", lw=0.6)
    ax.set(
        xlabel="volume",
        ylabel="interval − TR (ms)",
        title=f"{np.size(markers)} volume markers, TR {tr:g} s, max |deviation| "
        f"{np.max(np.abs(d)) if d.size else 0:.3f} ms",
    )
    ax.title.set_fontsize(9)
    return fig


def fig_roi_confounds(
    rois: pd.DataFrame,
    confounds: pd.DataFrame | None,
    *,
    tr: float,
    kept_volumes: Sequence[int],
    columns: Sequence[str],
):
    """The modelled ROI signals and the motion confounds over the run.

    Parameters
    ----------
    rois : DataFrame
        The fMRI stage's ROI signals (``_atlas-*_timeseries.tsv``), one row per kept volume.
    confounds : DataFrame | None
        Confound columns to show, one row per BOLD volume; None or empty: no panel.
    tr : float
        Repetition time (s).
    kept_volumes : sequence of int
        The BOLD volume of each row of ``rois`` (its sidecar's ``KeptVolumes``).
    columns : sequence of str
        The ROI columns to plot (absent ones are skipped).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    n_panels = 2 if confounds is not None and len(confounds.columns) else 1
    fig, axes = _subplots(
        n_panels, 1, figsize=(8, 2.6 * n_panels), sharex=True, layout="constrained", squeeze=False
    )
    t = np.asarray(kept_volumes, float) * tr
    for col in columns:
        if col in rois.columns:
            axes[0, 0].plot(t, rois[col].to_numpy(), lw=1, label=col)
    axes[0, 0].set(ylabel="normalised signal", title="ROI signals (the models' targets)")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    if n_panels == 2:
        tc = np.arange(len(confounds)) * tr
        for col in confounds.columns:
            axes[1, 0].plot(tc, confounds[col].to_numpy(dtype=float), lw=0.8, label=col)
        axes[1, 0].set(ylabel="mm / rad", title="motion confounds (regressed out)")
        axes[1, 0].legend(fontsize=6, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.title.set_fontsize(9)
    return fig


def fig_test_traces(traces: Sequence[tuple[str, pd.DataFrame, float]]):
    """Predicted vs measured on the test split: one panel per (title, predictions, R).

    Parameters
    ----------
    traces : sequence of (str, DataFrame, float)
        Panel title, predictions (``onset_s``, ``truth``, ``prediction`` columns, as in
        ``predictions.tsv``) and the test R shown in the title. Empty: a note.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    n = max(len(traces), 1)
    fig, axes = _subplots(n, 1, figsize=(8, 2.0 * n), layout="constrained", squeeze=False)
    for ax, (title, frame, r) in zip(axes[:, 0], traces, strict=False):
        ax.plot(frame["onset_s"], frame["truth"], color="k", lw=1, label="measured")
        ax.plot(frame["onset_s"], frame["prediction"], color="tab:red", lw=1, label="predicted")
        ax.set_title(f"{title}: R = {r:.3f}", fontsize=9)
        ax.set_ylabel("signal")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("volume onset (s)")
    if not traces:
        axes[0, 0].text(
            0.5, 0.5, "no test predictions", ha="center", transform=axes[0, 0].transAxes
        )
    return fig


def fig_learning_curves(logs: Sequence[tuple[str, pd.DataFrame]]):
    """Learning curves: loss and validation R per epoch; ridge: validation R per alpha.

    Parameters
    ----------
    logs : sequence of (str, DataFrame)
        Label and a model's ``log.tsv``: per epoch (``epoch``, ``train_loss``,
        ``val_loss``, ``val_r``) or, for ridge_bandpower, per alpha (``alpha``, ``val_r``).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    epochs = [(t, f) for t, f in logs if "epoch" in f.columns]
    ridge = [(t, f) for t, f in logs if "alpha" in f.columns]
    fig, axes = _subplots(1, 3, figsize=(10, 3.2), layout="constrained")
    for title, frame in epochs:
        (line,) = axes[0].plot(frame["epoch"], frame["train_loss"], lw=1, label=f"{title} train")
        axes[0].plot(frame["epoch"], frame["val_loss"], lw=1, ls="--", color=line.get_color())
        axes[1].plot(frame["epoch"], frame["val_r"], lw=1, marker=".", label=title)
    axes[0].set(xlabel="epoch", ylabel="MSE", title="loss (solid train, dashed val)")
    axes[1].set(xlabel="epoch", ylabel="R", title="validation R")
    for title, frame in ridge:
        axes[2].semilogx(frame["alpha"], frame["val_r"], marker=".", lw=1, label=title)
    axes[2].set(xlabel="ridge alpha", ylabel="R", title="ridge_bandpower: validation R")
    for ax in axes:
        ax.title.set_fontsize(9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    return fig


def fig_r_distributions(
    metrics: pd.DataFrame, *, analysis: str, alpha: float = nbconfig.defaults("report.alpha")
):
    """Test R per ROI and model over scans (box + points; filled = per-scan p < alpha).

    Parameters
    ----------
    metrics : DataFrame
        One row per model and test scan: ``analysis``, ``roi``, ``model``, ``r``,
        ``p_permutation`` (from :func:`neurobolt.evaluate.collect_metrics`).
    analysis : str
        ``"intra"`` or ``"inter"``: the rows shown.
    alpha : float
        Significance level of the filled points.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    sub = metrics[metrics["analysis"] == analysis]
    rois = list(dict.fromkeys(sub["roi"]))
    models = list(dict.fromkeys(sub["model"]))
    fig, ax = _subplots(
        figsize=(max(5, 1.8 * len(rois) * max(len(models), 1) / 2), 3.8), layout="constrained"
    )
    width = 0.8 / max(len(models), 1)
    rng = np.random.default_rng(0)
    for i, roi in enumerate(rois):
        for j, model in enumerate(models):
            g = sub[(sub["roi"] == roi) & (sub["model"] == model)]
            if g.empty:
                continue
            x = i + (j - (len(models) - 1) / 2) * width
            if len(g) >= 3:
                ax.boxplot(
                    g["r"],
                    positions=[x],
                    widths=width * 0.8,
                    showfliers=False,
                    medianprops={"color": _color(model)},
                    boxprops={"color": _color(model)},
                    whiskerprops={"color": _color(model)},
                    capprops={"color": _color(model)},
                )
            jitter = rng.uniform(-width * 0.25, width * 0.25, len(g))
            sig = g["p_permutation"].to_numpy(dtype=float) < alpha
            ax.scatter(x + jitter[sig], g["r"][sig], s=18, color=_color(model), zorder=3)
            ax.scatter(
                x + jitter[~sig],
                g["r"][~sig],
                s=18,
                facecolor="none",
                edgecolor=_color(model),
                zorder=3,
            )
    for model in models:
        ax.scatter([], [], color=_color(model), label=model)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(rois)), rois, rotation=20, ha="right", fontsize=8)
    ax.set(ylabel="test R", xlim=(-0.6, len(rois) - 0.4))
    ax.set_title(
        f"{ANALYSIS_NAMES.get(analysis, analysis)}: test R per scan (filled: per-scan"
        f" p < {alpha:g})",
        fontsize=9,
    )
    if models:
        ax.legend(fontsize=7)
    return fig


def _scatter_r(metrics: pd.DataFrame, x_of, *, diagonal: str, xlim, xlabel: str, title: str):
    """A figure with test R (y) against ``x_of(group)`` (x), one marker style per analysis
    and one colour per model, the identity line labelled ``diagonal``, and a legend."""
    fig, ax = _subplots(figsize=(5, 4.5), layout="constrained")
    marker = {"intra": "o", "inter": "s"}
    for (analysis, model), g in metrics.groupby(["analysis", "model"], sort=True):
        ax.scatter(
            x_of(g),
            g["r"],
            s=22,
            color=_color(model),
            marker=marker.get(analysis, "o"),
            label=f"{analysis} {model}",
            alpha=0.8,
        )
    ax.plot([-1, 1], [-1, 1], color="k", lw=0.6, ls="--", label=diagonal)
    ax.set(xlim=xlim, ylim=(-1, 1), xlabel=xlabel, ylabel="test R", title=title)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    return fig, ax


def fig_r_vs_ceiling(metrics: pd.DataFrame, ceilings: Mapping[str, Mapping[str, float]]):
    """Test R against the simulator's ceiling (the best R an EEG-based prediction can reach).

    Parameters
    ----------
    metrics : DataFrame
        One row per model and test scan: ``analysis``, ``model``, ``scan``, ``roi``, ``r``.
    ceilings : mapping
        Scan -> ROI -> ceiling R (the simulator's ``simulation.json``); missing: NaN.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """

    def ceiling_of(g):
        pairs = zip(g["scan"], g["roi"], strict=True)
        return [ceilings.get(scan, {}).get(roi, np.nan) for scan, roi in pairs]

    fig, ax = _scatter_r(
        metrics,
        ceiling_of,
        diagonal="R = ceiling",
        xlim=(-0.05, 1.0),
        xlabel="simulator ceiling R",
        title="test R vs the simulator's ceiling",
    )
    ax.axhline(0, color="k", lw=0.4)
    return fig


def fig_val_vs_test(metrics: pd.DataFrame):
    """Validation R (model selection) against test R, per model.

    Parameters
    ----------
    metrics : DataFrame
        One row per model and test scan: ``analysis``, ``model``, ``best_val_r``, ``r``.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    fig, _ = _scatter_r(
        metrics,
        lambda g: g["best_val_r"],
        diagonal="test R = validation R",
        xlim=(-1, 1),
        xlabel="validation R (best epoch / alpha)",
        title="validation vs test R",
    )
    return fig


#: ROIs drawn as traces in :func:`fig_held_out` (the first ones; the rest are in the maps).
MAX_TRACES = 8


def fig_held_out(predicted: pd.DataFrame, measured: pd.DataFrame, *, kept_volumes, tr, title):
    """EEG-only predictions against the measured ROI signals, one panel per ROI.

    Parameters
    ----------
    predicted : DataFrame
        A ``_desc-predicted_timeseries.tsv`` made at the volume markers (``volume`` column).
    measured : DataFrame
        The fMRI stage's ROI signals of the same run.
    kept_volumes : sequence of int
        The BOLD volume of each row of ``measured`` (its sidecar's ``KeptVolumes``).
    tr : float
        Repetition time (s).
    title : str
        Prefix of each panel's title.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``predicted`` has no ``volume`` column (not made at the volume markers).
    """
    from ..predict import compare_with_measured

    rois = [c for c in predicted.columns if c not in ("onset_s", "volume") and c in measured]
    rois = rois[:MAX_TRACES]  # the whole brain (fmri.rois: all) is shown as maps instead
    rs = compare_with_measured(predicted, measured, kept_volumes=kept_volumes).set_index("roi")
    fig, axes = _subplots(
        len(rois), 1, figsize=(8, 2.2 * max(len(rois), 1)), layout="constrained", squeeze=False
    )
    t_meas = np.asarray(kept_volumes, float) * tr
    for ax, roi in zip(axes[:, 0], rois, strict=True):
        ax.plot(t_meas, measured[roi], color="k", lw=1, label="measured (fMRI)")
        ax.plot(
            predicted["volume"].to_numpy(float) * tr,
            predicted[roi],
            color="tab:red",
            lw=1,
            label="predicted from EEG alone",
        )
        ax.set_title(f"{title} — {roi}: R = {rs.loc[roi, 'r']:.3f}", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time from the first volume (s)")
    return fig


def fig_table1(group: pd.DataFrame, *, alpha: float = nbconfig.defaults("report.alpha")):
    """Table 1 as a figure: the group mean test R per ROI (groups) and model (bars).

    One panel per analysis, from ``group/table.tsv`` (:func:`neurobolt.evaluate.group_table`):
    each bar is the mean R over subjects (Fisher z) with its 95 % CI, annotated with the
    group p ("n/a" where the null cannot resolve ``alpha``) and ``k/n``: ``k`` of the ``n``
    scans whose per-scan test could be computed have p < ``alpha``.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
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
