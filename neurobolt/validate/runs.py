"""Checks of each selected run: BIDS entities, BOLD, fMRIPrep outputs, EEG recording."""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import bids as nbids
from .report import DATASET, Finding, _rel, _strip

# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


def check_entities(root: str | os.PathLike) -> list[Finding]:
    """Entity labels that differ only by leading zeros or case (``sub-01`` and ``sub-1``)."""
    import mne_bids

    root = Path(root)
    found = []
    for key, prefix in (("subject", "sub"), ("session", "ses"), ("run", "run")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = mne_bids.get_entity_vals(root, key, ignore_subjects=None)
        groups: dict[str, list[str]] = {}
        for label in labels:
            groups.setdefault(label.lower().lstrip("0") or "0", []).append(label)
        for same in groups.values():
            if len(same) < 2:
                continue
            names = ", ".join(f"{prefix}-{label}" for label in sorted(same))
            found.append(
                Finding(
                    DATASET,
                    names,
                    f"ambiguous {key} labels: {names} differ only by leading zeros or case, so"
                    " they are different entities to BIDS (and to the pairing of EEG with BOLD)"
                    " but probably the same one",
                    f"rename them to one spelling (e.g. {prefix}-{max(same, key=len)}) everywhere,"
                    " fMRIPrep outputs included",
                )
            )
    return found


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_bold(run: nbids.Run, *, fmri: Mapping[str, Any], root: Path):
    """The raw BOLD run: 4-D, enough volumes, a sidecar whose TR agrees with the header.

    Returns
    -------
    findings : list of Finding
    meta : dict
        ``n_volumes`` and ``tr`` (None when unknown).
    """
    import nibabel as nib

    from ..fmri.signals import FMRIInputError, repetition_time, sidecar_path

    name, bold = run.name, run.bold
    found: list[Finding] = []
    meta: dict[str, Any] = {"n_volumes": None, "tr": None}
    try:
        img = nib.load(bold)
    except Exception as err:  # noqa: BLE001 - any reader failure is reported
        found.append(
            Finding(name, _rel(bold, root), f"cannot be read as NIfTI: {err}", "re-copy the file")
        )
        return found, meta
    if img.ndim != 4:
        found.append(
            Finding(
                name,
                _rel(bold, root),
                f"3-D NIfTI: a BOLD run must be 4-D (x, y, z, time), got shape {img.shape}",
                "give the whole run as one 4-D image (e.g. merge the volumes with fslmerge -t)",
            )
        )
        return found, meta
    meta["n_volumes"] = int(img.shape[3])
    if img.shape[3] < int(fmri["min_volumes"]):
        found.append(
            Finding(
                name,
                _rel(bold, root),
                f"{img.shape[3]} volumes, fewer than fmri.min_volumes ({fmri['min_volumes']})",
                "exclude the run (bids.subjects/sessions/tasks) or lower fmri.min_volumes",
            )
        )
    side = sidecar_path(bold)
    sidecar = _read_json(side)
    if sidecar is None:
        found.append(
            Finding(
                name,
                _rel(side, root),
                "the BOLD sidecar is missing or not valid JSON; the EEG stage needs its"
                " RepetitionTime and SliceTiming",
                "add the BIDS JSON sidecar of the BOLD run",
            )
        )
        return found, meta
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            meta["tr"] = repetition_time(
                img,
                sidecar,
                tolerance=float(fmri["tr_tolerance_s"]),
                names=f"{_rel(side, root)} / {bold.name}",
            )
        except FMRIInputError as err:
            found.append(
                Finding(
                    name,
                    _rel(side, root),
                    str(err),
                    "make RepetitionTime in the sidecar and the NIfTI header's pixdim[4] agree",
                )
            )
    for w in caught:
        found.append(Finding(name, _rel(side, root), str(w.message), "", "warning"))
    return found, meta


def check_fmriprep(
    run: nbids.Run, *, fmri: Mapping[str, Any], n_volumes: int | None, root: Path
) -> list[Finding]:
    """fMRIPrep outputs: MNI space, 4-D, volumes and TR, the mask, the confounds table."""
    import nibabel as nib

    from ..fmri.signals import (
        FMRIInputError,
        bold_space,
        read_confounds,
        repetition_time,
        select_confounds,
        sidecar_path,
    )

    name, prep = run.name, run.preproc_bold
    found: list[Finding] = []

    def add(path, problem, fix, severity="error"):
        found.append(Finding(name, _rel(path, root), problem, fix, severity))

    side = sidecar_path(prep)
    sidecar = _read_json(side) or _read_json(sidecar_path(run.bold)) or {}
    try:
        bold_space(prep, sidecar)
    except FMRIInputError as err:
        add(prep, f"BOLD not in MNI space: {_strip(err, prep)}", "set bids.space to an MNI space")
    img = None
    try:
        img = nib.load(prep)
    except Exception as err:  # noqa: BLE001
        add(prep, f"cannot be read as NIfTI: {err}", "rerun fMRIPrep or re-copy the file")
    n_prep = None
    if img is not None:
        if img.ndim != 4:
            add(
                prep,
                f"3-D NIfTI: the preprocessed BOLD must be 4-D, got shape {img.shape}",
                "use fMRIPrep's desc-preproc_bold output of the run",
            )
        else:
            n_prep = int(img.shape[3])
            if n_prep < int(fmri["min_volumes"]):
                add(
                    prep,
                    f"{n_prep} volumes, fewer than fmri.min_volumes ({fmri['min_volumes']})",
                    "exclude the run or lower fmri.min_volumes",
                )
            if n_volumes is not None and n_prep != n_volumes:
                add(
                    prep,
                    f"{n_prep} volumes but the raw BOLD run has {n_volumes}",
                    "rerun fMRIPrep on this run, or fix bids.fmriprep_dir",
                )
            try:
                repetition_time(
                    img, sidecar, tolerance=float(fmri["tr_tolerance_s"]), names=prep.name
                )
            except FMRIInputError as err:
                add(prep, str(err), "make the sidecar's RepetitionTime and the header agree")
    found += _check_mask(run, img if n_prep else None, fmri=fmri, root=root)
    try:
        confounds = read_confounds(run.confounds)
    except (FMRIInputError, ValueError, OSError) as err:
        add(run.confounds, f"cannot be read: {err}", "rerun fMRIPrep or re-copy the file")
        return found
    n = n_prep if n_prep is not None else n_volumes
    if n is not None and len(confounds) != n:
        add(
            run.confounds,
            f"confounds rows ≠ volumes: {len(confounds)} rows but the BOLD run has {n} volumes",
            "use the confounds file of this run (fMRIPrep writes one row per volume)",
        )
    if fmri["confounds"]:
        try:
            select_confounds(confounds, fmri["confounds"])
        except FMRIInputError as err:
            add(run.confounds, str(err), "fix the table or fmri.confounds")
    return found


def _check_mask(run, img, *, fmri, root) -> list[Finding]:
    """The brain mask (finite, not empty) and the first BOLD volume inside it (finite)."""
    import nibabel as nib

    found: list[Finding] = []
    mask_path = run.mask
    try:
        mask_img = nib.load(mask_path)
        mask_data = np.asarray(mask_img.dataobj)
    except Exception as err:  # noqa: BLE001
        return [Finding(run.name, _rel(mask_path, root), f"cannot be read: {err}", "re-copy it")]
    if mask_data.ndim == 4 and mask_data.shape[3] == 1:
        mask_data = mask_data[..., 0]
    if mask_data.ndim != 3:
        return [
            Finding(
                run.name,
                _rel(mask_path, root),
                f"the brain mask must be 3-D, got shape {mask_data.shape}",
                "use fMRIPrep's desc-brain_mask of the run",
            )
        ]
    bad = ~np.isfinite(mask_data)
    if bad.any():
        found.append(
            Finding(
                run.name,
                _rel(mask_path, root),
                f"NaN voxels in the mask: {int(bad.sum())} voxel(s) are NaN or inf",
                "use fMRIPrep's binary desc-brain_mask (0/1) of the run",
            )
        )
    inside = np.nan_to_num(mask_data, nan=0.0, posinf=0.0, neginf=0.0) > 0
    if not inside.any():
        found.append(
            Finding(run.name, _rel(mask_path, root), "the brain mask is empty", "use its mask")
        )
        return found
    if img is None:
        return found
    if img.shape[:3] != inside.shape:
        found.append(
            Finding(
                run.name,
                _rel(mask_path, root),
                f"the mask's grid {inside.shape} differs from the BOLD's {img.shape[:3]}; it"
                " will be resampled (nearest neighbour)",
                "use the mask fMRIPrep wrote for this run and space",
                "warning",
            )
        )
        return found
    first = np.asarray(img.dataobj[..., 0])
    nonfinite = int((~np.isfinite(first) & inside).sum())
    if nonfinite:
        refuse = fmri["nan_policy"] != "zero"
        found.append(
            Finding(
                run.name,
                _rel(run.preproc_bold, root),
                f"NaN voxels in the mask: {nonfinite} voxel(s) inside the brain mask are NaN or"
                " inf in the first BOLD volume"
                + ("" if refuse else " (fmri.nan_policy: zero sets them to 0)"),
                "fix the preprocessing or the mask, or set fmri.nan_policy: zero",
                "error" if refuse else "warning",
            )
        )
    return found


def check_eeg(
    run: nbids.Run,
    *,
    eeg: Mapping[str, Any],
    store: Mapping[str, Any],
    n_volumes: int | None,
    tr: float | None,
    root: Path,
) -> list[Finding]:
    """The EEG recording: files, size, channels, ECG, memory, and the volume markers.

    Reads the headers, ``channels.tsv`` and the markers (``events.tsv``, as the EEG
    stage does through mne-bids); the samples are never loaded.
    """
    import mne_bids

    from ..eeg.clean import (
        EEGInputError,
        brainvision_files,
        check_channel_names,
        check_eeg_size,
        check_memory,
        eeg_options,
        find_ecg,
        select_channels,
    )
    from ..eeg.markers import MarkerError, find_volume_markers, volume_onsets

    name, vhdr = run.name, run.eeg
    cfg = eeg_options(eeg)
    found: list[Finding] = []

    def add(path, problem, fix, severity="error"):
        found.append(Finding(name, _rel(path, root), problem, fix, severity))

    bids_path = mne_bids.get_bids_path_from_fname(vhdr)
    channels_tsv = bids_path.copy().update(suffix="channels", extension=".tsv").fpath
    events_tsv = bids_path.copy().update(suffix="events", extension=".tsv").fpath
    eeg_json = bids_path.copy().update(extension=".json").fpath
    unreadable = False
    if vhdr.suffix.lower() == ".vhdr":
        files = brainvision_files(vhdr)
        if not files["vmrk"].is_file():
            add(
                files["vmrk"],
                f"missing .vmrk: the marker file that {vhdr.name} names does not exist",
                "put the recording's .vmrk next to its .vhdr (a BrainVision recording is"
                " .vhdr + .vmrk + .eeg)",
            )
            unreadable = True
        try:
            check_eeg_size(vhdr, eeg_json=eeg_json)
        except EEGInputError as err:
            add(files["eeg"], _strip(err, files["eeg"], vhdr), "re-copy or re-export the recording")
            unreadable = True
        if Path(channels_tsv).is_file() and not unreadable:
            try:
                check_channel_names(vhdr, channels_tsv)
            except EEGInputError as err:
                add(channels_tsv, _strip(err, vhdr), "make channels.tsv match the .vhdr")
    if unreadable:
        return found
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = mne_bids.read_raw_bids(bids_path, verbose=False)
    except Exception as err:  # noqa: BLE001 - any reader failure is reported
        add(vhdr, f"cannot be read as BIDS EEG: {err}", "check the recording and its sidecars")
        return found

    try:
        keep, _, missing = select_channels(raw, cfg, name)
        if missing:
            add(
                channels_tsv if Path(channels_tsv).is_file() else vhdr,
                f"{len(missing)} configured EEG channel(s) missing: {', '.join(missing)}"
                " (eeg.missing_channels: warn keeps the others)",
                "fix eeg.channels if they are named differently",
                "warning",
            )
    except EEGInputError as err:
        add(vhdr, _strip(err, name), "fix eeg.channels or set eeg.missing_channels: warn")
        keep = []
    try:
        ecg = find_ecg(raw, cfg, name)
    except EEGInputError as err:
        add(vhdr, _strip(err, name), "fix eeg.ecg_channel")
        ecg = -1
    if ecg is None:
        problem = (
            "no ECG channel (no channel of type ECG in channels.tsv and none named ECG/EKG), so"
            " the heartbeats for BCG removal cannot be found"
        )
        if cfg["missing_ecg"] == "error":
            add(
                channels_tsv if Path(channels_tsv).is_file() else vhdr,
                problem,
                "set eeg.ecg_channel to the ECG's name (or its type to ECG in channels.tsv),"
                " or eeg.missing_ecg: skip_bcg to clean without BCG removal",
            )
        else:
            add(vhdr, problem + " (eeg.missing_ecg: skip_bcg)", "", "warning")
    try:
        n_read = len(keep) + (1 if ecg is not None and ecg >= 0 else 0)
        check_memory(
            n_channels=max(n_read, 1),
            n_times=raw.n_times,
            sfreq=float(raw.info["sfreq"]),
            config=cfg,
            run=name,
        )
    except EEGInputError as err:
        text, _, advice = _strip(err, name).partition(" Raise ")
        add(vhdr, text, "raise " + advice if advice else "raise eeg.max_memory_mb")

    marker_file = events_tsv if Path(events_tsv).is_file() else vhdr.with_suffix(".vmrk")
    dummy = int(store.get("dummy_markers") or 0)
    expected = None if n_volumes is None else n_volumes + dummy
    try:
        completed = (
            volume_onsets(
                raw,
                marker=cfg["volume_marker"],
                tr=tr,
                n_volumes=expected,
                tolerance=float(cfg["marker_tolerance"]),
                run=name,
            ).size
            - find_volume_markers(raw, marker=cfg["volume_marker"]).size
        )
        if completed > 0:
            add(
                marker_file,
                f"{completed} missing volume marker(s) in gaps of a whole number of TRs; the"
                " EEG stage completes them (listed in the QC JSON as completed_markers)",
                "check the marker file; nothing to do if the completion is right",
                severity="warning",
            )
    except MarkerError as err:
        text = _strip(err, name)
        text = re.sub(r"\nFix the marker file.*$", "", text, flags=re.S)
        text = " ".join(text.replace(":\n  - ", ": ").replace("\n  - ", "; ").split())
        fix = "fix the markers in events.tsv and the .vmrk, or exclude the run"
        if "no volume markers" in text:
            fix = "set eeg.volume_marker to the scanner trigger's description"
        elif dummy == 0 and "volume markers (one per BOLD volume)" in text:
            fix += "; if the scanner sent markers for unsaved dummy scans set store.dummy_markers"
        add(marker_file, text, fix)
    return found
