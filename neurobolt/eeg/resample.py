"""Anti-aliased polyphase resampling of the EEG (the last step of the ``clean_eeg`` stage).

:func:`resample_stages` designs the stages (Kaiser-window low-pass FIR filters, 80 dB
against aliasing, an integer decimation split in two); :func:`resample` applies them.
:func:`highpass_rows` is the zero-phase high-pass the gradient step fits its basis set
and finds the scan's edges with.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal as sps

__all__ = ["apply_stages", "highpass_rows", "lowpass_taps", "resample", "resample_stages"]


def highpass_rows(x: np.ndarray, rate: float, cutoff: float) -> np.ndarray:
    """Zero-phase Butterworth high-pass of each row (epochs are short: order 4, padded)."""
    if cutoff <= 0:
        return x
    sos = sps.butter(4, cutoff, btype="highpass", fs=rate, output="sos")
    return sps.sosfiltfilt(sos, x, axis=-1, padtype="even")


def lowpass_taps(fs: float, f_pass: float, f_stop: float, atten: float = 80.0) -> np.ndarray:
    """Kaiser-window low-pass FIR (odd length, unit DC gain) at rate ``fs``."""
    width = (f_stop - f_pass) / (fs / 2.0)
    numtaps, beta = sps.kaiserord(atten, width)
    numtaps |= 1
    return sps.firwin(numtaps, (f_pass + f_stop) / 2.0, window=("kaiser", beta), fs=fs)


def resample_stages(
    sfreq: float, sfreq_out: float, *, passband: float | None = None
) -> list[tuple[int, int, np.ndarray]]:
    """Polyphase stages ``(up, down, taps)`` from ``sfreq`` to ``sfreq_out``.

    The pass band (default 0.4 × ``sfreq_out``) is kept flat and everything
    that would alias into ``[0, sfreq_out / 2]`` is attenuated by 80 dB. An
    integer decimation by a composite factor is split in two stages (a short
    filter first, then the sharp one at the lower rate).
    """
    f_pass = float(passband) if passband else 0.4 * sfreq_out
    if not 0 < f_pass < sfreq_out / 2:
        raise ValueError(f"passband {f_pass} Hz must be below half the output rate")
    ratio = Fraction(sfreq_out / sfreq).limit_denominator(10000)
    up, down = ratio.numerator, ratio.denominator
    if abs(up / down - sfreq_out / sfreq) > 1e-9:
        raise ValueError(f"cannot resample {sfreq} Hz to {sfreq_out} Hz exactly")
    stages = []
    if up == 1 and down > 1:
        first = [d for d in range(2, down) if down % d == 0 and sfreq / d >= 4 * sfreq_out]
        if first:
            d1 = max(first)
            mid = sfreq / d1
            stages.append((1, d1, lowpass_taps(sfreq, f_pass, mid - f_pass)))
            sfreq, down = mid, down // d1
    if up != 1 or down != 1:
        fs = sfreq * up
        stop = min(sfreq_out / 2.0, sfreq / 2.0)
        stages.append((up, down, lowpass_taps(fs, f_pass, stop)))
    return stages


def apply_stages(x: np.ndarray, stages) -> np.ndarray:
    """Apply the ``(up, down, taps)`` stages of :func:`resample_stages` along the last axis."""
    for up, down, taps in stages:
        x = sps.resample_poly(x, up, down, axis=-1, window=taps, padtype="line")
    return x


def resample(
    data: np.ndarray, sfreq: float, sfreq_out: float, *, passband: float | None = None
) -> np.ndarray:
    """Anti-aliased polyphase resampling (zero phase).

    Parameters
    ----------
    data : ndarray, shape (..., n_times)
        Signals.
    sfreq : float
        Input rate (Hz).
    sfreq_out : float
        Output rate (Hz); ``sfreq_out / sfreq`` must be a ratio of small integers.
    passband : float | None
        Edge of the flat pass band (Hz); default 0.4 × ``sfreq_out``.

    Returns
    -------
    out : ndarray, shape (..., n_out)
        Output sample ``k`` is at time ``k / sfreq_out`` (same origin as the input).
    """
    return apply_stages(
        np.asarray(data, float), resample_stages(sfreq, sfreq_out, passband=passband)
    )
