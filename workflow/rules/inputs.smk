"""Input and params functions of the rules (functions of a job's wildcards)."""


def wildcard_key(wildcards):
    """The run key of a per-run rule's job ({subdir} holds the dataset label, if any)."""
    first = wildcards.subdir.split("/")[0]
    return wildcards.run if first.startswith("sub-") else f"{first}/{wildcards.run}"


def get_dataset_section(name):
    """A params function: the config section ``name`` of the job's dataset."""

    def params(wildcards):
        return view_of(wildcard_key(wildcards))[name]

    return params


def get_dummy_markers(wildcards):
    """store.dummy_markers of the job's dataset (markers of volumes not saved)."""
    return view_of(wildcard_key(wildcards))["store"]["dummy_markers"]


def get_volume_marker(wildcards):
    """eeg.volume_marker of the job's dataset (the store's volume onsets)."""
    return view_of(wildcard_key(wildcards))["eeg"]["volume_marker"]


def sim_atlas_files(key):
    """The simulator's atlas maps for a run's dataset, when they stand in for DiFuMo."""
    view = view_of(key)
    atlas = view["fmri"]["atlas"]
    if not view["simulate"]["enabled"] or atlas["maps"] or atlas["labels"]:
        return {}
    sim_atlas = nbsim.atlas_files(Path(view["bids"]["root"]))
    return {"atlas_maps": sim_atlas["maps"], "atlas_labels": sim_atlas["labels"]}


def get_raw_inputs(wildcards):
    """The raw and fMRIPrep files of every selected run."""
    keys = ("vhdr", "bold", "preproc_bold", "mask", "confounds")
    return [RUNS[name][key] for name in sorted(RUNS) for key in keys]


def get_dataset_raw_inputs(label):
    """The raw and fMRIPrep files of one dataset's runs."""
    keys = ("vhdr", "bold", "preproc_bold", "mask", "confounds")
    return [RUNS[name][key] for name in dataset_runs(label) for key in keys]


def get_first_validation_inputs(wildcards):
    """Only the simulator's records where it makes a dataset (ancient: a fixed input set)."""
    return [
        ancient(nbsim.simulation_json(Path(view["bids"]["root"])))
        for view in VIEWS.values()
        if view["simulate"]["enabled"]
    ]


def get_clean_eeg_inputs(wildcards):
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


def get_roi_signals_inputs(wildcards):
    """fMRIPrep files of the run, and the simulator's atlas when it stands in for DiFuMo."""
    key = wildcard_key(wildcards)
    files = RUNS[key]
    inputs = {k: files[k] for k in ("preproc_bold", "mask", "confounds")}
    inputs["bold"] = files["bold"]
    inputs["validated"] = ancient(FIRST_VALIDATION)
    inputs.update(sim_atlas_files(key))
    return inputs


def get_intra_scans(wildcards):
    """The scan key of an intra-subject job (``<label>/<run>`` with several datasets), so
    its rows in the tables name the dataset."""
    return [wildcards.run]


def get_store(wildcards):
    """The window store of one run."""
    return run_output(wildcards.run, "func", "windows.h5")


def get_all_stores(wildcards):
    """Every run's window store."""
    return [run_output(name, "func", "windows.h5") for name in sorted(RUNS)]


def get_roi_name(wildcards):
    """The ROI (atlas name) behind a file-name label."""
    return ROI_BY_LABEL[wildcards.roi]


def get_train_rois(wildcards):
    """The ROIs (atlas names) a training job fits: its {roi}, or all of them (shared)."""
    return list(MODEL_ROIS) if SHARED else [get_roi_name(wildcards)]


def get_transfer_inputs(wildcards):
    """Both datasets' stores, and the zero_shot model a finetune job starts from."""
    inputs = {"source": dataset_stores(SOURCE), "target": dataset_stores(TARGET)}
    if wildcards.analysis == "finetune":
        inputs["init"] = (
            transfer_dir("zero_shot", wildcards.roi, wildcards.model) / "model.pt"
        )
    return inputs


def get_transfer_eval_stores(wildcards):
    """The stores a cross-dataset model is evaluated on (source's first, as in training)."""
    return dataset_stores(SOURCE) + dataset_stores(TARGET)


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


def get_predict_inputs(wildcards):
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


def get_subject_runs(wildcards):
    """The run keys of one subject (in key order)."""
    return [key for key in sorted(RUNS) if key.split("_")[0] == wildcards.page]


def get_subject_label(wildcards):
    """The subject's label (without sub-; with its dataset's, if any)."""
    label, _, subject = wildcards.page.rpartition("/")
    subject = subject.removeprefix("sub-")
    return f"{subject} ({label})" if label else subject


def get_subject_section(name):
    """A params function: the config section ``name`` of the subject's dataset."""

    def params(wildcards):
        return VIEWS[wildcards.page.rpartition("/")[0]][name]

    return params
