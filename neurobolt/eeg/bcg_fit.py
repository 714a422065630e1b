"""Per-beat, per-channel latency and gain of the BCG, fitted to a local template.

Real BCG differs between channels and from beat to beat in its latency (several ms)
and amplitude (around 10 %); one template per channel scaled per beat, or shared
per-beat coefficients (a joint OBS), leave much of it behind. :func:`fit_beats`
models every beat ``b`` of every channel ``c`` as ``g[b, c] * T[b, c](t - tau[b, c])``
plus a constant, where ``T[b, c]`` is the mean of the channel's ``window``
neighbouring beats (the beat itself excluded, each moved to zero latency), and fits
``g`` and ``tau`` by Gauss-Newton with exact sub-sample shifts (:mod:`.align`).
"""

from __future__ import annotations

import numpy as np

from .. import config as nbconfig
from .align import shift

__all__ = ["fit_beats"]

#: The BCG lies below 20 Hz: at 200 Hz a 9-tap fractional shift is exact to ~1e-3.
_HALF = 4


def _local_mean(a: np.ndarray, width: int) -> np.ndarray:
    """Mean over the ``width`` neighbouring beats (axis 0), the beat itself excluded."""
    n = a.shape[0]
    width = int(max(1, min(width, n - 1)))
    start = np.clip(np.arange(n) - (width + 1) // 2, 0, n - (width + 1))
    csum = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])
    tot = csum[start + width + 1] - csum[start]
    return (tot - a) / width


def fit_beats(
    epochs: np.ndarray,
    valid: np.ndarray,
    sfreq: float,
    *,
    window: int = 30,
    max_shift: float = nbconfig.defaults("eeg.bcg.max_shift"),
    n_iter: int = 3,
    shrink: bool = True,
) -> np.ndarray:
    """Artifact estimate of every beat and channel (same shape as ``epochs``).

    Parameters
    ----------
    epochs : ndarray, shape (n_beats, n_channels, n_times)
        Beat epochs (zero outside each beat's valid samples).
    valid : ndarray of bool, shape (n_beats, n_times)
        The samples that belong to each beat.
    sfreq : float
        Sampling rate (Hz).
    window : int
        Beats averaged into a template.
    max_shift : float
        Largest fitted latency change (s).
    n_iter : int
        Alternations of template and per-beat fit.
    shrink : bool
        Shrink each channel's latency and gain towards the beat's common latency and
        gain (inverse-variance weighted means over channels) by their estimation noise
        (empirical Bayes), so channels with a weak BCG are not fitted to their EEG.

    Returns
    -------
    fit : ndarray, shape (n_beats, n_channels, n_times)
        ``g * T(t - tau)`` per beat and channel (zero outside the valid samples).
    """
    n_b, n_c, n_t = epochs.shape
    v = valid[:, None, :].astype(np.float64)
    lim = max_shift * sfreq
    tau = np.zeros((n_b, n_c))
    gain = np.ones((n_b, n_c))
    # a linear trend over each beat's valid samples, centred on them
    idx = np.arange(n_t, dtype=np.float64)[None, :] * valid
    centre = idx.sum(axis=1, keepdims=True) / np.maximum(valid.sum(axis=1, keepdims=True), 1)
    trend = ((np.arange(n_t)[None, :] - centre) * valid / max(n_t, 1))[:, None, :]
    trend = np.broadcast_to(trend, (n_b, n_c, n_t))
    for _ in range(n_iter):
        # Template from the other beats moved to zero latency and unit gain.
        aligned = shift(epochs, -tau, half=_HALF) * v / gain[:, :, None]
        tmpl = _local_mean(aligned, window)
        # Gauss-Newton for each beat's latency and gain (with a free constant).
        for _gn in range(2):
            t_s = shift(tmpl, tau, half=_HALF)
            d1 = np.gradient(t_s, axis=2)
            # regressors: 1, T, T' and a linear trend (the EEG's slow part, not fitted
            # as BCG) over the beat's valid samples
            regs = [v, t_s * v, d1 * v, trend]
            n_r = len(regs)
            gram = np.empty((n_b, n_c, n_r, n_r))
            rhs = np.empty((n_b, n_c, n_r))
            for i in range(n_r):
                rhs[..., i] = np.einsum("bct,bct->bc", regs[i], epochs * v)
                for j in range(i, n_r):
                    gram[..., i, j] = gram[..., j, i] = np.einsum("bct,bct->bc", regs[i], regs[j])
            gram += np.eye(n_r) * 1e-12 * (gram[..., 1:2, 1:2] + 1e-30)
            coef = np.linalg.solve(gram, rhs[..., None])[..., 0]
            g = coef[..., 1]
            ok = g > 0.2
            step = np.where(ok, -coef[..., 2] / np.where(ok, g, 1.0), 0.0)
            tau = np.clip(tau + np.clip(step, -1.0, 1.0), -lim, lim)
            gain = np.where(ok, np.clip(g, 0.2, 5.0), 1.0)
            if shrink:
                # Estimation noise of each beat's latency and gain (least-squares
                # covariance), and shrinkage: of the latency towards the beat's common
                # latency over channels, of the gain towards 1, by how much the channel's
                # beat-to-beat spread exceeds that noise (empirical Bayes).
                yy = np.einsum("bct,bct->bc", epochs * v, epochs * v)
                dof = np.maximum(v.sum(axis=2) - n_r, 1.0)
                rvar = np.maximum(yy - np.einsum("bci,bci->bc", coef, rhs), 0.0) / dof
                inv = np.linalg.inv(gram)
                var_t = rvar * inv[..., 2, 2] / np.maximum(gain, 0.2) ** 2
                var_g = rvar * inv[..., 1, 1]
                w = 1.0 / np.maximum(var_t, 1e-12)
                common = (w * tau).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
                dev = tau - common
                s_t = np.maximum((dev**2).mean(axis=0) - var_t.mean(axis=0), 0.0)
                tau = common + dev * s_t / (s_t + var_t)
                # the gain likewise towards the beat's common gain (the pulse that moves
                # the head, and its modulation by respiration, is shared by all channels)
                wg = 1.0 / np.maximum(var_g, 1e-12)
                common_g = (wg * gain).sum(axis=1, keepdims=True) / wg.sum(axis=1, keepdims=True)
                dev_g = gain - common_g
                s_g = np.maximum((dev_g**2).mean(axis=0) - var_g.mean(axis=0), 0.0)
                gain = common_g + dev_g * s_g / (s_g + var_g)
        del aligned
    # The template keeps its mean (the BCG's own, averaged over ``window`` beats, in which
    # slow EEG cancels); each beat's fitted constant (its slow EEG) is not subtracted.
    return gain[:, :, None] * shift(tmpl, tau, half=_HALF) * v
