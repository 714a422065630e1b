"""MR gradient artifact removal: the public entry point and artifact-based helpers.

:func:`remove_gradient` removes the gradient artifact from an array at its own rate
with :class:`neurobolt.eeg.aas.GradientPlan` (exact per-slice alignment, local
templates with a fitted gain, an optimal basis set of what motion changes; slow EEG
kept). The EEG stage (:mod:`neurobolt.eeg.stage`) runs the same plan at an anti-aliased
intermediate rate, which is faster and makes the fractional shifts exact.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from .. import config as nbconfig

logger = logging.getLogger("neurobolt.eeg.gradient")

__all__ = ["remove_gradient"]


def blas_single_thread():
    """Context manager limiting BLAS to one thread.

    The matrices here are small, and on a busy machine OpenBLAS's spinning
    threads make every call many times slower (measured: 4x on the 2-core
    machine with other jobs running).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def detect_n_slices(
    data: np.ndarray,
    sfreq: float,
    volume_onsets,
    *,
    min_period: float = 0.008,
    threshold: float = 0.9,
) -> int | None:
    """Find the number of slices per volume from the periodicity of the artifact.

    The mean volume epoch (first derivative, summed over ``data``'s channels)
    is compared with itself shifted by ``vol_len / n`` samples; the largest
    ``n`` whose correlation exceeds ``threshold`` is the number of slice
    acquisitions per volume.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        A few channels with a large gradient artifact.
    sfreq : float
        Sampling rate (Hz).
    volume_onsets : array of int
        Volume starts (samples).
    min_period : float
        Shortest slice period considered (s).
    threshold : float
        Correlation a slice period must reach.

    Returns
    -------
    n_slices : int | None
        None when no period is convincing.
    """
    onsets = np.asarray(volume_onsets, dtype=np.int64)
    length = int(np.median(np.diff(onsets)))
    data = np.atleast_2d(np.asarray(data, dtype=np.float64))
    use = onsets[(onsets + length <= data.shape[1])][:50]
    if use.size < 2:
        return None
    mean = np.zeros((data.shape[0], length))
    for o in use:
        mean += data[:, o : o + length]
    mean = np.diff(mean, axis=1)
    best = None
    max_n = int(length / max(min_period * sfreq, 4))
    for n in range(2, max_n + 1):
        lag = length / n
        if abs(lag - round(lag)) > 0.05 * lag:
            continue
        lag = int(round(lag))
        a, b = mean[:, :-lag], mean[:, lag:]
        denom = np.sqrt(np.sum(a * a) * np.sum(b * b))
        if denom > 0 and np.sum(a * b) / denom > threshold:
            best = n
    return best


def choose_reference_channels(
    data: np.ndarray, onsets, *, n_ref: int = nbconfig.defaults("eeg.gradient.n_ref")
) -> np.ndarray:
    """Indices of the channels with the largest gradient artifact (first-derivative power)."""
    onsets = np.asarray(onsets)
    stop = onsets[min(len(onsets) - 1, 10)]
    seg = np.asarray(data[:, onsets[0] : max(stop, onsets[0] + 10)], dtype=np.float64)
    power = np.mean(np.diff(seg, axis=1) ** 2, axis=1)
    return np.argsort(power)[::-1][: int(min(n_ref, len(power)))]


def remove_gradient(
    data: np.ndarray,
    sfreq: float,
    volume_onsets,
    *,
    n_slices: int | None = None,
    slice_timing=None,
    tr: float | None = None,
    window: int = nbconfig.defaults("eeg.gradient.window"),
    align: bool = True,
    n_ref: int = nbconfig.defaults("eeg.gradient.n_ref"),
    gate: bool | None = None,
    obs_components: int = nbconfig.defaults("eeg.gradient.obs_components"),
    obs_highpass: float = nbconfig.defaults("eeg.gradient.obs_highpass"),
    obs_basis: str = nbconfig.defaults("eeg.gradient.obs_basis"),
    anc: bool = nbconfig.defaults("eeg.gradient.anc"),
    scan_edges: bool = nbconfig.defaults("eeg.gradient.scan_edges"),
    copy: bool = True,
    clocks: str = nbconfig.defaults("eeg.gradient.clocks"),
    select: str = nbconfig.defaults("eeg.gradient.select"),
) -> np.ndarray:
    """Remove the MR gradient artifact from EEG recorded during fMRI.

    Every slice is aligned with an exact fractional shift, each volume's template is
    the gain-fitted mean of its neighbours (or of its best-correlated volumes), and an
    optimal basis set of the residual (pooled over the channels with the largest
    artifact) follows what head motion changes; see :mod:`neurobolt.eeg.aas`. Every
    volume's estimate is zero-mean, so slow EEG is kept.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times) or (n_times,)
        The recording (V).
    sfreq : float
        Sampling rate (Hz).
    volume_onsets : array of int
        Sample index of each volume start.
    n_slices : int | None
        Slices per volume, equally spaced over the TR (ignored when
        ``slice_timing`` is given). None: whole-volume alignment only.
    slice_timing : array of float | None
        BIDS ``SliceTiming`` (s).
    tr : float | None
        Repetition time (s); None uses the median marker interval.
    window : int
        Volumes averaged into each template.
    align : bool
        Estimate per-slice delays when the clocks are not synchronised.
    n_ref : int
        Channels (largest artifact) used for the delays and the basis set.
    gate : bool | None
        Deprecated, ignored.
    obs_components : int
        Most components of the optimal basis set fitted per volume (0: none).
    obs_highpass : float
        High-pass (Hz) of the residual from which the basis set is found and fitted.
    obs_basis : {"shared", "residual"}
        The basis set: the leading shapes of all channels' mean artifacts and the same
        shapes ramped across the volume, or the principal components of the reference
        channels' residuals (:meth:`neurobolt.eeg.aas.GradientPlan.fit_basis`).
    anc : bool
        Adaptive noise cancellation after the template subtraction
        (:func:`neurobolt.eeg.anc.adaptive_cancel`).
    scan_edges : bool
        Remove the artifact at the scan's edges that no volume template holds (the
        ringing after the last volume, the onset before the first;
        :func:`neurobolt.eeg.edges.scan_edges`).
    copy : bool
        If False, write the result into ``data`` (which must be float).
    clocks : {"auto", "synchronised", "unsynchronised"}
        ``auto``: synchronised when every marker interval is the same.
    select : {"local", "correlation", "hybrid"}
        Template volumes: the neighbours, the best-correlated (FARM, default), or the
        best-correlated among the 3 x ``window`` nearest.

    Returns
    -------
    cleaned : ndarray, same shape as ``data``
        Samples before the first and after the last volume are unchanged.
    """
    if gate is not None:
        warnings.warn(
            "remove_gradient: `gate` is deprecated and ignored", DeprecationWarning, stacklevel=2
        )
    from .aas import GradientPlan

    with blas_single_thread():
        arr = np.asarray(data)
        one = arr.ndim == 1
        x = arr[None] if one else arr
        onsets = np.asarray(volume_onsets, dtype=np.int64)
        auto = clocks == "auto"
        if auto:
            clocks = "synchronised" if np.ptp(np.diff(onsets)) == 0 else "unsynchronised"
        period = float(np.median(np.diff(onsets)))
        tr_s = float(tr) if tr else period / sfreq
        if slice_timing is not None and len(slice_timing) > 1:
            fractions = np.unique(np.round(np.asarray(slice_timing, float), 6)) / tr_s
        elif n_slices is not None and int(n_slices) > 1:
            fractions = np.arange(int(n_slices)) / int(n_slices)
        else:
            fractions = None
        plan = GradientPlan.from_onsets(
            onsets.astype(float),
            sfreq,
            x.shape[1],
            slice_fractions=fractions,
            window=window,
            select=select,
            obs_components=obs_components,
            clocks=clocks,
        )
        plan.obs_highpass = float(obs_highpass)
        plan.obs_basis = str(obs_basis)
        plan.anc = bool(anc)
        plan.scan_edges = bool(scan_edges)
        refs = choose_reference_channels(x, onsets, n_ref=n_ref)
        if align and auto and plan.synchronised:
            plan.triggers_jitter(x[refs])
        if align:
            plan.estimate_delays(x[refs])
        plan.fit_basis(x[refs], channels=x)
        if copy or not np.issubdtype(x.dtype, np.floating):
            out = np.empty(x.shape, dtype=np.result_type(x.dtype, np.float32))
        else:
            out = x
        for c in range(x.shape[0]):
            out[c] = plan.correct(x[c])
        return out[0] if one else out
