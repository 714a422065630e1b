"""The configuration and the runs: validation, datasets, run discovery, analyses.

Included first: every other .smk file reads the names defined here (RUNS, VIEWS, ...).
The schema check is Snakemake's (it fills the defaults); every cross-field check is
``neurobolt.checks.check_config``, which ``neurobolt validate`` runs too.
"""

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

try:  # installed: `pip install -e .` here, the post-deploy step in the conda env
    import neurobolt
except ImportError:
    raise WorkflowError(
        "The neurobolt package is not installed in the Python running Snakemake:"
        f" `pip install -e {workflow.basedir}` first (see the README)."
    ) from None
from neurobolt import bids as nbids
from neurobolt import checks as nbchecks
from neurobolt import config as nbconfig
from neurobolt import datasets as nbdatasets
from neurobolt import derivatives as nbderiv
from neurobolt import predict as nbpredict
from neurobolt import simulate as nbsim
from neurobolt import transfer as nbtransfer
from neurobolt.fmri import whole_brain as nbwhole

_demo_config = Path(workflow.basedir) / "config" / "config.yaml"
if not Path("config/config.yaml").is_file() and _demo_config.is_file():
    # Snakemake skips a missing `configfile:` when --configfile is given; sections that
    # file leaves out would then silently take the schema's defaults (e.g. the paper-size
    # model), not the repository's config/config.yaml.
    import yaml

    _missing = sorted(set(yaml.safe_load(_demo_config.read_text()) or {}) - set(config))
    if _missing:
        print(
            f"neurobolt: no config/config.yaml in the working directory {Path.cwd()}, and"
            f" the --configfile sets no {', '.join(_missing)}: those take the schema"
            " defaults (neurobolt/config.schema.yaml), not config/config.yaml. Run from the"
            " repository, or copy config/config.yaml into the --directory.",
            file=sys.stderr,
        )
validate(config, str(nbconfig.SCHEMA_PATH))
_errors = nbchecks.check_config(config)
if _errors:
    raise WorkflowError("\n".join(_errors))
# fmri.rois: all -> every atlas component + the global signal, named before any job
config["fmri"]["rois"] = nbwhole.expand_rois(
    config["fmri"]["rois"], config["fmri"]["atlas"]
)

RESULTS = Path(config["results_dir"])
ENV = "../../envs/neurobolt.yaml"

#: label -> that dataset's configuration ({"": config} for a single dataset)
VIEWS = nbdatasets.dataset_views(config)
MULTI = bool(config["datasets"])
for _view in VIEWS.values():  # each dataset is checked as a config of its own
    validate(_view, str(nbconfig.SCHEMA_PATH))
BIDS_ROOT = Path(config["bids"]["root"])
SIMULATE = any(view["simulate"]["enabled"] for view in VIEWS.values())


def _keep(run, bids_cfg):
    """Apply the subject/session/task filters of the config to a planned run."""
    for key, value in (
        ("subjects", run.subject),
        ("sessions", run.session),
        ("tasks", run.task),
    ):
        wanted = nbids.entity_labels(bids_cfg[key])
        if wanted and value not in wanted:
            return False
    return True


def planned_sim_runs(view):
    """The runs the simulator writes for one dataset."""
    sim = view["simulate"]
    return nbsim.planned_runs(
        n_subjects=sim["n_subjects"],
        n_two_session=sim["n_two_session"],
        task=sim["task"],
        task_design=sim["task_design"],
    )


def discover_runs(label, view):
    """Map run key -> input files of one dataset: planned by the simulator, or found."""
    bids_cfg = view["bids"]
    root = Path(bids_cfg["root"])
    if view["simulate"]["enabled"]:
        return {
            nbdatasets.run_key(label, run.stem): nbsim.run_files(
                root, run, space=bids_cfg["space"]
            )
            for run in planned_sim_runs(view)
            if _keep(run, bids_cfg)
        }
    try:
        found = nbids.find_runs(
            root,
            fmriprep_dir=bids_cfg["fmriprep_dir"],
            space=bids_cfg["space"],
            subjects=bids_cfg["subjects"],
            sessions=bids_cfg["sessions"],
            tasks=bids_cfg["tasks"],
        )
    except FileNotFoundError as err:
        raise WorkflowError(str(err)) from None
    if found.unpaired:
        print(found.summary(), file=sys.stderr)
    if not found.runs:
        raise WorkflowError(
            f"No paired EEG-fMRI run found in {root}.\n{found.summary()}"
        )
    return {
        nbdatasets.run_key(label, run.name): {
            "vhdr": run.eeg,
            "bold": run.bold,
            "preproc_bold": run.preproc_bold,
            "mask": run.mask,
            "confounds": run.confounds,
        }
        for run in found.runs
    }


#: run key -> input files, over every dataset (keys are <label>/<run> with datasets)
RUNS = {
    key: files
    for label, view in VIEWS.items()
    for key, files in discover_runs(label, view).items()
}


def dataset_runs(label):
    """The run keys of one dataset, sorted."""
    return sorted(key for key in RUNS if nbdatasets.split_key(key)[0] == label)


def view_of(key):
    """The configuration of the dataset a run key belongs to."""
    return VIEWS[nbdatasets.split_key(key)[0]]


def validate_config():
    """The config sections the validate rule checks (paths, inputs, outputs)."""
    keys = ("results_dir", "bids", "eeg", "fmri", "store", "model", "train", "evaluate")
    keys += ("datasets", "generalisation") if MULTI else ()
    return {key: config[key] for key in keys}


def atlas_is_simulated():
    """Whether the simulator's atlas stands in for DiFuMo (the demo, or a BIDS-App run on
    a simulated dataset)."""
    atlas = config["fmri"]["atlas"]
    sim_atlas = nbsim.atlas_files(BIDS_ROOT)
    if atlas["maps"] or atlas["labels"]:
        return Path(str(atlas["maps"])) == sim_atlas["maps"]
    return SIMULATE


#: every name a {run} wildcard takes: run keys (model folders) and BIDS names (file names)
_RUN_NAMES = sorted(set(RUNS) | {nbdatasets.split_key(key)[1] for key in RUNS})


wildcard_constraints:
    run="|".join(re.escape(name) for name in _RUN_NAMES) or "no-run",
    roi=r"[A-Za-z0-9]+",
    model=r"[a-z_]+",
    subdir=r"([A-Za-z0-9]+/)?sub-[^/]+(/ses-[^/]+)?",


# The analyses: which ROIs and models, intra/inter-subject and across datasets.
MODEL_ROIS = config["evaluate"]["rois"] or config["fmri"]["rois"]
ROI_BY_LABEL = {nbids.filename_label(roi): roi for roi in MODEL_ROIS}
MODELS = config["evaluate"]["models"]
ANALYSES = config["evaluate"]["analyses"]
TRANSFER = [a for a in ANALYSES if a in nbtransfer.ANALYSES]
if TRANSFER:
    SOURCE, TARGET = nbtransfer.source_target(config["generalisation"], list(VIEWS))

#: model.heads: shared trains one model per (scan, model) / model for every ROI at once
SHARED = config["model"]["heads"] == "shared"


# Prediction from EEG alone: the held-out inter-subject scans and predict.recordings.
PREDICT_CFG = config["predict"]
PREDICT_ROIS = PREDICT_CFG["rois"] or MODEL_ROIS


def held_out_runs():
    """The inter-subject test scans when predict.held_out is on (train_inter's split)."""
    if not PREDICT_CFG["held_out"]:
        return []
    try:
        return nbpredict.held_out_scans(sorted(RUNS), train_section=config["train"])
    except ValueError:
        return []  # no inter split of these scans: the validate rule reports why


def predict_recordings():
    """Recording name -> EEG file of every recording to predict from its EEG alone."""
    out = {name: Path(RUNS[name]["vhdr"]) for name in HELD_OUT}
    scan = PREDICT_CFG["intra_scan"]
    if PREDICT_CFG["recordings"] and scan is not None and scan not in RUNS:
        raise WorkflowError(
            f"predict.intra_scan {scan!r} is not a run with intra-subject models"
        )
    for path in PREDICT_CFG["recordings"]:
        name = nbpredict.recording_name(path)
        if name in out and out[name] != Path(path):  # also a held-out scan's name
            raise WorkflowError(f"predict.recordings: two recordings named {name}")
        out[name] = Path(path)
    return out


HELD_OUT = held_out_runs()
PREDICT = predict_recordings()


wildcard_constraints:
    recording="|".join(re.escape(name) for name in PREDICT) or "no-recording",


#: "[<label>/]sub-XX" of every subject: its QC page is <results>/<page>.html
SUBJECT_PAGES = sorted({key.split("_")[0] for key in RUNS})


wildcard_constraints:
    page="|".join(re.escape(page) for page in SUBJECT_PAGES) or "no-page",
