"""The BIDS-App entry point ``neurobolt BIDS_DIR OUTPUT_DIR participant|group``.

Its full run on the simulated demo (same group/metrics.tsv as ``snakemake --cores 2``) is in
tests/integration/test_workflow.py; here: the help, the configuration it writes, the command line it
builds and the jobs it plans (dry runs), and each BIDS-App option (the subprocess that would
start Snakemake, or the validator, is replaced by a recorder: no workflow runs).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neurobolt import app
from neurobolt.app import app_config, snakemake_command
from neurobolt.cli import main

REPO = Path(__file__).resolve().parents[3]
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
        "--n-cpus",
        "--mem-mb",
        "--exclude-participant-label",
        "--skip-bids-validation",
        "--work-dir",
        "Exit status: 0 success; 1",
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
        "report_figures": 1,
        "all": 1,
    }


def test_an_output_directory_inside_the_dataset_is_refused(small_dataset):
    out = _neurobolt(str(small_dataset), str(small_dataset / "derivatives" / "nb"), "group")
    assert out.returncode == 2
    assert "inside the input BIDS dataset" in out.stderr
    assert not (small_dataset / "derivatives" / "nb").exists()


# --------------------------------------------------------------------------------------------
# BIDS-App options, with the subprocess that would start Snakemake (or the validator) replaced
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def stub_dataset(tmp_path):
    """A BIDS root with three (empty) subjects: enough for the options, nothing to run."""
    root = tmp_path / "bids"
    for label in ("01", "02", "03"):
        (root / f"sub-{label}").mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "stub", "BIDSVersion": "1.9.0"}), encoding="utf-8"
    )
    return root


class Recorder:
    """Stands in for subprocess.run: records every command; the validator's answer is set."""

    def __init__(self, errors=()):
        self.calls = []
        self.errors = list(errors)

    def __call__(self, cmd, **kwargs):
        self.calls.append([str(c) for c in cmd])
        if "--json" in cmd:  # the validator
            report = {"issues": {"errors": self.errors, "warnings": []}}
            return subprocess.CompletedProcess(cmd, 1 if self.errors else 0, json.dumps(report))
        return subprocess.CompletedProcess(cmd, 0)

    def snakemake(self):
        return [c for c in self.calls if c[1:3] == ["-m", "snakemake"]]

    def validator(self):
        return [c for c in self.calls if "--json" in c]


@pytest.fixture()
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(app.subprocess, "run", rec)
    monkeypatch.setenv("NEUROBOLT_BIDS_VALIDATOR", "fake-bids-validator")
    return rec


def _written(work_dir):
    return yaml.safe_load((work_dir / "logs" / "neurobolt" / "config.yaml").read_text())


def test_exclude_participant_label_leaves_subjects_out(stub_dataset, tmp_path, recorder, capsys):
    out = tmp_path / "out"
    code = main([str(stub_dataset), str(out), "participant", "--exclude-participant-label", "02"])
    assert code == 0 and len(recorder.snakemake()) == 1
    assert _written(out)["bids"]["subjects"] == ["01", "03"]
    # after --participant-label, with or without sub-
    args = [str(stub_dataset), str(out), "group", "--participant-label", "01", "sub-02"]
    assert main([*args, "--exclude-participant-label", "sub-01"]) == 0
    assert _written(out)["bids"]["subjects"] == ["02"]
    # refused, nothing started: a label the dataset lacks, or nobody left
    n = len(recorder.calls)
    assert main([str(stub_dataset), str(out), "group", "--exclude-participant-label", "7"]) == 2
    assert "no subject(s) 7" in capsys.readouterr().err
    assert main([*args, "--exclude-participant-label", "01", "02"]) == 2
    assert "no participant left" in capsys.readouterr().err
    assert len(recorder.calls) == n


def test_n_cpus_and_mem_mb_reach_snakemake(stub_dataset, tmp_path, recorder):
    out = tmp_path / "out"
    assert main([str(stub_dataset), str(out), "group", "--n-cpus", "3", "--mem-mb", "4000"]) == 0
    (cmd,) = recorder.snakemake()
    assert cmd[cmd.index("--cores") + 1] == "3"
    assert cmd[cmd.index("--resources") + 1] == "mem_mb=4000"
    assert cmd[-1] == "all"
    assert main([str(stub_dataset), str(out), "group"]) == 0  # defaults: all cores, no limit
    cmd = recorder.snakemake()[-1]
    assert cmd[cmd.index("--cores") + 1] == "all" and "--resources" not in cmd
    for bad in (["--n-cpus", "0"], ["--mem-mb", "lots"]):
        with pytest.raises(SystemExit) as exit_:  # argparse: status 2
            main([str(stub_dataset), str(out), "group", *bad])
        assert exit_.value.code == 2


def test_work_dir_holds_the_config_and_snakemakes_state(stub_dataset, tmp_path, recorder):
    out, work = tmp_path / "out", tmp_path / "work"
    assert main([str(stub_dataset), str(out), "group", "--work-dir", str(work)]) == 0
    (cmd,) = recorder.snakemake()
    assert cmd[cmd.index("--directory") + 1] == str(work.resolve())
    config = work / "logs" / "neurobolt" / "config.yaml"
    assert cmd[cmd.index("--configfile") + 1] == str(config.resolve())
    assert _written(work)["results_dir"] == str(out.resolve())
    assert not (out / "logs").exists()


def test_an_invalid_dataset_is_refused_with_the_validators_findings(
    stub_dataset, tmp_path, recorder, capsys
):
    recorder.errors = [
        {
            "key": "NOT_INCLUDED",
            "code": 1,
            "reason": "Files with such naming scheme are not part of BIDS specification.",
            "files": [{"file": {"relativePath": "/sub-01/eeg/sub-01_eeg.txt"}}],
        }
    ]
    out = tmp_path / "out"
    assert main([str(stub_dataset), str(out), "group"]) == 1
    err = capsys.readouterr().err
    assert "[NOT_INCLUDED]" in err and "/sub-01/eeg/sub-01_eeg.txt" in err
    assert "--skip-bids-validation" in err
    (validated,) = recorder.validator()
    assert validated[:2] == ["fake-bids-validator", str(stub_dataset)]
    assert recorder.snakemake() == [] and not out.exists()  # nothing started, nothing written
    # --skip-bids-validation: the validator is not asked, the workflow starts
    assert main([str(stub_dataset), str(out), "group", "--skip-bids-validation"]) == 0
    assert len(recorder.validator()) == 1 and len(recorder.snakemake()) == 1
    # a valid dataset goes through the validator and on to the workflow
    recorder.errors = []
    assert main([str(stub_dataset), str(out), "group"]) == 0
    assert len(recorder.validator()) == 2 and len(recorder.snakemake()) == 2


def test_the_real_validator_refuses_a_misnamed_file(stub_dataset, tmp_path, capsys, monkeypatch):
    """bids-validator 1.15 itself (when installed): a file BIDS does not name is an error."""
    exe = app.find_validator(REPO)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("bids-validator is not installed: run the README's test command")
        pytest.skip("bids-validator 1.15 not installed (npm install --prefix .tools ...)")
    bad = stub_dataset / "sub-01" / "eeg" / "sub-01_task-rest_eeg.txt"
    bad.parent.mkdir()
    bad.write_text("not EEG")
    started = []
    monkeypatch.setattr(app, "snakemake_command", lambda **kw: started.append(kw) or ["true"])
    out = tmp_path / "out"
    assert main([str(stub_dataset), str(out), "participant"]) == 1
    err = capsys.readouterr().err
    assert "sub-01_task-rest_eeg.txt" in err and "NOT_INCLUDED" in err
    assert started == [] and not out.exists()
