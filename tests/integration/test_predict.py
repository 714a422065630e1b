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
from neurobolt.eeg.brainvision import read_clean_eeg
from neurobolt.eeg.clean import EEGInputError
from neurobolt.eeg.markers import find_volume_markers
from neurobolt.jobs import predict as predict_job
from neurobolt.simulate import planned_runs, run_files

SFREQ = 200.0


@pytest.fixture(scope="session")
def pipeline(small_dataset, tmp_path_factory):
    return build(small_dataset, tmp_path_factory.getbasetemp() / "pipeline")


def _models(pipeline, model):
    return [pipeline["models"][(label, model)] / "model.pt" for label in ROIS]


def _predict(pipeline, tmp_path, model, *, eeg=None, cfg=None, bold=True, eeg_cfg=None, **params):
    out = {"timeseries": tmp_path / model / "rec_desc-predicted_timeseries.tsv"}
    if bold:
        out["bold"] = tmp_path / model / "rec_desc-predicted_bold.nii.gz"
    side = predict_job.run(
        {
            "eeg": eeg or pipeline["files"]["vhdr"],
            "models": _models(pipeline, model),
            "atlas_maps": pipeline["atlas"]["maps"],
            "atlas_labels": pipeline["atlas"]["labels"],
        },
        out,
        {
            "cfg": cfg or {},
            "eeg": {**pipeline["config"]["eeg"], **(eeg_cfg or {})},
            "window_s": 16,
            "fmri": pipeline["config"]["fmri"],
            **params,
        },
    )
    return pd.read_csv(out["timeseries"], sep="\t"), side, out


# --------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------


def test_prediction_onsets_at_markers_on_a_grid_and_down_to_one_second():
    markers = 1000 + 420 * np.arange(20)  # TR 2.1 s at 200 Hz, first at 5 s
    onsets, volumes = pr.prediction_onsets(12000, sfreq=SFREQ, window_s=16.0, markers=markers)
    # A full 16 s window (3200 samples) precedes markers 6..19 only.
    assert volumes.tolist() == list(range(6, 20))
    assert onsets.tolist() == markers[6:].tolist()
    onsets, volumes = pr.prediction_onsets(
        12000, sfreq=SFREQ, window_s=16.0, step_s=1.0, markers=markers
    )
    assert (volumes == -1).all() and (np.diff(onsets) == 200).all()
    assert onsets[0] == 3200 and ((onsets - 1000) % 200 == 0).all()  # anchored on marker 0
    onsets, volumes = pr.prediction_onsets(
        12000, sfreq=SFREQ, window_s=16.0
    )  # no markers: every 2.1 s
    assert onsets[0] == 3200 and (np.diff(onsets) == 420).all() and onsets[-1] <= 12000
    assert (volumes == -1).all()


def test_prediction_onsets_skip_the_dummy_markers():
    """store.dummy_markers: volume 0 is the marker after the dummies, as in the store."""
    markers = 1000 + 420 * np.arange(22)  # 2 dummy markers, then 20 saved volumes
    onsets, volumes = pr.prediction_onsets(
        12840, sfreq=SFREQ, window_s=16.0, markers=markers, dummy_markers=2
    )
    # Markers 6..21 have a full window; they are the saved volumes 4..19.
    assert volumes.tolist() == list(range(4, 20))
    assert onsets.tolist() == markers[6:].tolist()
    # A step grid is anchored on the first saved volume, not on the dummies.
    onsets, volumes = pr.prediction_onsets(
        12840, sfreq=SFREQ, window_s=16.0, step_s=1.5, markers=markers, dummy_markers=2
    )
    assert (volumes == -1).all() and ((onsets - markers[2]) % 300 == 0).all()
    with pytest.raises(ValueError, match="2 volume marker.*dummy_markers is 2"):
        pr.prediction_onsets(
            12840, sfreq=SFREQ, window_s=16.0, markers=markers[:2], dummy_markers=2
        )


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


def test_voxel_map_is_written_chunk_by_chunk(tmp_path):
    """Frames back-projected a few at a time (bounded memory) give the same image."""
    rng = np.random.default_rng(3)
    maps = rng.random((5, 4, 3, 2)).astype(np.float32)
    affine = np.diag([2.0, 3.0, 2.0, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 7.0]
    img = nib.Nifti1Image(maps, affine)
    pred = rng.standard_normal((7, 2))
    for name, chunk in (("a.nii.gz", 3), ("b.nii", 1), ("c.nii.gz", None)):
        path = pr.write_back_projection(tmp_path / name, pred, img, tr=2.1, chunk_frames=chunk)
        out = nib.load(path)
        assert out.shape == (5, 4, 3, 7) and out.get_data_dtype() == np.float32
        expected = np.einsum("xyzr,tr->xyzt", maps.astype(np.float64), pred)
        np.testing.assert_allclose(out.get_fdata(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out.affine, affine)
        assert out.header.get_zooms()[3] == pytest.approx(2.1)
        assert out.header.get_xyzt_units() == ("mm", "sec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "b.nii", "c.nii.gz"]


def test_brain_maps_back_project_values_and_paint_each_region_with_its_r():
    from neurobolt.brainmaps import project_volumes, r_map

    maps = np.zeros((3, 2, 1, 2))
    maps[0, :, 0, 0] = 1.0
    maps[1, 0, 0, 0], maps[1, 0, 0, 1] = 0.2, 0.7  # overlap: region 1 weighs most
    maps[2, 1, 0, 1] = 0.5
    values = np.array([[2.0, -1.0], [0.5, 4.0]])
    out = project_volumes(values, maps)
    assert out.shape == (3, 2, 1, 2)
    np.testing.assert_allclose(out[1, 0, 0], [0.2 * 2 - 0.7, 0.2 * 0.5 + 0.7 * 4])
    np.testing.assert_allclose(out[2, 1, 0], [-0.5, 2.0])
    r = r_map(maps, [0.3, np.nan])
    assert r[0, 0, 0] == 0.3 and r[0, 1, 0] == 0.3
    assert np.isnan(r[1, 0, 0]) and np.isnan(r[1, 1, 0])  # region 1's R is not known
    assert np.isnan(r[2, 0, 0])  # outside every map


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
        assert entry["TrainingData"] == {"TrainingScans": [RUN], "ValidationScans": [RUN]}
    img = nib.load(out["bold"])
    assert img.shape[3] == len(table) and img.header.get_zooms()[3] == pytest.approx(2.1)
    assert side["VoxelMap"]["ROIs"] == list(ROIS.values())


def test_a_shared_model_writes_each_rois_files_where_per_roi_models_do(pipeline):
    """model.heads: shared (one model for all 65 whole-brain targets) writes, for every ROI,
    the predictions.tsv and metrics.json a one-ROI model writes, with the same rows; the
    shared ridge fit is each ROI's own fit (alpha per ROI), so its predictions are equal."""
    from neurobolt.evaluate import collect_metrics

    assert len(pipeline["all_rois"]) == 65 and pipeline["all_rois"][-1] == "global signal"
    for (label, model), per_roi in pipeline["models"].items():
        shared = pipeline["shared"][(label, model)]
        assert sorted(p.name for p in shared.iterdir()) == ["metrics.json", "predictions.tsv"]
        a = pd.read_csv(per_roi / "predictions.tsv", sep="\t")
        b = pd.read_csv(shared / "predictions.tsv", sep="\t")
        assert list(a.columns) == list(b.columns)
        pd.testing.assert_frame_equal(a.drop(columns="prediction"), b.drop(columns="prediction"))
        if model == "ridge_bandpower":
            np.testing.assert_allclose(a["prediction"], b["prediction"], rtol=1e-4, atol=1e-5)
        ma = json.loads((per_roi / "metrics.json").read_text())
        mb = json.loads((shared / "metrics.json").read_text())
        assert set(ma) <= set(mb) and mb["heads"] == "shared" and len(mb["model_rois"]) == 65
        assert (mb["roi"], mb["model"], mb["analysis"]) == (ma["roi"], ma["model"], "intra")
        assert mb["scans"][RUN]["n_test"] == ma["scans"][RUN]["n_test"]
        log = (shared / mb["train_log"]).resolve()
        assert log == (pipeline["shared"][model] / "log.tsv").resolve() and log.is_file()
    rows = collect_metrics(
        sorted(pipeline["shared"]["neurobolt"].parent.parent.glob("roi-*/model-*/metrics.json"))
    )
    assert len(rows) == 65 * 2 and set(rows["roi"]) == set(pipeline["all_rois"])


def test_whole_brain_prediction_is_a_voxel_map_on_the_atlas_grid(pipeline, tmp_path):
    """fmri.rois: all + shared heads: one model predicts every component; the predicted BOLD
    covers every voxel of the atlas, on the atlas's grid.

    Predicted from the run's cleaned EEG (clean_eeg's output, with its volume markers;
    gradient and BCG removal off): the raw in-scanner recording is cleaned by
    test_predicted_tsv_gives_the_r_that_evaluate_reports already, and the voxel map does
    not depend on how the EEG was cleaned.
    """
    out = {
        "timeseries": tmp_path / "rec_desc-predicted_timeseries.tsv",
        "bold": tmp_path / "rec_desc-predicted_bold.nii.gz",
    }
    side = predict_job.run(
        {
            "eeg": pipeline["clean"],
            "models": [pipeline["shared"]["neurobolt"] / "model.pt"],
            "atlas_maps": pipeline["atlas"]["maps"],
            "atlas_labels": pipeline["atlas"]["labels"],
        },
        out,
        {
            "cfg": {"gradient": "never", "bcg": "never"},
            "eeg": pipeline["config"]["eeg"],
            "window_s": 16,
        },
    )
    assert not side["EEG"]["GradientRemoved"] and not side["EEG"]["BCGRemoved"]
    assert side["PredictionTimes"].startswith("at the volume markers")
    table = pd.read_csv(out["timeseries"], sep="\t")
    assert list(table.columns[2:]) == pipeline["all_rois"]
    assert side["VoxelMap"]["ROIs"] == pipeline["all_rois"][:64]
    assert side["VoxelMap"]["NotBackProjected"] == ["global signal"]
    maps = nib.load(pipeline["atlas"]["maps"])
    img = nib.load(out["bold"])
    assert img.shape == (*maps.shape[:3], len(table))
    np.testing.assert_allclose(img.affine, maps.affine)
    data = img.get_fdata(dtype=np.float32)
    in_atlas = (np.abs(maps.get_fdata()) > 0).any(axis=3)
    moving = data.std(axis=3) > 0
    assert in_atlas.sum() > 100 and (moving == in_atlas).all()
    # Each voxel is the predicted series weighted by the maps (here: one voxel, every ROI).
    voxel = tuple(np.argwhere(in_atlas)[0])
    weights = maps.get_fdata()[voxel]
    expected = table[pipeline["all_rois"][:64]].to_numpy() @ weights
    np.testing.assert_allclose(data[voxel], expected, rtol=1e-3, atol=1e-5)


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


def test_dummy_markers_and_a_missing_ecg_in_the_scanner(pipeline, tmp_path):
    """Dummy markers shift the volume column; a configured ECG that is absent: no BCG removal."""
    table, side, _ = _predict(
        pipeline,
        tmp_path,
        "neurobolt",
        bold=False,
        eeg_cfg={"ecg_channel": "EKG9"},
        dummy_markers=2,
    )
    assert side["EEG"]["GradientRemoved"] and not side["EEG"]["BCGRemoved"]
    assert side["EEG"]["ECGChannel"] is None and side["EEG"]["DummyMarkers"] == 2
    clean = read_clean_eeg(pipeline["clean"], preload=False)
    markers = find_volume_markers(clean, marker=pipeline["config"]["eeg"]["volume_marker"])
    # Row k: marker k + 2 (the first 2 are dummies), the first with 16 s of EEG before it.
    first = max(int(np.searchsorted(markers, 16 * SFREQ)), 2)
    assert table["volume"].tolist() == list(range(first - 2, markers.size - 2))
    np.testing.assert_allclose(table["onset_s"], markers[table["volume"] + 2] / SFREQ)
    with pytest.raises(EEGInputError, match="EKG9"):
        _predict(
            pipeline,
            tmp_path,
            "neurobolt",
            bold=False,
            eeg_cfg={"ecg_channel": "EKG9"},
            cfg={"bcg": "always"},
        )


def test_configured_ecg_missing_outside_the_scanner_means_no_bcg(
    pipeline, outside_scanner, tmp_path
):
    cfg = {"droppable_channels": ["FT9", "FT10"]}
    table, side, _ = _predict(
        pipeline,
        tmp_path,
        "neurobolt",
        eeg=outside_scanner,
        cfg=cfg,
        bold=False,
        eeg_cfg={"ecg_channel": "ECG"},
    )
    assert not side["EEG"]["BCGRemoved"] and side["EEG"]["ECGChannel"] is None
    assert np.isfinite(table[list(ROIS.values())].to_numpy()).all()
    with pytest.raises(EEGInputError, match="ECG"):
        _predict(
            pipeline,
            tmp_path,
            "neurobolt",
            eeg=outside_scanner,
            cfg={**cfg, "bcg": "always"},
            bold=False,
            eeg_cfg={"ecg_channel": "ECG"},
        )


def test_cli_passes_the_dummy_markers(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(predict_job, "predict_eeg_file", lambda eeg, **kw: seen.append(kw))
    config = tmp_path / "config.yaml"
    config.write_text("store: {window_s: 16, dummy_markers: 3}\n")
    args = ["predict", "rec_eeg.vhdr", "--models", "m.pt", "--out-dir", str(tmp_path)]
    assert main([*args, "--no-voxel-map"]) == 0
    assert main([*args, "--no-voxel-map", "--config", str(config)]) == 0
    assert main([*args, "--no-voxel-map", "--config", str(config), "--dummy-markers", "1"]) == 0
    assert [p["dummy_markers"] for p in seen] == [0, 3, 1]


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
    held = pr.held_out_scans(scans, train_section=train)
    assert len(held) == 1 and held[0] in scans
    assert pr.held_out_scans(scans, train_section={**train, "seed": 0}) == held  # deterministic
    with pytest.raises(TypeError):
        pr.held_out_scans(scans, train)  # keyword-only
