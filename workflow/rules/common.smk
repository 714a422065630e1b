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
from neurobolt import predict as nbpredict
from neurobolt import simulate as nbsim

validate(config, "../schemas/config.schema.yaml")

RESULTS = Path(config["results_dir"])
BIDS_ROOT = Path(config["bids"]["root"])
SIMULATE = config["simulate"]["enabled"]
ENV = "../../envs/neurobolt.yaml"

try:
    nbids.check_output_dir(RESULTS, BIDS_ROOT)
except ValueError as err:
    raise WorkflowError(str(err)) from None


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


def discover_runs():
    """Map run name -> input files: planned by the simulator, or found in the BIDS dataset."""
    bids_cfg = config["bids"]
    if SIMULATE:
        sim = config["simulate"]
        planned = nbsim.planned_runs(
            n_subjects=sim["n_subjects"],
            n_two_session=sim["n_two_session"],
            task=sim["task"],
        )
        return {
            run.stem: nbsim.run_files(BIDS_ROOT, run, space=bids_cfg["space"])
            for run in planned
            if _keep(run, bids_cfg)
        }
    try:
        found = nbids.find_runs(
            BIDS_ROOT,
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
            f"No paired EEG-fMRI run found in {BIDS_ROOT}.\n{found.summary()}"
        )
    return {
        run.name: {
            "vhdr": run.eeg,
            "bold": run.bold,
            "preproc_bold": run.preproc_bold,
            "mask": run.mask,
            "confounds": run.confounds,
        }
        for run in found.runs
    }


RUNS = discover_runs()


def simulated_files():
    """Every file the simulate rule writes (so Snakemake knows which rule makes them)."""
    sim = config["simulate"]
    runs = nbsim.planned_runs(
        n_subjects=sim["n_subjects"],
        n_two_session=sim["n_two_session"],
        task=sim["task"],
    )
    files = [f for run in runs for f in nbsim.run_files(BIDS_ROOT, run).values()]
    return files + list(nbsim.atlas_files(BIDS_ROOT).values())


def raw_inputs(wildcards):
    """The raw and fMRIPrep files of every selected run."""
    keys = ("vhdr", "bold", "preproc_bold", "mask", "confounds")
    return [RUNS[name][key] for name in sorted(RUNS) for key in keys]


#: The validate rule's table: the whole dataset and config checked again after any change.
VALIDATED = RESULTS / "validation.tsv"
#: The validate_first rule's table: the per-run rules wait for it (ancient), so that the
#: first run of a results folder stops before any heavy work. validate_first has no inputs
#: and no params, so it never reruns once passed: a rerunning job upstream of an ancient
#: input hides its downstream jobs' own reasons to rerun (changed params) from Snakemake 9
#: (snakemake/snakemake#4166), which is why the per-run rules do not wait for `validate`.
FIRST_VALIDATION = RESULTS / "validation_first.tsv"


def first_validation_inputs(wildcards):
    """Only the simulator's record when it makes the dataset (ancient: a fixed input set)."""
    return [ancient(nbsim.simulation_json(BIDS_ROOT))] if SIMULATE else []


def validate_config():
    """The config sections the validate rule checks (paths, inputs, outputs)."""
    keys = ("results_dir", "bids", "eeg", "fmri", "store", "model", "train", "evaluate")
    return {key: config[key] for key in keys}


ATLAS = f"DiFuMo{config['fmri']['atlas']['dimension']}"


wildcard_constraints:
    run="|".join(re.escape(name) for name in RUNS) or "no-run",
    roi=r"[A-Za-z0-9]+",
    model=r"[a-z_]+",
    subdir=r"sub-[^/]+(/ses-[^/]+)?",


def run_dir(name):
    """``sub-XX[/ses-YY]`` of a run (from its name)."""
    entities = dict(part.split("-", 1) for part in name.split("_"))
    parts = [f"{k}-{entities[k]}" for k in ("sub", "ses") if k in entities]
    return Path(*parts)


def run_output(name, datatype, suffix):
    """Path of a per-run derivative: results/sub-XX[/ses-YY]/<datatype>/<run>_<suffix>."""
    return RESULTS / run_dir(name) / datatype / f"{name}_{suffix}"


def clean_eeg_inputs(wildcards):
    """The BIDS EEG recording (its header and every file read with it) and its paired BOLD
    run (volume count, TR, slice timing)."""
    files = RUNS[wildcards.run]
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


def simulate_mem_mb(wildcards, attempt):
    """Memory for simulating: one run's ~32 channels at the simulation rate as float64, held
    ~3 times over, + 1 GB (measured: 1 GB for 6-minute runs at 5 kHz)."""
    sim = config["simulate"]
    run_mb = 32 * sim["duration_s"] * sim["sfreq"] * 8 / 1e6
    return int(1000 + 3 * run_mb) * attempt


def simulate_runtime(wildcards, attempt):
    """Minutes for simulating: 10 + one per minute of recording (measured: ~0.06)."""
    sim = config["simulate"]
    n_runs = sim["n_subjects"] + sim["n_two_session"]
    return int(10 + n_runs * sim["duration_s"] / 60) * attempt


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
    files = RUNS[wildcards.run]
    inputs = {k: files[k] for k in ("preproc_bold", "mask", "confounds")}
    inputs["bold"] = files["bold"]
    inputs["validated"] = ancient(FIRST_VALIDATION)
    atlas = config["fmri"]["atlas"]
    if SIMULATE and not (atlas["maps"] or atlas["labels"]):
        sim_atlas = nbsim.atlas_files(BIDS_ROOT)
        inputs.update(atlas_maps=sim_atlas["maps"], atlas_labels=sim_atlas["labels"])
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


def intra_dir(run, label, model):
    """Folder of one intra-subject model."""
    return RESULTS / "models" / "intra" / run / f"roi-{label}" / f"model-{model}"


def inter_dir(label, model):
    """Folder of one inter-subject model."""
    return RESULTS / "models" / "inter" / f"roi-{label}" / f"model-{model}"


def store_of(wildcards):
    """The window store of one run."""
    return run_output(wildcards.run, "func", "windows.h5")


def all_stores(wildcards):
    """Every run's window store."""
    return [run_output(name, "func", "windows.h5") for name in sorted(RUNS)]


def roi_name(wildcards):
    """The ROI (atlas name) behind a file-name label."""
    return ROI_BY_LABEL[wildcards.roi]


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
    return out


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
    return sum(file_mb(path, default=10) for path in input.stores)


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
        RESULTS / "runs.tsv",
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
    subject=r"[A-Za-z0-9]+",


def predict_output(name, suffix):
    """``<results>/sub-XX[/ses-YY]/func/<recording>_desc-predicted_<suffix>``."""
    return run_output(name, "func", f"desc-predicted_{suffix}")


def predict_model_dirs(name):
    """The model folders that predict a recording: inter, or predict.intra_scan's intra."""
    scan = None if name in HELD_OUT else PREDICT_CFG["intra_scan"]
    model = PREDICT_CFG["model"]
    labels = [nbids.filename_label(roi) for roi in PREDICT_ROIS]
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
    atlas = config["fmri"]["atlas"]
    if SIMULATE and not (atlas["maps"] or atlas["labels"]):
        sim_atlas = nbsim.atlas_files(BIDS_ROOT)
        inputs.update(atlas_maps=sim_atlas["maps"], atlas_labels=sim_atlas["labels"])
    return inputs


def predict_mem_mb(wildcards, input, attempt):
    """Memory: cleaning the recording as clean_eeg does (~6x its data file), the models,
    and the voxel map, back-projected in chunks of ~256 MB whatever the recording's length.
    """
    eeg = Path(input.eeg)
    data = eeg.with_suffix(".eeg") if eeg.suffix.lower() == ".vhdr" else eeg
    return int(2500 + 6 * file_mb(data, default=800)) * attempt


SUBJECTS = sorted({name.split("_")[0].removeprefix("sub-") for name in RUNS})


def subject_runs(wildcards):
    """The runs of one subject (in name order)."""
    return [
        name for name in sorted(RUNS) if name.startswith(f"sub-{wildcards.subject}_")
    ]


def subject_report_inputs(wildcards):
    """Per run of the subject: raw EEG, BOLD, cleaned EEG + QC, ROI signals, confounds; models."""
    runs = subject_runs(wildcards)
    atlas_tsv = f"atlas-{ATLAS}_timeseries.tsv"
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
        "raw": [RUNS[run]["vhdr"] for run in runs],
        "bold": [RUNS[run]["bold"] for run in runs],
        "clean": [run_output(run, "eeg", "desc-clean_eeg.fif") for run in runs],
        "qc": [run_output(run, "eeg", "desc-clean_qc.json") for run in runs],
        "rois": [run_output(run, "func", atlas_tsv) for run in runs],
        "confounds": [RUNS[run]["confounds"] for run in runs],
        "metrics": metrics,
    }


def report_inputs(wildcards):
    """Group metrics, every model's metrics, the subject pages, predictions, ground truth."""
    inputs = {
        "metrics": model_metrics(),
        "subject_pages": [RESULTS / f"sub-{subject}.html" for subject in SUBJECTS],
        "measured": [
            run_output(name, "func", f"atlas-{ATLAS}_timeseries.tsv")
            for name in HELD_OUT
        ],
        # measured[i] belongs to predicted[i]: held-out scans first
        "predicted": [predict_output(name, "timeseries.tsv") for name in HELD_OUT]
        + [
            predict_output(name, "timeseries.tsv")
            for name in PREDICT
            if name not in HELD_OUT
        ],
    }
    if SIMULATE:
        inputs["simulation"] = nbsim.simulation_json(BIDS_ROOT)
    return inputs


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
        RESULTS / "runs.tsv",
        *stores,
        RESULTS / "group" / "metrics.tsv",
        *predictions,
        RESULTS / "report.html",
    ]
