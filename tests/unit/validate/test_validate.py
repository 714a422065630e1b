"""`neurobolt validate`: every bad input refused clearly, all problems in one table.

Each case breaks a hard-linked copy of a tiny simulated dataset (files are
unlinked before they are changed, so the original is never touched) and checks
that the table names the file and the problem, that the exit status is non-zero
and that no report is written under its final name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from neurobolt.cli import main
from neurobolt.eeg.clean import estimate_memory_mb
from neurobolt.jobs import validate as validate_job
from neurobolt.validate import ValidationError, validate_dataset

REPO = Path(__file__).resolve().parents[3]
S1 = "sub-01_ses-01_task-rest"


@pytest.fixture
def broken(tiny_dataset, tmp_path) -> Path:
    """A copy to break: every file a hard link to the original until :func:`_own` is called."""
    return shutil.copytree(tiny_dataset, tmp_path / "bids copy", copy_function=os.link)


def _own(path: Path) -> Path:
    """Make ``path`` a file of its own (not a link to the original) before changing it."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)
    return path


def _eeg(root, suffix, sub="01"):
    return root / f"sub-{sub}/ses-01/eeg/sub-{sub}_ses-01_task-rest_{suffix}"


def _func(root, suffix, sub="01"):
    return root / f"sub-{sub}/ses-01/func/sub-{sub}_ses-01_task-rest_{suffix}"


def _prep(root, suffix, sub="01"):
    name = f"sub-{sub}_ses-01_task-rest_{suffix}"
    return root / f"derivatives/fmriprep/sub-{sub}/ses-01/func/{name}"


PREP = "space-MNI152NLin6Asym_desc-preproc_bold.nii.gz"
MASK = "space-MNI152NLin6Asym_desc-brain_mask.nii.gz"
CONFOUNDS = "desc-confounds_timeseries.tsv"


def _tsv(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _write_tsv(path, df):
    path.unlink()
    df.to_csv(path, sep="\t", index=False)


def _markers(root) -> tuple[Path, pd.DataFrame, np.ndarray]:
    path = _eeg(root, "events.tsv")
    df = _tsv(path)
    return path, df, df["trial_type"].str.endswith("R128").to_numpy()


def _save_nifti(path, data, like):
    path.unlink()
    img = nib.Nifti1Image(data, like.affine, like.header)
    img.header.set_data_dtype(data.dtype)
    nib.save(img, path)


def _validate(capsys, root, tmp_path, *args):
    report = tmp_path / "out" / "validation.tsv"
    code = main(["validate", str(root), "--report", str(report), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err, report


# --------------------------------------------------------------------------------------------
# One broken copy per case: (break it) -> (file named, problem named)
# --------------------------------------------------------------------------------------------


def missing_markers(root):
    path, df, is_marker = _markers(root)
    _write_tsv(path, df[~is_marker])
    return "_events.tsv", r"no volume markers: expected 19"


def renamed_markers(root):
    path, df, is_marker = _markers(root)
    df.loc[is_marker, "trial_type"] = "Response/R129"
    _write_tsv(path, df)
    return "_events.tsv", r"no volume markers.*'Response/R129'.*eeg\.volume_marker"


def marker_count(root):
    path, df, is_marker = _markers(root)
    last = np.flatnonzero(is_marker)[-1]
    _write_tsv(path, df.drop(index=last))
    return "_events.tsv", r"expected 19 volume markers \(one per BOLD volume\), found 18"


def marker_jitter(root):
    path, df, is_marker = _markers(root)
    i = np.flatnonzero(is_marker)[5]
    df.loc[i, "onset"] = str(float(df.loc[i, "onset"]) + 0.03 * 2.1)  # 3 % of the TR
    df.loc[i, "sample"] = str(int(df.loc[i, "sample"]) + int(0.03 * 2.1 * 5000))
    _write_tsv(path, df)
    return "_events.tsv", r"irregular marker interval"


def tr_markers_vs_sidecar(root):
    path, df, is_marker = _markers(root)
    onset = df.loc[is_marker, "onset"].astype(float)
    df.loc[is_marker, "onset"] = (onset.iloc[0] + (onset - onset.iloc[0]) * 1.02).map(str)
    _write_tsv(path, df)
    return "_events.tsv", r"median marker interval is 2\.1420 s but the BOLD TR is 2\.1000 s"


def tr_sidecar_vs_header(root):
    path = _func(root, "bold.json")
    text = _own(path).read_text().replace('"RepetitionTime": 2.1', '"RepetitionTime": 2.0')
    path.write_text(text)
    return "_bold.json", r"(?s)TR disagreement.*2 s but the NIfTI header says 2\.1 s"


def truncated_eeg(root):
    path = _own(_eeg(root, "eeg.eeg"))
    with open(path, "r+b") as fid:
        fid.truncate(path.stat().st_size - 1001)
    return "_eeg.eeg", r"truncated EEG data file: \d+ bytes is not a whole number of samples"


def truncated_eeg_whole_samples(root):
    path = _own(_eeg(root, "eeg.eeg"))
    with open(path, "r+b") as fid:  # the last 8 s, cut at a sample boundary
        fid.truncate(path.stat().st_size - 32 * 2 * 5000 * 8)
    return "_eeg.eeg", r"truncated EEG data file: it holds .* RecordingDuration"


def missing_vmrk(root):
    _eeg(root, "eeg.vmrk").unlink()
    return "_eeg.vmrk", r"missing \.vmrk"


def channel_names(root):
    path = _eeg(root, "channels.tsv")
    df = _tsv(path)
    df.loc[df["name"] == "CZ", "name"] = "Cz_renamed"
    _write_tsv(path, df)
    return "_channels.tsv", r"channel names disagree .*only in the \.vhdr: CZ.*Cz_renamed"


def no_ecg(root):
    vhdr = _own(_eeg(root, "eeg.vhdr"))
    vhdr.write_text(vhdr.read_text(encoding="utf-8").replace("=ECG,", "=RESP,"), encoding="utf-8")
    path = _eeg(root, "channels.tsv")
    df = _tsv(path)
    df.loc[df["name"] == "ECG", ["name", "type"]] = ["RESP", "MISC"]
    _write_tsv(path, df)
    return "_channels.tsv", r"no ECG channel"


def nan_in_mask(root):
    path = _prep(root, MASK)
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[tuple(np.argwhere(data > 0)[0])] = np.nan
    _save_nifti(path, data, img)
    return "_desc-brain_mask.nii.gz", r"NaN voxels in the mask: 1 voxel\(s\) are NaN"


def nan_bold_in_mask(root):
    path = _prep(root, PREP)
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    inside = np.argwhere(np.asarray(nib.load(_prep(root, MASK)).dataobj) > 0)
    for voxel in inside[:3]:
        data[(*voxel, 0)] = np.nan
    _save_nifti(path, data, img)
    return "_desc-preproc_bold.nii.gz", r"3 voxel\(s\) inside the brain mask are NaN or inf"


def bold_3d(root):
    path = _func(root, "bold.nii.gz")
    img = nib.load(path)
    _save_nifti(path, np.asarray(img.dataobj)[..., 0], img)
    return "_bold.nii.gz", r"3-D NIfTI: a BOLD run must be 4-D"


def few_volumes(root):
    path = _prep(root, PREP)
    img = nib.load(path)
    _save_nifti(path, np.asarray(img.dataobj)[..., :8], img)
    return "_desc-preproc_bold.nii.gz", r"8 volumes, fewer than fmri\.min_volumes \(10\)"


def confounds_rows(root):
    path = _prep(root, CONFOUNDS)
    _write_tsv(path, _tsv(path).iloc[:-1])
    return "_desc-confounds_timeseries.tsv", r"confounds rows ≠ volumes: 18 rows .* 19 volumes"


def confounds_na(root):
    path = _prep(root, CONFOUNDS)
    df = _tsv(path)
    df.loc[5, "trans_x"] = "n/a"
    _write_tsv(path, df)
    return CONFOUNDS, r"'trans_x' has n/a or non-numeric values in rows \[5\]"


def ambiguous_subjects(root):
    bold = _func(root, "bold.nii.gz", sub="02")
    twin = root / "sub-2/ses-01/func/sub-2_ses-01_task-rest_bold.nii.gz"
    twin.parent.mkdir(parents=True)
    os.link(bold, twin)
    return "sub-02, sub-2", r"ambiguous subject labels"


CASES = [
    missing_markers,
    renamed_markers,
    marker_count,
    marker_jitter,
    tr_markers_vs_sidecar,
    tr_sidecar_vs_header,
    truncated_eeg,
    truncated_eeg_whole_samples,
    missing_vmrk,
    channel_names,
    no_ecg,
    nan_in_mask,
    nan_bold_in_mask,
    bold_3d,
    few_volumes,
    confounds_rows,
    confounds_na,
    ambiguous_subjects,
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_each_broken_input_is_named_with_its_problem(case, broken, tmp_path, capsys):
    file, problem = case(broken)
    code, text, report = _validate(capsys, broken, tmp_path)
    assert code == 1, text
    assert file in text, text
    assert re.search(problem, " ".join(text.split())), text
    assert "error(s): nothing was run" in text
    assert not report.exists()


def test_bold_not_in_mni_space_is_refused(broken, tmp_path, capsys):
    for path in list((broken / "derivatives/fmriprep").rglob("*space-MNI152NLin6Asym*")):
        path.rename(path.with_name(path.name.replace("MNI152NLin6Asym", "T1w")))
    code, text, report = _validate(capsys, broken, tmp_path, "--space", "T1w")
    assert code == 1 and not report.exists()
    assert f"{S1}_space-T1w_desc-preproc_bold.nii.gz" in text
    assert "BOLD not in MNI space: space-T1w is not an MNI space" in " ".join(text.split())


def test_unpaired_runs_are_warned_about_and_skipped(broken, tmp_path, capsys):
    _func(broken, "bold.nii.gz", sub="02").unlink()
    code, text, report = _validate(capsys, broken, tmp_path)
    assert code == 0, text
    assert "1 run(s) checked" in text and "0 error(s), 1 warning(s)" in text
    assert "sub-02_ses-01_task-rest_eeg.vhdr" in text
    assert "EEG recording without a BOLD run" in " ".join(text.split())
    table = pd.read_csv(report, sep="\t")
    assert list(table["severity"]) == ["warning"] and table["run"][0] == "sub-02_ses-01_task-rest"


def test_output_directory_inside_the_dataset_is_refused(broken, tmp_path, capsys):
    inside = broken / "derivatives" / "neurobolt"
    code, text, report = _validate(capsys, broken, tmp_path, "--results-dir", str(inside))
    assert code == 1 and not report.exists() and not inside.exists()
    assert str(inside) in text and "inside the input BIDS dataset" in " ".join(text.split())


def _config(tmp_path, text) -> str:
    path = tmp_path / "my config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_misspelled_config_keys_are_refused_by_name(broken, tmp_path, capsys):
    config = _config(tmp_path, "eeg:\n  volume_markr: R128\nstore:\n  window_s: many\n")
    code, text, report = _validate(capsys, broken, tmp_path, "--configfile", config)
    assert code == 1 and not report.exists()
    flat = " ".join(text.split())
    assert "my config.yaml" in text
    assert "unknown config key `eeg.volume_markr`" in flat
    assert "did you mean `eeg.volume_marker`?" in flat
    assert "`store.window_s`: 'many' is not of type 'number'" in flat


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "fmri:\n  rois: [Cuneus, Putamen]\nevaluate:\n  rois: [Cuneus, Thalamus]\n",
            "evaluate.rois ['Thalamus'] are not in fmri.rois",
        ),
        (
            "evaluate:\n  analyses: [intra, finetune]\n",
            "finetune starts from the zero_shot model; list zero_shot too",
        ),
        (
            "evaluate:\n  analyses: [intra, zero_shot]\n",
            "evaluate.analyses ['zero_shot'] need two datasets: list them under `datasets`",
        ),
        (
            "evaluate:\n  analyses: [inter, joint]\ndatasets:\n"
            "  - {label: a, bids: {root: data/a}}\n  - {label: b, bids: {root: data/b}}\n",
            "evaluate.analyses: 'inter' splits the scans of one dataset; with several datasets",
        ),
    ],
    ids=["rois-not-extracted", "finetune-without-zero-shot", "transfer-one-dataset", "inter-multi"],
)
def test_the_workflows_cross_field_errors_are_reported(broken, tmp_path, capsys, text, problem):
    """`neurobolt validate` reports what only the workflow's common.smk refused before."""
    config = _config(tmp_path, text)
    code, out, report = _validate(capsys, broken, tmp_path, "--configfile", config)
    assert code == 1 and not report.exists()
    flat = " ".join(out.split())
    assert "ERROR (config) | " + config in flat
    assert problem in flat


def test_a_deprecated_key_is_a_warning(broken, tmp_path, capsys):
    config = _config(tmp_path, "store:\n  marker: R128\n")
    code, out, report = _validate(capsys, broken, tmp_path, "--configfile", config)
    assert code == 0 and report.exists()
    flat = " ".join(out.split())
    assert "WARNING (config) | " + config in flat
    assert "store.marker is deprecated: use eeg.volume_marker" in flat


def test_config_paths_are_resolved_and_checked(broken, tmp_path, capsys):
    config = _config(tmp_path, "model:\n  labram_checkpoint: weights/labram-base.pth\n")
    code, text, report = _validate(capsys, broken, tmp_path, "--configfile", config)
    assert code == 1 and not report.exists()
    resolved = str((Path.cwd() / "weights/labram-base.pth").resolve())
    assert resolved in text
    assert "`model.labram_checkpoint` names a file that does not exist" in " ".join(text.split())


def test_a_recording_over_the_memory_limit_is_refused_with_the_estimate(broken, tmp_path, capsys):
    config = _config(tmp_path, "eeg:\n  max_memory_mb: 300\n")
    code, text, report = _validate(capsys, broken, tmp_path, "--configfile", config)
    assert code == 1 and not report.exists()
    flat = " ".join(text.split())
    assert f"{S1}_eeg.vhdr" in text
    need = estimate_memory_mb(n_channels=27, n_times=274_500, sfreq=5000.0)
    assert f"needs about {need:,.0f} MB (27 channels x 274,500 samples at 5000 Hz" in flat
    assert "more than eeg.max_memory_mb = 300 MB" in flat


def test_damaged_store_and_checkpoint_are_named_with_how_to_rebuild(broken, tmp_path, capsys):
    import torch

    from neurobolt import store as st

    results = tmp_path / "results"
    h5 = results / "sub-01/ses-01/func" / f"{S1}_windows.h5"
    onsets = np.arange(3200, 8000, 420)
    alignment = st.Alignment(onsets, np.arange(onsets.size), np.ones(onsets.size, bool), 2.1, "")
    st.write_store(
        h5,
        eeg=np.zeros((4, 9000), np.float32),
        sfreq=200.0,
        alignment=alignment,
        targets=np.zeros((onsets.size, 1)),
        ch_names=["O1", "O2", "CZ", "FZ"],
        roi_names=["Cuneus"],
        tr=2.1,
    )
    ckpt = results / "models/intra" / S1 / "roi-Cuneus/model-neurobolt/checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"model": {"w": torch.zeros(1000)}}, ckpt)
    code, text, _ = _validate(capsys, broken, tmp_path, "--results-dir", str(results))
    assert code == 0, text  # both intact
    _.unlink()
    for path in (h5, ckpt):
        with open(path, "r+b") as fid:
            fid.truncate(path.stat().st_size // 2)
    code, text, report = _validate(capsys, broken, tmp_path, "--results-dir", str(results))
    assert code == 1 and not report.exists()
    flat = " ".join(text.split())
    assert str(h5) in text and str(ckpt) in text
    assert "damaged window store" in flat and "damaged checkpoint file" in flat
    assert "rerun the workflow, which rebuilds it" in flat
    assert "training then restarts from scratch" in flat


def test_all_problems_are_reported_at_once(broken, tmp_path, capsys):
    missing_vmrk(broken)
    path = _prep(broken, CONFOUNDS, sub="02")
    df = _tsv(path)
    df.loc[7, "rot_z"] = "n/a"
    _write_tsv(path, df)
    config = _config(tmp_path, "fmri:\n  nan_polcy: zero\n")
    code, text, report = _validate(capsys, broken, tmp_path, "--configfile", config)
    assert code == 1 and not report.exists()
    assert "3 error(s)" in text
    flat = " ".join(text.split())
    assert f"{S1}_eeg.vmrk" in text and "sub-02_ses-01_task-rest_desc-confounds" in text
    assert "'rot_z' has n/a" in flat and "`fmri.nan_polcy`" in flat


def _demo_config(**evaluate) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["evaluate"].update(evaluate)
    if "inter" not in config["evaluate"]["analyses"]:
        config["predict"]["held_out"] = False  # it predicts inter's test scans
    return config


def test_clean_dataset_with_spaces_and_non_ascii_passes_quickly(small_dataset, tmp_path, capsys):
    assert " " in str(small_dataset) and not str(small_dataset).isascii()
    # 3 scans of 2 subjects: no inter-subject split exists, so intra-subject only
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_demo_config(analyses=["intra"])), encoding="utf-8")
    start = time.perf_counter()
    code, text, report = _validate(capsys, small_dataset, tmp_path, "--configfile", str(config))
    elapsed = time.perf_counter() - start
    assert code == 0, text
    assert "3 run(s) checked" in text and "No problems found." in text
    assert pd.read_csv(report, sep="\t").empty
    assert elapsed < 10, elapsed


def test_an_impossible_inter_subject_split_is_reported(small_dataset):
    """The demo's inter_counts [3, 1, 1] cannot split 3 scans of 2 subjects."""
    report = validate_dataset(small_dataset, config=_demo_config())
    (finding,) = report.errors
    assert finding.file == "config: train" and "no inter-subject split of the 3" in finding.problem
    assert "train.inter_counts" in finding.fix


def test_the_rule_adapter_writes_nothing_on_error_and_the_table_otherwise(broken, tmp_path):
    config = _demo_config(analyses=["intra"])
    config["bids"]["root"] = str(broken)
    config["results_dir"] = str(tmp_path / "results")
    out = {"tsv": tmp_path / "results" / "validation.tsv"}
    assert validate_job.run({}, out, {"cfg": config}).ok
    assert out["tsv"].exists()
    out["tsv"].unlink()
    confounds_rows(broken)
    with pytest.raises(SystemExit) as exit_:  # the rule's script exits 1
        validate_job.run({}, out, {"cfg": config})
    assert exit_.value.code == 1
    error = exit_.value.__cause__
    assert isinstance(error, ValidationError) and "confounds rows ≠ volumes" in str(error)
    assert len(error.report.errors) == 1
    assert not out["tsv"].exists()
    assert validate_dataset(broken, config=config).errors == error.report.errors


def test_the_workflow_stops_at_validation_before_any_heavy_work(broken, tmp_path):
    """Snakemake on a broken dataset: the table in the log, no EEG/fMRI output."""
    missing_vmrk(broken)
    confounds_na(broken)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["simulate"]["enabled"] = False
    config["bids"]["root"] = str(broken)
    workdir = tmp_path / "work dir"
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake = str(Path(sys.executable).parent / "snakemake")
    out = subprocess.run(
        [snakemake, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
        + ["--cores", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    # validate_first, the gate every per-run rule waits for, stopped the run.
    log = (workdir / "logs/validate_first/validate_first.log").read_text(encoding="utf-8")
    assert f"{S1}_eeg.vmrk" in log and "'trans_x' has n/a" in " ".join(log.split())
    results = workdir / "results"
    assert not (results / "validation_first.tsv").exists()
    assert not (results / "validation.tsv").exists()
    assert not list(results.rglob("*_desc-clean_eeg.*"))
    assert not list(results.rglob("*_timeseries.tsv"))
