"""Interruption, untrusted files and resource guards.

* A job killed with SIGKILL at the worst moment (its output complete under the
  temporary name, not yet moved into place) leaves nothing under the final
  name; the rerun gives exactly what an uninterrupted run gives. Tested for the
  EEG cleaning, the window store and training.
* No pickle, ``torch.load(weights_only=True)`` only, HDF5 attributes parsed as
  plain types, HDF5 opened without file locks (NFS), every writer atomic.
* The EEG stage refuses a recording over the memory limit; training stops on
  NaN/inf with the last good checkpoint kept.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import mne
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset
from train_job import data as _data  # tests/helpers is on sys.path (pyproject)
from train_job import fit_small

from neurobolt import store as st
from neurobolt import train as tr
from neurobolt.eeg.clean import EEGInputError, estimate_memory_mb
from neurobolt.jobs import roi_signals, windows
from neurobolt.jobs.clean_eeg import run as run_clean_eeg
from neurobolt.provenance import atomic_path, write_text
from neurobolt.simulate import atlas_files

REPO = Path(__file__).resolve().parents[2]
S1 = "sub-01_ses-01_task-rest"


def _kill_when_ready(code: str, ready: Path, *, timeout: float = 120.0) -> None:
    """Run ``code`` in a fresh interpreter and SIGKILL it once it creates ``ready``."""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.time() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            pytest.fail(f"the job ended (status {proc.returncode}) before it could be killed")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("the job never reached the point where it is killed")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob(".tmp-*"))


def _eeg_io(root: Path, out: Path) -> tuple[dict, dict]:
    inputs = {
        "eeg": str(root / f"sub-01/ses-01/eeg/{S1}_eeg.vhdr"),
        "bold": str(root / f"sub-01/ses-01/func/{S1}_bold.nii.gz"),
    }
    outputs = {
        "eeg": str(out / f"{S1}_desc-clean_eeg.fif"),
        "qc": str(out / f"{S1}_desc-clean_qc.json"),
    }
    return inputs, outputs


@pytest.fixture(scope="module")
def stages(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """The EEG and fMRI stages' outputs for one tiny run, uninterrupted (the reference)."""
    out = tmp_path_factory.mktemp("stages")
    inputs, outputs = _eeg_io(tiny_dataset, out)
    run_clean_eeg(inputs, outputs, {})
    prep = tiny_dataset / "derivatives/fmriprep/sub-01/ses-01/func"
    atlas = atlas_files(tiny_dataset)
    rois = out / f"{S1}_atlas-DiFuMo64_timeseries.tsv"
    roi_signals.run(
        {
            "bold": inputs["bold"],
            "preproc_bold": prep / f"{S1}_space-MNI152NLin6Asym_desc-preproc_bold.nii.gz",
            "mask": prep / f"{S1}_space-MNI152NLin6Asym_desc-brain_mask.nii.gz",
            "confounds": prep / f"{S1}_desc-confounds_timeseries.tsv",
        },
        {"timeseries": rois},
        {"cfg": {"atlas": {"maps": str(atlas["maps"]), "labels": str(atlas["labels"])}}},
    )
    return {"fif": Path(outputs["eeg"]), "qc": Path(outputs["qc"]), "rois": rois}


# --------------------------------------------------------------------------------------------
# Kill and restart
# --------------------------------------------------------------------------------------------


def _qc_without_timing(path) -> dict:
    qc = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in ("processing_time_s", "realtime_factor", "inputs"):
        qc.pop(key)
    return qc


def test_clean_eeg_killed_while_writing_then_rerun_gives_the_same_result(
    tiny_dataset, stages, tmp_path
):
    inputs, outputs = _eeg_io(tiny_dataset, tmp_path / "out")
    ready = tmp_path / "ready"
    code = f"""
import time
from pathlib import Path
import mne
from neurobolt.jobs.clean_eeg import run as run_clean_eeg
original = mne.io.BaseRaw.save
def save(self, fname, *args, **kwargs):
    original(self, fname, *args, **kwargs)  # complete under its temporary name...
    Path({str(ready)!r}).touch()
    time.sleep(600)  # ...and killed before it is moved into place
mne.io.BaseRaw.save = save
run_clean_eeg({inputs!r}, {outputs!r}, {{}})
"""
    _kill_when_ready(code, ready)
    out = tmp_path / "out"
    assert not Path(outputs["eeg"]).exists() and not Path(outputs["qc"]).exists()
    assert [p.name.endswith("_desc-clean_eeg.fif") for p in _leftovers(out)] == [True]
    run_clean_eeg(inputs, outputs, {})  # the rerun
    assert _leftovers(out) == []
    rerun = mne.io.read_raw_fif(outputs["eeg"], preload=True, verbose=False)
    reference = mne.io.read_raw_fif(stages["fif"], preload=True, verbose=False)
    np.testing.assert_array_equal(rerun.get_data(), reference.get_data())
    assert rerun.ch_names == reference.ch_names
    assert list(rerun.annotations.onset) == list(reference.annotations.onset)
    assert _qc_without_timing(outputs["qc"]) == _qc_without_timing(stages["qc"])


def _store_contents(path) -> dict:
    with h5py.File(path, "r", locking=False) as f:
        data = {name: f[name][()] for name in f}
        attrs = dict(f.attrs)
    return {**data, **{f"@{k}": v for k, v in attrs.items()}}


def test_window_store_killed_while_writing_then_rerun_gives_the_same_result(stages, tmp_path):
    inputs = {"eeg": str(stages["fif"]), "rois": str(stages["rois"])}
    reference = {"store": str(tmp_path / "reference" / f"{S1}_windows.h5")}
    outputs = {"store": str(tmp_path / "out" / f"{S1}_windows.h5")}
    windows.run(inputs, reference, {})
    ready = tmp_path / "ready"
    code = f"""
import time
from pathlib import Path
import h5py
from neurobolt.jobs.windows import run
original = h5py.Group.create_dataset
def create_dataset(self, name, *args, **kwargs):
    out = original(self, name, *args, **kwargs)
    if name == "targets":  # half the datasets written
        self.file.flush()
        Path({str(ready)!r}).touch()
        time.sleep(600)
    return out
h5py.Group.create_dataset = create_dataset
run({inputs!r}, {outputs!r}, {{}})
"""
    _kill_when_ready(code, ready)
    out = tmp_path / "out"
    assert not Path(outputs["store"]).exists()
    assert len(_leftovers(out)) == 1
    windows.run(inputs, outputs, {})  # the rerun
    assert _leftovers(out) == []
    got, want = _store_contents(outputs["store"]), _store_contents(reference["store"])
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    with st.WindowStore(outputs["store"]) as store:
        assert len(store) == 17 and store.valid.sum() > 0


def test_training_killed_while_checkpointing_resumes_to_the_same_model(tmp_path):
    full = fit_small(tmp_path / "full")
    folder, ready = tmp_path / "killed", tmp_path / "ready"
    code = f"""
import sys, time
from pathlib import Path
import torch
sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / "helpers")!r})
from train_job import fit_small
original = torch.save
def save(obj, f, *args, **kwargs):
    original(obj, f, *args, **kwargs)
    if isinstance(obj, dict) and obj.get("epoch") == 1:  # epoch 2's checkpoint, not yet in place
        Path({str(ready)!r}).touch()
        time.sleep(600)
torch.save = save
fit_small({str(folder)!r})
"""
    _kill_when_ready(code, ready)
    assert tr.load_checkpoint(folder / "checkpoint.pt")["epoch"] == 0  # the last good one
    assert [p.name for p in _leftovers(folder)] and len(_leftovers(folder)) == 1
    resumed = fit_small(folder)  # the rerun
    assert _leftovers(folder) == []
    assert resumed["history"] == full["history"]
    for key, value in full["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# Training on NaN/inf
# --------------------------------------------------------------------------------------------


class _PoisonedAfter(Dataset):
    """Windows that turn to NaN after ``n_good`` reads (a fault appearing mid-training)."""

    def __init__(self, base, n_good):
        self.base, self.n_good, self.reads = base, n_good, 0

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.reads += 1
        x, y = self.base[i]
        return (x * float("nan"), y) if self.reads > self.n_good else (x, y)


def test_non_finite_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError) as err:
        fit_small(tmp_path, train_set=_PoisonedAfter(_data(), n_good=16))  # epoch 2 goes bad
    message = str(err.value)
    assert "non-finite training loss (nan) at epoch 2" in message
    assert f"the last good checkpoint {tmp_path / 'checkpoint.pt'} (after epoch 1) is kept" in (
        message
    )
    state = tr.load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 0 and len(state["history"]) == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert _leftovers(tmp_path) == []
    with pytest.raises(FloatingPointError, match="no epoch had completed, so there is no"):
        fit_small(tmp_path / "first", train_set=_PoisonedAfter(_data(), n_good=0))
    assert not (tmp_path / "first" / "checkpoint.pt").exists()


# --------------------------------------------------------------------------------------------
# Memory guard of the EEG stage
# --------------------------------------------------------------------------------------------


def test_clean_eeg_refuses_a_recording_over_the_memory_limit(tiny_dataset, tmp_path):
    inputs, outputs = _eeg_io(tiny_dataset, tmp_path)
    need = estimate_memory_mb(n_channels=27, n_times=274_500, sfreq=5000.0)
    assert 350 < need < 500
    with pytest.raises(EEGInputError) as err:
        run_clean_eeg(inputs, outputs, {"cfg": {"max_memory_mb": 300}})
    assert f"{S1}: cleaning this recording needs about {need:,.0f} MB" in str(err.value)
    assert "more than eeg.max_memory_mb = 300 MB" in str(err.value)
    assert not list(tmp_path.iterdir())


def test_memory_estimate_scales_with_the_recording():
    one = estimate_memory_mb(n_channels=27, n_times=1_000_000, sfreq=5000.0)
    two = estimate_memory_mb(n_channels=27, n_times=2_000_000, sfreq=5000.0)
    # float32 channels, work arrays, 200 Hz copies, the second gradient pass at 1 kHz
    per_sample = 4 * 27 + 8 * 8 + 32 * 27 / 25 + 12 * 27 / 5
    assert two - one == pytest.approx(per_sample * 1_000_000 / 1e6)


# --------------------------------------------------------------------------------------------
# Untrusted files, locking, atomic writers
# --------------------------------------------------------------------------------------------


def _sources():
    for folder in ("neurobolt", "workflow", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in {".py", ".smk"} or path.name == "Snakefile":
                yield path, path.read_text(encoding="utf-8")


def test_no_pickle_and_only_weights_only_torch_load():
    unsafe = re.compile(
        r"\bimport pickle\b|\bfrom pickle\b|\bcloudpickle\b|\bdill\b|read_pickle|"
        r"allow_pickle\s*=\s*True|weights_only\s*=\s*False|yaml\.load\(|yaml\.unsafe_load|"
        r"\bjoblib\.load\b|(?<![.\w])eval\(|(?<![.\w])exec\("
    )
    found = []
    for path, text in _sources():
        found += [f"{path.name}: {m.group(0)}" for m in unsafe.finditer(text)]
        for call in re.finditer(r"torch\.load\((?:[^()]|\([^()]*\))*\)", text):
            if "weights_only=True" not in call.group(0):
                found.append(f"{path.name}: {call.group(0)}")
    assert not found, found
    assert "weights_only=True" in (REPO / "neurobolt" / "inference.py").read_text()


def test_every_hdf5_file_is_opened_without_file_locking():
    opens = [
        (path.name, m.group(0))
        for path, text in _sources()
        for m in re.finditer(r"h5py\.File\([^)]*\)", text)
    ]
    assert opens, "no HDF5 file is opened?"
    assert all("locking=False" in call for _, call in opens), opens


def test_every_writer_writes_to_a_temporary_name():
    """Each library call that writes a file writes ``tmp``, the name ``atomic_path`` yields."""
    tmp = re.compile(r"\btmp\b")
    calls = {
        # receiver.write_text(...) / .write_bytes(...): the receiver must be tmp
        r"([\w.]+)\.write_(?:text|bytes)\(": lambda m: m.group(1) == "tmp",
        # df.to_csv(...): to tmp, or to a string (no path: a keyword argument first)
        r"\.to_csv\(([^)]*)\)": lambda m: (
            bool(tmp.search(m.group(1))) or "=" in m.group(1).split(",")[0]
        ),
        # raw.save / nib.save / torch.save / np.save(z): to tmp, or to the file opened on it
        r"\.save[z]?\(([^)]*)\)": lambda m: bool(
            tmp.search(m.group(1)) or re.search(r"\btmp_file\b", m.group(1))
        ),
        # files opened for writing
        r"(?:open|h5py\.File|open_h5)\(([^)]*[\"'](?:w|a|r\+|wb|x)[\"'][^)]*)\)": lambda m: bool(
            tmp.search(m.group(1))
        ),
    }
    checked, bad = 0, []
    for path in sorted((REPO / "neurobolt").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern, ok in calls.items():
            for m in re.finditer(pattern, text):
                checked += 1
                if not ok(m):
                    bad.append(f"{path.name}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0)}")
    assert checked >= 10
    assert not bad, bad
    # The one exception: mne-bids writes the simulated BrainVision files itself; the simulator
    # marks the dataset complete (simulation.json, atomically) only after every run is written.
    simulate = "".join(
        path.read_text(encoding="utf-8")
        for path in sorted((REPO / "neurobolt" / "simulate").glob("*.py"))
    )
    assert simulate.count("write_raw_bids(") == 1 and "not done until every run" in simulate


def test_store_attributes_are_parsed_as_plain_checked_types(tmp_path):
    onsets = np.arange(3200, 8000, 420)
    alignment = st.Alignment(onsets, np.arange(onsets.size), np.ones(onsets.size, bool), 2.1, "")
    kwargs = {
        "eeg": np.zeros((2, 9000), np.float32),
        "sfreq": 200.0,
        "alignment": alignment,
        "targets": np.zeros((onsets.size, 1)),
        "ch_names": ["O1", "O2"],
        "roi_names": ["Cuneus"],
        "tr": 2.1,
    }
    good = st.write_store(tmp_path / "good_windows.h5", **kwargs)
    with st.WindowStore(good) as store:
        assert type(store.sfreq) is float and store.ch_names == ["O1", "O2"]
        assert type(store.attrs["schema_version"]) is int
    for key, value, problem in [
        ("sfreq", "200", "'sfreq' is unusable (a str, not a number)"),
        ("tr", np.float64("nan"), "'tr' is unusable (nan is not finite)"),
        ("ch_names", "O1,O2", "'ch_names' is unusable"),
        ("roi_names", json.dumps({"a": 1}), "'roi_names' is unusable (not a JSON list"),
        ("sources", json.dumps({"a": 1}), "'sources' is unusable (not a JSON object of strings"),
        ("window_s", -16.0, "'window_s' is -16.0, not positive"),
    ]:
        bad = tmp_path / f"bad-{key}_windows.h5"
        bad.write_bytes(good.read_bytes())
        with h5py.File(bad, "r+", locking=False) as f:
            f.attrs[key] = value
        with pytest.raises(st.StoreError) as err:
            st.WindowStore(bad)
        assert str(bad) in str(err.value) and problem in str(err.value), str(err.value)
        assert "delete it and rerun" in str(err.value)


def test_a_killed_writers_leftover_is_removed_by_the_next_write(tmp_path):
    final = tmp_path / "table.tsv"
    other = tmp_path / ".tmp-0123456789ab-other-table.tsv"  # another output's: kept
    stale = tmp_path / ".tmp-0123456789ab-table.tsv"
    for path in (other, stale):
        path.write_text("half")
    write_text(final, "done\n")
    assert final.read_text() == "done\n"
    assert not stale.exists() and other.exists()
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert final.read_text() == "done\n" and sorted(tmp_path.iterdir()) == [other, final]
