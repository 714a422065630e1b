"""Job of the ``report`` rule: the group ``report.html``.

Table 1 and the group-level inference, the R distributions, R against the simulator's
ceiling, validation against test R, the inter-subject learning curves, the EEG-only
predictions compared with the measured signals (and their brain maps), and links to
the subject pages.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..report.figures import (
    ANALYSIS_NAMES,
    fig_held_out,
    fig_learning_curves,
    fig_r_distributions,
    fig_r_vs_ceiling,
    fig_val_vs_test,
)
from ..report.pages import (
    add_figure,
    new_report,
    options,
    provenance_html,
    read_json,
    read_model_dir,
    save_report,
)
from ..report.tables import group_html, round_or_none, table_html

__all__ = ["run"]


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
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
    threads : int
        Unused.
    """
    from ..brainmaps import report_figure
    from ..evaluate import collect_metrics, group_table, read_test_series, table1
    from ..predict import compare_with_measured

    opts = options(params.get("cfg"))
    alpha, fmt = float(opts["alpha"]), opts["image_format"]
    out = Path(outputs["html"])
    paths = [Path(p) for p in np.atleast_1d(inputs["metrics"])]
    models = [read_model_dir(p) for p in paths]
    metrics = collect_metrics(paths)
    metrics["best_val_r"] = [
        m["metrics"]["best_val_r"] for m in models for _ in m["metrics"]["scans"]
    ]
    metrics = metrics.sort_values(["analysis", "roi", "model", "scan"], kind="stable")
    report = new_report("neurobolt: EEG-to-fMRI prediction")

    pages = [Path(p) for p in np.atleast_1d(inputs.get("subject_pages", []))]
    rel = sorted(os.path.relpath(p, out.parent) for p in pages)  # [<dataset>/]sub-XX.html
    links = " · ".join(
        f"<a href='{html.escape(r)}'>{html.escape(r.removesuffix('.html'))}</a>" for r in rel
    )
    scans = sorted(set(metrics["scan"]))
    report.add_html(
        f"<p>{len(scans)} test scan(s), models: {', '.join(sorted(set(metrics['model'])))};"
        f" ROIs: {', '.join(sorted(set(metrics['roi'])))}.</p>"
        f"<p>Per-subject QC pages: {links or 'none'}.</p>" + provenance_html(opts),
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
        table_html(t1)
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
        group_html(group, alpha=alpha)
        + "<p>group/table.tsv: per analysis, ROI and model. Per-scan 95% CIs (block"
        " bootstrap, blocks of at least 30 s) are in group/metrics.tsv and on the subject"
        " pages.</p>",
        title="Group-level inference",
        section="Results",
    )
    for analysis in ("intra", "inter", "zero_shot", "finetune", "joint"):
        if (metrics["analysis"] == analysis).any():
            add_figure(
                report,
                fig_r_distributions(metrics, analysis=analysis, alpha=alpha),
                f"R distributions ({ANALYSIS_NAMES.get(analysis, analysis)})",
                section="Results",
                fmt=fmt,
            )
    if inputs.get("simulation"):
        sim = read_json(inputs["simulation"])
        ceilings = {scan: run["ceiling"] for scan, run in sim.get("runs", {}).items()}
        add_figure(
            report,
            fig_r_vs_ceiling(metrics, ceilings),
            "R vs simulator ceiling",
            section="Results",
            fmt=fmt,
            caption=sim.get("ceiling_definition"),
        )
    add_figure(report, fig_val_vs_test(metrics), "Validation vs test R", section="Results", fmt=fmt)
    inter_logs = [
        (f"{m['metrics']['model']} {m['metrics']['roi']}", m["log"])
        for m in models
        if m["metrics"]["analysis"] == "inter" and m["log"] is not None
    ]
    if inter_logs:
        add_figure(
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
        side = read_json(pred_path.with_suffix(".json"))
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
            meas_side = read_json(measured[i].with_suffix(".json"))
            kept = meas_side["KeptVolumes"]
            add_figure(
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
                add_figure(
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
                        "validation R": round_or_none(entry.get("ValidationR"), 3),
                        "R predicted vs measured": round_or_none(r_pred, 4)
                        if np.isfinite(r_pred)
                        else None,
                        "R from evaluate": round_or_none(r_eval, 4)
                        if np.isfinite(r_eval)
                        else None,
                        "difference": round_or_none(abs(r_pred - r_eval), 4)
                        if np.isfinite(r_pred) and np.isfinite(r_eval)
                        else None,
                    }
                )
    if rows:
        report.add_html(
            table_html(pd.DataFrame(rows))
            + "<p>Each recording was predicted from its raw EEG alone (the predict rule reads"
            " no BOLD file). Where the fMRI of the recording exists, the predictions are"
            " correlated with its measured ROI signals and set beside the R that evaluate"
            " reports for the same model and scan.</p>",
            title="Predictions from EEG alone",
            section="Prediction from EEG alone",
        )
    save_report(report, out)
    return out
