"""BIDS writers of the simulator: BrainVision EEG, NIfTI BOLD, sidecars, atlas, TSVs.

File I/O only; every file is written to a temporary name and moved into place.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pandas as pd

from .. import __version__
from ..provenance import atomic_path, write_json, write_text
from .params import (
    DIFUMO64_LABELS,
    EEG_RESOLUTION_UV,
    SimParams,
    SimRun,
    _marker_fields,
)
from .plan import atlas_files


def _write_eeg(raw, onsets, params: SimParams, run: SimRun, files, stimuli=()):
    """BrainVision (int16, 0.5 µV) with volume and stimulus markers, then BIDS sidecars.

    ``raw`` is ``(data, ch_names)``: ``data`` in V, ``(n_channels, n_times)``;
    ``onsets`` and ``stimuli`` are samples.
    """
    data, ch_names = raw
    import mne_bids
    from pybv import write_brainvision

    events = [{"onset": int(s), "duration": 1, **_marker_fields(params.marker)} for s in onsets]
    if len(stimuli):
        stim = _marker_fields(params.task_design["stimulus_marker"])
        events += [{"onset": int(s), "duration": 1, **stim} for s in stimuli]
        events.sort(key=lambda e: e["onset"])
    with tempfile.TemporaryDirectory(prefix="neurobolt-sim-") as tmp:
        write_brainvision(
            data=data,
            sfreq=params.sfreq,
            ch_names=ch_names,
            fname_base=run.stem,
            folder_out=tmp,
            events=events,
            resolution=EEG_RESOLUTION_UV,
            unit="µV",
            fmt="binary_int16",
        )
        recorded = mne.io.read_raw_brainvision(Path(tmp, f"{run.stem}.vhdr"), verbose=False)
        recorded.set_channel_types({"ECG": "ecg", "EOG": "eog"}, verbose=False)
        recorded.info["line_freq"] = 50.0
        bids_path = mne_bids.BIDSPath(
            subject=run.subject,
            session=run.session,
            task=run.task,
            datatype="eeg",
            root=files["vhdr"].parents[3],
        )
        # mne-bids writes to the final names itself; the simulation is only marked done
        # (simulation.json) after every run is complete, so a killed run is redone whole.
        mne_bids.write_raw_bids(recorded, bids_path, overwrite=True, verbose=False)
    sidecar = pd.read_json(files["eeg_json"], typ="series").to_dict()
    on_cap = {c.upper() for c in params.channels}
    # Reference and ground are electrodes that are not recorded channels.
    reference = next(e for e in ("FCz", "CPz", "Nose") if e.upper() not in on_cap)
    ground = next(e for e in ("AFz", "Fpz", "Forehead") if e.upper() not in on_cap)
    sidecar.update(
        {
            "EEGReference": reference,
            "EEGGround": ground,
            "CapManufacturer": "EasyCap (simulated)",
            "HardwareFilters": {"Anti-aliasing low-pass": {"cutoff": "1000 Hz"}},
            "SoftwareFilters": "n/a",
            "Manufacturer": "Brain Products (simulated)",
            "ManufacturersModelName": "BrainAmp MR plus (simulated)",
        }
    )
    write_json(files["eeg_json"], sidecar)


def _write_nifti(path, data, affine, tr=None):
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        zooms = img.header.get_zooms()
        img.header.set_zooms((*zooms[:3], tr))
    with atomic_path(path) as tmp:
        nib.save(img, tmp)


def _write_bold(bold, mask, params: SimParams, run: SimRun, files, affine):
    # Raw BOLD: the acquisition grid has n_slices axial slices.
    from scipy.ndimage import zoom

    factor = params.n_slices / bold.shape[2]
    raw_bold = zoom(bold, (1, 1, factor, 1), order=1).astype(np.float32)
    raw_affine = affine.copy()
    raw_affine[2, 2] = affine[2, 2] * bold.shape[2] / raw_bold.shape[2]
    _write_nifti(files["bold"], raw_bold, raw_affine, params.tr)
    slice_s = (params.tr - params.slice_gap_s) / params.n_slices
    slice_times = [round(i * slice_s, 6) for i in range(params.n_slices)]
    write_json(
        files["bold_json"],
        {
            "TaskName": run.task,
            "RepetitionTime": params.tr,
            "SliceTiming": slice_times,
            "EchoTime": 0.03,
            "FlipAngle": 90,
            "MagneticFieldStrength": 3,
            "Manufacturer": "Siemens (simulated)",
            "PhaseEncodingDirection": "j-",
            **_task_description(params),
        },
    )
    _write_nifti(files["preproc_bold"], bold, affine, params.tr)
    _write_nifti(files["mask"], mask.astype(np.uint8), affine)
    write_json(
        files["preproc_json"],
        {"RepetitionTime": params.tr, "SkullStripped": False, "TaskName": run.task},
    )


def _task_description(params: SimParams) -> dict:
    """``TaskDescription`` for the sidecars of a run with a task design (else nothing)."""
    d = params.task_design
    if d is None:
        return {}
    lo, hi = d["isi_s"]
    return {
        "TaskDescription": (
            f"Simulated stimuli ({d['trial_type']!r}, {d['duration_s']:g} s) at random"
            f" intervals of {lo:g}-{hi:g} s; EEG marker {d['stimulus_marker']!r}"
        )
    }


def _write_tsv(path, df: pd.DataFrame):
    write_text(path, df.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.8g"))


def _write_static(root: Path, params: SimParams, runs: Sequence[SimRun], grid):
    """Dataset-level files: description, README, participants, atlas, fMRIPrep description."""
    write_json(
        root / "dataset_description.json",
        {
            "Name": "neurobolt simulated EEG-fMRI",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["neurobolt simulator", "The neurobolt developers"],
            "GeneratedBy": [{"Name": "neurobolt", "Version": __version__}],
        },
    )
    write_text(
        root / "README",
        "Simulated simultaneous EEG-fMRI written by neurobolt.simulate (seed "
        f"{params.seed}).\nGround truth lives in derivatives/simulation/.\n",
    )
    subjects = sorted({r.subject for r in runs})
    rng = np.random.default_rng(params.seed)
    _write_tsv(
        root / "participants.tsv",
        pd.DataFrame(
            {
                "participant_id": [f"sub-{s}" for s in subjects],
                "age": rng.integers(20, 40, len(subjects)),
                "sex": rng.choice(["M", "F"], len(subjects)),
            }
        ),
    )
    write_json(
        root / "participants.json",
        {"age": {"Description": "age", "Units": "year"}, "sex": {"Description": "sex"}},
    )
    if params.task_design is not None:
        d = params.task_design
        write_json(
            root / f"task-{params.task}_events.json",
            {
                "trial_type": {
                    "LongName": "Stimulus type",
                    "Levels": {d["trial_type"]: _task_description(params)["TaskDescription"]},
                },
                "value": {"Description": "BrainVision marker code (EEG events only)"},
            },
        )
    write_json(
        root / "derivatives" / "fmriprep" / "dataset_description.json",
        {
            "Name": "fMRIPrep-style outputs (simulated)",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "neurobolt.simulate", "Version": __version__}],
        },
    )
    write_json(
        root / "derivatives" / "simulation" / "dataset_description.json",
        {
            "Name": "neurobolt simulation ground truth",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "neurobolt", "Version": __version__}],
        },
    )
    shape, affine, mask, maps = grid[:4]
    extraction = grid[4] if len(grid) > 4 else maps
    af = atlas_files(root)
    # The maps the pipeline extracts with (smoothed and shifted in the realistic preset)
    # and, as ground truth, the maps that generated the BOLD.
    _write_nifti(af["maps"], np.moveaxis(extraction, 0, -1).astype(np.float32), affine)
    _write_nifti(af["generating_maps"], np.moveaxis(maps, 0, -1).astype(np.float32), affine)
    labels = pd.DataFrame(
        {
            "Component": np.arange(1, len(DIFUMO64_LABELS) + 1),
            "Difumo_names": DIFUMO64_LABELS,
            "Yeo_networks7": "n/a",
            "Yeo_networks17": "n/a",
            "GM": 1.0,
            "WM": 0.0,
            "CSF": 0.0,
        }
    )
    write_text(af["labels"], labels.to_csv(index=False))
