"""Paths of the outputs: per-run derivatives, model folders, tables and figures.

Every output path that more than one rule or target names is built here.
"""

#: runs.tsv of each dataset (<results>/[<label>/]runs.tsv)
RUNS_TABLES = [RESULTS / label / "runs.tsv" for label in VIEWS]


#: The validate rule's table: the whole dataset and config checked again after any change.
VALIDATED = RESULTS / "validation.tsv"


#: The validate_first rule's table: the per-run rules wait for it (ancient), so that the
#: first run of a results folder stops before any heavy work. validate_first has no inputs
#: and no params, so it never reruns once passed: a rerunning job upstream of an ancient
#: input hides its downstream jobs' own reasons to rerun (changed params) from Snakemake 9
#: (snakemake/snakemake#4166), which is why the per-run rules do not wait for `validate`.
FIRST_VALIDATION = RESULTS / "validation_first.tsv"


#: A run's ROI signals: <run>_<ROI_SIGNALS>.tsv (+ .json), ROI_SIGNALS being
#: atlas-DiFuMo_scale-<dimension>_timeseries (BIDS atlas entities); named only here.
ROI_SIGNALS = nbderiv.roi_signals_suffix(config["fmri"]["atlas"])


def roi_signals_output(key, ext="tsv"):
    """A run's ROI-signal file (``ext``: tsv or json)."""
    return run_output(key, "func", f"{ROI_SIGNALS}.{ext}")


def run_dir(key):
    """``[<label>/]sub-XX[/ses-YY]`` of a run (from its key)."""
    label, name = nbdatasets.split_key(key)
    entities = dict(part.split("-", 1) for part in name.split("_"))
    parts = [f"{k}-{entities[k]}" for k in ("sub", "ses") if k in entities]
    return Path(label, *parts)


def run_output(key, datatype, suffix):
    """Path of a per-run derivative: results/[<label>/]sub-XX[/ses-YY]/<datatype>/<run>_<suffix>."""
    return (
        RESULTS / run_dir(key) / datatype / f"{nbdatasets.split_key(key)[1]}_{suffix}"
    )


def simulated_files(view):
    """Every file the simulate rule writes (so Snakemake knows which rule makes them)."""
    root = Path(view["bids"]["root"])
    files = [
        f for run in planned_sim_runs(view) for f in nbsim.run_files(root, run).values()
    ]
    return files + list(nbsim.atlas_files(root).values())


def transfer_dir(analysis, label, model):
    """Folder of one cross-dataset model (zero_shot, finetune, joint)."""
    return RESULTS / "models" / analysis / f"roi-{label}" / f"model-{model}"


def intra_dir(run, label, model):
    """Folder of one intra-subject model."""
    return RESULTS / "models" / "intra" / run / f"roi-{label}" / f"model-{model}"


def inter_dir(label, model):
    """Folder of one inter-subject model."""
    return RESULTS / "models" / "inter" / f"roi-{label}" / f"model-{model}"


def dataset_stores(label):
    """The window stores of one dataset's runs, in key order."""
    return [run_output(key, "func", "windows.h5") for key in dataset_runs(label)]


#: a train_intra/train_inter job's folder in models/<analysis>/[<run>/] (and its log's)
TRAIN_UNIT = "shared" if SHARED else "roi-{roi}"


LOG_UNIT = "shared" if SHARED else "{roi}"


#: the ROI folders an evaluate job writes: its own (per_roi) or every modelled ROI's
EVAL_LABELS = list(ROI_BY_LABEL) if SHARED else ["{roi}"]


#: group_metrics' comparison of the cross-dataset analyses, when they run
GROUP_EXTRA = (
    {"generalisation": RESULTS / "group" / "generalisation.tsv"} if TRANSFER else {}
)


def predict_output(name, suffix):
    """``<results>/sub-XX[/ses-YY]/func/<recording>_desc-predicted_<suffix>``."""
    return run_output(name, "func", f"desc-predicted_{suffix}")


#: The group figures of `snakemake --report` (the report_figures rule)
REPORT_FIGURES = {"table1": RESULTS / "group" / "figures" / "table1.png"} | {
    f"r_{analysis}": RESULTS / "group" / "figures" / f"r_distributions_{analysis}.png"
    for analysis in ANALYSES
}
