"""Window store: alignment cases, schema, bit-exact windows, atomic writes, lazy Dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import mne
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from neurobolt import store as st
from neurobolt.jobs import windows

SFREQ, TR = 200.0, 2.1
STEP = int(TR * SFREQ)  # 420 samples


def _markers(n, first=2000):
    return first + STEP * np.arange(n)


def _align(markers, n_bold, *, n_times=None, kept=None, **kw):
    n_times = n_times if n_times is not None else int(markers[-1] + 5 * SFREQ)
    kept = np.arange(n_bold) if kept is None else kept
    return st.align_volumes(
        markers, n_times=n_times, sfreq=SFREQ, n_bold_volumes=n_bold, kept_volumes=kept, tr=TR, **kw
    )


def test_one_marker_per_volume_and_the_window_rule():
    a = _align(_markers(40), 40)
    np.testing.assert_array_equal(a.onsets, _markers(40))
    # Valid only with 16 s (3200 samples) of EEG before the onset: 2000 + 420 k >= 3200.
    assert a.valid.tolist() == [k >= 3 for k in range(40)]
    assert a.marker_tr == pytest.approx(TR)


def test_dropped_volumes_and_dummy_markers():
    kept = np.arange(2, 40)  # the fMRI stage dropped 2 non-steady-state volumes
    a = _align(np.r_[500, 920, _markers(40)], 40, kept=kept, dummy_markers=2)
    np.testing.assert_array_equal(a.volumes, kept)
    np.testing.assert_array_equal(a.onsets, _markers(40)[2:])


def test_extra_markers_are_refused_with_the_counts():
    with pytest.raises(st.AlignmentError, match=r"42 volume markers .* 40 BOLD volumes.*dummy"):
        _align(_markers(42), 40, names="a.fif and b.tsv")


def test_missing_markers_inside_the_recording_are_refused():
    m = np.delete(_markers(40), 20)
    with pytest.raises(st.AlignmentError, match="differ from the TR"):
        _align(m, 40)


def test_tr_mismatch_names_both_files():
    with pytest.raises(st.AlignmentError, match=r"2\.0000 s .* 2\.1 s .*eeg\.fif and rois\.tsv"):
        st.align_volumes(
            1000 + 400 * np.arange(30),
            n_times=20000,
            sfreq=SFREQ,
            n_bold_volumes=30,
            kept_volumes=range(30),
            tr=TR,
            names="eeg.fif and rois.tsv",
        )


def test_eeg_that_starts_late_leaves_the_first_volumes_invalid():
    full = _markers(40, first=2000)
    a = _align(full[5:] - full[5] + 100, 40)  # recording started 100 samples before marker 6
    assert a.note.startswith("EEG started late")
    assert not a.valid[:13].any() and a.valid[13:].all()
    np.testing.assert_array_equal(np.diff(a.onsets), STEP)


def test_eeg_shorter_than_bold_leaves_the_last_volumes_invalid():
    m = _markers(30)
    a = _align(m, 40, n_times=int(m[-1] + 100))
    assert a.note.startswith("EEG ended early")
    assert a.valid[3:30].all() and not a.valid[30:].any()


def _write(tmp_path, n_ch=4, n_vol=40, compression=None, seed=0):
    rng = np.random.default_rng(seed)
    markers = _markers(n_vol)
    eeg = rng.normal(0, 20e-6, (n_ch, int(markers[-1] + 5 * SFREQ)))
    align = _align(markers, n_vol)
    targets = rng.normal(size=(n_vol, 2))
    path = st.write_store(
        tmp_path / "run_windows.h5",
        eeg=eeg,
        sfreq=SFREQ,
        alignment=align,
        targets=targets,
        ch_names=[f"C{i}" for i in range(n_ch)],
        roi_names=["Cuneus", "Heschl\u2019s gyrus"],
        tr=TR,
        sources={"x.fif": "0" * 64},
        config={"window_s": 16},
        compression=compression,
    )
    return path, eeg.astype(np.float32), align, targets.astype(np.float32)


def test_store_roundtrip_attrs_and_size(tmp_path):
    path, eeg, align, targets = _write(tmp_path, n_ch=26, n_vol=120)
    with st.WindowStore(path) as store:
        assert store.ch_names[0] == "C0" and store.roi_names[1] == "Heschl\u2019s gyrus"
        assert store.sfreq == 200 and store.window_s == 16 and store.tr == TR
        i = int(store.valid_indices()[0])
        x, y = store.window(i)
        assert x.shape == (26, 16, 200) and x.dtype == np.float32
        np.testing.assert_array_equal(y, targets[i])
        np.testing.assert_allclose(x.mean(axis=(1, 2)), 0, atol=1e-4)
    with h5py.File(path) as f:
        assert f["eeg"].chunks == (26, 3200)
        assert {"neurobolt_version", "config_hash", "sources"} <= set(f.attrs)
    ratio = os.path.getsize(path) / (eeg.nbytes + targets.nbytes)
    assert ratio <= 1.1, ratio


def test_scale_window_is_microvolts_over_100_demeaned():
    raw = np.full((2, 400), 50e-6, np.float32)
    raw[1] += np.float32(100e-6) * np.sin(np.arange(400) * 2 * np.pi / 200).astype(np.float32)
    x = st.scale_window(raw, sfreq=200)
    assert x.shape == (2, 2, 200)
    np.testing.assert_allclose(x[0], 0, atol=1e-5)
    np.testing.assert_allclose(np.abs(x[1]).max(), 1.0, rtol=1e-3)


def _fif_and_table(tmp_path, n_vol=60, seed=1):
    """A cleaned-EEG FIF with volume markers, and an fMRI-stage table + sidecar."""
    rng = np.random.default_rng(seed)
    markers = _markers(n_vol, first=1700)
    n_times = int(markers[-1] + 4 * SFREQ)
    info = mne.create_info(["O1", "O2", "CZ"], SFREQ, "eeg")
    raw = mne.io.RawArray(rng.normal(0, 20e-6, (3, n_times)), info, verbose=False)
    raw.set_annotations(
        mne.Annotations(markers / SFREQ, 0.0, ["Response/R128"] * n_vol)
        + mne.Annotations([1.0], [0.0], ["Comment/other"])
    )
    fif = tmp_path / "sub-01_task-rest_desc-clean_eeg.fif"
    raw.save(fif, verbose=False)
    kept = list(range(2, n_vol))
    table = pd.DataFrame(
        {"Cuneus": rng.normal(size=len(kept)), "global signal": rng.normal(size=len(kept))}
    )
    tsv = tmp_path / "sub-01_task-rest_atlas-DiFuMo64_timeseries.tsv"
    table.to_csv(tsv, sep="\t", index=False)
    tsv.with_suffix(".json").write_text(
        json.dumps(
            {
                "NumberOfVolumes": n_vol,
                "KeptVolumes": kept,
                "RepetitionTime": TR,
                "TargetColumns": ["Cuneus", "global signal"],
            }
        )
    )
    return fif, tsv, table


PARAMS = {
    "cfg": {"window_s": 16.0, "dummy_markers": 0, "tr_tolerance": 0.01},
    "volume_marker": "R128",
}


def test_dataset_windows_equal_slices_of_the_cleaned_fif(tmp_path):
    fif, tsv, table = _fif_and_table(tmp_path)
    out = tmp_path / "sub-01_task-rest_windows.h5"
    windows.run({"eeg": fif, "rois": tsv}, {"store": out}, PARAMS)
    raw = mne.io.read_raw_fif(fif, verbose=False)
    data = raw.get_data()
    markers = _markers(60, first=1700)
    ds = st.WindowDataset([out])
    rng = np.random.default_rng(0)
    with st.WindowStore(out) as store:
        for item in rng.choice(len(ds), size=15, replace=False):
            row = int(ds._index[item][1])
            volume = int(store.volumes[row])
            x, y = ds[int(item)]
            expected = st.scale_window(data[:, markers[volume] - 3200 : markers[volume]], sfreq=200)
            np.testing.assert_array_equal(x.numpy(), expected)  # bit-exact
            np.testing.assert_array_equal(y.numpy(), table.iloc[row].to_numpy(np.float32))
    # Selection by rows (a split) and by ROI.
    sub = st.WindowDataset([out], [np.array([10, 11])], rois=["global signal"])
    assert len(sub) == 2 and sub[0][1].shape == (1,)
    with pytest.raises(ValueError, match="no full window"):
        st.WindowDataset([out], [np.array([0])])


def test_dataloader_workers_read_the_same_windows(tmp_path):
    path, *_ = _write(tmp_path, n_vol=30)
    ds = st.WindowDataset([path, path])
    assert len(ds) == 2 * 27
    serial = torch.cat([x for x, _ in DataLoader(ds, batch_size=8)])
    parallel = torch.cat([x for x, _ in DataLoader(ds, batch_size=8, num_workers=2)])
    torch.testing.assert_close(serial, parallel, rtol=0, atol=0)


def test_truncated_or_foreign_files_are_refused_by_name(tmp_path):
    path, *_ = _write(tmp_path, n_ch=8, n_vol=60)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(st.StoreError, match=r"run_windows\.h5.*delete it"):
        st.WindowStore(path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["eeg"] = np.zeros((2, 10))
    with pytest.raises(st.StoreError, match=r"other\.h5: dataset /onsets is missing"):
        st.WindowStore(other)
    with pytest.raises(st.StoreError, match="no such window store"):
        st.WindowStore(tmp_path / "absent.h5")


def test_a_killed_writer_leaves_no_file_and_the_rerun_rebuilds_it(tmp_path):
    final = tmp_path / "run_windows.h5"
    ready = tmp_path / "ready"
    code = textwrap.dedent(
        f"""
        import sys, time
        import h5py
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        original = h5py.Group.create_dataset
        def slow(self, name, *args, **kwargs):
            out = original(self, name, *args, **kwargs)
            if name == "eeg":
                open({str(ready)!r}, "w").close()
                time.sleep(120)
            return out
        h5py.Group.create_dataset = slow
        import pathlib
        from test_store import _write
        _write(pathlib.Path({str(tmp_path)!r}))
        """
    )
    root = os.path.dirname(os.path.dirname(__file__))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root)
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert ready.exists(), "the writer never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not final.exists()
    _write(tmp_path)  # the rerun
    with st.WindowStore(final) as store:
        assert len(store) == 40


def test_the_store_pairs_volumes_with_eeg_volume_marker():
    assert windows.store_options(None) == {
        "window_s": 16,
        "marker": "R128",
        "dummy_markers": 0,
        "tr_tolerance": 0.01,
        "compression": None,
    }
    assert windows.store_options({"window_s": 8}, volume_marker="V")["marker"] == "V"
    assert windows.store_options({"marker": "V"})["marker"] == "V"  # the deprecated key alone
    with pytest.warns(DeprecationWarning, match=r"store\.marker 'R128' is deprecated"):
        assert windows.store_options({"marker": "R128"}, volume_marker="V")["marker"] == "V"
    with pytest.raises(ValueError, match="unknown config key `store.windows`"):
        windows.store_options({"windows": 8})
