"""Config validation, run discovery and input functions shared by every rule."""

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(
    0, workflow.basedir
)  # the neurobolt library, also when it is not installed

from neurobolt import bids as nbids
from neurobolt import config as nbconfig
from neurobolt import datasets as nbdatasets
from neurobolt import derivatives as nbderiv
from neurobolt import predict as nbpredict
from neurobolt import simulate as nbsim
from neurobolt import transfer as nbtransfer
from neurobolt.fmri import whole_brain as nbwhole

validate(config, str(nbconfig.SCHEMA_PATH))
try:  # fmri.rois: all -> every atlas component + the global signal, named before any job
    config["fmri"]["rois"] = nbwhole.expand_rois(
        config["fmri"]["rois"], config["fmri"]["atlas"]
    )
except ValueError as err:
    raise WorkflowError(str(err)) from None

RESULTS = Path(config["results_dir"])
ENV = "../../envs/neurobolt.yaml"

try:
    #: label -> that dataset's configuration ({"": config} for a single dataset)
    VIEWS = nbdatasets.dataset_views(config)
except ValueError as err:
    raise WorkflowError(str(err)) from None
MULTI = bool(config["datasets"])
for _view in VIEWS.values():  # each dataset is checked as a config of its own
    validate(_view, str(nbconfig.SCHEMA_PATH))
    try:
        nbids.check_output_dir(RESULTS, Path(_view["bids"]["root"]))
    except ValueError as err:
        raise WorkflowError(str(err)) from None
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


def simulated_files(view):
    """Every file the simulate rule writes (so Snakemake knows which rule makes them)."""
    root = Path(view["bids"]["root"])
    files = [
        f for run in planned_sim_runs(view) for f in nbsim.run_files(root, run).values()
    ]
    return files + list(nbsim.atlas_files(root).values())


def sim_atlas_files(key):
    """The simulator's atlas maps for a run's dataset, when they stand in for DiFuMo."""
    view = view_of(key)
    atlas = view["fmri"]["atlas"]
    if not view["simulate"]["enabled"] or atlas["maps"] or atlas["labels"]:
        return {}
    sim_atlas = nbsim.atlas_files(Path(view["bids"]["root"]))
    return {"atlas_maps": sim_atlas["maps"], "atlas_labels": sim_atlas["labels"]}


def raw_inputs(wildcards):
    """The raw and fMRIPrep files of every selected run."""
    keys = ("vhdr", "bold", "preproc_bold", "mask", "confounds")
    return [RUNS[name][key] for name in sorted(RUNS) for key in keys]


def dataset_raw_inputs(label):
    """The raw and fMRIPrep files of one dataset's runs."""
    keys = ("vhdr", "bold", "preproc_bold", "mask", "confounds")
    return [RUNS[name][key] for name in dataset_runs(label) for key in keys]


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


def first_validation_inputs(wildcards):
    """Only the simulator's records where it makes a dataset (ancient: a fixed input set)."""
    return [
        ancient(nbsim.simulation_json(Path(view["bids"]["root"])))
        for view in VIEWS.values()
        if view["simulate"]["enabled"]
    ]


def validate_config():
    """The config sections the validate rule checks (paths, inputs, outputs)."""
    keys = ("results_dir", "bids", "eeg", "fmri", "store", "model", "train", "evaluate")
    keys += ("datasets", "generalisation") if MULTI else ()
    return {key: config[key] for key in keys}


#: A run's ROI signals: <run>_<ROI_SIGNALS>.tsv (+ .json), ROI_SIGNALS being
#: atlas-DiFuMo_scale-<dimension>_timeseries (BIDS atlas entities); named only here.
ROI_SIGNALS = nbderiv.roi_signals_suffix(config["fmri"]["atlas"])


def roi_signals_output(key, ext="tsv"):
    """A run's ROI-signal file (``ext``: tsv or json)."""
    return run_output(key, "func", f"{ROI_SIGNALS}.{ext}")


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


def wildcard_key(wildcards):
    """The run key of a per-run rule's job ({subdir} holds the dataset label, if any)."""
    first = wildcards.subdir.split("/")[0]
    return wildcards.run if first.startswith("sub-") else f"{first}/{wildcards.run}"


def section_of(name):
    """A params function: the config section ``name`` of the job's dataset."""

    def params(wildcards):
        return view_of(wildcard_key(wildcards))[name]

    return params


def dummy_markers_of(wildcards):
    """store.dummy_markers of the job's dataset (markers of volumes not saved)."""
    return view_of(wildcard_key(wildcards))["store"]["dummy_markers"]


def clean_eeg_inputs(wildcards):
    """The BIDS EEG recording (its header and every file read with it) and its paired BOLD
    run (volume count, TR, slice timing)."""
    files = RUNS[wildcard_key(wildcards)]
    return {
        "eeg": files["vhdr"],
        "recording": recording_files(files),
        "bold": files["bold"],
        "validated": ancient(FIRST_VALIDATION),
    }


def recording_files(files):
    """The files read with an EEG header, so that changing any of them reruns the cleaning:
    the BrainVision data and marker files (as the header names them) and the BIDS channels
    and events tables; the simulator's own list while it has not written them yet."""
    keys = ("eeg", "vmrk", "channels", "events")
    if all(key in files for key in keys):
        return [files[key] for key in keys]
    header = Path(files["vhdr"])
    names = {"DataFile": header.with_suffix(".eeg").name}
    names["MarkerFile"] = header.with_suffix(".vmrk").name
    if header.suffix.lower() == ".vhdr" and header.is_file():
        text = header.read_text(encoding="utf-8", errors="replace")
        for key in names:
            found = re.search(rf"^\s*{key}\s*=\s*(.+?)\s*$", text, flags=re.M)
            names[key] = found.group(1) if found else names[key]
    stem = header.name.rsplit("_", 1)[0]
    tables = [f"{stem}_channels.tsv", f"{stem}_events.tsv"]
    candidates = [header.parent / name for name in [*names.values(), *tables]]
    return [path for path in candidates if path.is_file()]


def file_mb(path, *, default):
    """Size of a file in MB, or ``default`` while it does not exist yet (dry runs)."""
    path = Path(path)
    return path.stat().st_size / 1e6 if path.exists() else default


def simulate_threads(sim):
    """Runs simulated in parallel: 2 (one process each), or 1 for a single run."""
    return min(2, sim["n_subjects"] + sim["n_two_session"])


def simulate_mem_mb(sim):
    """Memory for simulating: one run's ~32 channels at the simulation rate as float64, held
    ~3 times over, + 1 GB (measured: 1 GB for 6-minute runs at 5 kHz), per parallel run.
    """
    run_mb = 32 * sim["duration_s"] * sim["sfreq"] * 8 / 1e6
    return per_attempt(int(1000 + 3 * run_mb * simulate_threads(sim)))


def simulate_runtime(sim):
    """Minutes for simulating: 10 + one per minute of recording (measured: ~0.06)."""
    n_runs = sim["n_subjects"] + sim["n_two_session"]
    return per_attempt(int(10 + n_runs * sim["duration_s"] / 60))


def clean_eeg_mem_mb(wildcards, input, attempt):
    """Memory for cleaning: ~3x the recording held as float32 (the .eeg is int16 or float32)."""
    size_mb = file_mb(Path(input.eeg).with_suffix(".eeg"), default=800)
    return int(1500 + 6 * size_mb) * attempt


def clean_eeg_runtime(wildcards, input, attempt):
    """Minutes for cleaning: 10 + 1 per 40 MB of raw EEG (measured: 18 s for 120 MB)."""
    size_mb = file_mb(Path(input.eeg).with_suffix(".eeg"), default=800)
    return int(10 + size_mb / 40) * attempt


def roi_signals_inputs(wildcards):
    """fMRIPrep files of the run, and the simulator's atlas when it stands in for DiFuMo."""
    key = wildcard_key(wildcards)
    files = RUNS[key]
    inputs = {k: files[k] for k in ("preproc_bold", "mask", "confounds")}
    inputs["bold"] = files["bold"]
    inputs["validated"] = ancient(FIRST_VALIDATION)
    inputs.update(sim_atlas_files(key))
    return inputs


def roi_signals_mem_mb(wildcards, input, attempt):
    """Memory for one run: ~3x the BOLD held as float32 (compressed ~2x on disk), + 1 GB."""
    size_mb = file_mb(input.preproc_bold, default=200)
    return int(1000 + 6 * 2 * size_mb) * attempt


def roi_signals_runtime(wildcards, input, attempt):
    """Minutes for one run's ROI signals: 10 + 1 per 20 MB of preprocessed BOLD."""
    return int(10 + file_mb(input.preproc_bold, default=200) / 20) * attempt


def windows_mem_mb(wildcards, input, attempt):
    """Memory for one store: the cleaned EEG read as float64 three times over, + 1 GB."""
    size_mb = file_mb(input.eeg, default=200)
    return int(1000 + 6 * size_mb) * attempt


def windows_runtime(wildcards, input, attempt):
    """Minutes for one store: 5 + 1 per 50 MB of cleaned EEG."""
    return int(5 + file_mb(input.eeg, default=200) / 50) * attempt


def small_mem_mb(wildcards, attempt):
    """Memory for the bookkeeping rules (tables, JSON): 1 GB, doubled on each retry."""
    return 1000 * attempt


def per_attempt(mb):
    """A memory estimate of ``mb`` MB on the first attempt, ``k * mb`` on the k-th retry."""

    def mem_mb(wildcards, attempt):
        return mb * attempt

    return mem_mb


MODEL_ROIS = config["evaluate"]["rois"] or config["fmri"]["rois"]
ROI_BY_LABEL = {nbids.filename_label(roi): roi for roi in MODEL_ROIS}
MODELS = config["evaluate"]["models"]
ANALYSES = config["evaluate"]["analyses"]
if len(ROI_BY_LABEL) != len(MODEL_ROIS):
    raise WorkflowError(f"two ROIs share a file-name label: {MODEL_ROIS}")
unknown_rois = sorted(set(MODEL_ROIS) - set(config["fmri"]["rois"]))
if unknown_rois:
    raise WorkflowError(f"evaluate.rois {unknown_rois} are not in fmri.rois")
TRANSFER = [a for a in ANALYSES if a in nbtransfer.ANALYSES]
if MULTI and "inter" in ANALYSES:
    raise WorkflowError(
        "evaluate.analyses: 'inter' splits the scans of one dataset; with several datasets"
        " use the cross-dataset analyses (zero_shot, finetune, joint) or run each dataset"
        " with a config of its own"
    )
if TRANSFER:
    if len(VIEWS) < 2:
        raise WorkflowError(
            f"evaluate.analyses {TRANSFER} need two datasets: list them under `datasets`"
        )
    try:
        SOURCE, TARGET = nbtransfer.source_target(config["generalisation"], list(VIEWS))
    except ValueError as err:
        raise WorkflowError(str(err)) from None
    if "finetune" in TRANSFER and "zero_shot" not in TRANSFER:
        raise WorkflowError(
            "evaluate.analyses: finetune starts from the zero_shot model; list zero_shot too"
        )


def transfer_dir(analysis, label, model):
    """Folder of one cross-dataset model (zero_shot, finetune, joint)."""
    return RESULTS / "models" / analysis / f"roi-{label}" / f"model-{model}"


def intra_dir(run, label, model):
    """Folder of one intra-subject model."""
    return RESULTS / "models" / "intra" / run / f"roi-{label}" / f"model-{model}"


def inter_dir(label, model):
    """Folder of one inter-subject model."""
    return RESULTS / "models" / "inter" / f"roi-{label}" / f"model-{model}"


def intra_scans(wildcards):
    """The scan key of an intra-subject job (``<label>/<run>`` with several datasets), so
    its rows in the tables name the dataset."""
    return [wildcards.run]


def store_of(wildcards):
    """The window store of one run."""
    return run_output(wildcards.run, "func", "windows.h5")


def all_stores(wildcards):
    """Every run's window store."""
    return [run_output(name, "func", "windows.h5") for name in sorted(RUNS)]


def roi_name(wildcards):
    """The ROI (atlas name) behind a file-name label."""
    return ROI_BY_LABEL[wildcards.roi]


#: model.heads: shared trains one model per (scan, model) / model for every ROI at once
SHARED = config["model"]["heads"] == "shared"
#: a train_intra/train_inter job's folder in models/<analysis>/[<run>/] (and its log's)
TRAIN_UNIT = "shared" if SHARED else "roi-{roi}"
LOG_UNIT = "shared" if SHARED else "{roi}"
#: the ROI folders an evaluate job writes: its own (per_roi) or every modelled ROI's
EVAL_LABELS = list(ROI_BY_LABEL) if SHARED else ["{roi}"]


def train_rois(wildcards):
    """The ROIs (atlas names) a training job fits: its {roi}, or all of them (shared)."""
    return list(MODEL_ROIS) if SHARED else [roi_name(wildcards)]


def model_metrics():
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


#: group_metrics' comparison of the cross-dataset analyses, when they run
GROUP_EXTRA = (
    {"generalisation": RESULTS / "group" / "generalisation.tsv"} if TRANSFER else {}
)


def dataset_stores(label):
    """The window stores of one dataset's runs, in key order."""
    return [run_output(key, "func", "windows.h5") for key in dataset_runs(label)]


def transfer_inputs(wildcards):
    """Both datasets' stores, and the zero_shot model a finetune job starts from."""
    inputs = {"source": dataset_stores(SOURCE), "target": dataset_stores(TARGET)}
    if wildcards.analysis == "finetune":
        inputs["init"] = (
            transfer_dir("zero_shot", wildcards.roi, wildcards.model) / "model.pt"
        )
    return inputs


def transfer_eval_stores(wildcards):
    """The stores a cross-dataset model is evaluated on (source's first, as in training)."""
    return dataset_stores(SOURCE) + dataset_stores(TARGET)


def train_mem_mb(wildcards, input, attempt):
    """Memory for training: the paper preset needs ~6 GB on CPU; stores are read lazily."""
    base = 6000 if config["model"].get("preset", "paper") == "paper" else 2000
    return base * attempt


#: Torch threads of a training job plus its data-loader worker processes. The tiny demo
#: model gains little from a second thread, so it trains one job per core instead.
TORCH_THREADS = 1 if config["model"].get("preset") == "tiny" else 2
TRAIN_THREADS = TORCH_THREADS + config["train"]["num_workers"]


def stores_mb(input):
    """Total size of a job's window stores in MB (10 MB each while they do not exist yet)."""
    names = [name for name in ("stores", "source", "target") if name in input.keys()]
    paths = [path for name in names for path in input[name]]
    return sum(file_mb(path, default=10) for path in paths)


def train_runtime(wildcards, input, attempt):
    """Minutes for training: 15 + 0.1 min per epoch and MB of windows (a GPU epoch over a
    6-minute scan, ~8 MB of store, takes well under a minute; the tiny demo model on CPU too).
    """
    return int(15 + 0.1 * config["train"]["epochs"] * stores_mb(input)) * attempt


def evaluate_runtime(wildcards, input, attempt):
    """Minutes for evaluating: the test-split predictions and the permutation null, + 10."""
    return int(10 + 0.5 * stores_mb(input)) * attempt


def participant_outputs():
    """What the ``participant`` target builds: every selected run's derivatives and its
    intra-subject models (the BIDS-App participant level; ``all`` is the group level).
    """
    stores = [run_output(name, "func", "windows.h5") for name in sorted(RUNS)]
    intra = [path for path in model_metrics() if "intra" in path.parts]
    return [
        VALIDATED,
        RESULTS / "dataset_description.json",
        *RUNS_TABLES,
        *stores,
        *intra,
    ]


PREDICT_CFG = config["predict"]
PREDICT_ROIS = PREDICT_CFG["rois"] or MODEL_ROIS
unknown_rois = sorted(set(PREDICT_ROIS) - set(MODEL_ROIS))
if unknown_rois:
    raise WorkflowError(f"predict.rois {unknown_rois} are not modelled (evaluate.rois)")
if PREDICT_CFG["model"] not in MODELS:
    raise WorkflowError(
        f"predict.model {PREDICT_CFG['model']!r} is not trained (evaluate.models: {MODELS})"
    )


def held_out_runs():
    """The inter-subject test scans when predict.held_out is on (train_inter's split)."""
    if not PREDICT_CFG["held_out"]:
        return []
    if "inter" not in ANALYSES:
        raise WorkflowError("predict.held_out needs 'inter' in evaluate.analyses")
    try:
        return nbpredict.held_out_scans(sorted(RUNS), train_section=config["train"])
    except ValueError:
        return []  # no inter split of these scans: the validate rule reports why


def predict_recordings():
    """Recording name -> EEG file of every recording to predict from its EEG alone."""
    out = {name: Path(RUNS[name]["vhdr"]) for name in HELD_OUT}
    scan = PREDICT_CFG["intra_scan"]
    if PREDICT_CFG["recordings"]:
        if scan is None and "inter" not in ANALYSES:
            raise WorkflowError(
                "predict.recordings with inter models needs 'inter' in analyses"
            )
        if scan is not None and (scan not in RUNS or "intra" not in ANALYSES):
            raise WorkflowError(
                f"predict.intra_scan {scan!r} is not a run with intra-subject models"
            )
    for path in PREDICT_CFG["recordings"]:
        name = nbpredict.recording_name(path)
        if not name.startswith("sub-"):
            raise WorkflowError(
                f"predict.recordings: {path} is not a BIDS sub-* recording"
            )
        if name in out and out[name] != Path(path):
            raise WorkflowError(f"predict.recordings: two recordings named {name}")
        out[name] = Path(path)
    return out


HELD_OUT = held_out_runs()
PREDICT = predict_recordings()


wildcard_constraints:
    recording="|".join(re.escape(name) for name in PREDICT) or "no-recording",


def predict_output(name, suffix):
    """``<results>/sub-XX[/ses-YY]/func/<recording>_desc-predicted_<suffix>``."""
    return run_output(name, "func", f"desc-predicted_{suffix}")


def predict_model_dirs(name):
    """The model folders that predict a recording: inter, or predict.intra_scan's intra."""
    scan = None if name in HELD_OUT else PREDICT_CFG["intra_scan"]
    model = PREDICT_CFG["model"]
    labels = [nbids.filename_label(roi) for roi in PREDICT_ROIS]
    if SHARED:  # one model predicts every ROI
        base = RESULTS / "models" / ("inter" if scan is None else f"intra/{scan}")
        return [base / "shared" / f"model-{model}"]
    if scan is None:
        return [inter_dir(label, model) for label in labels]
    return [intra_dir(scan, label, model) for label in labels]


def predict_inputs(wildcards):
    """The EEG recording, the models (with their splits) and the simulator's atlas if used."""
    dirs = predict_model_dirs(wildcards.recording)
    inputs = {
        "eeg": PREDICT[wildcards.recording],
        "models": [d / "model.pt" for d in dirs],
        "splits": [d / "splits.tsv" for d in dirs],
    }
    # the atlas of the dataset the models were trained on (the first one)
    inputs.update(sim_atlas_files(sorted(RUNS)[0]))
    return inputs


def predict_mem_mb(wildcards, input, attempt):
    """Memory: cleaning the recording as clean_eeg does (~6x its data file), the models,
    and the voxel map, back-projected in chunks of ~256 MB whatever the recording's length.
    """
    eeg = Path(input.eeg)
    data = eeg.with_suffix(".eeg") if eeg.suffix.lower() == ".vhdr" else eeg
    return int(2500 + 6 * file_mb(data, default=800)) * attempt


#: "[<label>/]sub-XX" of every subject: its QC page is <results>/<page>.html
SUBJECT_PAGES = sorted({key.split("_")[0] for key in RUNS})


wildcard_constraints:
    page="|".join(re.escape(page) for page in SUBJECT_PAGES) or "no-page",


def subject_runs(wildcards):
    """The run keys of one subject (in key order)."""
    return [key for key in sorted(RUNS) if key.split("_")[0] == wildcards.page]


def subject_label(wildcards):
    """The subject's label (without sub-; with its dataset's, if any)."""
    label, _, subject = wildcards.page.rpartition("/")
    subject = subject.removeprefix("sub-")
    return f"{subject} ({label})" if label else subject


def subject_section(name):
    """A params function: the config section ``name`` of the subject's dataset."""

    def params(wildcards):
        return VIEWS[wildcards.page.rpartition("/")[0]][name]

    return params


def subject_report_inputs(wildcards):
    """Per run of the subject: the EEG cleaning's QC + QC signals, ROI signals, confounds; models."""
    runs = subject_runs(wildcards)
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


def report_inputs(wildcards):
    """Group metrics, every model's metrics, the subject pages, predictions, ground truth."""
    inputs = {
        "metrics": model_metrics(),
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


#: The group figures of `snakemake --report` (the report_figures rule)
REPORT_FIGURES = {"table1": RESULTS / "group" / "figures" / "table1.png"} | {
    f"r_{analysis}": RESULTS / "group" / "figures" / f"r_distributions_{analysis}.png"
    for analysis in ANALYSES
}


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
