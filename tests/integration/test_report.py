"""Reports: known-answer QC signals, and the pages in headless Chromium (no console errors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chromium import find_chromium, open_page
from matplotlib.image import imread
from pipeline import ROIS, RUN, build

from neurobolt import report as rp
from neurobolt.jobs import report as report_job
from neurobolt.jobs import subject_report as subject_report_job
from neurobolt.jobs.predict import run as run_predict
from neurobolt.simulate import simulation_json


def test_bcg_epochs_recover_a_known_waveform():
    sfreq = 200.0
    wave = np.sin(np.linspace(0, np.pi, 60)) * 50e-6  # 50 µV bump, 0.3 s
    peaks = np.arange(100, 5900, 170)
    data = np.zeros((2, 6200))
    for p in peaks:
        data[0, p + 20 : p + 80] += wave  # 0.1 s after the R-peak
    times, avg = rp.bcg_epochs(data, sfreq, peaks, tmin=-0.2, tmax=0.8)
    assert times[0] == pytest.approx(-0.2) and avg.shape == (2, 200)
    np.testing.assert_allclose(avg[0, 60:120], wave * 1e6, atol=1e-9)
    np.testing.assert_allclose(avg[1], 0.0)
    assert np.isnan(rp.bcg_epochs(data, sfreq, np.array([10]))[1]).all()  # no full epoch


def test_psd_peaks_at_the_sine_frequency_in_microvolts():
    sfreq = 200.0
    t = np.arange(int(60 * sfreq)) / sfreq
    data = np.vstack([10e-6 * np.sin(2 * np.pi * 12.5 * t)] * 3)
    f, p = rp.psd(data, sfreq, fmax=40.0)
    assert f[-1] <= 40.0 and f[np.argmax(p)] == pytest.approx(12.5)
    # Parseval: the power of a 10 µV sine is 50 µV².
    assert p.sum() * (f[1] - f[0]) == pytest.approx(50.0, rel=0.02)


def test_eeg_figure_data_picks_channels_and_averages_the_stored_spectra():
    """The subject page plots clean_eeg's QC signals: the shown channels' mean, to fmax."""
    f = np.arange(0.0, 201.0, 0.25)
    rows = np.arange(1.0, 6.0)[:, None] * np.ones(f.size) * 1e-12  # channel k: k µV²/Hz
    signals = {
        "channels": ["FP1", "O1", "o2", "CZ", "PZ"],
        "markers": np.array([100, 10600, 21100]),
        "sfreq": 5000.0,
        "tr": 2.1,
        "slice_freq": None,
        "volume_freq": 1 / 2.1,
        "psd": {"freqs_raw": f, "raw": rows, "freqs": f, "gradient": rows, "clean": rows},
        "bcg": {
            "times": np.arange(-40, 160) / 200.0,
            "before": np.arange(5.0)[:, None] * np.ones(200),
            "after": np.zeros((5, 200)),
            "n_beats": 12,
            "r_peaks": np.array([1, 2]),
        },
    }
    data = rp.eeg_figure_data(signals, channels=["O1", "O2", "FZ"], fmax=100.0)
    assert data["channels"] == ["O1", "O2"]  # FZ is not in the cleaned EEG
    freqs, power = data["spectra"]["after gradient removal"]
    assert freqs[-1] == 100.0 and np.allclose(power, 2.5)  # channels 2 and 3
    assert data["bcg"]["before"][:, 0].tolist() == [1.0, 2.0] and data["bcg"]["n_beats"] == 12
    fallback = rp.eeg_figure_data(signals, channels=["T7"], fmax=50.0)
    assert fallback["channels"] == ["FP1", "O1", "o2", "CZ"]
    assert np.allclose(fallback["spectra"]["raw"][1], 2.5)


@pytest.fixture(scope="session")
def chromium():
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: run the README's test command")
        pytest.skip(
            "chromium not installed (apt-get install -y chromium, as the README's test"
            " command does)"
        )
    return exe


@pytest.fixture(scope="session")
def pages(small_dataset, tmp_path_factory):
    """A subject page and the group report from the pipeline of one simulated run."""
    p = build(small_dataset, tmp_path_factory.getbasetemp() / "pipeline")
    out = tmp_path_factory.mktemp("report")
    cfg = p["config"]
    predicted = out / "sub-02" / "ses-01" / "func" / f"{RUN}_desc-predicted_timeseries.tsv"
    run_predict(
        {
            "eeg": p["files"]["vhdr"],
            "models": [p["models"][(r, "neurobolt")] / "model.pt" for r in ROIS],
        },
        {"timeseries": predicted},
        {"cfg": {}, "eeg": cfg["eeg"], "window_s": 16, "fmri": cfg["fmri"]},
    )
    metrics = [d / "metrics.json" for d in p["models"].values()]
    subject = out / "sub-02.html"
    subject_report_job.run(
        {
            "qc": [p["qc"]],
            "qc_signals": [p["qc_signals"]],
            "rois": [p["rois"]],
            "confounds": [p["files"]["confounds"]],
            "metrics": metrics,
        },
        {"html": subject, "figures": out / "sub-02" / "figures"},
        {
            "runs": [RUN],
            "subject": "02",
            "cfg": cfg["report"],
            "eeg": cfg["eeg"],
            "rois": list(ROIS.values()),
            "confounds": cfg["fmri"]["confounds"],
        },
    )
    group = out / "report.html"
    report_job.run(
        {
            "metrics": metrics,
            "subject_pages": [subject],
            "simulation": simulation_json(small_dataset),
            "predicted": [predicted],
            "measured": [p["rois"]],
            "atlas_maps": p["atlas"]["maps"],
            "atlas_labels": p["atlas"]["labels"],
        },
        {"html": group},
        {"cfg": cfg["report"]},
    )
    return {
        "group": group,
        "subject": subject,
        "metrics": metrics,
        "predicted": predicted,
        "measured": p["rois"],
        "cfg": cfg["report"],
    }


@pytest.mark.parametrize("page", ["group", "subject"])
def test_pages_open_in_chromium_with_a_table_and_figures(chromium, pages, page, tmp_path):
    shot = tmp_path / f"{page}.png"
    result = open_page(pages[page], screenshot=shot)
    assert result["errors"] == []
    figures = [i for i in result["images"] if i["loaded"] and i["width"] >= 300 and i["shown"] > 0]
    assert len(figures) >= 4, result["images"]
    assert all(i["loaded"] for i in result["images"])
    assert any(rows >= 2 for rows in result["tables"]), result["tables"]
    image = imread(shot)
    assert image.shape[0] >= 900 and image.shape[1] >= 1000
    assert image[..., :3].std() > 0.05  # not a blank page
    other = "sub-02.html" if page == "group" else "report.html"
    assert other in result["links"]


def test_subject_page_figures_are_files_too(pages):
    """The QC figures also as PNG files (snakemake --report shows them), one per figure."""
    folder = pages["subject"].parent / "sub-02" / "figures"
    kinds = ["bcg_eeg", "learningcurves_model", "markers_eeg", "rois_bold", "spectra_eeg"]
    kinds.append("test_timeseries")
    assert sorted(p.name for p in folder.iterdir()) == [f"{RUN}_desc-{k}.png" for k in kinds]
    for path in folder.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(path)[..., :3].std() > 0.05  # not blank


def test_group_report_compares_the_eeg_only_prediction_with_evaluate(pages):
    text = pages["group"].read_text(encoding="utf-8")
    assert "Predictions from EEG alone" in text and "R from evaluate" in text
    assert "R vs simulator ceiling" in text and "Table 1" in text
    assert "measured vs predicted maps, test R per region" in text
    metrics = json.loads(
        (pages["group"].parent / "sub-02" / "ses-01" / "func")
        .joinpath(f"{RUN}_desc-predicted_timeseries.json")
        .read_text()
    )
    assert {m["Model"] for m in metrics["Models"]} == {"neurobolt"}


def test_group_report_does_not_compare_predictions_off_the_markers(pages, tmp_path):
    """predict.step_s with held_out: no volume column, so a note instead of a comparison."""
    stepped = tmp_path / "sub-02" / f"{RUN}_desc-predicted_timeseries.tsv"
    stepped.parent.mkdir()
    table = pd.read_csv(pages["predicted"], sep="\t").drop(columns="volume")
    table.to_csv(stepped, sep="\t", index=False)
    side = json.loads(pages["predicted"].with_suffix(".json").read_text())
    side.update(RepetitionTime=1.5, PredictionTimes="every 1.5 s")
    stepped.with_suffix(".json").write_text(json.dumps(side))
    group = tmp_path / "report.html"
    report_job.run(
        {"metrics": pages["metrics"], "predicted": [stepped], "measured": [pages["measured"]]},
        {"html": group},
        {"cfg": pages["cfg"]},
    )
    text = group.read_text(encoding="utf-8")
    assert "not compared with the measured signals" in text and "every 1.5 s" in text
    assert "predicted from EEG alone vs measured" not in text
    assert "Predictions from EEG alone" in text  # the table, without the comparison's R


def test_learning_curves_belong_to_the_run_by_folder_name():
    run = "sub-01_ses-01_task-rest"
    models = Path("results") / "models" / "intra"
    assert rp.in_run(models / run / "roi-Cuneus" / "model-neurobolt", run)
    assert not rp.in_run(models / f"{run}_run-02" / "roi-Cuneus" / "model-neurobolt", run)
    assert not rp.in_run(models / "sub-01_ses-01_task-restful" / "roi-X" / "model-Y", run)
