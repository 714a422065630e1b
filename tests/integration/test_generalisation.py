"""Two simulated sites through the workflow: zero_shot, finetune and joint (slow; CI runs it).

A tiny version of config/generalisation.yaml: a resting-state dataset (the paper's cap,
TR 2.1 s, markers R128) and an auditory-task dataset (another cap, TR 2.0 s, markers V,
tones), each cleaned with its own marker and channels under results/<label>/, and the
three cross-dataset analyses tested on the task dataset's test scans.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from neurobolt import simulate as nbsim
from neurobolt.store import WindowStore
from neurobolt.train import load_checkpoint
from neurobolt.validate import validate_datasets

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
SHARED = sorted(set(nbsim.PAPER_EEG_CHANNELS) & set(nbsim.SECOND_SITE_EEG_CHANNELS))


def _snakemake(workdir, *args, configfile=None, timeout=1800):
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    return subprocess.run(
        [*cmd, "--cores", "2", *args], capture_output=True, text=True, timeout=timeout
    )


def test_generalisation_config_plans_the_three_analyses(tmp_path):
    """config/generalisation.yaml: 2 ROIs x 2 models x 3 analyses, both datasets simulated."""
    out = _snakemake(
        tmp_path, "-n", "--quiet", "rules", configfile=REPO / "config" / "generalisation.yaml"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout + out.stderr, flags=re.M))
    assert int(counts["train_transfer"]) == 2 * 2 * 3
    assert int(counts["evaluate_transfer"]) == 2 * 2 * 3
    assert counts["simulate_rest"] == counts["simulate_auditory"] == "1"
    assert int(counts["clean_eeg"]) == 5 + 6
    assert "train_inter" not in counts and "train_intra" not in counts


@pytest.fixture(scope="module")
def config():
    """The generalisation config, made tiny: 90-s scans, one epoch, one ROI.

    Rest: 3 one-session subjects split 1/1/1 (the source's test scan is left unused, as
    in the full config); auditory: 3 subjects, sub-01 with two sessions, split 1/1/2 by
    subject (its two sessions are the target's test scans).
    """
    cfg = yaml.safe_load((REPO / "config" / "generalisation.yaml").read_text())
    cfg["results_dir"] = "results"
    for entry, (n_two_session, root) in zip(
        cfg["datasets"], [(0, "data/rest"), (1, "data/auditory")], strict=True
    ):
        entry["simulate"].update(n_subjects=3, n_two_session=n_two_session, duration_s=90)
        entry["bids"]["root"] = root
    cfg["train"] = {"epochs": 1, "warmup_epochs": 0, "inter_counts": [1, 1, 1]}
    cfg["generalisation"].update(target_counts=[1, 1, 2], finetune={"epochs": 1})
    cfg["evaluate"] = {**cfg["evaluate"], "rois": ["Cuneus"], "n_permutations": 100}
    return cfg


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory, config):
    """The tiny two-site workflow, run once to the end (a space in the path, too).

    As from the repository root, config/config.yaml sits under the generalisation config
    (the Snakefile's ``configfile:``, relative to the working directory): keys the
    generalisation config does not give (the demo's tiny model, its batch sizes) come from
    there, not from the schema's defaults (LaBraM-base).
    """
    wd = tmp_path_factory.mktemp("gen") / "two sites"
    (wd / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "config.yaml", wd / "config" / "config.yaml")
    (wd / "gen.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    run = _snakemake(wd, configfile=wd / "gen.yaml")
    assert run.returncode == 0, run.stderr[-4000:]
    return wd


@pytest.mark.slow
def test_two_sites_give_the_three_analyses_on_the_target_test_scans(two_sites):
    results = two_sites / "results"
    metrics = pd.read_csv(results / "group" / "metrics.tsv", sep="\t")
    assert set(metrics["analysis"]) == {"zero_shot", "finetune", "joint"}
    assert set(metrics["model"]) == {"neurobolt", "ridge_bandpower"}
    # every analysis is tested on the same target scans: the 2 auditory test scans
    scans = metrics.groupby(["analysis", "model"])["scan"].apply(frozenset)
    assert len(set(scans)) == 1
    (test_scans,) = set(scans)
    assert len(test_scans) == 2 and all(s.startswith("auditory/sub-") for s in test_scans)
    table = pd.read_csv(results / "group" / "generalisation.tsv", sep="\t")
    assert list(table.columns) == ["model", "roi", "zero_shot", "finetune", "joint", "n_test_scans"]
    assert len(table) == 2
    # each dataset's derivatives in its own folder, cleaned with its own cap
    for label, cap, n_runs in (
        ("rest", nbsim.PAPER_EEG_CHANNELS, 3),
        ("auditory", nbsim.SECOND_SITE_EEG_CHANNELS, 4),
    ):
        stores = sorted((results / label).glob("sub-*/ses-*/func/*_windows.h5"))
        assert len(stores) == n_runs, label
        with WindowStore(stores[0]) as store:
            assert sorted(store.ch_names) == sorted(cap)
        assert (results / label / "runs.tsv").is_file()
        assert (results / label / "sub-01.html").is_file()
    assert (results / "report.html").is_file()
    # the models read only the electrodes both caps have; finetune starts from zero_shot
    for analysis in ("zero_shot", "finetune", "joint"):
        record = load_checkpoint(
            results / "models" / analysis / "roi-Cuneus" / "model-neurobolt" / "model.pt"
        )
        assert sorted(record["ch_names"]) == SHARED
        assert record["options"]["preset"] == "tiny"  # config/config.yaml's model
    record = load_checkpoint(results / "models/finetune/roi-Cuneus/model-neurobolt/model.pt")
    assert record["init"].endswith("models/zero_shot/roi-Cuneus/model-neurobolt/model.pt")
    splits = pd.read_csv(
        results / "models/finetune/roi-Cuneus/model-neurobolt/splits.tsv",
        sep="\t",
        dtype={"subject": str},
    )
    used = splits[splits["split"].isin(["train", "val"])]
    assert set(used["dataset"]) == {"target"}
    assert not set(used["scan"]) & test_scans


@pytest.mark.slow
def test_two_sites_second_run_has_nothing_to_do(two_sites):
    out = _snakemake(two_sites, "-n", configfile=two_sites / "gen.yaml")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Nothing to be done" in out.stdout + out.stderr


@pytest.mark.slow
def test_bad_cross_dataset_settings_are_refused_by_validation(two_sites, config):
    cfg = yaml.safe_load((two_sites / "gen.yaml").read_text())
    for entry in cfg["datasets"]:
        entry["bids"]["root"] = str(two_sites / entry["bids"]["root"])
    cfg["results_dir"] = str(two_sites / "results")
    assert validate_datasets(cfg).ok
    too_many = {**cfg, "generalisation": {**cfg["generalisation"], "target_counts": [4, 2, 2]}}
    report = validate_datasets(too_many)
    (finding,) = report.errors
    assert "cross-dataset split" in finding.problem and "generalisation" in finding.file
    unmapped = {**cfg, "generalisation": {**cfg["generalisation"], "channels": ["O1", "TP9"]}}
    (finding,) = validate_datasets(unmapped).errors
    assert "['TP9'] are not in the target" in finding.problem
