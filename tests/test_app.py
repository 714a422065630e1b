"""The BIDS-App entry point ``neurobolt BIDS_DIR OUTPUT_DIR participant|group``.

Its full run on the simulated demo (same group/metrics.tsv as ``snakemake --cores 2``) is in
tests/test_workflow.py; here: the help, the configuration it writes, the command line it
builds and the jobs it plans (dry runs).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neurobolt.app import app_config, snakemake_command

REPO = Path(__file__).resolve().parents[1]
NEUROBOLT = str(Path(sys.executable).parent / "neurobolt")
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))


def _neurobolt(*args):
    return subprocess.run([NEUROBOLT, *args], capture_output=True, text=True, timeout=300)


def test_help_lists_the_options_and_the_other_commands():
    out = _neurobolt("--help")
    assert out.returncode == 0, out.stderr
    for option in (
        "bids_dir",
        "output_dir",
        "{participant,group}",
        "--participant-label",
        "--session-label",
        "--task-label",
        "--fmriprep-dir",
        "--config-file",
        "--profile",
        "--cores",
        "--work-dir",
        "-- SNAKEMAKE_ARGS",
        "neurobolt simulate --help",
        "neurobolt runs --help",
    ):
        assert option in out.stdout, option
    assert _neurobolt("runs", "--help").stdout.startswith("usage: neurobolt runs")


def test_app_config_points_the_demo_settings_at_the_given_dataset(small_dataset, tmp_path):
    config = app_config(
        DEMO,
        bids_dir=small_dataset,
        output_dir=tmp_path / "out",
        participant_label=["sub-02"],
    )
    assert config["results_dir"] == str((tmp_path / "out").resolve())
    assert config["bids"]["root"] == str(small_dataset.resolve())
    assert config["bids"]["subjects"] == ["02"]
    assert config["bids"]["fmriprep_dir"] is None  # the demo's named another dataset
    assert config["simulate"]["enabled"] is False
    atlas = small_dataset.resolve() / "derivatives" / "simulation" / "atlas"
    assert config["fmri"]["atlas"]["maps"] == str(atlas / "maps.nii.gz")
    assert config["fmri"]["atlas"]["labels"] == str(atlas / "labels_64_dictionary.csv")
    assert config["model"] == DEMO["model"] and config["train"] == DEMO["train"]
    assert DEMO["simulate"]["enabled"] is True and DEMO["bids"]["subjects"] == []  # untouched
    several = {**DEMO, "datasets": [{"label": "a"}, {"label": "b"}]}
    with pytest.raises(ValueError, match="one BIDS_DIR"):
        app_config(several, bids_dir=small_dataset, output_dir=tmp_path / "out")


def test_snakemake_command_names_the_target_profile_and_extra_arguments(tmp_path):
    snakefile = REPO / "Snakefile"
    common = {"snakefile": snakefile, "work_dir": tmp_path, "config_file": tmp_path / "c.yaml"}
    local = snakemake_command(target="participant", extra=["-n"], **common)
    assert local[1:3] == ["-m", "snakemake"]
    assert local[-4:] == ["--cores", "all", "participant", "-n"]
    slurm = snakemake_command(target="all", profile="slurm", extra=["--jobs", "4"], **common)
    assert "--cores" not in slurm
    profile = slurm[slurm.index("--profile") + 1]
    assert profile == str(REPO / "workflow" / "profiles" / "slurm")
    assert slurm[-3:] == ["all", "--jobs", "4"]


def _plan(*args):
    out = _neurobolt(*args, "--", "-n", "--quiet", "rules")
    assert out.returncode == 0, out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout + out.stderr, flags=re.M))
    return {rule: int(n) for rule, n in counts.items() if rule != "total"}


def test_participant_and_group_levels_plan_the_right_jobs(small_dataset, tmp_path):
    out = tmp_path / "derivatives out"
    # The demo config: 2 models, each trained once per scan for both ROIs (model.heads:
    # shared); sub-02 has one run. Nothing is simulated.
    assert _plan(str(small_dataset), str(out), "participant", "--participant-label", "02") == {
        "validate": 1,
        "validate_first": 1,
        "dataset_description": 1,
        "runs_table": 1,
        "clean_eeg": 1,
        "roi_signals": 1,
        "windows": 1,
        "train_intra": 2,
        "evaluate_intra": 2,
        "participant": 1,
    }
    written = yaml.safe_load((out / "logs" / "neurobolt" / "config.yaml").read_text())
    assert written["bids"]["subjects"] == ["02"]
    assert written["predict"]["held_out"] is False  # needs the group's inter-subject split
    # 2 subjects allow no inter-subject test scan to predict: the group plan without it.
    config = tmp_path / "no held-out.yaml"
    config.write_text(yaml.safe_dump({**DEMO, "predict": {**DEMO["predict"], "held_out": False}}))
    group = _plan(str(small_dataset), str(out), "group", "--config-file", str(config))
    assert group == {
        "validate": 1,
        "validate_first": 1,
        "dataset_description": 1,
        "runs_table": 1,
        "clean_eeg": 3,
        "roi_signals": 3,
        "windows": 3,
        "train_intra": 6,
        "evaluate_intra": 6,
        "train_inter": 2,
        "evaluate_inter": 2,
        "group_metrics": 1,
        "subject_report": 2,
        "report": 1,
        "all": 1,
    }


def test_an_output_directory_inside_the_dataset_is_refused(small_dataset):
    out = _neurobolt(str(small_dataset), str(small_dataset / "derivatives" / "nb"), "group")
    assert out.returncode == 2
    assert "inside the input BIDS dataset" in out.stderr
    assert not (small_dataset / "derivatives" / "nb").exists()
