"""Run discovery: pairing EEG with BOLD and fMRIPrep outputs, filters, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from neurobolt import bids
from neurobolt.jobs import runs_table
from neurobolt.simulate import run_files


def test_every_simulated_run_is_paired(small_dataset, small_runs):
    found = bids.find_runs(small_dataset)
    assert [r.name for r in found.runs] == sorted(r.stem for r in small_runs)
    assert found.unpaired == []
    for run, planned in zip(found.runs, sorted(small_runs, key=lambda r: r.stem), strict=True):
        files = run_files(small_dataset, planned)
        assert run.eeg == files["vhdr"]
        assert run.bold == files["bold"]
        assert run.preproc_bold == files["preproc_bold"]
        assert run.mask == files["mask"]
        assert run.confounds == files["confounds"]
        assert run.rel_dir.as_posix() == f"sub-{planned.subject}/ses-{planned.session}"


def test_filters_select_subjects_sessions_and_tasks(small_dataset):
    assert [r.name for r in bids.find_runs(small_dataset, subjects=["01"]).runs] == [
        "sub-01_ses-01_task-rest",
        "sub-01_ses-02_task-rest",
    ]
    assert [r.name for r in bids.find_runs(small_dataset, sessions=["ses-02"]).runs] == [
        "sub-01_ses-02_task-rest"
    ]
    assert bids.find_runs(small_dataset, tasks=["rest"]).runs
    assert bids.find_runs(small_dataset, tasks=["auditory"]).runs == []


def test_unpaired_runs_are_reported_with_the_reason(small_dataset, tmp_path):
    root = shutil.copytree(small_dataset, tmp_path / "copy")
    # EEG without BOLD, and a BOLD run whose fMRIPrep confounds are missing.
    (root / "sub-01/ses-02/func/sub-01_ses-02_task-rest_bold.nii.gz").unlink()
    (
        root / "derivatives/fmriprep/sub-02/ses-01/func/sub-02_ses-01_task-rest"
        "_desc-confounds_timeseries.tsv"
    ).unlink()
    found = bids.find_runs(root)
    assert [r.name for r in found.runs] == ["sub-01_ses-01_task-rest"]
    problems = {p.path.name: p for p in found.unpaired}
    eeg = problems["sub-01_ses-02_task-rest_eeg.vhdr"]
    assert "without a BOLD run" in eeg.problem
    assert "sub-01_ses-02_task-rest_bold.nii.gz" in eeg.fix
    bold = problems["sub-02_ses-01_task-rest_bold.nii.gz"]
    assert "confounds_timeseries.tsv" in bold.problem
    assert "2 file(s) left out" in found.summary()


def test_a_folder_that_is_not_bids_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset_description.json"):
        bids.find_runs(tmp_path)


def test_results_inside_the_input_dataset_are_refused(tmp_path):
    with pytest.raises(ValueError, match="inside the input BIDS dataset"):
        bids.check_output_dir(tmp_path / "bids" / "derivatives" / "out", tmp_path / "bids")
    with pytest.raises(ValueError, match="inside the input BIDS dataset"):
        bids.check_output_dir(tmp_path / "bids", tmp_path / "bids")
    bids.check_output_dir(tmp_path / "results", tmp_path / "bids")


def test_runs_table_job_writes_tsv_and_provenance(small_dataset, tmp_path):
    outputs = {"tsv": tmp_path / "runs.tsv", "json": tmp_path / "runs.json"}
    cfg = {"root": str(small_dataset), "space": "MNI152NLin6Asym"}
    runs_table.run({}, outputs, {"cfg": cfg})
    table = pd.read_csv(outputs["tsv"], sep="\t", dtype=str)
    assert list(table["run"]) == [
        "sub-01_ses-01_task-rest",
        "sub-01_ses-02_task-rest",
        "sub-02_ses-01_task-rest",
    ]
    record = json.loads(outputs["json"].read_text())
    assert record["n_runs"] == 3 and record["left_out"] == []
    assert {"neurobolt_version", "config_hash"} <= set(record)
    assert not list(tmp_path.glob(".tmp-*"))  # nothing half-written left behind


def test_dataset_description_is_a_bids_derivative():
    desc = bids.dataset_description(source="/data/bids")
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "neurobolt"
    assert desc["GeneratedBy"][0]["Version"]


def test_command_line_lists_the_runs(small_dataset, capsys, tmp_path):
    from neurobolt.cli import main

    assert main(["runs", str(small_dataset), "--subjects", "02"]) == 0
    assert "1 paired EEG-fMRI run(s)" in capsys.readouterr().out
    assert main(["runs", str(tmp_path)]) == 2
    assert "dataset_description.json" in capsys.readouterr().err


def test_the_simulate_job_writes_the_rules_files_and_checks_them(tmp_path):
    from neurobolt.jobs import simulate as simulate_job
    from neurobolt.simulate import atlas_files, planned_runs, simulation_json

    root = tmp_path / "sim"
    cfg = {"enabled": True, "n_subjects": 1, "n_two_session": 0, "duration_s": 40}
    cfg.update(seed=5, easy=True)
    (run,) = planned_runs(n_subjects=1, n_two_session=0, task="rest", task_design=None)
    files = [*run_files(root, run).values(), *atlas_files(root).values()]
    outputs = {"done": simulation_json(root), "files": files}
    simulate_job.run({}, outputs, {"cfg": cfg}, threads=1)
    assert all(Path(f).is_file() for f in files)
    record = json.loads(simulation_json(root).read_text())
    assert record["parameters"]["duration_s"] == 40 and record["parameters"]["seed"] == 5
    with pytest.raises(RuntimeError, match=r"expected outputs were not written: \[.*absent"):
        simulate_job.run({}, {**outputs, "files": [root / "absent.tsv"]}, {"cfg": cfg})
