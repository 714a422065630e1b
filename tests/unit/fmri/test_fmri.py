"""Known-answer tests of the fMRI stage (neurobolt.fmri): atlas, filters, extraction, I/O."""

from __future__ import annotations

import json
import socket
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import signal as sp_signal

from neurobolt.fmri import atlas as atlas_mod
from neurobolt.fmri.atlas import (
    GLOBAL_SIGNAL,
    AtlasNotFoundError,
    difumo_files,
    load_atlas,
    match_rois,
    normalize_label,
    read_labels,
)
from neurobolt.fmri.signals import (
    MOTION_6,
    FMRIInputError,
    extract_roi_signals,
    lowpass_filter,
    lowpass_sos,
    non_steady_state_mask,
    normalize_signals,
    regress_out,
    select_confounds,
)
from neurobolt.jobs import roi_signals

HESCHL = "Heschl\u2019s gyrus"
LABELS = ["Cuneus", HESCHL, "Putamen", "Thalamus", "Precuneus anterior"]
SPACE = "MNI152NLin6Asym"


# --------------------------------------------------------------------------- helpers


def _sweep_gain_db(sfreq, freqs, n=4000, **filter_opts):
    """Gain (dB) of the zero-phase low-pass measured on sinusoids, one per frequency."""
    freqs = np.asarray(freqs, dtype=float)
    t = np.arange(n) / sfreq
    x = np.sin(2 * np.pi * np.outer(t, freqs))
    y = lowpass_filter(x, sfreq=sfreq, **filter_opts)
    mid = slice(n // 4, 3 * n // 4)  # away from the edges
    gains = []
    for k, f in enumerate(freqs):
        basis = np.column_stack([np.sin(2 * np.pi * f * t[mid]), np.cos(2 * np.pi * f * t[mid])])
        coef, *_ = np.linalg.lstsq(basis, y[mid, k], rcond=None)
        gains.append(np.hypot(*coef))
    return 20 * np.log10(np.maximum(gains, 1e-300))


def _minus3db_frequency(sfreq, **filter_opts):
    freqs = np.arange(0.10, 0.20, 0.0005)
    gain = _sweep_gain_db(sfreq, freqs, **filter_opts)
    i = int(np.flatnonzero(gain < -3.0)[0])
    return float(np.interp(-3.0, [gain[i], gain[i - 1]], [freqs[i], freqs[i - 1]]))


def _corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def _slow_noise(rng, n, tr, cutoff=0.08, k=1):
    sos = sp_signal.butter(4, cutoff, fs=1 / tr, output="sos")
    return sp_signal.sosfiltfilt(sos, rng.standard_normal((n + 100, k)), axis=0)[50:-50]


def _synthetic_run(
    *, n_vol=120, tr=2.1, shape=(12, 12, 10), n_nss=2, motion_gain=3.0, seed=0, noise=0.2
):
    """Tiny BOLD run: Gaussian-blob maps carrying slow signals + motion + NSS volumes."""
    rng = np.random.default_rng(seed)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = -np.array(shape) * 1.5
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1)
    centers = [(3, 3, 3), (8, 4, 5), (4, 8, 6), (8, 8, 4), (6, 6, 7)]
    maps = np.stack(
        [np.exp(-((grid - c) ** 2).sum(-1) / (2 * 2.0**2)) for c in centers], axis=-1
    ).astype(np.float32)
    maps[maps < 0.05] = 0
    mask = ((grid - (np.array(shape) - 1) / 2) ** 2 / (np.array(shape) / 2.2) ** 2).sum(-1) <= 1
    truth = _slow_noise(rng, n_vol, tr, k=len(centers))
    truth /= truth.std(axis=0)
    motion = np.cumsum(rng.standard_normal((n_vol, 6)), axis=0) * 0.05
    motion -= motion.mean(axis=0)
    weights = rng.standard_normal(shape + (6,)) * motion_gain
    data = 1000.0 + maps @ truth.T * 10.0 + weights @ motion.T
    data += rng.standard_normal(data.shape) * noise
    data[..., :n_nss] += 300.0
    data[~mask] = 0.0
    confounds = pd.DataFrame(motion, columns=list(MOTION_6))
    for j, name in enumerate(MOTION_6):
        deriv = np.r_[np.nan, np.diff(motion[:, j])]
        confounds[f"{name}_derivative1"] = deriv
    for j in range(n_nss):
        confounds[f"non_steady_state_outlier{j:02d}"] = (np.arange(n_vol) == j).astype(float)
    return {
        "bold": nib.Nifti1Image(data.astype(np.float32), affine),
        "maps": nib.Nifti1Image(maps, affine),
        "mask": nib.Nifti1Image(mask.astype(np.uint8), affine),
        "mask_array": mask,
        "data": data,
        "truth": truth,
        "motion": motion,
        "confounds": confounds,
        "tr": tr,
    }


def _oracle(series, run, *, kept, detrend_order=1):
    """The known answer: a series pushed through the same regression, filter and scaling."""
    resid = regress_out(series[kept], run["motion"][kept], detrend_order=detrend_order)
    return normalize_signals(lowpass_filter(resid, sfreq=1 / run["tr"]))


def _write_run(root: Path, run, *, name=None, tr_sidecar=None, tr_header=None, n_rows=None):
    """Write the synthetic run as fMRIPrep-like files; return the inputs dict."""
    func = root / "derivatives" / "fmriprep" / "sub-01" / "func"
    func.mkdir(parents=True, exist_ok=True)
    name = name or f"sub-01_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz"
    bold = run["bold"]
    if bold.ndim == 4:
        bold = nib.Nifti1Image(np.asarray(bold.dataobj), bold.affine)
        bold.header.set_zooms((3.0, 3.0, 3.0, tr_header or run["tr"]))
        bold.header.set_xyzt_units("mm", "sec")
    bold_path = func / name
    nib.save(bold, bold_path)
    stem = name.replace("_bold.nii.gz", "")
    sidecar = func / f"{stem}_bold.json"
    sidecar.write_text(json.dumps({"RepetitionTime": tr_sidecar or run["tr"]}))
    mask_path = func / "sub-01_task-rest_space-MNI152NLin6Asym_desc-brain_mask.nii.gz"
    nib.save(run["mask"], mask_path)
    conf = run["confounds"] if n_rows is None else run["confounds"].iloc[:n_rows]
    conf_path = func / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    conf.to_csv(conf_path, sep="\t", index=False, na_rep="n/a")
    atlas_dir = root / "derivatives" / "simulation" / "atlas"
    atlas_dir.mkdir(parents=True, exist_ok=True)
    nib.save(run["maps"], atlas_dir / "maps.nii.gz")
    pd.DataFrame({"Component": range(1, len(LABELS) + 1), "Difumo_names": LABELS}).to_csv(
        atlas_dir / "labels_64_dictionary.csv", index=False
    )
    return {"preproc_bold": bold_path, "mask": mask_path, "confounds": conf_path}, {
        "atlas": {
            "maps": str(atlas_dir / "maps.nii.gz"),
            "labels": str(atlas_dir / "labels_64_dictionary.csv"),
        },
        "rois": ["Heschl's gyrus", "cuneus", "Thalamus", GLOBAL_SIGNAL],
    }


@pytest.fixture(scope="module")
def run():
    return _synthetic_run()


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test on any attempt to open a connection or call nilearn's fetcher."""

    calls = []

    def refuse(*args, **kwargs):
        calls.append((args, kwargs))
        raise AssertionError("the test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("nilearn.datasets.fetch_atlas_difumo", refuse)
    yield calls
    assert calls == [], "a download or connection was attempted"


# --------------------------------------------------------------------------- atlas


@pytest.mark.parametrize(
    "variant",
    ["Heschl's gyrus", "heschl’s GYRUS", "Heschl‘s gyrus", "Heschl`s  gyrus", "HESCHLʼS GYRUS"],
)
def test_label_matching_apostrophes_and_case(variant):
    assert normalize_label(variant) == normalize_label(HESCHL)
    assert match_rois([variant, "cuneus"], LABELS) == [1, 0]


def test_label_matching_unknown_suggests():
    with pytest.raises(ValueError, match="Heschl"):
        match_rois(["Heschl gyrus"], LABELS)


def test_missing_atlas_no_download(tmp_path, no_network):
    with pytest.raises(AtlasNotFoundError) as info:
        load_atlas(dimension=64, resolution_mm=2, data_dir=tmp_path, download=False)
    files = difumo_files(tmp_path, dimension=64, resolution_mm=2)
    message = str(info.value)
    assert str(files["maps"]) in message and str(files["labels"]) in message
    assert files["maps"] == tmp_path / "difumo_atlases" / "64" / "2mm" / "maps.nii.gz"
    assert files["labels"] == tmp_path / "difumo_atlases" / "64" / "labels_64_dictionary.csv"
    assert "fmri.atlas.maps" in message and "osf.io/pqu9r" in message


def test_missing_atlas_download_fails_cleanly(tmp_path, monkeypatch):
    calls = []

    def offline(**kwargs):
        calls.append(kwargs)
        raise OSError("Network is unreachable")

    monkeypatch.setattr("nilearn.datasets.fetch_atlas_difumo", offline)
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: pytest.fail("network used"))
    with pytest.raises(AtlasNotFoundError, match="Network is unreachable") as info:
        load_atlas(dimension=128, resolution_mm=3, data_dir=tmp_path, download=True)
    assert calls and calls[0]["data_dir"] == str(tmp_path)
    assert str(tmp_path / "difumo_atlases" / "128" / "3mm" / "maps.nii.gz") in str(info.value)


def test_atlas_in_data_dir_is_read_without_nilearn(tmp_path, no_network, run):
    files = difumo_files(tmp_path, dimension=64, resolution_mm=2)
    files["maps"].parent.mkdir(parents=True)
    maps = np.zeros((2, 2, 2, 64), dtype=np.float32)
    nib.save(nib.Nifti1Image(maps, np.eye(4)), files["maps"])
    names = [f"Region {i}" for i in range(64)]
    names[10] = HESCHL
    table = pd.DataFrame({"Component": range(1, 65), "Difumo_names": names})
    table.iloc[::-1].to_csv(files["labels"], index=False)  # shuffled rows: sorted by Component
    atlas = atlas_mod.atlas_from_config({"atlas": {"data_dir": str(tmp_path)}})
    assert atlas.source == "data_dir" and atlas.dimension == 64
    assert atlas.labels[10] == HESCHL and atlas.labels[0] == "Region 0"
    assert read_labels(files["labels"])[10] == HESCHL


def test_local_atlas_label_count_mismatch(tmp_path, run):
    nib.save(run["maps"], tmp_path / "maps.nii.gz")
    pd.DataFrame({"Difumo_names": LABELS[:3]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match="3 labels but maps"):
        load_atlas(maps=tmp_path / "maps.nii.gz", labels=tmp_path / "labels.csv")


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize("tr", [0.5, 2.1])
def test_lowpass_minus_3db_at_cutoff(tr):
    f3 = _minus3db_frequency(1 / tr, cutoff=0.15, order=5)
    assert abs(f3 - 0.15) <= 0.01, f3
    assert abs(f3 - 0.15) <= 0.001, f3  # the design puts it there exactly


def test_lowpass_single_pass_design_is_lower():
    # The reference's design (butter at 0.15 then filtfilt) is -3 dB at ~0.138 Hz at TR 0.5 s.
    f3 = _minus3db_frequency(2.0, cutoff=0.15, order=5, cutoff_definition="single_pass_3db")
    assert 0.13 < f3 < 0.14


def test_lowpass_stopband_40db():
    # 0.3 Hz is above Nyquist (0.238 Hz) at TR 2.1 s, so the 0.3 Hz attenuation of the
    # design is measured at TR 0.5 s (Nyquist 1 Hz), where it exists.
    gain = _sweep_gain_db(2.0, [0.3, 0.4, 0.6, 0.9])
    assert np.all(gain <= -40.0), gain
    # At TR 2.1 s: >= 40 dB from 0.19 Hz up to Nyquist; 0.3 Hz content aliases to 0.176 Hz.
    gain = _sweep_gain_db(1 / 2.1, [0.19, 0.21, 0.23])
    assert np.all(gain <= -40.0), gain
    assert _sweep_gain_db(1 / 2.1, [1 / 2.1 - 0.3])[0] <= -25.0


def test_lowpass_is_zero_phase_and_passes_dc():
    tr = 2.1
    t = np.arange(600) * tr
    x = np.sin(2 * np.pi * 0.03 * t) + 5.0
    y = lowpass_filter(x, sfreq=1 / tr)
    assert np.allclose(y[100:-100], x[100:-100], atol=2e-3)
    with pytest.raises(ValueError, match="Nyquist"):
        lowpass_sos(sfreq=1 / 2.1, cutoff=0.3)


def test_normalize_signals():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 3)) * [1.0, 10.0, 0.1] + [5.0, -2.0, 100.0]
    y = normalize_signals(x)
    assert np.allclose(y.mean(axis=0), 0.0, atol=1e-12)
    assert np.allclose(np.percentile(np.abs(y), 95, axis=0), 1.0)
    with pytest.warns(UserWarning, match="constant"):
        z = normalize_signals(np.c_[np.full(50, 3.0), np.arange(50.0)])
    assert np.all(z[:, 0] == 0)


def test_regress_out_removes_motion():
    rng = np.random.default_rng(2)
    motion = np.cumsum(rng.standard_normal((200, 6)), axis=0)
    clean = rng.standard_normal((200, 2))
    y = clean + motion @ rng.standard_normal((6, 2)) * 3 + np.linspace(0, 5, 200)[:, None]
    before = max(abs(_corr(y[:, 0], motion[:, j])) for j in range(6))
    resid = regress_out(y, motion, detrend_order=1)
    after = max(abs(_corr(resid[:, k], motion[:, j])) for k in range(2) for j in range(6))
    assert before > 0.3 and after < 1e-10


def test_select_confounds_fills_leading_na_only():
    table = pd.DataFrame(
        {"a": [np.nan, 1.0, 2.0, 3.0], "b_x": [1.0, 2, 3, 4], "b_y": [0.0, 1, 0, 1]}
    )
    sel = select_confounds(table, ["a", "b_*"])
    assert list(sel.columns) == ["a", "b_x", "b_y"] and sel.iloc[0, 0] == 0.0
    table.loc[2, "a"] = np.nan
    with pytest.raises(FMRIInputError, match="rows \\[0, 2\\]"):
        select_confounds(table, ["a"])
    with pytest.raises(FMRIInputError, match="rot_q"):
        select_confounds(table, ["rot_q"])


def test_non_steady_state_mask():
    table = pd.DataFrame({"non_steady_state_outlier00": [1, 0, 0], "x": [0, 0, 0]})
    table["non_steady_state_outlier01"] = [0, 1, 0]
    assert non_steady_state_mask(table).tolist() == [True, True, False]


# --------------------------------------------------------------------------- extraction


def test_extract_roi_signals_known_answer(run):
    rois = ["Heschl's gyrus", "cuneus", "thalamus", "Global signal"]
    df = extract_roi_signals(
        run["bold"],
        run["maps"],
        mask_img=run["mask"],
        confounds=run["confounds"],
        tr=run["tr"],
        config={"rois": rois},
        labels=LABELS,
    )
    kept = np.arange(2, 120)
    assert df.index.tolist() == kept.tolist() and df.attrs["kept_volumes"] == kept.tolist()
    assert df.attrs["dropped_volumes"] == [0, 1]
    assert list(df.columns) == [*LABELS, GLOBAL_SIGNAL]
    assert df.attrs["targets"] == [HESCHL, "Cuneus", "Thalamus", GLOBAL_SIGNAL]
    assert df.attrs["regressors"] == list(MOTION_6)
    # Normalisation of the output.
    assert np.allclose(df.mean(), 0.0, atol=1e-10)
    assert np.allclose(np.percentile(np.abs(df.to_numpy()), 95, axis=0), 1.0)
    # Each ROI recovers its known answer; the global signal is the mean over the mask.
    for k, label in enumerate(LABELS):
        assert _corr(df[label], _oracle(run["truth"][:, k], run, kept=kept)) > 0.98, label
    glob = run["data"][run["mask_array"]].mean(axis=0)
    assert _corr(df[GLOBAL_SIGNAL], _oracle(glob, run, kept=kept)) > 0.9999
    # Motion is gone: |r| with the (equally low-passed) motion regressors < 0.05.
    motion_lp = lowpass_filter(run["motion"][kept], sfreq=1 / run["tr"])
    worst = max(abs(_corr(df[c], motion_lp[:, j])) for c in df.columns for j in range(6))
    assert worst < 0.05, worst
    # ... whereas without motion regression it is there.
    raw = extract_roi_signals(
        run["bold"],
        run["maps"],
        mask_img=run["mask"],
        confounds=run["confounds"],
        tr=run["tr"],
        config={"rois": rois, "confounds": []},
        labels=LABELS,
    )
    assert max(abs(_corr(raw[c], motion_lp[:, j])) for c in raw.columns for j in range(6)) > 0.3


def test_extract_resamples_atlas_to_data_grid(run):
    # Same blobs on a finer (1.5 mm) grid over the same field of view.
    fine = nib.Nifti1Image(np.zeros((24, 24, 20, 1), dtype=np.float32), np.eye(4))
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    affine[:3, 3] = run["maps"].affine[:3, 3] - 0.75
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in fine.shape[:3]], indexing="ij"), -1)
    world = grid * 1.5 + affine[:3, 3]
    centers = [(3, 3, 3), (8, 4, 5), (4, 8, 6), (8, 8, 4), (6, 6, 7)]
    maps = []
    for c in centers:
        cw = np.array(c) * 3.0 + run["maps"].affine[:3, 3]
        maps.append(np.exp(-((world - cw) ** 2).sum(-1) / (2 * 6.0**2)))
    maps_fine = nib.Nifti1Image(np.stack(maps, -1).astype(np.float32), affine)
    df = extract_roi_signals(
        run["bold"],
        maps_fine,
        mask_img=run["mask"],
        confounds=run["confounds"],
        tr=run["tr"],
        config={"rois": ["Cuneus"]},
        labels=LABELS,
    )
    kept = np.arange(2, 120)
    for k, label in enumerate(LABELS):
        assert _corr(df[label], _oracle(run["truth"][:, k], run, kept=kept)) > 0.95, label


def test_extract_without_confounds_keeps_all_volumes(run):
    df = extract_roi_signals(
        run["bold"],
        run["maps"],
        mask_img=run["mask"],
        tr=run["tr"],
        labels=LABELS,
        config={"rois": ["Putamen"]},
    )
    assert len(df) == 120 and df.attrs["regressors"] == [] and df.attrs["targets"] == ["Putamen"]


def test_target_outside_mask_is_an_error(run):
    mask = np.zeros(run["mask"].shape, dtype=np.uint8)
    mask[3, 3, 3] = 1  # only the first blob (Cuneus)
    mask[2, 3, 3] = 1
    with pytest.raises(FMRIInputError, match="Thalamus"):
        extract_roi_signals(
            run["bold"],
            run["maps"],
            mask_img=nib.Nifti1Image(mask, run["mask"].affine),
            tr=run["tr"],
            labels=LABELS,
            config={"rois": ["Thalamus"]},
        )


# --------------------------------------------------------------------------- the roi_signals job


def run_roi_signals(inputs, outputs, cfg):
    """The roi_signals job with the ``fmri`` section ``cfg``, as the rule passes it."""
    return roi_signals.run(inputs, outputs, {"cfg": cfg})


def _outputs(tmp_path):
    out = tmp_path / "results" / "sub-01" / "func"
    return {"timeseries": out / "sub-01_task-rest_atlas-DiFuMo64_timeseries.tsv"}, out


def test_run_roi_signals_writes_tsv_and_sidecar(tmp_path, run, no_network):
    inputs, params = _write_run(tmp_path, run)
    outputs, out = _outputs(tmp_path)
    meta = run_roi_signals(inputs, outputs, params)
    table = pd.read_csv(outputs["timeseries"], sep="\t")
    sidecar = json.loads((out / "sub-01_task-rest_atlas-DiFuMo64_timeseries.json").read_text())
    assert list(table.columns) == [*LABELS, GLOBAL_SIGNAL]  # U+2019 kept in the header
    assert len(table) == 118 and sidecar["KeptVolumes"] == list(range(2, 120))
    assert sidecar["NumberOfVolumes"] == 120 and sidecar["DroppedVolumes"] == [0, 1]
    assert sidecar["SamplingFrequency"] == pytest.approx(1 / 2.1)
    assert sidecar["StartTime"] == pytest.approx(2 * 2.1)
    assert sidecar["TargetColumns"] == [HESCHL, "Cuneus", "Thalamus", GLOBAL_SIGNAL]
    assert sidecar["ConfoundRegressors"] == list(MOTION_6)
    assert sidecar["LowPassFilter"]["CutoffHz"] == 0.15 and sidecar["LowPassFilter"]["Order"] == 5
    assert sidecar["config_hash"] and sidecar["neurobolt_version"]
    assert set(sidecar["Sources"]) >= {
        "preproc_bold",
        "bold_json",
        "mask",
        "confounds",
        "atlas_maps",
    }
    assert meta["Columns"] == sidecar["Columns"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "sub-01_task-rest_atlas-DiFuMo64_timeseries.tsv",
            "sub-01_task-rest_atlas-DiFuMo64_timeseries.json",
        ]
    )
    assert np.allclose(table.mean(), 0, atol=1e-6)


def _bad(run, **changes):
    bad = dict(run)
    bad.update(changes)
    return bad


def _with_nan(run, n_voxels, *, inside=True):
    data = np.array(run["bold"].dataobj)
    where = np.argwhere(run["mask_array"] if inside else ~run["mask_array"])[:n_voxels]
    for i, (x, y, z) in enumerate(where):
        data[x, y, z, 5 + i] = np.nan
    return nib.Nifti1Image(data, run["bold"].affine)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("3d", "4-D"),
        ("few_volumes", "8 volumes, fewer than fmri.min_volumes"),
        ("native_no_space", "native space"),
        ("native_t1w", "space-T1w is not an MNI space"),
        ("nan_inside", "NaN/inf in 3 of .* voxels inside the brain mask"),
        ("confound_rows", "has 100 rows but .* has 120 volumes"),
        ("tr_mismatch", "TR disagreement: the sidecar says RepetitionTime 2 s but"),
        ("nss_gap", "not a leading block"),
    ],
)
def test_bad_inputs_error_and_write_nothing(tmp_path, run, no_network, case, match):
    kwargs = {}
    bad = run
    if case == "3d":
        bad = _bad(run, bold=nib.Nifti1Image(np.asarray(run["bold"].dataobj)[..., 0], np.eye(4)))
    elif case == "few_volumes":
        bad = _bad(run, bold=run["bold"].slicer[..., :8])
    elif case == "native_no_space":
        kwargs["name"] = "sub-01_task-rest_desc-preproc_bold.nii.gz"
    elif case == "native_t1w":
        kwargs["name"] = "sub-01_task-rest_space-T1w_desc-preproc_bold.nii.gz"
    elif case == "nan_inside":
        bad = _bad(run, bold=_with_nan(run, 3))
    elif case == "confound_rows":
        kwargs["n_rows"] = 100
    elif case == "tr_mismatch":
        kwargs["tr_sidecar"] = 2.0
    elif case == "nss_gap":
        conf = run["confounds"].copy()
        conf["non_steady_state_outlier02"] = (np.arange(120) == 50).astype(float)
        bad = _bad(run, confounds=conf)
    inputs, params = _write_run(tmp_path, bad, **kwargs)
    outputs, out = _outputs(tmp_path)
    with pytest.raises(FMRIInputError, match=match) as info:
        run_roi_signals(inputs, outputs, params)
    assert str(inputs["preproc_bold"].name) in str(info.value) or "confounds" in str(info.value)
    assert not out.exists() or not any(out.iterdir())


def test_nan_zero_fill_policy_and_nan_outside_mask(tmp_path, run, no_network):
    inputs, params = _write_run(tmp_path, _bad(run, bold=_with_nan(run, 3)))
    outputs, _ = _outputs(tmp_path)
    with pytest.warns(UserWarning, match="replacing 3 NaN"):
        meta = run_roi_signals(inputs, outputs, {**params, "nan_policy": "zero"})
    assert meta["NonFiniteVoxels"] == {"voxels": 3, "volumes": 3, "values": 3, "policy": "zero"}
    inputs, params = _write_run(tmp_path, _bad(run, bold=_with_nan(run, 4, inside=False)))
    meta = run_roi_signals(inputs, outputs, params)
    assert meta["NonFiniteVoxels"]["voxels"] == 0


def test_template_mismatch_warns(tmp_path, run, no_network):
    name = "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    inputs, params = _write_run(tmp_path, run, name=name)
    outputs, _ = _outputs(tmp_path)
    with pytest.warns(UserWarning, match="MNI152NLin2009cAsym but the atlas is defined in"):
        run_roi_signals(inputs, outputs, params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inputs, params = _write_run(tmp_path, run)
        run_roi_signals(inputs, outputs, params)


def test_roi_signals_on_simulated_dataset(small_dataset, small_runs, tmp_path, no_network):
    """The simulator's data: every run gives the targets, drops the 2 dummy volumes, loses motion.

    These runs are short (2 min, 55 kept volumes). Regressing motion and then low-passing
    (the default, "sequential") lets the filter bring back some motion-correlated variance
    (Lindquist et al. 2019): up to |r| 0.08 here, 0.01 on the 6-min demo runs. Filtering the
    regressors too ("orthogonal") leaves none.
    """
    from neurobolt.simulate import atlas_files, run_files

    atlas = atlas_files(small_dataset)
    params = {"atlas": {"maps": str(atlas["maps"]), "labels": str(atlas["labels"])}}
    for sim_run in small_runs:
        files = run_files(small_dataset, sim_run)
        inputs = {key: files[key] for key in ("bold", "preproc_bold", "mask", "confounds")}
        motion = pd.read_csv(files["confounds"], sep="\t")[list(MOTION_6)].to_numpy()[2:]
        motion_lp = lowpass_filter(motion, sfreq=1 / 2.1)
        worst = {}
        for mode in ("none", "sequential", "orthogonal"):
            config = dict(
                params, confound_filtering="orthogonal" if mode == "orthogonal" else "sequential"
            )
            if mode == "none":
                config["confounds"] = []
            out = tmp_path / mode / f"{sim_run.stem}_atlas-DiFuMo64_timeseries.tsv"
            meta = run_roi_signals(inputs, {"timeseries": out}, config)
            table = pd.read_csv(out, sep="\t")
            n_vol = meta["NumberOfVolumes"]
            assert meta["KeptVolumes"] == list(range(2, n_vol)) and len(table) == n_vol - 2
            assert meta["TargetColumns"] == [*atlas_mod.PAPER_ROIS, GLOBAL_SIGNAL]
            assert len(meta["Columns"]) == 65 and meta["EmptyRois"] == []
            assert meta["RepetitionTime"] == 2.1
            worst[mode] = max(
                abs(_corr(table[c], motion_lp[:, j]))
                for c in meta["TargetColumns"]
                for j in range(6)
            )
        assert worst["none"] > 0.3, worst  # the simulator does inject motion
        assert worst["sequential"] < 0.1 and worst["orthogonal"] < 1e-6, worst


def test_extracted_targets_match_the_simulated_neural_signal(
    small_dataset, small_runs, tmp_path, no_network
):
    """Acceptance: each target ROI correlates with the simulator's neural ROI signal (no motion,
    no thermal noise), passed through the same regression and filter, at r >= 0.90."""
    from neurobolt.simulate import NULL_ROIS, atlas_files, run_files

    atlas = atlas_files(small_dataset)
    params = {
        "atlas": {"maps": str(atlas["maps"]), "labels": str(atlas["labels"])},
        "rois": [*atlas_mod.DEFAULT_ROIS, *NULL_ROIS],  # the demo's targets
    }
    worst = 1.0
    for sim_run in small_runs:
        files = run_files(small_dataset, sim_run)
        inputs = {key: files[key] for key in ("bold", "preproc_bold", "mask", "confounds")}
        out = tmp_path / f"{sim_run.stem}_atlas-DiFuMo64_timeseries.tsv"
        meta = run_roi_signals(inputs, {"timeseries": out}, params)
        table = pd.read_csv(out, sep="\t")
        kept = np.asarray(meta["KeptVolumes"])
        motion = pd.read_csv(files["confounds"], sep="\t")[list(MOTION_6)].to_numpy()[kept]
        neural = pd.read_csv(files["neural_rois"], sep="\t").iloc[kept]
        for roi in meta["TargetColumns"]:
            same = lowpass_filter(
                regress_out(neural[[roi]].to_numpy(), motion, detrend_order=1), sfreq=1 / 2.1
            )[:, 0]
            worst = min(worst, _corr(table[roi], same))
    assert worst >= 0.90, worst
