"""Signal cleaning of the fMRI stage: Butterworth low-pass, regression, normalisation."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import signal as sp_signal

from .. import config as nbconfig
from .inputs import FMRIInputError


def lowpass_sos(
    *, sfreq: float, cutoff: float, order: int = 5, cutoff_definition: str = "zero_phase_3db"
) -> tuple[np.ndarray, float]:
    """Design the Butterworth low-pass applied forwards and backwards.

    Filtering forwards and backwards squares the magnitude response, which
    moves the −3 dB point of a Butterworth designed at ``f_c`` down to where
    the single pass is at −1.5 dB (0.144 Hz instead of 0.15 Hz at TR 2.1 s,
    0.138 Hz at TR 0.5 s). With ``cutoff_definition="zero_phase_3db"`` the
    design frequency is raised so that the *zero-phase* response is −3 dB at
    ``cutoff`` exactly, at any sampling rate (bilinear-transform warping is
    accounted for). ``"single_pass_3db"`` designs at ``cutoff`` as the
    NeuroBOLT reference code does.

    Parameters
    ----------
    sfreq : float
        Sampling frequency in Hz (1 / TR).
    cutoff : float
        Cut-off in Hz; must be below the Nyquist frequency.
    order : int
        Order of the single-pass Butterworth (the zero-phase filter is twice
        as steep).
    cutoff_definition : str
        ``"zero_phase_3db"`` or ``"single_pass_3db"``.

    Returns
    -------
    sos : ndarray, shape (n_sections, 6)
        Second-order sections.
    design_hz : float
        The frequency the Butterworth was designed at.
    """
    nyquist = sfreq / 2.0
    if not 0 < cutoff < nyquist:
        raise ValueError(
            f"low-pass cut-off {cutoff} Hz must lie in (0, {nyquist:.4g}) Hz, the Nyquist "
            f"frequency at TR {1 / sfreq:.4g} s; lower fmri.lowpass_hz or set it to null."
        )
    design = float(cutoff)
    if cutoff_definition == "zero_phase_3db":
        # |H(f)|^2 = 1 / (1 + (tan(pi f / fs) / tan(pi fd / fs))^(2 N)); forward-backward
        # gives |H|^2, which is 1/sqrt(2) where the ratio equals (sqrt(2) - 1)^(1 / 2N).
        ratio = (np.sqrt(2.0) - 1.0) ** (1.0 / (2 * order))
        design = float(np.arctan(np.tan(np.pi * cutoff / sfreq) / ratio) * sfreq / np.pi)
        if design >= nyquist:
            raise ValueError(
                f"low-pass cut-off {cutoff} Hz is too close to the Nyquist frequency "
                f"{nyquist:.4g} Hz for a zero-phase design; lower fmri.lowpass_hz."
            )
    elif cutoff_definition != "single_pass_3db":
        raise ValueError(f"unknown cutoff_definition {cutoff_definition!r}")
    sos = sp_signal.butter(order, design, btype="lowpass", fs=sfreq, output="sos")
    return sos, design


def lowpass_filter(
    signals: np.ndarray,
    *,
    sfreq: float,
    cutoff: float = nbconfig.defaults("fmri.lowpass_hz"),
    order: int = 5,
    cutoff_definition: str = "zero_phase_3db",
    axis: int = 0,
) -> np.ndarray:
    """Zero-phase Butterworth low-pass (forward-backward second-order sections).

    Parameters
    ----------
    signals : ndarray
        Time series; time along ``axis``.
    sfreq : float
        Sampling frequency in Hz (1 / TR).
    cutoff : float
        −3 dB frequency in Hz (see :func:`lowpass_sos` for its definition).
    order : int
        Butterworth order (5 in the reference).
    cutoff_definition : str
        ``"zero_phase_3db"`` (default) or ``"single_pass_3db"``.
    axis : int
        Time axis.

    Returns
    -------
    filtered : ndarray
        Same shape, float64.
    """
    signals = np.asarray(signals, dtype=np.float64)
    sos, _ = lowpass_sos(
        sfreq=sfreq, cutoff=cutoff, order=order, cutoff_definition=cutoff_definition
    )
    n = signals.shape[axis]
    default_padlen = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    return sp_signal.sosfiltfilt(sos, signals, axis=axis, padlen=min(default_padlen, n - 1))


def normalize_signals(
    signals: np.ndarray, *, percentile: float = 95.0, axis: int = 0
) -> np.ndarray:
    """Demean and divide by the given percentile of ``|x|``, per series.

    A series that is constant (percentile 0) stays at zero after demeaning
    and triggers a warning instead of a division by zero.

    Parameters
    ----------
    signals : ndarray
        Time series; time along ``axis``.
    percentile : float
        Percentile of the absolute demeaned values that becomes 1.
    axis : int
        Time axis.

    Returns
    -------
    normalized : ndarray
        Same shape, float64; each series has mean 0 and the given
        percentile of ``|x|`` equal to 1.
    """
    x = np.asarray(signals, dtype=np.float64)
    x = x - x.mean(axis=axis, keepdims=True)
    scale = np.percentile(np.abs(x), percentile, axis=axis, keepdims=True)
    flat = scale <= np.finfo(np.float64).tiny
    if np.any(flat):
        warnings.warn(
            f"{int(flat.sum())} constant series left at zero by normalisation", stacklevel=2
        )
    return x / np.where(flat, 1.0, scale)


def regress_out(
    signals: np.ndarray, regressors: np.ndarray | None, *, detrend_order: int = 0
) -> np.ndarray:
    """Remove regressors and a polynomial trend by ordinary least squares.

    Parameters
    ----------
    signals : ndarray, shape (n_times, n_series)
        Time series.
    regressors : ndarray, shape (n_times, n_regressors) | None
        Confounds (e.g. motion parameters); must be finite.
    detrend_order : int
        Polynomial order of the trend also removed (0 = the mean only,
        1 = mean and linear trend, ...).

    Returns
    -------
    residuals : ndarray, shape (n_times, n_series)
        Orthogonal to every regressor and to the polynomial.
    """
    y = np.asarray(signals, dtype=np.float64)
    squeeze = y.ndim == 1
    if squeeze:
        y = y[:, None]
    n = y.shape[0]
    t = np.linspace(-1.0, 1.0, n)
    columns = [np.polynomial.legendre.legval(t, np.eye(k + 1)[k]) for k in range(detrend_order + 1)]
    design = np.column_stack(columns)
    if regressors is not None:
        regressors = np.asarray(regressors, dtype=np.float64).reshape(n, -1)
        if not np.all(np.isfinite(regressors)):
            raise FMRIInputError("confound regressors contain NaN or inf after filling n/a")
        design = np.column_stack([design, regressors])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ beta
    return residuals[:, 0] if squeeze else residuals
