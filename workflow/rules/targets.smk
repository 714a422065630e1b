"""What the targets build: `all` (the group level), `participant`, and the reports'
inputs, which gather every model's results."""


def get_model_metrics():
    """Every metrics.json the configured analyses produce."""
    out = []
    for label in ROI_BY_LABEL:
        for model in MODELS:
            if "intra" in ANALYSES:
                out += [
                    intra_dir(run, label, model) / "metrics.json"
                    for run in sorted(RUNS)
                ]
            if "inter" in ANALYSES:
                out.append(inter_dir(label, model) / "metrics.json")
            out += [transfer_dir(a, label, model) / "metrics.json" for a in TRANSFER]
    return out


def participant_outputs():
    """What the ``participant`` target builds: every selected run's derivatives and its
    intra-subject models (the BIDS-App participant level; ``all`` is the group level).
    """
    stores = [run_output(name, "func", "windows.h5") for name in sorted(RUNS)]
    intra = [path for path in get_model_metrics() if "intra" in path.parts]
    return [
        VALIDATED,
        RESULTS / "dataset_description.json",
        *RUNS_TABLES,
        *stores,
        *intra,
    ]


def final_outputs():
    """What `snakemake` with no target builds."""
    stores = [run_output(name, "func", "windows.h5") for name in RUNS]
    predictions = [
        predict_output(name, suffix)
        for name in PREDICT
        for suffix in ("timeseries.tsv", "bold.nii.gz")
    ]
    return [
        VALIDATED,
        RESULTS / "dataset_description.json",
        *RUNS_TABLES,
        *stores,
        RESULTS / "group" / "metrics.tsv",
        *REPORT_FIGURES.values(),
        *predictions,
        RESULTS / "report.html",
    ]


def get_subject_report_inputs(wildcards):
    """Per run of the subject: the EEG cleaning's QC + QC signals, ROI signals, confounds; models."""
    runs = get_subject_runs(wildcards)
    metrics = []
    for label in ROI_BY_LABEL:
        for model in MODELS:
            if "intra" in ANALYSES:
                metrics += [
                    intra_dir(run, label, model) / "metrics.json" for run in runs
                ]
            if "inter" in ANALYSES:
                metrics.append(inter_dir(label, model) / "metrics.json")
    return {
        "qc": [run_output(run, "eeg", "desc-clean_qc.json") for run in runs],
        "qc_signals": [run_output(run, "eeg", "desc-clean_qc.h5") for run in runs],
        "rois": [roi_signals_output(run) for run in runs],
        "confounds": [RUNS[run]["confounds"] for run in runs],
        "metrics": metrics,
    }


def get_report_inputs(wildcards):
    """Group metrics, every model's metrics, the subject pages, predictions, ground truth."""
    inputs = {
        "metrics": get_model_metrics(),
        "subject_pages": [RESULTS / f"{page}.html" for page in SUBJECT_PAGES],
        "measured": [roi_signals_output(name) for name in HELD_OUT],
        # measured[i] belongs to predicted[i]: held-out scans first
        "predicted": [predict_output(name, "timeseries.tsv") for name in HELD_OUT]
        + [
            predict_output(name, "timeseries.tsv")
            for name in PREDICT
            if name not in HELD_OUT
        ],
    }
    if SIMULATE and not MULTI:  # the ceilings of the simulated runs
        inputs["simulation"] = nbsim.simulation_json(BIDS_ROOT)
    if HELD_OUT:  # the atlas of the measured vs predicted maps
        inputs.update(sim_atlas_files(sorted(RUNS)[0]))
    return inputs
