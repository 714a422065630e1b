"""The signals behind the subject page's EEG figures, kept by the ``clean_eeg`` stage itself.

While it cleans a run, the stage has every step's signals in hand: the recording, the EEG
after gradient removal (before BCG removal), the cleaned EEG and the cardiac events it used.
:func:`stage_signals` summarises them per channel (Welch spectra over the scanned part, the
R-peak-locked average epoch before and after BCG removal, the volume markers), and
:func:`write_qc_signals` / :func:`read_qc_signals` store them in one small HDF5 file per run
(``<run>_desc-clean_qc.h5``), so the report only reads and plots them and nothing is
computed twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal as sps

__all__ = ["bcg_epochs", "channel_psd", "read_qc_signals", "stage_signals", "write_qc_signals"]

#: Version of the ``_desc-clean_qc.h5`` layout.
SCHEMA_VERSION = 1

#: Welch segment length (s) of the QC spectra.
PSD_SEG_S = 4.0

#: Limits (s) of the R-peak-locked QC epochs.
BCG_TMIN, BCG_TMAX = -0.2, 0.8


def channel_psd(data: np.ndarray, sfreq: float, *, seg_s: float = PSD_SEG_S):
    """Welch power spectral density of every channel.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Signals in volts.
    sfreq : float
        Sampling rate (Hz).
    seg_s : float
        Welch segment length (s); the whole signal when shorter.

    Returns
    -------
    freqs : ndarray
        Frequencies (Hz), up to ``sfreq / 2``.
    power : ndarray, shape (n_channels, n_freqs)
        PSD (V²/Hz).
    """
    data = np.atleast_2d(np.asarray(data, float))
    nper = int(min(data.shape[-1], round(seg_s * sfreq)))
    return sps.welch(data, sfreq, nperseg=nper, axis=-1)


def bcg_epochs(
    data: np.ndarray,
    sfreq: float,
    r_peaks: np.ndarray,
    *,
    tmin: float = BCG_TMIN,
    tmax: float = BCG_TMAX,
):
    """Average R-peak-locked epoch per channel.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Signals in volts.
    sfreq : float
        Sampling rate (Hz).
    r_peaks : ndarray of int
        R-peak samples.
    tmin, tmax : float
        Epoch limits around the R-peak (s).

    Returns
    -------
    times : ndarray
        Epoch times (s).
    average : ndarray, shape (n_channels, n_epoch_times)
        Mean epoch in µV, baseline (the samples before the R-peak) subtracted; NaN when
        no beat fits.
    """
    data = np.atleast_2d(np.asarray(data, float))
    a, b = int(round(tmin * sfreq)), int(round(tmax * sfreq))
    peaks = np.asarray(r_peaks, dtype=np.int64)
    peaks = peaks[(peaks + a >= 0) & (peaks + b <= data.shape[1])]
    times = np.arange(a, b) / sfreq
    if peaks.size == 0:
        return times, np.full((data.shape[0], b - a), np.nan)
    idx = peaks[:, None] + np.arange(a, b)[None, :]
    average = data[:, idx].mean(axis=1)  # (n_ch, n_t)
    base = times < 0 if (times < 0).any() else slice(None)
    return times, (average - average[:, base].mean(axis=1, keepdims=True)) * 1e6


def stage_signals(
    *,
    raw_of: Callable[[int, slice], np.ndarray],
    channels: Sequence[str],
    sfreq: float,
    n_times: int,
    markers: np.ndarray,
    tr: float | None,
    slice_timing,
    after_gradient: np.ndarray,
    clean: np.ndarray,
    sfreq_out: float,
    r_peaks: np.ndarray | None,
) -> dict[str, Any]:
    """The QC signals of one cleaned run, per channel.

    Parameters
    ----------
    raw_of : callable
        ``raw_of(i, slice)``: channel ``i`` of the recording (volts, float64) over ``slice``.
    channels : sequence of str
        The cleaned EEG's channel names (``raw_of``'s channel order).
    sfreq : float
        The recording's rate (Hz).
    n_times : int
        Samples of the recording.
    markers : ndarray of int
        The volume markers found in the recording (samples at ``sfreq``).
    tr : float | None
        BOLD repetition time (s); None: the median marker interval.
    slice_timing : sequence of float | None
        BIDS ``SliceTiming`` of the BOLD run (its length gives the slice frequency).
    after_gradient : ndarray, shape (n_channels, n_out)
        The EEG after gradient removal, before BCG removal, at ``sfreq_out``.
    clean : ndarray, shape (n_channels, n_out)
        The cleaned EEG at ``sfreq_out``.
    sfreq_out : float
        The output rate (Hz).
    r_peaks : ndarray of int | None
        The cardiac events the BCG step used (samples at ``sfreq_out``); None: none.

    Returns
    -------
    signals : dict
        ``channels``, ``markers``, ``sfreq``, ``sfreq_out``, ``tr``, ``slice_freq`` (None
        without slice timing), ``volume_freq``; ``psd`` with ``freqs_raw``, ``raw`` (the
        recording over the scanned part), ``freqs``, ``gradient``, ``clean`` (V²/Hz, one row
        per channel); ``bcg`` (None without cardiac events) with ``times``, ``before``,
        ``after`` (µV, one row per channel), ``n_beats`` and ``r_peaks``.
    """
    markers = np.asarray(markers, dtype=np.int64)
    if markers.size < 2:
        raise ValueError("fewer than two volume markers: no QC signals")
    tr = float(tr) if tr else float(np.median(np.diff(markers)) / sfreq)
    n = min(after_gradient.shape[1], clean.shape[1])
    scan = slice(int(markers[0]), int(min(markers[-1] + round(tr * sfreq), n_times)))
    scan_out = slice(
        int(round(scan.start * sfreq_out / sfreq)),
        min(int(round(scan.stop * sfreq_out / sfreq)), n),
    )
    raw_rows = [channel_psd(raw_of(i, scan), sfreq) for i in range(len(channels))]
    freqs_raw = raw_rows[0][0]
    f, p_grad = channel_psd(after_gradient[:, scan_out], sfreq_out)
    _, p_clean = channel_psd(clean[:, scan_out], sfreq_out)
    n_slices = len(slice_timing) if slice_timing else None
    signals: dict[str, Any] = {
        "channels": list(channels),
        "markers": markers,
        "sfreq": float(sfreq),
        "sfreq_out": float(sfreq_out),
        "tr": tr,
        "slice_freq": (n_slices / tr) if n_slices else None,
        "volume_freq": 1.0 / tr,
        "psd": {
            "freqs_raw": freqs_raw,
            "raw": np.vstack([p[0] for _, p in raw_rows]),
            "freqs": f,
            "gradient": p_grad,
            "clean": p_clean,
        },
        "bcg": None,
    }
    if r_peaks is not None:
        peaks = np.asarray(r_peaks, dtype=np.int64)
        peaks = peaks[(peaks >= scan_out.start) & (peaks < scan_out.stop)]
        times, before = bcg_epochs(after_gradient[:, :n], sfreq_out, peaks)
        _, after = bcg_epochs(clean[:, :n], sfreq_out, peaks)
        signals["bcg"] = {
            "times": times,
            "before": before,
            "after": after,
            "n_beats": int(peaks.size),
            "r_peaks": peaks,
        }
    return signals


def write_qc_signals(
    path: str | os.PathLike, signals: Mapping[str, Any], *, attrs: Mapping[str, Any]
) -> Path:
    """Write :func:`stage_signals` to HDF5 (through a temporary name).

    Parameters
    ----------
    path : path-like
        The ``<run>_desc-clean_qc.h5`` file.
    signals : mapping
        From :func:`stage_signals`.
    attrs : mapping
        Extra attributes (provenance: ``neurobolt_version``, ``config_hash``, ``run``).
    """
    import h5py

    from ..provenance import atomic_path

    with atomic_path(path) as tmp, h5py.File(tmp, "w", locking=False) as f:
        f.create_dataset("markers", data=np.asarray(signals["markers"], dtype=np.int64))
        psd = f.create_group("psd")
        for key in ("freqs_raw", "freqs"):
            psd.create_dataset(key, data=np.asarray(signals["psd"][key], dtype=np.float64))
        for key in ("raw", "gradient", "clean"):
            psd.create_dataset(
                key, data=np.asarray(signals["psd"][key], dtype=np.float32), compression="gzip"
            )
        bcg = signals.get("bcg")
        if bcg is not None:
            g = f.create_group("bcg")
            for key in ("times", "before", "after"):
                g.create_dataset(key, data=np.asarray(bcg[key], dtype=np.float64))
            g.create_dataset("r_peaks", data=np.asarray(bcg["r_peaks"], dtype=np.int64))
            g.attrs["n_beats"] = int(bcg["n_beats"])
        slice_freq = signals.get("slice_freq")
        f.attrs.update(
            {
                "schema_version": SCHEMA_VERSION,
                "channels": json.dumps(list(signals["channels"])),
                "sfreq": float(signals["sfreq"]),
                "sfreq_out": float(signals["sfreq_out"]),
                "tr": float(signals["tr"]),
                "slice_freq": float(slice_freq) if slice_freq else float("nan"),
                "volume_freq": float(signals["volume_freq"]),
                "psd_seg_s": PSD_SEG_S,
                "psd_unit": "V^2/Hz",
                "bcg_unit": "uV",
                **{k: v for k, v in attrs.items() if v is not None},
            }
        )
    return Path(path)


def read_qc_signals(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``<run>_desc-clean_qc.h5`` file back into the form :func:`stage_signals` returns.

    Raises
    ------
    ValueError
        When the file's layout version is not this one's.
    """
    import h5py

    with h5py.File(path, "r", locking=False) as f:
        version = int(f.attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"{path}: QC signals of layout version {version}, expected {SCHEMA_VERSION}:"
                " run clean_eeg again"
            )
        slice_freq = float(f.attrs["slice_freq"])
        signals: dict[str, Any] = {
            "channels": json.loads(f.attrs["channels"]),
            "markers": f["markers"][()],
            "sfreq": float(f.attrs["sfreq"]),
            "sfreq_out": float(f.attrs["sfreq_out"]),
            "tr": float(f.attrs["tr"]),
            "slice_freq": slice_freq if np.isfinite(slice_freq) else None,
            "volume_freq": float(f.attrs["volume_freq"]),
            "psd": {key: f["psd"][key][()] for key in f["psd"]},
            "bcg": None,
        }
        if "bcg" in f:
            g = f["bcg"]
            signals["bcg"] = {key: g[key][()] for key in ("times", "before", "after", "r_peaks")}
            signals["bcg"]["n_beats"] = int(g.attrs["n_beats"])
    return signals
