"""The EEG figures' data, from the QC signals the ``clean_eeg`` stage kept.

Nothing is recomputed from the recording: :func:`eeg_figure_data` picks the shown channels
out of a run's ``_desc-clean_qc.h5`` (:func:`neurobolt.eeg.qc_signals.read_qc_signals`) and
averages their spectra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..eeg.qc_signals import PSD_SEG_S, bcg_epochs, channel_psd

__all__ = ["bcg_epochs", "eeg_figure_data", "psd"]


def psd(data: np.ndarray, sfreq: float, *, fmax: float = 100.0, seg_s: float = PSD_SEG_S):
    """Welch power spectral density, mean over channels, up to ``fmax``.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Signals in volts.
    sfreq : float
        Sampling rate (Hz).
    fmax : float
        Highest frequency returned (Hz).
    seg_s : float
        Welch segment length (s).

    Returns
    -------
    freqs : ndarray
        Frequencies (Hz).
    power : ndarray
        Mean PSD over channels (µV²/Hz).
    """
    f, p = channel_psd(data, sfreq, seg_s=seg_s)
    return _mean_spectrum(f, p, fmax)


def _mean_spectrum(f: np.ndarray, p: np.ndarray, fmax: float):
    keep = f <= fmax
    return f[keep], np.asarray(p, float)[:, keep].mean(axis=0) * 1e12


def eeg_figure_data(
    signals: Mapping[str, Any], *, channels: Sequence[str], fmax: float = 100.0
) -> dict[str, Any]:
    """The spectra and BCG epochs of a few channels at each cleaning step.

    Parameters
    ----------
    signals : mapping
        A run's QC signals (:func:`neurobolt.eeg.qc_signals.read_qc_signals`).
    channels : sequence of str
        Channels to show (``report.qc_channels``; those the cleaned EEG lacks are skipped,
        and with none left its first four are shown).
    fmax : float
        Highest frequency of the spectra (Hz).

    Returns
    -------
    data : dict
        ``channels``, ``markers`` (samples at the raw rate), ``sfreq``, ``tr``, ``spectra``
        (label -> (freqs, µV²/Hz, mean of the channels)), ``slice_freq``, ``volume_freq``,
        ``bcg`` (None without cardiac events, else ``times``, ``before``, ``after`` in µV,
        ``n_beats``).
    """
    names = list(signals["channels"])
    upper = {n.strip().upper(): i for i, n in enumerate(names)}
    chans = [c for c in channels if c.strip().upper() in upper]
    if not chans:
        chans = names[: min(4, len(names))]
    rows = [upper[c.strip().upper()] for c in chans]
    spec = signals["psd"]
    spectra = {
        "raw": _mean_spectrum(spec["freqs_raw"], spec["raw"][rows], fmax),
        "after gradient removal": _mean_spectrum(spec["freqs"], spec["gradient"][rows], fmax),
        "after gradient + BCG removal": _mean_spectrum(spec["freqs"], spec["clean"][rows], fmax),
    }
    data: dict[str, Any] = {
        "channels": chans,
        "markers": np.asarray(signals["markers"]),
        "sfreq": float(signals["sfreq"]),
        "tr": float(signals["tr"]),
        "spectra": spectra,
        "slice_freq": signals.get("slice_freq"),
        "volume_freq": float(signals["volume_freq"]),
        "bcg": None,
    }
    bcg = signals.get("bcg")
    if bcg is not None:
        data["bcg"] = {
            "times": np.asarray(bcg["times"]),
            "before": np.asarray(bcg["before"])[rows],
            "after": np.asarray(bcg["after"])[rows],
            "n_beats": int(bcg["n_beats"]),
        }
    return data
