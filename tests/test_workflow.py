"""End to end: the demo workflow on a tiny simulated dataset (slow; CI runs it once)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from neurobolt.predict import compare_with_measured

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory (with a space in its path) holding a tiny demo config."""
    wd = tmp_path_factory.mktemp("wf") / "demo run"
    (wd / "config").mkdir(parents=True)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["simulate"].update(n_subjects=3, n_two_session=1, duration_s=120)
    config["train"].update(epochs=1, warmup_epochs=0, inter_counts=[2, 1, 1])
    config["evaluate"].update(rois=["Cuneus"], n_permutations=100)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return wd


def run_dirs(name):
    """``["sub-XX", "ses-YY"]`` of a run name."""
    return [part for part in name.split("_") if part.startswith(("sub-", "ses-"))]


def _run(workdir, *args):
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    return subprocess.run(
        [*cmd, "--cores", "2", *args], capture_output=True, text=True, timeout=1200
    )


@pytest.mark.slow
def test_demo_runs_then_has_nothing_to_do(workdir):
    first = _run(workdir)
    assert first.returncode == 0, first.stderr[-4000:]
    results = workdir / "results"
    desc = json.loads((results / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "neurobolt"
    runs = pd.read_csv(results / "runs.tsv", sep="\t", dtype=str)
    assert len(runs) == 4
    metrics = pd.read_csv(results / "group" / "metrics.tsv", sep="\t")
    assert list(metrics.columns[:7]) == ["analysis", "scan", "roi", "model", "r", "mse", "n_test"]
    # 4 scans intra + 1 test scan inter, for 2 models.
    assert len(metrics) == (4 + 1) * 2
    assert set(metrics["model"]) == {"neurobolt", "ridge_bandpower"}
    assert (results / "group" / "table.tsv").exists()
    assert (workdir / "logs" / "simulate" / "simulate.log").exists()
    # The inter-subject test scan, predicted from its raw EEG alone, gives evaluate's R.
    (held_out,) = metrics.loc[metrics["analysis"] == "inter", "scan"].unique()
    func = results / "/".join(run_dirs(held_out)) / "func"
    predicted = pd.read_csv(func / f"{held_out}_desc-predicted_timeseries.tsv", sep="\t")
    sidecar = json.loads((func / f"{held_out}_desc-predicted_timeseries.json").read_text())
    assert [m["RecordingInSplits"] for m in sidecar["Models"]] == [["test"]]
    assert (func / f"{held_out}_desc-predicted_bold.nii.gz").exists()
    measured = pd.read_csv(func / f"{held_out}_atlas-DiFuMo64_timeseries.tsv", sep="\t")
    kept = json.loads((func / f"{held_out}_atlas-DiFuMo64_timeseries.json").read_text())
    r = compare_with_measured(predicted, measured, kept_volumes=kept["KeptVolumes"])
    inter = metrics[(metrics["analysis"] == "inter") & (metrics["model"] == "neurobolt")]
    assert abs(r["r"].iloc[0] - inter["r"].iloc[0]) < 0.02
    assert (results / "report.html").exists()
    assert sorted(p.name for p in results.glob("sub-*.html")) == [
        "sub-01.html",
        "sub-02.html",
        "sub-03.html",
    ]
    second = _run(workdir)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "Nothing to be done" in second.stdout + second.stderr


def test_paper_config_plans_the_full_experiment(tmp_path):
    """7 ROIs x 29 scans intra-subject and 7 ROIs inter-subject, for each of the 5 models."""
    out = subprocess.run(
        [
            SNAKEMAKE,
            "-n",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(REPO / "config" / "paper.yaml"),
            "--cores",
            "2",
            "--quiet",
            "rules",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout + out.stderr, flags=re.M))
    assert int(counts["train_intra"]) == 29 * 7 * 5
    assert int(counts["evaluate_intra"]) == 29 * 7 * 5
    assert int(counts["train_inter"]) == 7 * 5
    assert int(counts["clean_eeg"]) == 29 and int(counts["windows"]) == 29
