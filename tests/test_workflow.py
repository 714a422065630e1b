"""End to end: the demo workflow on a tiny simulated dataset (slow; CI runs it once)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory (with a space in its path) holding a tiny demo config."""
    wd = tmp_path_factory.mktemp("wf") / "demo run"
    (wd / "config").mkdir(parents=True)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["simulate"].update(n_subjects=2, n_two_session=1, duration_s=60)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return wd


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
    assert len(runs) == 3
    assert (workdir / "logs" / "simulate" / "simulate.log").exists()
    second = _run(workdir)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "Nothing to be done" in second.stdout + second.stderr
