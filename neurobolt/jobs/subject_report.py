"""Job of the ``subject_report`` rule: one subject's QC page (``sub-<label>.html``).

The EEG figures plot the QC signals ``clean_eeg`` wrote (``<run>_desc-clean_qc.h5``);
the tables read its QC JSON; the ROI signals, confounds and models' outputs are read
as they are.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..eeg.qc_signals import read_qc_signals
from ..report.figures import (
    fig_bcg_epochs,
    fig_learning_curves,
    fig_marker_timing,
    fig_roi_confounds,
    fig_spectra,
    fig_test_traces,
)
from ..report.pages import (
    add_figure,
    in_run,
    new_report,
    options,
    provenance_html,
    read_json,
    read_model_dir,
    save_report,
)
from ..report.signals import eeg_figure_data
from ..report.tables import cleaning_qc_table, eeg_qc_table, subject_metrics_table, table_html

logger = logging.getLogger("neurobolt.report")

__all__ = ["run"]

#: The per-run inputs, parallel lists in ``params["runs"]`` order.
RUN_INPUTS = ("qc", "qc_signals", "rois", "confounds")


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> Path:
    """Write one subject's QC page (``sub-<label>.html``).

    Parameters
    ----------
    inputs : mapping
        Parallel lists over the subject's runs (in ``params["runs"]`` order): ``qc``
        (``_desc-clean_qc.json``), ``qc_signals`` (``_desc-clean_qc.h5``), ``rois``
        (``_atlas-*_timeseries.tsv``; its sidecar is read), ``confounds`` (fMRIPrep
        confounds TSV); and ``metrics``: every ``metrics.json`` of models that may
        involve these runs (``predictions.tsv`` and ``log.tsv`` next to them are read).
        Other keys are ignored.
    outputs : mapping
        ``html``; optional ``figures``: a folder that receives the QC figures as PNG files
        too (``<run>_desc-<figure>_<suffix>.png``, for ``snakemake --report``).
    params : mapping
        ``runs`` (run names), ``subject``, ``cfg`` (the ``report`` section), ``eeg``
        (the ``eeg`` section: in the page's configuration hash), ``rois`` (the modelled
        ROIs), ``confounds`` (confound columns shown).
    threads : int
        Unused.
    """
    opts = options(params.get("cfg"))
    runs = list(params["runs"])
    lists = {k: [Path(p) for p in np.atleast_1d(inputs[k])] for k in RUN_INPUTS}
    for key, paths in lists.items():
        if len(paths) != len(runs):
            raise ValueError(f"{len(paths)} {key} file(s) for {len(runs)} run(s)")
    models = [read_model_dir(Path(p)) for p in np.atleast_1d(inputs.get("metrics", []))]
    rois = list(params.get("rois") or [])
    confound_cols = list(params.get("confounds") or [])
    subject = params.get("subject") or runs[0].split("_")[0].removeprefix("sub-")
    report = new_report(f"neurobolt QC: sub-{subject}")
    fmt = opts["image_format"]
    figures = Path(outputs["figures"]) if outputs.get("figures") else None

    def png(run, name):  # where a QC figure also goes, if anywhere
        return figures / f"{run}_desc-{name}.png" if figures is not None else None

    report.add_html(
        "<p>Quality control of the EEG cleaning, the fMRI ROI signals and the models of"
        f" sub-{html.escape(subject)}. <a href='report.html'>Group report</a>.</p>"
        + provenance_html({"report": opts, "eeg": params.get("eeg")}),
        title="About",
        section="Overview",
    )
    table = subject_metrics_table(models, runs)
    report.add_html(
        table_html(table.sort_values(["scan", "analysis", "roi", "model"])),
        title="Test metrics",
        section="Overview",
    )

    for i, run_name in enumerate(runs):
        logger.info("%s: QC figures", run_name)
        qc_json = read_json(lists["qc"][i])
        sig = eeg_figure_data(
            read_qc_signals(lists["qc_signals"][i]),
            channels=opts["qc_channels"],
            fmax=float(opts["fmax_hz"]),
        )
        _eeg_figures(report, run_name, sig, fmax=float(opts["fmax_hz"]), fmt=fmt, png=png)
        report.add_html(
            table_html(eeg_qc_table(qc_json)),
            title=f"{run_name}: EEG cleaning QC (written by clean_eeg)",
            section=run_name,
        )
        roi_table = pd.read_csv(lists["rois"][i], sep="\t")
        roi_side = read_json(lists["rois"][i].with_suffix(".json"))
        conf = pd.read_csv(lists["confounds"][i], sep="\t", na_values=["n/a"])
        conf = conf[[c for c in confound_cols if c in conf.columns]].fillna(0.0)
        add_figure(
            report,
            fig_roi_confounds(
                roi_table,
                conf,
                tr=float(roi_side["RepetitionTime"]),
                kept_volumes=roi_side["KeptVolumes"],
                columns=rois or roi_side.get("TargetColumns", []),
            ),
            f"{run_name}: ROI signals and confounds",
            section=run_name,
            png=png(run_name, "rois_bold"),
            fmt=fmt,
        )
        traces, logs = [], []
        for m in models:
            meta = m["metrics"]
            pred = m["predictions"]
            label = f"{meta['analysis']} {meta['model']} {meta['roi']}"
            if pred is not None and run_name in set(pred["scan"]):
                r = meta["scans"].get(run_name, {}).get("r", float("nan"))
                traces.append((label, pred[pred["scan"] == run_name], r))
            if meta["analysis"] == "intra" and m["log"] is not None and in_run(m["dir"], run_name):
                logs.append((f"{meta['model']} {meta['roi']}", m["log"]))
        add_figure(
            report,
            fig_test_traces(traces),
            f"{run_name}: test split, predicted vs measured",
            section=run_name,
            png=png(run_name, "test_timeseries"),
            fmt=fmt,
        )
        if logs:
            add_figure(
                report,
                fig_learning_curves(logs),
                f"{run_name}: learning curves (intra)",
                section=run_name,
                png=png(run_name, "learningcurves_model"),
                fmt=fmt,
            )
        report.add_html(
            table_html(cleaning_qc_table(qc_json)),
            title=f"{run_name}: cleaning QC",
            section=run_name,
        )
    save_report(report, outputs["html"])
    return Path(outputs["html"])


def _eeg_figures(report, run_name: str, sig: Mapping[str, Any], *, fmax, fmt, png) -> None:
    """A run's spectra, average BCG epoch and volume-marker timing."""
    add_figure(
        report,
        fig_spectra(
            sig["spectra"],
            slice_freq=sig["slice_freq"],
            volume_freq=sig["volume_freq"],
            fmax=fmax,
            title=f"{run_name}: channels {', '.join(sig['channels'])}",
        ),
        f"{run_name}: EEG power spectra",
        section=run_name,
        png=png(run_name, "spectra_eeg"),
        caption="Before cleaning, after gradient removal, after BCG removal (the"
        " clean_eeg output); dashed: slice-frequency harmonics, green ticks:"
        " volume-frequency harmonics.",
        fmt=fmt,
    )
    if sig["bcg"] is not None:
        b = sig["bcg"]
        add_figure(
            report,
            fig_bcg_epochs(
                b["times"],
                b["before"],
                b["after"],
                ch_names=sig["channels"],
                n_beats=b["n_beats"],
            ),
            f"{run_name}: average BCG epoch",
            section=run_name,
            png=png(run_name, "bcg_eeg"),
            fmt=fmt,
            caption="R-peak-locked average before and after BCG removal.",
        )
    add_figure(
        report,
        fig_marker_timing(sig["markers"], sfreq=sig["sfreq"], tr=sig["tr"]),
        f"{run_name}: volume-marker timing",
        section=run_name,
        png=png(run_name, "markers_eeg"),
        fmt=fmt,
    )
