"""Quality-control figures of the EEG stage (residual lines, cardiac-locked residual, alpha)."""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

__all__ = ["alpha_ratio", "background", "band_power", "locked_rms", "median"]


def welch(x: np.ndarray, sfreq: float):
    """Welch PSD with 8 s segments (or the whole signal): ``(freqs, psd, resolution)``."""
    x = np.atleast_2d(x)
    nper = int(min(x.shape[-1], round(8.0 * sfreq)))
    f, p = sps.welch(x, sfreq, nperseg=nper, axis=-1)
    return f, p, f[1] - f[0]


def band_power(x: np.ndarray, sfreq: float, freqs, *, half_width: float = 0.1) -> np.ndarray:
    """Power (V²) in ``±half_width`` Hz around each frequency, per channel (n_ch, n_freqs)."""
    x = np.atleast_2d(x)
    f, p, df = welch(x, sfreq)
    out = np.full((x.shape[0], len(freqs)), np.nan)
    for j, f0 in enumerate(freqs):
        if f0 >= 0.45 * sfreq:
            continue
        m = np.abs(f - f0) <= max(half_width, df / 2)
        out[:, j] = p[:, m].sum(axis=1) * df
    return out


def locked_rms(x: np.ndarray, peaks: np.ndarray, sfreq: float) -> float:
    """Median over channels of the RMS (µV) of the R-peak-locked average, 0-0.7 s."""
    length = int(0.7 * sfreq)
    peaks = np.asarray(peaks)
    peaks = peaks[(peaks >= 0) & (peaks + length <= x.shape[-1])]
    if peaks.size < 2:
        return float("nan")
    avg = np.zeros((x.shape[0], length))
    for p in peaks:
        avg += x[:, p : p + length]
    avg /= peaks.size
    avg -= avg.mean(axis=1, keepdims=True)
    return float(np.median(np.sqrt((avg**2).mean(axis=1))) * 1e6)


def alpha_ratio(after: np.ndarray, before: np.ndarray, sfreq: float) -> float:
    """Median over channels of the 8-12 Hz power after / before a step (1: alpha kept)."""
    f, pa, _ = welch(after, sfreq)
    _, pb, _ = welch(before, sfreq)
    m = (f >= 8) & (f <= 12)
    return median(pa[:, m].sum(axis=1) / np.maximum(pb[:, m].sum(axis=1), 1e-300))


def median(a) -> float:
    """Median of the finite values (nan when none)."""
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else float("nan")


def background(x: np.ndarray, sfreq: float, freqs) -> np.ndarray:
    """Power of the spectral background around each line (median of ±1 Hz, lines excluded)."""
    x = np.atleast_2d(x)
    f, p, df = welch(x, sfreq)
    out = np.full((x.shape[0], len(freqs)), np.nan)
    for j, f0 in enumerate(freqs):
        if f0 >= 0.45 * sfreq:
            continue
        m = (np.abs(f - f0) <= 1.0) & (np.abs(f - f0) > 0.3)
        line = np.abs(f - f0) <= max(0.1, df / 2)
        out[:, j] = np.median(p[:, m], axis=1) * df * line.sum()
    return out
