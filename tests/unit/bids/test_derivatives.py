"""The derivative folder's names and dataset-level files, and the figures of snakemake --report.

The derivative folder is checked with bids-validator 1.15 (the README's test command
installs it into .tools/). That validator has no derivative rules: on a derivative folder it
checks ``dataset_description.json`` against BIDS's JSON schema (``DatasetType``,
``GeneratedBy`` entries, ``SourceDatasets[].URL`` a URI, ...), honours ``.bidsignore`` and
reports every other file whose name is not raw BIDS (``NOT_INCLUDED``). The files whose
names use derivative entities (``atlas-``, ``scale-``, ``desc-``) are therefore named in a
validator config as ignored, and checked here instead against BIDS 1.10's entity order
(:func:`bids_derivative_name`); so is its "no raw data for this subject" error (67).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from neurobolt import derivatives as nbd
from neurobolt.evaluate import group_table
from neurobolt.jobs import dataset_description
from neurobolt.jobs.report_figures import run as run_report_figures
from neurobolt.report import fig_table1

REPO = Path(__file__).resolve().parents[3]

from bids_check import (  # noqa: E402  (tests/helpers)
    bids_derivative_name,
    validate_derivative,
)


def test_the_name_check_knows_a_bad_name_from_a_good_one():
    good = "sub-01_ses-01_task-rest_atlas-DiFuMo_scale-64_timeseries.tsv"
    assert bids_derivative_name(good)
    for bad in (
        "sub-01_task-rest_scale-64_atlas-DiFuMo_timeseries.tsv",  # order
        "sub-01_task-rest_atlas-DiFuMo64_desc-a_desc-b_timeseries.tsv",  # twice
        "sub-01_task-rest_atlas-DiFuMo_64_timeseries.tsv",  # no key
        "sub-01_task-rest_foo-1_timeseries.tsv",  # unknown entity
        "task-rest_sub-01_bold.nii.gz",  # sub first
        "sub-01_task-rest_desc-learning_curves_model.png",  # underscore in a label
    ):
        assert not bids_derivative_name(bad), bad


@pytest.mark.parametrize("dimension", [64, 128, 1024])
def test_roi_signals_carry_the_atlas_and_scale_entities(dimension):
    suffix = nbd.roi_signals_suffix({"dimension": dimension})
    assert suffix == f"atlas-DiFuMo_scale-{dimension}_timeseries"
    assert bids_derivative_name(f"sub-01_ses-02_task-rest_run-1_{suffix}.tsv")
    assert nbd.atlas_entities(None) == "atlas-DiFuMo_scale-64"  # the schema's default


def test_dataset_description_points_at_the_source_relative_to_the_derivative(tmp_path):
    source = tmp_path / "studies" / "bids dätaset"
    source.mkdir(parents=True)
    (source / "dataset_description.json").write_text('{"Name": "s", "BIDSVersion": "1.9.0"}')
    root = tmp_path / "out" / "neurobolt"
    desc = nbd.dataset_description(source=source, derivative_root=root)
    assert desc["DatasetType"] == "derivative"
    (generated,) = desc["GeneratedBy"]
    assert generated["Name"] == "neurobolt" and generated["Version"]
    assert generated["CodeURL"] == nbd.CODE_URL
    assert desc["SourceDatasets"] == [{"URL": "bids:raw:"}]
    link = desc["DatasetLinks"]["raw"]
    assert link == "../../studies/bids%20d%C3%A4taset"  # relative, percent-encoded
    assert (root / unquote(link)).resolve() == source.resolve()
    assert "file:" not in json.dumps(desc) and str(tmp_path) not in json.dumps(desc)
    # A source with a DOI is named by it (and its version).
    (source / "dataset_description.json").write_text(
        json.dumps(
            {"Name": "s", "DatasetDOI": "https://doi.org/10.18112/ds1", "DatasetVersion": "2"}
        )
    )
    desc = nbd.dataset_description(source=source, derivative_root=root)
    assert desc["SourceDatasets"] == [
        {"URL": "bids:raw:", "DOI": "doi:10.18112/ds1", "Version": "2"}
    ]


def test_code_url_is_the_projects_source_url():
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Source"] == nbd.CODE_URL


def test_atlas_description_names_the_maps_used():
    sim = nbd.atlas_description({"dimension": 64}, simulated=True)
    assert sim["Name"].startswith("DiFuMo 64") and sim["License"] and sim["Authors"]
    assert "simulator" in sim["Description"]
    real = nbd.atlas_description({"dimension": 128, "resolution_mm": 3})
    assert "DiFuMo 128 at 3 mm, fetched with nilearn" in real["Description"]
    assert real["SpatialReference"] == "MNI152NLin6Asym"


def test_training_data_lists_the_train_and_val_scans(tmp_path):
    """An inter-subject split (several scans, several rows each), as train.py writes it."""
    splits = pd.DataFrame(
        {
            "scan": ["s3", "s3", "s1", "s2", "s2", "s4"],
            "split": ["train", "train", "train", "val", "val", "test"],
        }
    )
    path = tmp_path / "splits.tsv"
    splits.to_csv(path, sep="\t", index=False)
    assert nbd.training_data(path) == {"TrainingScans": ["s1", "s3"], "ValidationScans": ["s2"]}
    assert nbd.training_data(tmp_path / "none.tsv") == {"TrainingScans": [], "ValidationScans": []}


# --------------------------------------------------------------------------------------------
# The derivative folder and the BIDS validator
# --------------------------------------------------------------------------------------------


def _summary(errors):
    return [
        (e["key"], [f["file"]["relativePath"] for f in e["files"] if f.get("file")]) for e in errors
    ]


def make_derivative(root: Path, source: Path) -> None:
    """A derivative folder as the workflow lays it out (one run, tiny stand-in files)."""
    dataset_description.run(
        {},
        {
            "json": root / "dataset_description.json",
            "atlas": root / "atlas-DiFuMo_description.json",
            "bidsignore": root / ".bidsignore",
        },
        {"cfg": {"root": str(source)}, "atlas": {"dimension": 64}, "simulated": True},
    )
    run = "sub-01_ses-01_task-rest"
    func, eeg = root / "sub-01" / "ses-01" / "func", root / "sub-01" / "ses-01" / "eeg"
    files = [
        func / f"{run}_{nbd.roi_signals_suffix()}.tsv",
        func / f"{run}_{nbd.roi_signals_suffix()}.json",
        func / f"{run}_windows.h5",
        func / f"{run}_desc-predicted_timeseries.tsv",
        func / f"{run}_desc-predicted_timeseries.json",
        func / f"{run}_desc-predicted_bold.nii.gz",
        eeg / f"{run}_desc-clean_eeg.vhdr",
        eeg / f"{run}_desc-clean_eeg.vmrk",
        eeg / f"{run}_desc-clean_eeg.eeg",
        eeg / f"{run}_desc-clean_channels.tsv",
        eeg / f"{run}_desc-clean_eeg.json",
        eeg / f"{run}_desc-clean_qc.json",
        eeg / f"{run}_desc-clean_qc.h5",
        root / "sub-01" / "figures" / f"{run}_desc-spectra_eeg.png",
        root / "models" / "intra" / run / "roi-Cuneus" / "model-neurobolt" / "model.pt",
        root / "group" / "metrics.tsv",
        root / "group" / "figures" / "table1.png",
        root / "logs" / "neurobolt" / "config.yaml",
        root / "runs.tsv",
        root / "runs.json",
        root / "validation.tsv",
        root / "report.html",
        root / "sub-01.html",
    ]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n" if path.suffix == ".json" else "x\n")


def test_derivative_folder_passes_the_bids_validator(tmp_path):
    source = tmp_path / "bids"
    source.mkdir()
    root = tmp_path / "results"
    make_derivative(root, source)
    errors, derivative_files = validate_derivative(root, tmp_path)
    assert errors == [], _summary(errors)
    assert len(derivative_files) == 12  # ROI signals 2, predicted 3, cleaned EEG 5 + QC 2
    assert all(bids_derivative_name(p.name) for p in derivative_files), derivative_files
    # The validator does look: a stray file .bidsignore does not cover, and a source given
    # as a plain path (not a URI), are errors.
    (root / "sub-01" / "ses-01" / "func" / "notes.txt").write_text("x")
    desc = json.loads((root / "dataset_description.json").read_text())
    desc["SourceDatasets"] = [{"URL": "../bids"}]
    (root / "dataset_description.json").write_text(json.dumps(desc))
    errors, _ = validate_derivative(root, tmp_path)
    keys = dict(_summary(errors))
    assert keys.keys() == {"NOT_INCLUDED", "JSON_SCHEMA_VALIDATION_ERROR"}, keys
    assert keys["NOT_INCLUDED"] == ["/sub-01/ses-01/func/notes.txt"]


# --------------------------------------------------------------------------------------------
# Figures of snakemake --report
# --------------------------------------------------------------------------------------------


def _metrics():
    """Two analyses, two ROIs, two models; R and p chosen so the group figures are known."""
    rows = []
    for scan, (r_nb, p_nb) in zip(
        ("a", "b", "c"), ((0.5, 0.01), (0.3, 0.2), (0.4, 0.001)), strict=True
    ):
        for roi in ("Cuneus", "Putamen"):
            rows.append(("intra", scan, scan, roi, "neurobolt", r_nb, p_nb))
            rows.append(("intra", scan, scan, roi, "ridge_bandpower", 0.1, np.nan))
    rows.append(("inter", "c", "c", "Cuneus", "neurobolt", 0.2, 0.04))
    return pd.DataFrame(
        rows, columns=["analysis", "scan", "subject", "roi", "model", "r", "p_permutation"]
    )


def test_table1_figure_shows_the_group_table():
    group = group_table(_metrics(), alpha=0.05)
    nb = group.set_index(["analysis", "roi", "model"]).loc[("intra", "Cuneus", "neurobolt")]
    assert nb["mean_r"] == pytest.approx(np.tanh(np.mean(np.arctanh([0.5, 0.3, 0.4]))))
    assert (nb["n_subjects"], nb["n_significant"], nb["n_tested"]) == (3, 2, 3)
    fig = fig_table1(group)
    assert len(fig.axes) == 2  # one panel per analysis
    labels = [t.get_text() for t in fig.axes[0].texts]
    # no prediction series given: the group p is n/a; NaN per-scan p's are not tested
    assert labels.count("p n/a\n2/3") == 2 and labels.count("p n/a\n0/0") == 2


def test_report_figures_writes_one_png_per_figure(tmp_path):
    metrics, table = tmp_path / "metrics.tsv", tmp_path / "table.tsv"
    _metrics().to_csv(metrics, sep="\t", index=False)
    group_table(_metrics()).to_csv(table, sep="\t", index=False)
    out = {
        "table1": tmp_path / "figures" / "table1.png",
        "r_intra": tmp_path / "figures" / "r_distributions_intra.png",
        "r_inter": tmp_path / "figures" / "r_distributions_inter.png",
    }
    written = run_report_figures(
        {"metrics": metrics, "table": table}, out, {"cfg": {"alpha": 0.05}}
    )
    assert sorted(written) == sorted(out.values())
    for path in out.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(
        p.name for p in out.values()
    )  # nothing half-written left behind
