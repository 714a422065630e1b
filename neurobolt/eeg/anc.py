"""Adaptive noise cancellation (ANC) of what the gradient templates leave behind.

As in FASTR (Allen et al. 2000; Niazy et al. 2005), the artifact estimate that was
subtracted serves as the reference of an adaptive filter: the residual artifact is
assumed to be a filtered copy of the estimate (a small error of gain, delay or shape),
so a short FIR filter of the reference, fitted to the corrected signal, predicts it.
Instead of sample-by-sample LMS, the filter is the least-squares (Wiener) solution in
blocks of ``block_s`` seconds (the same fixed point, without a step size to tune, and
vectorised). Both signals are high-passed at ``highpass`` Hz before the fit, where the
artifact's slice harmonics are and the EEG is weak, so the filter learns little EEG;
the filter then predicts the residue from the whole reference (the residue is a filtered
copy of the estimate at every frequency), and the prediction is subtracted. The EEG
enters only through the few filter taps fitted on its weak high-passed part.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

__all__ = ["adaptive_cancel"]


def adaptive_cancel(
    y: np.ndarray,
    reference: np.ndarray,
    sfreq: float,
    *,
    order: int = 12,
    block_s: float = 20.0,
    highpass: float = 20.0,
    span: tuple[int, int] | None = None,
) -> np.ndarray:
    """Subtract the part of ``y`` that a short FIR filter of ``reference`` predicts.

    Parameters
    ----------
    y : ndarray, shape (n_times,)
        The signal after template subtraction.
    reference : ndarray, shape (n_times,)
        The artifact estimate that was subtracted from it.
    sfreq : float
        Sampling rate (Hz).
    order : int
        FIR taps (causal and anti-causal around zero lag: ``order // 2`` each side).
    block_s : float
        Length (s) of the blocks in which the filter is fitted.
    highpass : float
        Both signals are high-passed here before the fit (Hz).
    span : (int, int) | None
        Samples to correct (the scan); None: where the reference is non-zero.

    Returns
    -------
    out : ndarray, shape (n_times,)
    """
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if span is None:
        nz = np.flatnonzero(ref)
        if nz.size == 0:
            return y.copy()
        span = (int(nz[0]), int(nz[-1]) + 1)
    lo, hi = span
    sos = sps.butter(4, highpass, btype="highpass", fs=sfreq, output="sos")
    yh = sps.sosfiltfilt(sos, y[lo:hi])
    rh = sps.sosfiltfilt(sos, ref[lo:hi])
    half = int(order) // 2
    lags = np.arange(-half, int(order) - half)
    n = hi - lo

    def lagged(padded, b0, b1):  # rows b0:b1; column j holds x[t - lags[j]] (zero outside)
        return np.stack([padded[half + b0 - lag : half + b1 - lag] for lag in lags], axis=1)

    rh_p = np.pad(rh, (half, int(order)))
    ref_p = np.pad(ref[lo:hi], (half, int(order)))

    pred = np.zeros(n)
    step = max(int(block_s * sfreq), 4 * int(order))
    edges = list(range(0, n, step))
    if len(edges) > 1 and n - edges[-1] < step // 2:  # a short tail joins the block before
        edges.pop()
    for b0, b1 in zip(edges, [*edges[1:], n], strict=True):
        coef, *_ = np.linalg.lstsq(lagged(rh_p, b0, b1), yh[b0:b1], rcond=None)
        pred[b0:b1] = lagged(ref_p, b0, b1) @ coef
    out = y.copy()
    out[lo:hi] -= pred
    return out
