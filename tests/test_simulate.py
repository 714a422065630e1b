"""Known-answer tests of the simulator: markers, artifacts, ground truth, BIDS validity."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import mne
import mne_bids
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurobolt import simulate as sim
from neurobolt.simulate import GLOBAL_SIGNAL, SimParams, run_files

REPO = Path(__file__).resolve().parents[1]


def _read_raw(root, run):
    path = mne_bids.BIDSPath(
        subject=run.subject, session=run.session, task=run.task, datatype="eeg", root=root
    )
    return mne_bids.read_raw_bids(path, verbose=False)


def _markers(raw, marker="R128"):
    keep = [d.endswith(marker) for d in raw.annotations.description]
    return np.round(raw.annotations.onset[keep] * raw.info["sfreq"]).astype(int)


def test_every_run_reads_and_markers_match_volumes(small_dataset, small_runs):
    assert len(small_runs) == 3
    for run in small_runs:
        files = run_files(small_dataset, run)
        raw = _read_raw(small_dataset, run)
        assert raw.info["sfreq"] == 5000
        assert len(raw.ch_names) == 32
        assert raw.get_channel_types(picks=["ECG", "EOG"]) == ["ecg", "eog"]
        assert set(sim.PAPER_EEG_CHANNELS) <= set(raw.ch_names)
        n_vol = nib.load(files["bold"]).shape[3]
        assert nib.load(files["preproc_bold"]).shape[3] == n_vol
        assert len(_markers(raw)) == n_vol == SimParams(duration_s=120.0).n_volumes
        events = pd.read_csv(files["events"], sep="\t")
        assert (events["trial_type"] == "Response/R128").sum() == n_vol
        # The .vmrk holds real BrainAmp-style Response markers.
        assert "Response,R128," in files["vmrk"].read_text(encoding="utf-8")
        conf = pd.read_csv(files["confounds"], sep="\t", na_values="n/a")
        assert len(conf) == n_vol
        assert np.isnan(conf["trans_x_derivative1"].iloc[0])
        assert conf["non_steady_state_outlier00"].iloc[0] == 1
        # int16-representable: every sample is a multiple of the 0.5 µV resolution.
        data = raw.get_data(start=0, stop=5000) / (sim.EEG_RESOLUTION_UV * 1e-6)
        np.testing.assert_allclose(data, np.round(data), atol=1e-3)
        assert np.abs(data).max() < 2**15


def test_gradient_waveform_repeats_every_slice():
    axes = sim.gradient_axis_waveforms(2.1, 30)
    per_slice = axes.shape[1] // 30
    slices = axes[:, : 30 * per_slice].reshape(3, 30, per_slice)
    # Slices 2..30 are identical; slice 1 carries the volume navigator.
    np.testing.assert_allclose(slices[:, 2:], slices[:, 1:-1], atol=1e-9)
    assert np.abs(slices[:, 0] - slices[:, 1]).max() > 0.05


def test_recorded_gradient_artifact_is_periodic_at_the_slice_period(small_dataset, small_runs):
    raw = _read_raw(small_dataset, small_runs[0])
    sfreq = raw.info["sfreq"]
    onsets = _markers(raw)
    slice_len = int(round(2.1 / 30 * sfreq))  # 350 samples
    x = raw.get_data(picks="CZ")[0]
    same, half = [], []
    for onset in onsets[2:12]:
        for k in range(1, 28):  # skip the navigator slice
            a = x[onset + k * slice_len : onset + (k + 1) * slice_len]
            b = x[onset + (k + 1) * slice_len : onset + (k + 2) * slice_len]
            c = x[
                onset + k * slice_len + slice_len // 2 : onset
                + (k + 1) * slice_len
                + slice_len // 2
            ]
            same.append(np.corrcoef(a, b)[0, 1])
            half.append(np.corrcoef(a, c)[0, 1])
    assert np.median(same) > 0.95
    assert np.median(half) < 0.5
    # The artifact is millivolts, the EEG microvolts.
    scanning = x[onsets[0] : onsets[-1]]
    quiet = x[: onsets[0] - 100]
    assert 1e-3 < np.ptp(scanning) < 2e-2
    assert np.std(scanning) > 10 * np.std(quiet)


def test_bcg_is_locked_to_the_r_peaks(small_dataset, small_runs):
    for run in small_runs[:2]:  # run 0 upright ECG, subject 02 is inverted
        raw = _read_raw(small_dataset, run)
        sfreq = raw.info["sfreq"]
        first_marker = _markers(raw)[0]
        peaks = pd.read_csv(run_files(small_dataset, run)["truth_rpeaks"], sep="\t")["sample"]
        span = int(0.7 * sfreq)
        quiet = peaks[(peaks > int(0.1 * sfreq)) & (peaks + span < first_marker)].to_numpy()
        assert len(quiet) >= 8
        ecg = raw.get_data(picks="ECG")[0]
        ecg = ecg - np.median(ecg[:first_marker])
        # Each true R-peak is the ECG's largest deflection within ±50 ms.
        w = int(0.05 * sfreq)
        offsets = [np.argmax(np.abs(ecg[p - w : p + w])) - w for p in quiet]
        assert np.max(np.abs(offsets)) <= 2
        # The average EEG epoch after R-peaks shows the BCG 150-500 ms later, far above
        # the average of epochs at random times.
        eeg = raw.get_data(picks="eeg")
        locked = np.mean([eeg[:, p : p + span] for p in quiet], axis=0)
        rng = np.random.default_rng(0)
        random_starts = rng.integers(0, first_marker - span, len(quiet))
        unlocked = np.mean([eeg[:, p : p + span] for p in random_starts], axis=0)
        assert np.median(np.ptp(locked, axis=1)) > 3 * np.median(np.ptp(unlocked, axis=1))
        latency = np.argmax(np.abs(locked - locked[:, :1]), axis=1) / sfreq
        assert 0.15 <= np.median(latency) <= 0.5


def _regress_out(y, confounds):
    design = np.column_stack([np.ones(len(confounds)), confounds])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ beta


def test_ceiling_matches_an_empirical_estimate(small_dataset, small_runs, simulation_record):
    maps = nib.load(sim.atlas_files(small_dataset)["maps"]).get_fdata()
    labels = list(sim.DIFUMO64_LABELS)
    empirical = {}
    for run in small_runs:
        files = run_files(small_dataset, run)
        bold = nib.load(files["preproc_bold"]).get_fdata()
        mask = nib.load(files["mask"]).get_fdata() > 0
        conf = pd.read_csv(files["confounds"], sep="\t", na_values="n/a")
        keep = ~conf.filter(like="non_steady_state").any(axis=1).to_numpy()
        motion = conf[["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]].to_numpy()[keep]
        y = bold[mask][:, keep]
        comps, *_ = np.linalg.lstsq(maps[mask], y, rcond=None)
        truth = pd.read_csv(files["truth_rois"], sep="\t")[keep]
        signals = {label: comps[labels.index(label)] for label in truth if label != GLOBAL_SIGNAL}
        signals[GLOBAL_SIGNAL] = y.mean(axis=0)
        for label, x in signals.items():
            if label in simulation_record["null_rois"]:
                assert np.all(truth[label] == 0)
                continue
            # The same motion regression on both sides: what a model can still predict.
            r = np.corrcoef(_regress_out(x, motion), _regress_out(truth[label], motion))[0, 1]
            empirical.setdefault(label, []).append(r)
    ceilings = simulation_record["ceiling"]
    assert set(empirical) | set(simulation_record["null_rois"]) == set(ceilings)
    for label, rs in empirical.items():
        assert abs(np.mean(rs) - ceilings[label]) < 0.05, (label, np.mean(rs), ceilings[label])
        assert 0.5 < ceilings[label] < 0.95
    for label in simulation_record["null_rois"]:
        assert ceilings[label] == 0.0


def test_simulation_is_deterministic_for_a_seed():
    shape, affine, mask = sim._mni_grid(16.0)
    grid = (shape, affine, mask, sim._roi_maps(SimParams(), shape, affine, mask))
    run = sim.SimRun("01", "01")
    params = SimParams(duration_s=40.0, voxel_mm=16.0, sfreq=1000.0, seed=3)
    a = sim.simulate_run(params, run, grid=grid)
    b = sim.simulate_run(params, run, grid=grid)
    np.testing.assert_array_equal(a.raw[0], b.raw[0])
    np.testing.assert_array_equal(a.bold, b.bold)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    c = sim.simulate_run(
        SimParams(duration_s=40.0, voxel_mm=16.0, sfreq=1000.0, seed=4), run, grid=grid
    )
    assert not np.array_equal(a.raw[0], c.raw[0])


def test_bad_parameters_are_refused(tmp_path):
    with pytest.raises(ValueError, match="whole number of samples"):
        SimParams(tr=2.1, sfreq=333.3)
    with pytest.raises(ValueError, match="too short"):
        SimParams(duration_s=20.0)
    with pytest.raises(ValueError, match="not in the DiFuMo-64 labels"):
        sim.simulate_dataset(tmp_path, null_rois=["Nowhere gyrus"], progress=False)


def test_ground_truth_eeg_is_200_hz_and_clean(small_dataset, small_runs):
    files = run_files(small_dataset, small_runs[0])
    truth = mne.io.read_raw_fif(files["truth_eeg"], verbose=False)
    assert truth.info["sfreq"] == 200
    assert len(truth.ch_names) == 30
    x = truth.get_data()
    assert 2e-6 < np.median(x.std(axis=1)) < 50e-6  # EEG-sized, no millivolt artifact
    # Alpha dominates the occipital spectrum.
    psd, freqs = mne.time_frequency.psd_array_welch(x[truth.ch_names.index("O1")], 200, n_fft=800)
    band = (freqs > 8) & (freqs < 12)
    assert psd[band].mean() > 3 * psd[(freqs > 14) & (freqs < 18)].mean()


def _validator():
    exe = os.environ.get("NEUROBOLT_BIDS_VALIDATOR")
    local = REPO / ".tools" / "node_modules" / ".bin" / "bids-validator"
    return exe or (str(local) if local.exists() else shutil.which("bids-validator"))


def test_dataset_passes_the_bids_validator(small_dataset):
    exe = _validator()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("bids-validator is not installed: run the README's test command")
        pytest.skip(
            "bids-validator 1.15 not installed (npm install --prefix .tools bids-validator@1.15.0)"
        )
    out = subprocess.run(
        [exe, str(small_dataset), "--json"], capture_output=True, text=True, timeout=600
    )
    report = json.loads(out.stdout)
    errors = report["issues"]["errors"]
    assert errors == [], [(e["key"], e["reason"]) for e in errors]
