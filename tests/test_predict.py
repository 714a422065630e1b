"""Prediction from EEG alone: known answers, agreement with evaluate, missing channels, CLI."""

from __future__ import annotations

import json
import warnings

import mne
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from pipeline import ROIS, RUN, build

from neurobolt import predict as pr
from neurobolt.cli import main
from neurobolt.simulate import planned_runs, run_files

SFREQ = 200.0


@pytest.fixture(scope="session")
def pipeline(small_dataset, tmp_path_factory):
    return build(small_dataset, tmp_path_factory.getbasetemp() / "pipeline")


def _models(pipeline, model):
    return [pipeline["models"][(label, model)] / "model.pt" for label in ROIS]


def _predict(pipeline, tmp_path, model, *, eeg=None, cfg=None, bold=True):
    out = {"timeseries": tmp_path / model / "rec_desc-predicted_timeseries.tsv"}
    if bold:
        out["bold"] = tmp_path / model / "rec_desc-predicted_bold.nii.gz"
    side = pr.run_predict(
        {
            "eeg": eeg or pipeline["files"]["vhdr"],
            "models": _models(pipeline, model),
            "atlas_maps": pipeline["atlas"]["maps"],
            "atlas_labels": pipeline["atlas"]["labels"],
        },
        out,
        {
            "cfg": cfg or {},
            "eeg": pipeline["config"]["eeg"],
            "window_s": 16,
            "fmri": pipeline["config"]["fmri"],
        },
    )
    return pd.read_csv(out["timeseries"], sep="\t"), side, out


# --------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------


def test_prediction_onsets_at_markers_on_a_grid_and_down_to_one_second():
    markers = 1000 + 420 * np.arange(20)  # TR 2.1 s at 200 Hz, first at 5 s
    onsets, volumes = pr.prediction_onsets(12000, sfreq=SFREQ, markers=markers)
    # A full 16 s window (3200 samples) precedes markers 6..19 only.
    assert volumes.tolist() == list(range(6, 20))
    assert onsets.tolist() == markers[6:].tolist()
    onsets, volumes = pr.prediction_onsets(12000, sfreq=SFREQ, step_s=1.0, markers=markers)
    assert (volumes == -1).all() and (np.diff(onsets) == 200).all()
    assert onsets[0] == 3200 and ((onsets - 1000) % 200 == 0).all()  # anchored on marker 0
    onsets, volumes = pr.prediction_onsets(12000, sfreq=SFREQ)  # no markers: every 2.1 s
    assert onsets[0] == 3200 and (np.diff(onsets) == 420).all() and onsets[-1] <= 12000
    assert (volumes == -1).all()


def test_check_channels_drops_only_what_is_droppable():
    model = ["O1", "O2", "FT9", "FT10", "CZ"]
    used, dropped = pr.check_channels(model, ["o1", "O2", "CZ", "ECG"], droppable=["ft9", "FT10"])
    assert used == ["O1", "O2", "CZ"] and dropped == ["FT9", "FT10"]
    with pytest.raises(pr.MissingChannelsError, match="missing from the recording: FT9, FT10"):
        pr.check_channels(model, ["O1", "O2", "CZ"], droppable=["FT9"])


def test_back_project_is_the_series_times_each_map():
    maps = np.zeros((4, 3, 2, 2), np.float32)
    maps[0, :, :, 0] = 1.0
    maps[1:3, :, :, 1] = 0.5
    img = nib.Nifti1Image(maps, np.diag([2.0, 2.0, 2.0, 1.0]))
    pred = np.array([[1.0, 2.0], [-1.0, 4.0], [0.5, 0.0]])
    out = pr.back_project(pred, img, tr=1.5)
    data = out.get_fdata()
    assert data.shape == (4, 3, 2, 3)
    np.testing.assert_allclose(data[0, 0, 0], pred[:, 0], rtol=1e-5)
    np.testing.assert_allclose(data[2, 1, 1], 0.5 * pred[:, 1], rtol=1e-5)
    np.testing.assert_allclose(data[3], 0.0)
    assert out.header.get_zooms()[3] == pytest.approx(1.5)
    np.testing.assert_allclose(out.affine, img.affine)


# --------------------------------------------------------------------------------------------
# From the raw recording, as the predict rule does
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["neurobolt", "ridge_bandpower"])
def test_predicted_tsv_gives_the_r_that_evaluate_reports(pipeline, tmp_path, model):
    """Predicted from the raw in-scanner EEG alone: R on the test split = evaluate's R."""
    table, side, out = _predict(pipeline, tmp_path, model)
    assert side["EEG"]["GradientRemoved"] and side["EEG"]["BCGRemoved"]
    assert side["PredictionTimes"].startswith("at the volume markers")
    assert list(table.columns) == ["onset_s", "volume", *ROIS.values()]
    assert np.allclose(np.diff(table["onset_s"]), 2.1)
    measured = pd.read_csv(pipeline["rois"], sep="\t")
    kept = json.loads(pipeline["rois"].with_suffix(".json").read_text())["KeptVolumes"]
    for (label, roi), entry in zip(ROIS.items(), side["Models"], strict=True):
        d = pipeline["models"][(label, model)]
        metrics = json.loads((d / "metrics.json").read_text())
        splits = pd.read_csv(d / "splits.tsv", sep="\t")
        test_volumes = splits.loc[splits["split"] == "test", "volume"]
        on_test = table[table["volume"].isin(test_volumes)]
        r = pr.compare_with_measured(on_test[["volume", roi]], measured, kept_volumes=kept)
        assert len(on_test) == metrics["scans"][RUN]["n_test"]
        assert r["r"].iloc[0] == pytest.approx(metrics["scans"][RUN]["r"], abs=0.02)
        evaluated = pd.read_csv(d / "predictions.tsv", sep="\t").merge(table, on="volume")
        assert np.abs(evaluated["prediction"] - evaluated[roi]).max() < 1e-4
        assert entry["ValidationR"] == pytest.approx(metrics["best_val_r"])
        assert entry["ROIs"] == [roi] and entry["Model"] == model
        # An intra-subject model trained on this run: said so, not hidden.
        assert entry["RecordingInSplits"] == ["train", "val", "test"] and "Warning" in entry
    img = nib.load(out["bold"])
    assert img.shape[3] == len(table) and img.header.get_zooms()[3] == pytest.approx(2.1)
    assert side["VoxelMap"]["ROIs"] == list(ROIS.values())


@pytest.fixture(scope="session")
def outside_scanner(small_dataset, tmp_path_factory):
    """EEG recorded outside the scanner (no markers, no ECG), lacking FT9 and FT10."""
    run = next(r for r in planned_runs(n_subjects=2, n_two_session=1) if r.stem == RUN)
    truth = mne.io.read_raw_fif(run_files(small_dataset, run)["truth_eeg"], preload=True)
    truth.drop_channels(["FT9", "FT10"])
    folder = tmp_path_factory.mktemp("outside") / "sub-05" / "eeg"
    folder.mkdir(parents=True)
    path = folder / "sub-05_task-rest_eeg.vhdr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mne.export.export_raw(path, truth, fmt="brainvision", verbose=False)
    return path


def test_missing_channels_are_dropped_only_when_listed(pipeline, outside_scanner, tmp_path):
    with pytest.raises(pr.MissingChannelsError, match="missing from the recording: FT9, FT10"):
        _predict(pipeline, tmp_path, "neurobolt", eeg=outside_scanner, bold=False)
    cfg = {"droppable_channels": ["FT9", "FT10"]}
    table, side, _ = _predict(pipeline, tmp_path, "neurobolt", eeg=outside_scanner, cfg=cfg)
    assert side["EEG"]["DroppedChannels"] == ["FT9", "FT10"]
    assert len(side["EEG"]["Channels"]) == 24
    assert not side["EEG"]["GradientRemoved"] and not side["EEG"]["BCGRemoved"]
    assert "volume" not in table.columns  # no markers: a regular 2.1 s grid
    assert table["onset_s"].iloc[0] == pytest.approx(16.0)
    assert np.allclose(np.diff(table["onset_s"]), 2.1)
    assert np.isfinite(table[list(ROIS.values())].to_numpy()).all()
    # The baseline's features need every training channel.
    with pytest.raises(pr.MissingChannelsError, match="ridge_bandpower"):
        _predict(pipeline, tmp_path, "ridge_bandpower", eeg=outside_scanner, cfg=cfg)


def test_cli_predict(pipeline, outside_scanner, tmp_path, capsys):
    args = ["predict", str(outside_scanner), "--models", *map(str, _models(pipeline, "neurobolt"))]
    args += ["--out-dir", str(tmp_path), "--no-voxel-map", "--step-s", "1"]
    assert main(args) == 2
    assert "FT9, FT10" in capsys.readouterr().err
    assert main([*args, "--droppable-channels", "FT9", "FT10"]) == 0
    table = pd.read_csv(tmp_path / "sub-05_task-rest_desc-predicted_timeseries.tsv", sep="\t")
    assert np.allclose(np.diff(table["onset_s"]), 1.0)
    side = json.loads((tmp_path / "sub-05_task-rest_desc-predicted_timeseries.json").read_text())
    assert side["RepetitionTime"] == pytest.approx(1.0)
    assert not (tmp_path / "sub-05_task-rest_desc-predicted_bold.nii.gz").exists()


def test_held_out_scans_are_the_inter_test_split():
    scans = [r.stem for r in planned_runs(n_subjects=4, n_two_session=1)]
    train = {"inter_counts": [3, 1, 1], "seed": 0}
    held = pr.held_out_scans(scans, train)
    assert len(held) == 1 and held[0] in scans
    assert pr.held_out_scans(scans, {**train, "seed": 0}) == held  # deterministic
