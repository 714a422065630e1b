"""Classic baseline: ridge regression on HRF-convolved, lagged EEG band power.

``ridge_bandpower`` computes, for every window, the log power of each channel
in the delta, theta, alpha, beta and gamma bands in every 1 s patch; then two
sets of features per channel and band: the patches weighted by the canonical
HRF (the classic EEG-informed fMRI regressor), and the mean in four 4 s lag
bins. A ridge regression on the standardised features is fitted on the
training windows with its regularisation chosen by validation R, for every ROI at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import gamma

from .. import config as nbconfig
from ..metrics import masked_pearson_r

BANDS = {"delta": (1, 4), "theta": (4, 8), "alpha": (8, 13), "beta": (13, 30), "gamma": (30, 45)}
ALPHAS = tuple(10.0**k for k in range(-2, 6))


def _hrf_weights(n_patches: int) -> np.ndarray:
    """Canonical double-gamma HRF at each patch's lag (patch centres, most recent last)."""
    lag = n_patches - np.arange(n_patches) - 0.5
    h = gamma.pdf(lag, 6) - gamma.pdf(lag, 16) / 6.0
    return h / np.abs(h).sum()


def bandpower_features(
    x: np.ndarray, *, sfreq: float = nbconfig.defaults("eeg.sfreq"), n_lag_bins: int = 4
) -> np.ndarray:
    """Features of a batch of windows.

    Parameters
    ----------
    x : ndarray, shape (n_windows, n_channels, n_patches, patch)
        Windows as the store returns them (1 s patches).
    sfreq : float
        Sampling rate (Hz).
    n_lag_bins : int
        Lag bins over the window for the lagged features.

    Returns
    -------
    features : ndarray, shape (n_windows, n_channels * n_bands * (1 + n_lag_bins))
    """
    x = np.asarray(x, dtype=np.float64)
    n, n_ch, n_p, patch = x.shape
    spec = np.abs(np.fft.rfft(x - x.mean(-1, keepdims=True), axis=-1)) ** 2
    freqs = np.fft.rfftfreq(patch, 1 / sfreq)
    power = np.stack(
        [spec[..., (freqs >= lo) & (freqs < hi)].mean(-1) for lo, hi in BANDS.values()], -1
    )
    logp = np.log(power + 1e-12)  # (n, ch, patches, bands)
    hrf = np.einsum("ncpb,p->ncb", logp, _hrf_weights(n_p))
    lagged = logp.reshape(n, n_ch, n_lag_bins, n_p // n_lag_bins, -1).mean(3)
    return np.concatenate([hrf.reshape(n, -1), lagged.reshape(n, -1)], axis=1)


@dataclass
class RidgeBandpower:
    """Ridge regression on :func:`bandpower_features` (closed form, alpha chosen on val).

    Every ROI (column of the targets) is fitted in one solve with the same features: one
    SVD of the design, then each ROI's coefficients for every alpha; each ROI keeps the
    alpha with its best validation R, so a multi-ROI fit gives each ROI exactly the model
    a one-ROI fit would. A NaN target is missing: the ROIs with the same missing rows share
    one SVD of their rows.
    """

    alpha: float | np.ndarray = 1.0
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None

    def _design(self, x):
        return (bandpower_features(x) - self.mean) / self.scale

    def fit(self, x_train, y_train, x_val, y_val, *, alphas=ALPHAS) -> dict:
        """Fit on training windows; pick alpha per ROI by validation R.

        Returns
        -------
        scores : dict
            ``{alpha: [validation R of each ROI]}``.
        """
        feats = bandpower_features(x_train)
        self.mean, self.scale = feats.mean(0), feats.std(0) + 1e-8
        a = (feats - self.mean) / self.scale
        y = np.asarray(y_train, float).reshape(len(a), -1)
        v_val = self._design(x_val)
        n_out = y.shape[1]
        coefs = np.zeros((len(alphas), a.shape[1], n_out))
        y_mean = np.zeros(n_out)
        finite = np.isfinite(y)
        patterns: dict[bytes, list[int]] = {}
        for j in range(n_out):  # ROIs with the same missing rows share one SVD
            patterns.setdefault(finite[:, j].tobytes(), []).append(j)
        for cols in patterns.values():
            rows = finite[:, cols[0]]
            if rows.sum() < 2:
                continue  # no target to fit: a constant prediction (coef 0)
            y_mean[cols] = y[rows][:, cols].mean(0)
            u, s, vt = np.linalg.svd(a[rows], full_matrices=False)
            uty = u.T @ (y[rows][:, cols] - y_mean[cols])
            for k, alpha in enumerate(alphas):
                coefs[k][:, cols] = vt.T @ ((s / (s**2 + alpha))[:, None] * uty)
        scores = {
            alpha: masked_pearson_r(v_val @ coefs[k] + y_mean, y_val).tolist()
            for k, alpha in enumerate(alphas)
        }
        table = np.nan_to_num(np.array(list(scores.values())), nan=-np.inf)  # (alphas, rois)
        best = table.argmax(0)
        self.alpha = np.asarray(alphas, float)[best]
        self.coef = coefs[best, :, np.arange(n_out)].T
        self.intercept = y_mean
        return scores

    def predict(self, x) -> np.ndarray:
        """Predictions ``(n_windows, n_outputs)``."""
        return self._design(x) @ self.coef + self.intercept

    def state_dict(self) -> dict:
        """Tensors only (loadable with ``torch.load(weights_only=True)``)."""
        return {
            k: torch.as_tensor(np.asarray(getattr(self, k)))
            for k in ("alpha", "mean", "scale", "coef", "intercept")
        }

    def load_state_dict(self, state: dict) -> RidgeBandpower:
        """Restore from :meth:`state_dict` (a scalar ``alpha``: one for every ROI)."""
        for key, value in state.items():
            arr = value.numpy()
            setattr(self, key, float(arr) if key == "alpha" and arr.ndim == 0 else arr)
        return self
