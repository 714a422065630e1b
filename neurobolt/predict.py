"""Prediction from EEG alone: ROI time series and voxel maps for a recording without fMRI.

The ``predict`` job (:mod:`neurobolt.jobs.predict`) takes one BIDS EEG recording
(recorded inside or outside the scanner) and trained models (``model.pt`` from
``train_*``: intra or inter, one per ROI or multi-ROI), and writes

* ``<recording>_desc-predicted_timeseries.tsv``: one row per prediction step
  (``onset_s``, ``volume`` when the steps are the scanner's volume markers,
  then one column per ROI, atlas names) and a JSON sidecar naming every model,
  its validation R and the split the recording had in it;
* ``<recording>_desc-predicted_bold.nii.gz``: the predicted ROI series
  back-projected through the atlas maps (atlas space, TR = the step).

The EEG is cleaned like the ``clean_eeg`` stage, with gradient removal only
when the recording has volume markers and BCG removal only when it has an
ECG (both configurable). The windows are cut and scaled in memory by the window
store's functions (:func:`neurobolt.store.cut_window`,
:func:`neurobolt.store.scale_window`) and predicted with the code ``evaluate_*``
uses, so a recording of the training data gives exactly the test predictions of
``evaluate_*``. Volume markers of unsaved dummy scans (``store.dummy_markers``)
are skipped, so ``volume`` is the BOLD volume index as in the window store.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import config as nbconfig
from .heads import record_rois
from .provenance import atomic_path
from .splits import held_out_scans  # noqa: F401  (re-exported: the inter-subject test scans)

logger = logging.getLogger("neurobolt.predict")

__all__ = [
    "MissingChannelsError",
    "back_project",
    "check_channels",
    "clean_recording",
    "compare_with_measured",
    "eeg_channels",
    "held_out_scans",
    "predict_recording",
    "prediction_onsets",
    "predict_options",
    "recording_name",
    "write_back_projection",
]

_CHOICES = ("auto", "always", "never")


class MissingChannelsError(ValueError):
    """The recording lacks channels the models were trained on (and they may not be dropped)."""


def predict_options(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``predict`` section with its (schema) defaults filled in, checked.

    Raises
    ------
    ValueError
        For an unknown key, a ``gradient``/``bcg`` choice other than auto, always or
        never, or a ``step_s`` shorter than one 1 s patch.
    """
    opts = nbconfig.section("predict", params)
    for key in ("gradient", "bcg"):
        if opts[key] not in _CHOICES:
            raise ValueError(f"predict.{key} must be one of {_CHOICES}, got {opts[key]!r}")
    if opts["step_s"] is not None and float(opts["step_s"]) < 1.0:
        raise ValueError(
            f"predict.step_s must be at least 1 s (one EEG patch), got {opts['step_s']}"
        )
    return opts


def recording_name(path: str | os.PathLike) -> str:
    """``sub-01_ses-01_task-rest`` from ``.../sub-01_ses-01_task-rest_eeg.vhdr``."""
    name = Path(path).name
    name = re.sub(r"(\.nii)?\.[A-Za-z0-9]+$", "", name)
    return re.sub(r"_eeg$", "", name)


# --------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------


def prediction_onsets(
    n_times: int,
    *,
    sfreq: float,
    window_s: float,
    step_s: float | None = None,
    markers: Sequence[int] | None = None,
    tr_s: float | None = None,
    dummy_markers: int = nbconfig.defaults("store.dummy_markers"),
) -> tuple[np.ndarray, np.ndarray]:
    """Where predictions are made: the end sample of each EEG window.

    Parameters
    ----------
    n_times : int
        Samples of the cleaned EEG.
    sfreq : float
        Its sampling rate (Hz).
    window_s : float
        Seconds of EEG before each prediction (the models' window).
    step_s : float | None
        Seconds between predictions (at least one 1 s patch). None: at every volume
        marker when ``markers`` are given (the scanner's TR grid), else every ``tr_s``.
    markers : sequence of int | None
        Volume-marker samples (in-scanner recordings), dummy markers included. With
        ``step_s`` given, the grid is anchored on the first saved volume's marker.
    tr_s : float | None
        The TR-equivalent step used when ``step_s`` is None and there are no markers
        (None: ``predict.tr_s``'s default).
    dummy_markers : int
        Leading markers the scanner sent for dummy scans it did not save
        (``store.dummy_markers``): no prediction is made at them, and volume 0 is the
        marker after them, as in the window store.

    Returns
    -------
    onsets : ndarray of int64
        End sample (exclusive) of each window, every one with a full window of EEG.
    volumes : ndarray of int64
        The BOLD volume index of each onset (marker index minus ``dummy_markers``), or
        -1 when predictions are not at markers.

    Raises
    ------
    ValueError
        When the markers are not more than ``dummy_markers``.
    """
    if tr_s is None:
        tr_s = nbconfig.defaults("predict.tr_s")
    window = int(round(window_s * sfreq))
    markers = None if markers is None else np.asarray(markers, dtype=np.int64)
    has_markers = markers is not None and markers.size > 0
    if has_markers and dummy_markers:
        if markers.size <= dummy_markers:
            raise ValueError(
                f"{markers.size} volume marker(s) but store.dummy_markers is {dummy_markers}"
            )
        markers = markers[int(dummy_markers) :]
    if step_s is None and has_markers:
        onsets, volumes = markers, np.arange(markers.size, dtype=np.int64)
    else:
        step = float(step_s if step_s is not None else tr_s)
        if step * sfreq < 1:
            raise ValueError(f"step of {step} s is shorter than one sample")
        anchor = int(markers[0]) if has_markers else window
        k_min = int(np.ceil((window - anchor) / (step * sfreq)))
        k_max = int(np.floor((n_times - anchor) / (step * sfreq)))
        k = np.arange(k_min, k_max + 1)
        onsets = anchor + np.round(k * step * sfreq).astype(np.int64)
        volumes = np.full(onsets.size, -1, dtype=np.int64)
    keep = (onsets - window >= 0) & (onsets <= n_times)
    return onsets[keep].astype(np.int64), volumes[keep]


def check_channels(
    model_channels: Sequence[str],
    available: Sequence[str],
    *,
    droppable: Sequence[str] = (),
    recording: str = "recording",
) -> tuple[list[str], list[str]]:
    """Which training channels the recording has; refuse the missing ones unless droppable.

    Names match case-insensitively.

    Parameters
    ----------
    model_channels : sequence of str
        The channels the model was trained on, in its order.
    available : sequence of str
        The recording's EEG channels.
    droppable : sequence of str
        Training channels that may be missing (``predict.droppable_channels``).
    recording : str
        Name used in messages.

    Returns
    -------
    used : list of str
        The model's channels present in the recording (model spelling and order).
    dropped : list of str
        The model's channels missing from the recording (all droppable).

    Raises
    ------
    MissingChannelsError
        Listing every missing channel that is not droppable.
    """
    have = {str(c).strip().upper() for c in available}
    may_drop = {str(c).strip().upper() for c in droppable}
    used = [c for c in model_channels if str(c).strip().upper() in have]
    dropped = [c for c in model_channels if str(c).strip().upper() not in have]
    refused = [c for c in dropped if str(c).strip().upper() not in may_drop]
    if refused:
        raise MissingChannelsError(
            f"{recording}: {len(dropped)} of the {len(model_channels)} channels the model was"
            f" trained on are missing from the recording: {', '.join(dropped)}. List them in"
            f" predict.droppable_channels to predict without them (not droppable now:"
            f" {', '.join(refused)})."
        )
    if not used:
        raise MissingChannelsError(f"{recording}: none of the model's channels is recorded")
    return used, dropped


#: Voxel-map frames are back-projected in chunks of about this many MB (float64).
CHUNK_MB = 256.0


def _projected_chunks(predictions: np.ndarray, maps_img, *, chunk_frames: int | None):
    """Yield ``(affine, data)``: the back-projection of consecutive chunks of rows.

    ``data`` is float32, shaped ``(x, y, z, n_rows_in_chunk)``; at most ``chunk_frames``
    rows (None: about :data:`CHUNK_MB` of float64 voxels) are projected at a time, so the
    memory does not grow with the recording.
    """
    from nilearn.maskers import NiftiMapsMasker

    predictions = np.asarray(predictions, dtype=np.float32)
    if predictions.ndim != 2:
        raise ValueError(f"predictions must be (n_times, n_rois), got {predictions.shape}")
    if predictions.shape[0] == 0:
        raise ValueError("no predictions to back-project")
    masker = NiftiMapsMasker(maps_img=maps_img).fit()
    if chunk_frames is None:
        n_voxels = int(np.prod(masker.maps_img_.shape[:3]))
        chunk_frames = int(CHUNK_MB * 1e6 // (8 * max(n_voxels, 1)))
    chunk_frames = max(int(chunk_frames), 1)
    for start in range(0, predictions.shape[0], chunk_frames):
        img = masker.inverse_transform(predictions[start : start + chunk_frames])
        data = np.asarray(img.get_fdata(dtype=np.float32))
        yield img.affine, (data[..., None] if data.ndim == 3 else data)


def _voxel_map_header(affine: np.ndarray, shape: Sequence[int], *, tr: float):
    import nibabel as nib

    header = nib.Nifti1Image(np.zeros((1, 1, 1), np.float32), affine).header.copy()
    header.set_data_dtype(np.float32)
    header.set_data_shape(tuple(int(n) for n in shape))
    header.set_zooms(tuple(float(z) for z in header.get_zooms()[:3]) + (float(tr),))
    header.set_xyzt_units("mm", "sec")
    return header


def back_project(predictions: np.ndarray, maps_img, *, tr: float, chunk_frames: int | None = None):
    """Predicted ROI series -> a 4-D image: each ROI's series times its atlas map, summed.

    Parameters
    ----------
    predictions : ndarray, shape (n_times, n_rois)
        Predicted (normalised) ROI signals.
    maps_img : niimg-like
        4-D atlas maps, one volume per ROI (in the columns' order).
    tr : float
        Seconds between rows; written as the image's TR.
    chunk_frames : int | None
        Rows back-projected at a time (None: about :data:`CHUNK_MB` MB of float64).

    Returns
    -------
    img : nibabel.Nifti1Image
        Shape (x, y, z, n_times) on the maps' grid (atlas space), float32, in memory;
        :func:`write_back_projection` writes the same image with bounded memory.

    Notes
    -----
    Uses :meth:`nilearn.maskers.NiftiMapsMasker.inverse_transform`, the inverse of the
    projection the fMRI stage uses to extract the ROI signals.
    """
    import nibabel as nib

    chunks = list(_projected_chunks(predictions, maps_img, chunk_frames=chunk_frames))
    data = np.concatenate([c for _, c in chunks], axis=3)
    header = _voxel_map_header(chunks[0][0], data.shape, tr=tr)
    return nib.Nifti1Image(data, chunks[0][0], header=header)


def write_back_projection(
    path: str | os.PathLike,
    predictions: np.ndarray,
    maps_img,
    *,
    tr: float,
    chunk_frames: int | None = None,
) -> Path:
    """Write :func:`back_project`'s image frame chunk by frame chunk (bounded memory).

    The NIfTI header is written first, then each chunk's frames (NIfTI's voxel order,
    frames last, so they follow one another on disk), through a temporary name moved
    into place (gzip-compressed when ``path`` ends with ``.gz``).

    Parameters
    ----------
    path : path-like
        The ``.nii`` or ``.nii.gz`` to write.
    predictions : ndarray, shape (n_times, n_rois)
        Predicted (normalised) ROI signals.
    maps_img : niimg-like
        4-D atlas maps, one volume per ROI (in the columns' order).
    tr : float
        Seconds between rows; written as the image's TR.
    chunk_frames : int | None
        Rows back-projected at a time (None: about :data:`CHUNK_MB` MB of float64).

    Returns
    -------
    path : pathlib.Path
    """
    from nibabel.openers import ImageOpener

    predictions = np.asarray(predictions, dtype=np.float32)
    n_times = predictions.shape[0] if predictions.ndim == 2 else 0
    with atomic_path(path) as tmp, ImageOpener(tmp, "wb") as f:
        for i, (affine, data) in enumerate(
            _projected_chunks(predictions, maps_img, chunk_frames=chunk_frames)
        ):
            if i == 0:
                header = _voxel_map_header(affine, (*data.shape[:3], n_times), tr=tr)
                header.write_to(f)
                pad = int(header["vox_offset"]) - f.tell()
                f.write(b"\0" * pad)
            f.write(np.asarray(data, dtype=header.get_data_dtype()).tobytes(order="F"))
    return Path(path)


def compare_with_measured(
    predicted: pd.DataFrame, measured: pd.DataFrame, *, kept_volumes: Sequence[int]
) -> pd.DataFrame:
    """Pearson R of predicted vs measured ROI signals on the volumes both have.

    Parameters
    ----------
    predicted : DataFrame
        A ``_desc-predicted_timeseries.tsv`` made at the volume markers (``volume`` column).
    measured : DataFrame
        The fMRI stage's ``_atlas-*_timeseries.tsv`` of the same run.
    kept_volumes : sequence of int
        Its sidecar's ``KeptVolumes`` (the BOLD volume of each row).

    Returns
    -------
    table : DataFrame
        One row per ROI column of ``predicted`` found in ``measured``: ``roi``, ``r``, ``n``.
    """
    from .metrics import pearson_r

    if "volume" not in predicted.columns:
        raise ValueError("the predictions were not made at the volume markers (no volume column)")
    truth = measured.assign(volume=np.asarray(kept_volumes, dtype=np.int64))
    both = predicted.merge(truth, on="volume", suffixes=("_pred", "_true"))
    rows = []
    for roi in predicted.columns:
        if roi in ("onset_s", "volume") or roi not in measured.columns:
            continue
        r = float(pearson_r(both[f"{roi}_pred"], both[f"{roi}_true"])[0])
        rows.append({"roi": roi, "r": r, "n": int(len(both))})
    return pd.DataFrame(rows, columns=["roi", "r", "n"])


# --------------------------------------------------------------------------------------------
# EEG
# --------------------------------------------------------------------------------------------


def eeg_channels(raw) -> list[str]:
    """The recording's channels that the EEG stage may keep (not ECG, EOG, stim, ...)."""
    from .eeg import clean as ec

    return [
        ch
        for ch, kind in zip(raw.ch_names, raw.get_channel_types(), strict=True)
        if kind not in ec.NON_EEG_TYPES
    ]


def clean_recording(
    raw,
    *,
    config: Mapping[str, Any] | None = None,
    channels: Sequence[str],
    gradient: str = nbconfig.defaults("predict.gradient"),
    bcg: str = nbconfig.defaults("predict.bcg"),
    n_slices: int | None = None,
    run: str = "recording",
):
    """Clean an EEG-only recording like the ``clean_eeg`` stage, with what it has.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The recording (not modified).
    config : mapping | None
        The ``eeg`` config section (marker name, filters, gradient and BCG options).
    channels : sequence of str
        The EEG channels to keep (present in ``raw``), in this order.
    gradient : "auto" | "always" | "never"
        Gradient artifact removal: ``auto`` when the recording has volume markers.
    bcg : "auto" | "always" | "never"
        BCG removal: ``auto`` when the recording has an ECG channel (``eeg.ecg_channel``
        when set, else one of type ECG or named ECG/EKG). A configured ECG channel that
        the recording lacks means no BCG removal, except with ``always``.
    n_slices : int | None
        Slices per volume for the slice templates; None detects them from the artifact.
    run : str
        Name used in messages.

    Returns
    -------
    clean : mne.io.RawArray
        ``channels`` at the configured rate (200 Hz), annotations kept.
    info : dict
        What was done: ``gradient_removed``, ``bcg_removed``, ``n_markers``,
        ``volume_marker`` (the marker's name), and the EEG stage's QC record when the
        gradient was removed.
    """
    import mne

    from .eeg import clean as ec
    from .eeg.bcg import detect_r_peaks, remove_bcg
    from .eeg.markers import find_volume_markers

    cfg = ec.eeg_options(config)
    cfg.update(channels=list(channels), missing_channels="error")
    markers = find_volume_markers(raw, marker=cfg["volume_marker"])
    try:
        ecg_idx = ec.find_ecg(raw, cfg, run)
    except ec.EEGInputError as err:  # the configured ECG channel is not in the recording
        if bcg == "always":
            raise
        logger.warning("%s; no BCG removal", err)
        ecg_idx = None
    do_gradient = gradient == "always" or (gradient == "auto" and markers.size >= 2)
    do_bcg = bcg == "always" or (bcg == "auto" and ecg_idx is not None)
    if gradient == "always" and markers.size < 2:
        raise ValueError(
            f"{run}: predict.gradient is 'always' but the recording has {markers.size} volume"
            f" marker(s) {cfg['volume_marker']!r}; set predict.gradient: auto or never."
        )
    if do_bcg and ecg_idx is None:
        raise ValueError(
            f"{run}: predict.bcg is 'always' but the recording has no ECG channel; set"
            " eeg.ecg_channel, or predict.bcg: auto or never."
        )
    info: dict[str, Any] = {
        "n_markers": int(markers.size),
        "ecg_channel": None,
        "volume_marker": cfg["volume_marker"],
    }
    if do_gradient:
        source = raw
        if do_bcg:
            cfg["ecg_channel"] = raw.ch_names[ecg_idx]
        else:
            # Only the EEG channels: clean_raw finds no ECG, so it removes no BCG.
            keep_idx, _, _ = ec.select_channels(raw, cfg, run)
            source = raw.copy().pick(keep_idx)
            cfg["ecg_channel"] = None
        cfg["missing_ecg"] = "error" if bcg == "always" else "skip_bcg"
        clean, qc = ec.clean_raw(source, config=cfg, n_slices=n_slices, run=run, return_qc=True)
        info.update(
            gradient_removed=True,
            bcg_removed=bool(qc["bcg"].get("removed")),
            ecg_channel=qc["ecg_channel"],
            qc=qc,
        )
        return clean, info

    # Outside the scanner: channel selection, BCG if asked for, anti-aliased resampling.
    sfreq, sfreq_out = float(raw.info["sfreq"]), float(cfg["sfreq"])
    keep_idx, keep_names, _ = ec.select_channels(raw, cfg, run)
    data = raw.get_data(picks=keep_idx)
    out = ec.resample(data, sfreq, sfreq_out, passband=cfg["passband"])
    bcg_removed = False
    if do_bcg:
        ecg = ec.resample(raw.get_data(picks=[ecg_idx])[0], sfreq, sfreq_out)
        try:
            peaks = detect_r_peaks(ecg, sfreq_out)
        except ValueError as err:
            if bcg == "always":
                raise ValueError(f"{run}: no heartbeats found in the ECG ({err})") from err
            peaks = None
        if peaks is not None:
            b = cfg["bcg"]
            out = remove_bcg(
                out,
                sfreq_out,
                peaks,
                n_components=int(b["n_components"]),
                joint=bool(b["joint"]),
                snr_threshold=float(b["snr_threshold"]),
            )
            bcg_removed = True
        info["ecg_channel"] = raw.ch_names[ecg_idx]
    new_info = mne.create_info(keep_names, sfreq_out, "eeg")
    with new_info._unlock():
        new_info["meas_date"] = raw.info["meas_date"]
    first_samp = int(round(raw.first_samp * sfreq_out / sfreq))
    clean = mne.io.RawArray(out, new_info, first_samp=first_samp, verbose=False)
    clean.set_annotations(raw.annotations.copy())
    info.update(gradient_removed=False, bcg_removed=bcg_removed)
    return clean, info


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class _Windows:
    """The models' windows of EEG held in memory, cut and scaled as the window store does.

    A map-style dataset of ``(x, y)`` with empty targets, like
    :class:`neurobolt.store.WindowDataset` over a store without ROIs.
    """

    def __init__(self, eeg: np.ndarray, onsets: np.ndarray, *, sfreq: float, window_s: float):
        self.eeg = np.asarray(eeg, dtype=np.float32)  # as stored in /eeg
        self.onsets = np.asarray(onsets, dtype=np.int64)
        self.sfreq = float(sfreq)
        self.n_samples = int(round(window_s * sfreq))

    def __len__(self) -> int:
        return int(self.onsets.size)

    def __getitem__(self, i: int):
        import torch

        from .store import cut_window, scale_window

        raw = cut_window(self.eeg, int(self.onsets[i]), n_samples=self.n_samples)
        x = scale_window(raw, sfreq=self.sfreq)
        return torch.from_numpy(x), torch.zeros(0, dtype=torch.float32)


def predict_recording(
    models: Sequence[tuple[Any, Mapping[str, Any]]],
    eeg: np.ndarray,
    *,
    sfreq: float,
    ch_names: Sequence[str],
    onsets: np.ndarray,
    window_s: float,
    batch_size: int,
    progress: bool = True,
) -> np.ndarray:
    """Predict every model's ROI(s) at ``onsets`` from cleaned EEG.

    The windows are cut and scaled in memory by the window store's functions
    (:func:`neurobolt.store.cut_window`, :func:`neurobolt.store.scale_window`, from
    float32 EEG as the store holds it) and predicted as ``evaluate_*`` does.

    Parameters
    ----------
    models : sequence of (model, record)
        From :func:`neurobolt.evaluate.load_model`.
    eeg : ndarray, shape (n_channels, n_times)
        Cleaned EEG in volts at ``sfreq``, channels ``ch_names``.
    sfreq : float
        200 Hz for the models.
    ch_names : sequence of str
        Channel names (the models' channels present in the recording, in their order).
    onsets : ndarray of int
        From :func:`prediction_onsets`: the end sample of each window.
    window_s : float
        Window length (s).
    batch_size : int
        Windows per forward pass (``predict.batch_size``).
    progress : bool
        Progress bars.

    Returns
    -------
    predictions : ndarray, shape (n_onsets, n_outputs)
        The models' outputs side by side, in the order of ``models``.
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from .inference import predict_loader
    from .runtime import pick_device

    onsets = np.asarray(onsets, dtype=np.int64)
    if len(ch_names) != np.shape(eeg)[0]:
        raise ValueError(f"{len(ch_names)} channel names for {np.shape(eeg)[0]} EEG channels")
    dataset = _Windows(eeg, onsets, sfreq=sfreq, window_s=window_s)
    if not np.isfinite(dataset.eeg).all():
        raise ValueError("the cleaned EEG contains NaN or inf")
    device = pick_device("auto")
    columns = []
    for model, record in models:
        loader = DataLoader(dataset, batch_size=batch_size)
        label = f"predict {record['model']} {', '.join(record_rois(record))}"
        batches = tqdm(loader, desc=label, disable=not progress, leave=False)
        pred, _ = predict_loader(model, record, batches, ch_names=list(ch_names), device=device)
        columns.append(np.asarray(pred, dtype=np.float64).reshape(onsets.size, -1))
    return np.concatenate(columns, axis=1)
