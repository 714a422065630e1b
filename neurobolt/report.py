"""The reports people read: per-subject QC pages and the group ``report.html``.

Both are :class:`mne.Report` pages with static matplotlib figures embedded
(PNG by default), readable from disk without a server.

Per-subject page (``sub-<label>.html``), one section per run:

* EEG power spectra before artifact removal, after gradient removal and after
  BCG removal, with the slice and volume frequencies marked;
* the average BCG (R-peak-locked) epoch before and after BCG removal;
* volume-marker timing (interval minus TR);
* the ROI signals with the motion confounds;
* predicted vs measured traces on the test split; learning curves;
* tables: the cleaning QC and the run's test metrics.

The "after gradient, before BCG" signals are recomputed for a few channels
(``report.qc_channels``) with :func:`neurobolt.eeg.gradient.remove_gradient`;
the cleaned EEG is the ``clean_eeg`` output itself.

Group page (``report.html``): the Table-1 layout (every analysis and model,
baselines included, with CIs and per-scan and group p), R distributions per
ROI and model, R against the simulator's ceiling (when ground truth exists),
validation vs test R, the inter-subject learning curves, the EEG-only
predictions compared with the measured signals, and links to the subject pages.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import signal as sps

from . import __version__
from .provenance import atomic_path, config_hash

logger = logging.getLogger("neurobolt.report")

#: How the figures name each analysis.
ANALYSIS_NAMES = {
    "intra": "intra-subject",
    "inter": "inter-subject",
    "zero_shot": "zero-shot on the target dataset",
    "finetune": "fine-tuned on the target dataset",
    "joint": "trained on both datasets",
}

__all__ = [
    "DEFAULTS",
    "bcg_epochs",
    "eeg_qc_signals",
    "fig_bcg_epochs",
    "fig_held_out",
    "fig_learning_curves",
    "fig_marker_timing",
    "fig_r_distributions",
    "fig_r_vs_ceiling",
    "fig_roi_confounds",
    "fig_spectra",
    "fig_test_traces",
    "fig_val_vs_test",
    "psd",
    "run_report",
    "run_subject_report",
]

#: The ``report`` config section's defaults (the schema's defaults are the same).
DEFAULTS: dict[str, Any] = {
    "qc_channels": ["O1", "O2", "CZ", "FZ"],
    "fmax_hz": 100.0,
    "alpha": 0.05,
    "image_format": "png",
}
_MODEL_COLORS = {
    "neurobolt": "tab:blue",
    "labram": "tab:green",
    "spectral": "tab:purple",
    "ridge_bandpower": "tab:orange",
}
_TABLE_CLASSES = "table table-sm table-striped table-hover"


def _options(params: Mapping[str, Any] | None) -> dict[str, Any]:
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown report option(s) {unknown}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **params}


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, layout="constrained", **kwargs):
    """A figure and its axes without pyplot (no global state, any backend)."""
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _color(model: str) -> str:
    return _MODEL_COLORS.get(model, "tab:gray")


# --------------------------------------------------------------------------------------------
# Signals for the EEG figures (pure)
# --------------------------------------------------------------------------------------------


def psd(data: np.ndarray, sfreq: float, *, fmax: float = 100.0, seg_s: float = 4.0):
    """Welch power spectral density, mean over channels, up to ``fmax``.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Signals in volts.
    sfreq : float
        Sampling rate (Hz).
    fmax : float
        Highest frequency returned (Hz).
    seg_s : float
        Welch segment length (s).

    Returns
    -------
    freqs : ndarray
        Frequencies (Hz).
    power : ndarray
        Mean PSD over channels (µV²/Hz).
    """
    data = np.atleast_2d(np.asarray(data, float))
    nper = int(min(data.shape[-1], round(seg_s * sfreq)))
    f, p = sps.welch(data, sfreq, nperseg=nper, axis=-1)
    keep = f <= fmax
    return f[keep], p[:, keep].mean(axis=0) * 1e12


def bcg_epochs(
    data: np.ndarray, sfreq: float, r_peaks: np.ndarray, *, tmin: float = -0.2, tmax: float = 0.8
):
    """Average R-peak-locked epoch per channel.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Signals in volts.
    sfreq : float
        Sampling rate (Hz).
    r_peaks : ndarray of int
        R-peak samples.
    tmin, tmax : float
        Epoch limits around the R-peak (s).

    Returns
    -------
    times : ndarray
        Epoch times (s).
    average : ndarray, shape (n_channels, n_epoch_times)
        Mean epoch in µV, baseline (the samples before the R-peak) subtracted; NaN when
        no beat fits.
    """
    data = np.atleast_2d(np.asarray(data, float))
    a, b = int(round(tmin * sfreq)), int(round(tmax * sfreq))
    peaks = np.asarray(r_peaks, dtype=np.int64)
    peaks = peaks[(peaks + a >= 0) & (peaks + b <= data.shape[1])]
    times = np.arange(a, b) / sfreq
    if peaks.size == 0:
        return times, np.full((data.shape[0], b - a), np.nan)
    idx = peaks[:, None] + np.arange(a, b)[None, :]
    average = data[:, idx].mean(axis=1)  # (n_ch, n_t)
    base = times < 0 if (times < 0).any() else slice(None)
    return times, (average - average[:, base].mean(axis=1, keepdims=True)) * 1e6


def eeg_qc_table(qc: Mapping[str, Any]) -> pd.DataFrame:
    """The collateral-damage figures that ``clean_eeg`` wrote in its QC JSON, as a table.

    Alpha power kept by the BCG step, the cardiac-locked residual, the residual power at
    the slice- and volume-frequency harmonics (after / before), the clock handling and
    any completed volume markers. Nothing is recomputed.
    """
    g = qc.get("gradient", {}) or {}
    b = qc.get("bcg", {}) or {}
    rows = [
        ("clocks", g.get("clocks", "n/a")),
        ("completed volume markers", qc.get("completed_markers", 0)),
        ("heartbeats from", b.get("events", "n/a")),
        ("alpha (8-12 Hz) power kept by the BCG step", b.get("alpha_power_kept", "n/a")),
        (
            "cardiac-locked residual before / after (µV)",
            f"{b.get('locked_rms_before_uv', float('nan')):.2f} /"
            f" {b.get('locked_rms_after_uv', float('nan')):.2f}",
        ),
    ]
    for kind in ("slice_lines", "volume_lines"):
        for line in (g.get(kind) or [])[:3]:
            rows.append(
                (
                    f"{kind.split('_')[0]} harmonic {line['freq_hz']:.2f} Hz: after / before",
                    f"{line.get('after_to_before', float('nan')):.3g}",
                )
            )
    cond = qc.get("conditioning", {}) or {}
    rows.append(("band-pass / notch (Hz)", f"{cond.get('bandpass_hz')} / {cond.get('notch_hz')}"))
    return pd.DataFrame(rows, columns=["QC", "value"])


def eeg_qc_signals(
    raw,
    clean,
    *,
    channels: Sequence[str],
    config: Mapping[str, Any] | None = None,
    tr: float | None = None,
    slice_timing=None,
    fmax: float = 100.0,
    run: str = "recording",
) -> dict[str, Any]:
    """The spectra and BCG epochs of a few channels at each cleaning step.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The raw in-scanner recording.
    clean : mne.io.BaseRaw
        The ``clean_eeg`` output of the same recording.
    channels : sequence of str
        Channels to show (those missing from either recording are skipped).
    config : mapping | None
        The ``eeg`` config section (marker, gradient options, ECG channel).
    tr : float | None
        BOLD repetition time (s); None uses the marker interval.
    slice_timing : sequence of float | None
        BIDS ``SliceTiming`` of the BOLD run.
    fmax : float
        Highest frequency of the spectra (Hz).
    run : str
        Name used in messages.

    Returns
    -------
    qc : dict
        ``channels``, ``markers`` (samples at the raw rate), ``sfreq``, ``tr``,
        ``spectra`` (label -> (freqs, µV²/Hz)), ``slice_freq``, ``volume_freq``,
        ``bcg`` (None without an ECG, else ``times``, ``before``, ``after`` in µV,
        ``n_beats``).
    """
    from .eeg import clean as ec
    from .eeg.bcg import detect_r_peaks
    from .eeg.gradient import remove_gradient
    from .eeg.markers import find_volume_markers

    cfg = ec._merge_config(config)
    sfreq = float(raw.info["sfreq"])
    sfreq_out = float(clean.info["sfreq"])
    upper_raw = {n.strip().upper(): n for n in raw.ch_names}
    upper_clean = {n.strip().upper(): n for n in clean.ch_names}
    chans = [c for c in channels if c.strip().upper() in upper_raw and c.upper() in upper_clean]
    if not chans:
        chans = list(clean.ch_names[: min(4, len(clean.ch_names))])
    markers = find_volume_markers(raw, marker=cfg["volume_marker"])
    if markers.size < 2:
        raise ValueError(f"{run}: no volume markers {cfg['volume_marker']!r} in the raw EEG")
    tr = float(tr) if tr else float(np.median(np.diff(markers)) / sfreq)
    data = raw.get_data(picks=[upper_raw[c.strip().upper()] for c in chans])
    g = cfg["gradient"]
    opts = {
        "slice_timing": slice_timing if g["slice_templates"] else None,
        "tr": tr,
        "window": int(g["window"]),
        "align": bool(g["align"]),
        "n_ref": min(int(g["n_ref"]), len(chans)),
        "obs_components": int(g["obs_components"]),
        "obs_highpass": float(g["obs_highpass"]),
    }
    grad = ec.resample(
        remove_gradient(data, sfreq, markers, **opts), sfreq, sfreq_out, passband=cfg["passband"]
    )
    after = clean.get_data(picks=[upper_clean[c.strip().upper()] for c in chans])
    n = min(grad.shape[1], after.shape[1])
    scan = slice(int(markers[0]), int(min(markers[-1] + round(tr * sfreq), raw.n_times)))
    scan_out = slice(
        int(round(scan.start * sfreq_out / sfreq)),
        min(int(round(scan.stop * sfreq_out / sfreq)), n),
    )
    spectra = {
        "raw": psd(data[:, scan], sfreq, fmax=fmax),
        "after gradient removal": psd(grad[:, scan_out], sfreq_out, fmax=fmax),
        "after gradient + BCG removal": psd(after[:, scan_out], sfreq_out, fmax=fmax),
    }
    n_slices = len(slice_timing) if slice_timing else None
    qc: dict[str, Any] = {
        "channels": chans,
        "markers": markers,
        "sfreq": sfreq,
        "tr": tr,
        "spectra": spectra,
        "slice_freq": (n_slices / tr) if n_slices else None,
        "volume_freq": 1.0 / tr,
        "bcg": None,
    }
    ecg_idx = ec._find_ecg(raw, cfg, run)
    if ecg_idx is not None:
        ecg = raw.get_data(picks=[ecg_idx])
        ecg = ec.resample(
            remove_gradient(ecg, sfreq, markers, **{**opts, "n_ref": 1}), sfreq, sfreq_out
        )[0]
        try:
            peaks = detect_r_peaks(ecg[: scan_out.stop], sfreq_out)
        except ValueError as err:
            logger.warning("%s: no R-peaks for the BCG figure (%s)", run, err)
            peaks = None
        if peaks is not None:
            peaks = peaks[(peaks >= scan_out.start) & (peaks < scan_out.stop)]
            times, before = bcg_epochs(grad[:, :n], sfreq_out, peaks)
            _, after_avg = bcg_epochs(after[:, :n], sfreq_out, peaks)
            qc["bcg"] = {
                "times": times,
                "before": before,
                "after": after_avg,
                "n_beats": int(peaks.size),
            }
    return qc


# --------------------------------------------------------------------------------------------
# Figures (pure: data in, matplotlib Figure out)
# --------------------------------------------------------------------------------------------


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


def fig_r_distributions(metrics: pd.DataFrame, *, analysis: str, alpha: float = 0.05):
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
    from .predict import compare_with_measured

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


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _ci_text(low, high) -> str:
    """``[low, high]`` of a CI, ``n/a`` when it could not be computed."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "n/a"
    return f"[{low:.2f}, {high:.2f}]"


def _group_html(group: pd.DataFrame, *, alpha: float) -> str:
    """The group table (``group/table.tsv``) for display: "n/a" where a figure is undefined."""
    if group.empty:
        return "<p>No models.</p>"
    shown = pd.DataFrame(
        {
            "analysis": group["analysis"],
            "ROI": [
                f"{r} (control)" if c else r
                for r, c in zip(group["roi"], group["control"], strict=True)
            ],
            "model": group["model"],
            "mean R": group["mean_r"].round(3),
            "SD": group["sd"].round(3),
            "95% CI": [
                _ci_text(lo, hi) for lo, hi in zip(group["ci_low"], group["ci_high"], strict=True)
            ],
            "subjects": group["n_subjects"],
            "scans": group["n_scans"],
            "group p": group["p_group"].map(lambda v: f"{v:.3g}" if np.isfinite(v) else "n/a"),
            f"scans p < {alpha:g}": [
                f"{k}/{n}" for k, n in zip(group["n_significant"], group["n_tested"], strict=True)
            ],
        }
    )
    return _table_html(shown)


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, classes=_TABLE_CLASSES, border=0, na_rep="n/a", escape=True)


def _new_report(title: str):
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mne.Report(title=title, image_format="png", verbose=False)


def _add_figure(
    report, fig, title: str, *, section: str, caption: str | None = None, fmt="png", png=None
):
    if png is not None:  # also a file of its own (snakemake --report shows it)
        from .report_figures import save_png

        save_png(fig, png)
    report.add_figure(fig, title=title, caption=caption, section=section, image_format=fmt)


def _save(report, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        report.save(tmp, open_browser=False, overwrite=True, verbose=False)


def _provenance_html(params: Mapping[str, Any]) -> str:
    return (
        f"<p>neurobolt {html.escape(__version__)}, configuration hash"
        f" <code>{config_hash(params)}</code>.</p>"
    )


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


def _read_json(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _read_model_dir(metrics_path: Path) -> dict[str, Any]:
    """A model folder: its metrics.json, predictions.tsv and log.tsv (when present)."""
    d = metrics_path.parent
    out = {"metrics": _read_json(metrics_path), "dir": d}
    log = out["metrics"].get("train_log", "log.tsv")  # a shared-heads model's is elsewhere
    for key, name in (("predictions", "predictions.tsv"), ("log", log)):
        p = d / name
        out[key] = pd.read_csv(p, sep="\t") if p.is_file() else None
    return out


def _in_run(model_dir: str | os.PathLike, run: str) -> bool:
    """Whether an intra-subject model folder (``.../intra/<run>/roi-*/model-*``) is ``run``'s.

    The run must be a whole folder name: ``sub-01_task-rest`` is not ``sub-01_task-rest_run-02``.
    """
    return run in Path(model_dir).parts


def _bids_raw(vhdr: Path):
    import mne_bids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mne_bids.read_raw_bids(mne_bids.get_bids_path_from_fname(vhdr), verbose=False)


def run_subject_report(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any], params: Mapping[str, Any]
) -> Path:
    """Write one subject's QC page (``sub-<label>.html``).

    Parameters
    ----------
    inputs : mapping
        Parallel lists over the subject's runs (in ``params["runs"]`` order): ``raw``
        (BIDS ``_eeg.vhdr``), ``bold`` (raw BOLD; its sidecar gives TR and slice timing),
        ``clean`` (``_desc-clean_eeg.vhdr``), ``qc`` (``_desc-clean_qc.json``), ``rois``
        (``_atlas-*_timeseries.tsv``; its sidecar is read), ``confounds`` (fMRIPrep
        confounds TSV); and ``metrics``: every ``metrics.json`` of models that may
        involve these runs (``predictions.tsv`` and ``log.tsv`` next to them are read).
    outputs : mapping
        ``html``; optional ``figures``: a folder that receives the QC figures as PNG files
        too (``<run>_desc-<figure>_<suffix>.png``, for ``snakemake --report``).
    params : mapping
        ``runs`` (run names), ``subject``, ``cfg`` (the ``report`` section), ``eeg``
        (the ``eeg`` section), ``rois`` (the modelled ROIs), ``confounds`` (confound
        columns shown).
    """

    from .eeg.brainvision import read_clean_eeg

    opts = _options(params.get("cfg"))
    runs = list(params["runs"])
    lists = {
        k: [Path(p) for p in np.atleast_1d(inputs[k])]
        for k in ("raw", "bold", "clean", "qc", "rois", "confounds")
    }
    for key, paths in lists.items():
        if len(paths) != len(runs):
            raise ValueError(f"{len(paths)} {key} file(s) for {len(runs)} run(s)")
    models = [_read_model_dir(Path(p)) for p in np.atleast_1d(inputs.get("metrics", []))]
    rois = list(params.get("rois") or [])
    confound_cols = list(params.get("confounds") or [])
    subject = params.get("subject") or runs[0].split("_")[0].removeprefix("sub-")
    report = _new_report(f"neurobolt QC: sub-{subject}")
    fmt = opts["image_format"]
    figures = Path(outputs["figures"]) if outputs.get("figures") else None

    def png(run, name):  # where a QC figure also goes, if anywhere
        return figures / f"{run}_desc-{name}.png" if figures is not None else None

    report.add_html(
        "<p>Quality control of the EEG cleaning, the fMRI ROI signals and the models of"
        f" sub-{html.escape(subject)}. <a href='report.html'>Group report</a>.</p>"
        + _provenance_html({"report": opts, "eeg": params.get("eeg")}),
        title="About",
        section="Overview",
    )
    rows = []
    for m in models:
        for scan, s in m["metrics"]["scans"].items():
            if scan in runs:
                rows.append(
                    {
                        "scan": scan,
                        "analysis": m["metrics"]["analysis"],
                        "roi": m["metrics"]["roi"],
                        "model": m["metrics"]["model"],
                        "test R": round(s["r"], 3),
                        "95% CI": _ci_text(s.get("r_ci_low"), s.get("r_ci_high")),
                        "MSE": round(s["mse"], 4),
                        "n_test": s["n_test"],
                        "p (permutation)": s["p_permutation"],
                        "validation R": round(m["metrics"]["best_val_r"], 3),
                    }
                )
    table = pd.DataFrame(
        rows,
        columns=[
            "scan",
            "analysis",
            "roi",
            "model",
            "test R",
            "95% CI",
            "MSE",
            "n_test",
            "p (permutation)",
            "validation R",
        ],
    )
    report.add_html(
        _table_html(table.sort_values(["scan", "analysis", "roi", "model"])),
        title="Test metrics",
        section="Overview",
    )

    for i, run in enumerate(runs):
        logger.info("%s: QC figures", run)
        qc_json = _read_json(lists["qc"][i])
        side_path = re.sub(r"\.nii(\.gz)?$", ".json", lists["bold"][i].name)
        bold_side = lists["bold"][i].with_name(side_path)
        bold_meta = _read_json(bold_side) if bold_side.is_file() else {}
        raw = _bids_raw(lists["raw"][i])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clean = read_clean_eeg(lists["clean"][i])
        sig = eeg_qc_signals(
            raw,
            clean,
            channels=opts["qc_channels"],
            config=params.get("eeg"),
            tr=bold_meta.get("RepetitionTime"),
            slice_timing=bold_meta.get("SliceTiming"),
            fmax=float(opts["fmax_hz"]),
            run=run,
        )
        del raw
        _add_figure(
            report,
            fig_spectra(
                sig["spectra"],
                slice_freq=sig["slice_freq"],
                volume_freq=sig["volume_freq"],
                fmax=float(opts["fmax_hz"]),
                title=f"{run}: channels {', '.join(sig['channels'])}",
            ),
            f"{run}: EEG power spectra",
            section=run,
            png=png(run, "spectra_eeg"),
            caption="Before cleaning, after gradient removal, after BCG removal (the"
            " clean_eeg output); dashed: slice-frequency harmonics, green ticks:"
            " volume-frequency harmonics.",
            fmt=fmt,
        )
        if sig["bcg"] is not None:
            b = sig["bcg"]
            _add_figure(
                report,
                fig_bcg_epochs(
                    b["times"],
                    b["before"],
                    b["after"],
                    ch_names=sig["channels"],
                    n_beats=b["n_beats"],
                ),
                f"{run}: average BCG epoch",
                section=run,
                png=png(run, "bcg_eeg"),
                fmt=fmt,
                caption="R-peak-locked average before and after BCG removal.",
            )
        _add_figure(
            report,
            fig_marker_timing(sig["markers"], sfreq=sig["sfreq"], tr=sig["tr"]),
            f"{run}: volume-marker timing",
            section=run,
            png=png(run, "markers_eeg"),
            fmt=fmt,
        )
        report.add_html(
            _table_html(eeg_qc_table(qc_json)),
            title=f"{run}: EEG cleaning QC (written by clean_eeg)",
            section=run,
        )
        roi_table = pd.read_csv(lists["rois"][i], sep="\t")
        roi_side = _read_json(lists["rois"][i].with_suffix(".json"))
        conf = pd.read_csv(lists["confounds"][i], sep="\t", na_values=["n/a"])
        conf = conf[[c for c in confound_cols if c in conf.columns]].fillna(0.0)
        _add_figure(
            report,
            fig_roi_confounds(
                roi_table,
                conf,
                tr=float(roi_side["RepetitionTime"]),
                kept_volumes=roi_side["KeptVolumes"],
                columns=rois or roi_side.get("TargetColumns", []),
            ),
            f"{run}: ROI signals and confounds",
            section=run,
            png=png(run, "rois_bold"),
            fmt=fmt,
        )
        traces, logs = [], []
        for m in models:
            meta = m["metrics"]
            pred = m["predictions"]
            label = f"{meta['analysis']} {meta['model']} {meta['roi']}"
            if pred is not None and run in set(pred["scan"]):
                r = meta["scans"].get(run, {}).get("r", float("nan"))
                traces.append((label, pred[pred["scan"] == run], r))
            if meta["analysis"] == "intra" and m["log"] is not None and _in_run(m["dir"], run):
                logs.append((f"{meta['model']} {meta['roi']}", m["log"]))
        _add_figure(
            report,
            fig_test_traces(traces),
            f"{run}: test split, predicted vs measured",
            section=run,
            png=png(run, "test_timeseries"),
            fmt=fmt,
        )
        if logs:
            _add_figure(
                report,
                fig_learning_curves(logs),
                f"{run}: learning curves (intra)",
                section=run,
                png=png(run, "learningcurves_model"),
                fmt=fmt,
            )
        qc_rows = [
            ("volumes", qc_json.get("n_volumes")),
            ("slices", qc_json.get("n_slices")),
            ("heart rate (bpm)", _round(qc_json.get("heart_rate_bpm"), 1)),
            ("BCG locked RMS before (µV)", _round(qc_json["bcg"].get("locked_rms_before_uv"), 2)),
            ("BCG locked RMS after (µV)", _round(qc_json["bcg"].get("locked_rms_after_uv"), 3)),
            ("missing channels", ", ".join(qc_json.get("missing_channels", [])) or "none"),
            ("real-time factor", _round(qc_json.get("realtime_factor"), 1)),
        ]
        for line in qc_json.get("gradient", {}).get("slice_lines", [])[:2]:
            qc_rows.append(
                (
                    f"slice line {line['freq_hz']:.2f} Hz after/background",
                    _round(line.get("after_to_background"), 2),
                )
            )
        report.add_html(
            _table_html(pd.DataFrame(qc_rows, columns=["cleaning QC", "value"])),
            title=f"{run}: cleaning QC",
            section=run,
        )
    _save(report, outputs["html"])
    return Path(outputs["html"])


def _round(value, digits):
    return None if value is None else round(float(value), digits)


def run_report(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any], params: Mapping[str, Any]
) -> Path:
    """Write the group ``report.html``.

    Parameters
    ----------
    inputs : mapping
        ``metrics`` (every ``metrics.json``; ``log.tsv`` next to them is read),
        ``subject_pages`` (linked), optional ``simulation`` (the simulator's
        ``simulation.json``: ceilings), optional ``predicted`` (``_desc-predicted_timeseries.tsv``
        files) and ``measured`` (for the first ones: the fMRI stage's ROI TSV of the same
        run, to compare with).
    outputs : mapping
        ``html``.
    params : mapping
        ``cfg`` (the ``report`` section); ``control_rois`` (``evaluate.control_rois``:
        left out of Table 1's average); optional ``atlas`` (the ``fmri.atlas`` section:
        the maps of the measured vs predicted brain maps; the inputs ``atlas_maps`` and
        ``atlas_labels`` override it).
    """
    from .brainmaps import report_figure
    from .evaluate import collect_metrics, group_table, read_test_series, table1
    from .predict import compare_with_measured

    opts = _options(params.get("cfg"))
    alpha, fmt = float(opts["alpha"]), opts["image_format"]
    out = Path(outputs["html"])
    paths = [Path(p) for p in np.atleast_1d(inputs["metrics"])]
    models = [_read_model_dir(p) for p in paths]
    metrics = collect_metrics(paths)
    metrics["best_val_r"] = [
        m["metrics"]["best_val_r"] for m in models for _ in m["metrics"]["scans"]
    ]
    metrics = metrics.sort_values(["analysis", "roi", "model", "scan"], kind="stable")
    report = _new_report("neurobolt: EEG-to-fMRI prediction")

    pages = [Path(p) for p in np.atleast_1d(inputs.get("subject_pages", []))]
    rel = sorted(os.path.relpath(p, out.parent) for p in pages)  # [<dataset>/]sub-XX.html
    links = " · ".join(
        f"<a href='{html.escape(r)}'>{html.escape(r.removesuffix('.html'))}</a>" for r in rel
    )
    scans = sorted(set(metrics["scan"]))
    report.add_html(
        f"<p>{len(scans)} test scan(s), models: {', '.join(sorted(set(metrics['model'])))};"
        f" ROIs: {', '.join(sorted(set(metrics['roi'])))}.</p>"
        f"<p>Per-subject QC pages: {links or 'none'}.</p>" + _provenance_html(opts),
        title="Overview",
        section="Overview",
    )
    controls = list(params.get("control_rois", ["Cerebellum Crus II"]))
    group = group_table(metrics, read_test_series(paths), control_rois=controls, alpha=alpha)
    t1 = (
        table1(metrics, alpha=alpha, group=group, control_rois=controls)
        if len(metrics)
        else pd.DataFrame({"no models": []})
    )
    report.add_html(
        _table_html(t1)
        + "<p>Each cell: mean test R over subjects (Fisher z; a subject's sessions averaged"
        " first) ± SD of the subjects' R [95% CI of the mean], the group p of the"
        " between-scan null (each subject's predictions scored against other subjects'"
        " test targets), and (k/n): k of n scans whose own test gives p <"
        f" {alpha:g}. The per-scan test corrects for the autocorrelation of both series"
        " (effective degrees of freedom); n counts only scans it can test. n/a: SD and CI"
        " of a single subject, a group p with too few subjects to resolve"
        f" {alpha:g} (at least 4 are needed). The average column leaves out control ROIs"
        f" ({', '.join(controls) or 'none'}: no EEG coupling expected).</p>",
        title="Table 1: test R per ROI and model",
        section="Results",
    )
    report.add_html(
        _group_html(group, alpha=alpha)
        + "<p>group/table.tsv: per analysis, ROI and model. Per-scan 95% CIs (block"
        " bootstrap, blocks of at least 30 s) are in group/metrics.tsv and on the subject"
        " pages.</p>",
        title="Group-level inference",
        section="Results",
    )
    for analysis in ("intra", "inter", "zero_shot", "finetune", "joint"):
        if (metrics["analysis"] == analysis).any():
            _add_figure(
                report,
                fig_r_distributions(metrics, analysis=analysis, alpha=alpha),
                f"R distributions ({ANALYSIS_NAMES.get(analysis, analysis)})",
                section="Results",
                fmt=fmt,
            )
    if inputs.get("simulation"):
        sim = _read_json(inputs["simulation"])
        ceilings = {scan: run["ceiling"] for scan, run in sim.get("runs", {}).items()}
        _add_figure(
            report,
            fig_r_vs_ceiling(metrics, ceilings),
            "R vs simulator ceiling",
            section="Results",
            fmt=fmt,
            caption=sim.get("ceiling_definition"),
        )
    _add_figure(
        report, fig_val_vs_test(metrics), "Validation vs test R", section="Results", fmt=fmt
    )
    inter_logs = [
        (f"{m['metrics']['model']} {m['metrics']['roi']}", m["log"])
        for m in models
        if m["metrics"]["analysis"] == "inter" and m["log"] is not None
    ]
    if inter_logs:
        _add_figure(
            report,
            fig_learning_curves(inter_logs),
            "Learning curves (inter-subject)",
            section="Results",
            fmt=fmt,
        )

    predicted = [Path(p) for p in np.atleast_1d(inputs.get("predicted", []))]
    measured = [Path(p) for p in np.atleast_1d(inputs.get("measured", []))]
    rows = []
    for i, pred_path in enumerate(predicted):
        pred = pd.read_csv(pred_path, sep="\t")
        side = _read_json(pred_path.with_suffix(".json"))
        name = pred_path.name.removesuffix("_desc-predicted_timeseries.tsv")
        models_used = side.get("Models", [])
        comparison = None
        if i < len(measured) and "volume" not in pred.columns:
            step = side.get("RepetitionTime")
            report.add_html(
                f"<p>{html.escape(name)} was predicted every"
                f" {f'{float(step):.4g}' if step is not None else '?'} s"
                " (<code>predict.step_s</code>), not at its volume markers, so its"
                " predictions are not compared with the measured ROI signals. Leave"
                " <code>predict.step_s</code> unset to compare them.</p>",
                title=f"{name}: not compared with the measured signals",
                section="Prediction from EEG alone",
            )
        elif i < len(measured):
            meas = pd.read_csv(measured[i], sep="\t")
            meas_side = _read_json(measured[i].with_suffix(".json"))
            kept = meas_side["KeptVolumes"]
            _add_figure(
                report,
                fig_held_out(
                    pred, meas, kept_volumes=kept, tr=float(meas_side["RepetitionTime"]), title=name
                ),
                f"{name}: predicted from EEG alone vs measured",
                section="Prediction from EEG alone",
                fmt=fmt,
            )
            comparison = compare_with_measured(pred, meas, kept_volumes=kept).set_index("roi")
            maps_fig = report_figure(  # measured vs predicted maps, test R per region
                pred,
                meas,
                kept_volumes=kept,
                comparison=comparison,
                inputs=inputs,
                atlas=params.get("atlas"),
                title=f"{name}: measured vs predicted (atlas back-projection)",
            )
            if maps_fig is not None:
                _add_figure(
                    report,
                    maps_fig,
                    f"{name}: measured vs predicted maps, test R per region",
                    section="Prediction from EEG alone",
                    fmt=fmt,
                )
        for entry in models_used:
            for roi in entry["ROIs"]:
                ev = metrics[
                    (metrics["scan"] == name)
                    & (metrics["roi"] == roi)
                    & (metrics["model"] == entry["Model"])
                    & (metrics["analysis"] == entry.get("Analysis"))
                ]
                r_pred = comparison.loc[roi, "r"] if comparison is not None else np.nan
                r_eval = float(ev["r"].iloc[0]) if len(ev) else np.nan
                rows.append(
                    {
                        "recording": name,
                        "roi": roi,
                        "model": entry["Model"],
                        "analysis": entry.get("Analysis"),
                        "recording in model's splits": ", ".join(entry["RecordingInSplits"])
                        or "none",
                        "validation R": _round(entry.get("ValidationR"), 3),
                        "R predicted vs measured": _round(r_pred, 4)
                        if np.isfinite(r_pred)
                        else None,
                        "R from evaluate": _round(r_eval, 4) if np.isfinite(r_eval) else None,
                        "difference": _round(abs(r_pred - r_eval), 4)
                        if np.isfinite(r_pred) and np.isfinite(r_eval)
                        else None,
                    }
                )
    if rows:
        report.add_html(
            _table_html(pd.DataFrame(rows))
            + "<p>Each recording was predicted from its raw EEG alone (the predict rule reads"
            " no BOLD file). Where the fMRI of the recording exists, the predictions are"
            " correlated with its measured ROI signals and set beside the R that evaluate"
            " reports for the same model and scan.</p>",
            title="Predictions from EEG alone",
            section="Prediction from EEG alone",
        )
    _save(report, out)
    return out
