"""The report's tables: pure functions from QC records and metrics to DataFrames and HTML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "COLUMNS",
    "ci_text",
    "cleaning_qc_table",
    "eeg_qc_table",
    "group_html",
    "read_metrics",
    "round_or_none",
    "subject_metrics_table",
    "table_html",
]

_TABLE_CLASSES = "table table-sm table-striped table-hover"

#: The columns of ``group/metrics.tsv`` the figures read.
COLUMNS = ("analysis", "scan", "roi", "model", "r", "p_permutation")


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


def ci_text(low, high) -> str:
    """``[low, high]`` of a CI, ``n/a`` when it could not be computed."""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return "n/a"
    return f"[{low:.2f}, {high:.2f}]"


def group_html(group: pd.DataFrame, *, alpha: float) -> str:
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
                ci_text(lo, hi) for lo, hi in zip(group["ci_low"], group["ci_high"], strict=True)
            ],
            "subjects": group["n_subjects"],
            "scans": group["n_scans"],
            "group p": group["p_group"].map(lambda v: f"{v:.3g}" if np.isfinite(v) else "n/a"),
            f"scans p < {alpha:g}": [
                f"{k}/{n}" for k, n in zip(group["n_significant"], group["n_tested"], strict=True)
            ],
        }
    )
    return table_html(shown)


def table_html(frame: pd.DataFrame) -> str:
    """A DataFrame as an HTML table (Bootstrap classes, "n/a" for missing values)."""
    return frame.to_html(index=False, classes=_TABLE_CLASSES, border=0, na_rep="n/a", escape=True)


def round_or_none(value, digits):
    """``value`` rounded to ``digits`` as a float; None stays None."""
    return None if value is None else round(float(value), digits)


#: The columns of a subject page's test-metrics table.
_SUBJECT_METRICS = [
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
]


def subject_metrics_table(models: Sequence[Mapping[str, Any]], runs: Sequence[str]) -> pd.DataFrame:
    """The test metrics of every model on the subject's runs, one row per model and run.

    Parameters
    ----------
    models : sequence of mapping
        Model folders as the subject report reads them (``metrics``: a ``metrics.json``).
    runs : sequence of str
        The subject's runs: the scans shown.
    """
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
                        "95% CI": ci_text(s.get("r_ci_low"), s.get("r_ci_high")),
                        "MSE": round(s["mse"], 4),
                        "n_test": s["n_test"],
                        "p (permutation)": s["p_permutation"],
                        "validation R": round(m["metrics"]["best_val_r"], 3),
                    }
                )
    return pd.DataFrame(rows, columns=_SUBJECT_METRICS)


def cleaning_qc_table(qc: Mapping[str, Any]) -> pd.DataFrame:
    """A run's cleaning QC (volumes, heart rate, BCG residual, slice lines) from its QC JSON."""
    rows = [
        ("volumes", qc.get("n_volumes")),
        ("slices", qc.get("n_slices")),
        ("heart rate (bpm)", round_or_none(qc.get("heart_rate_bpm"), 1)),
        ("BCG locked RMS before (µV)", round_or_none(qc["bcg"].get("locked_rms_before_uv"), 2)),
        ("BCG locked RMS after (µV)", round_or_none(qc["bcg"].get("locked_rms_after_uv"), 3)),
        ("missing channels", ", ".join(qc.get("missing_channels", [])) or "none"),
        ("real-time factor", round_or_none(qc.get("realtime_factor"), 1)),
    ]
    for line in qc.get("gradient", {}).get("slice_lines", [])[:2]:
        rows.append(
            (
                f"slice line {line['freq_hz']:.2f} Hz after/background",
                round_or_none(line.get("after_to_background"), 2),
            )
        )
    return pd.DataFrame(rows, columns=["cleaning QC", "value"])


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
