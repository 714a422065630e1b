"""Cardiac (ballistocardiogram, BCG) artifact: R-peak detection and OBS removal.

:func:`detect_r_peaks` finds the R-peaks of an ECG recorded in the scanner
(after gradient correction): an energy detector in the QRS band gives first
candidates, a matched filter built from them finds every beat, and each beat
is placed on the largest deflection of the QRS in a 2-40 Hz zero-phase band,
with the polarity taken from the data (inverted leads are common in the
scanner).

:func:`remove_bcg` removes the cardiac-locked artifact with an optimal basis
set (OBS; Niazy et al. 2005): one epoch per heartbeat, the mean artifact plus
the principal components of the epochs around it, fitted to every beat and
subtracted. By default the components are multichannel (each has its own
waveform on every channel) and each beat's coefficients are shared by all
channels, after spatial whitening: the pulse that moves the electrodes is the
same for all of them, and estimating a beat's few coefficients from every
channel at once keeps the EEG out of the fit. Components are kept only while
they stand clearly above the noise floor of the decomposition, so asking for
more than the data support does not remove EEG.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import signal as sps

from .. import config as nbconfig
from .gradient import blas_single_thread

logger = logging.getLogger("neurobolt.eeg.bcg")

__all__ = ["detect_r_peaks", "remove_bcg"]


def _bandpass(x: np.ndarray, sfreq: float, lo: float, hi: float, order: int = 3) -> np.ndarray:
    hi = min(hi, 0.45 * sfreq)
    sos = sps.butter(order, [lo, hi], btype="bandpass", fs=sfreq, output="sos")
    return sps.sosfiltfilt(sos, x, axis=-1)


def _moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    width = max(int(width), 1)
    return np.convolve(x, np.ones(width) / width, mode="same")


def detect_r_peaks(
    ecg: np.ndarray,
    sfreq: float,
    *,
    min_rr: float = 0.33,
    max_rr: float = 2.0,
) -> np.ndarray:
    """Find the R-peaks of an ECG channel.

    Robust to residual gradient artifact (a periodic residue raises the
    energy baseline but does not match the QRS template) and to inverted
    leads (the polarity is estimated).

    Parameters
    ----------
    ecg : ndarray, shape (n_times,)
        The ECG (V), gradient artifact already removed.
    sfreq : float
        Sampling rate (Hz).
    min_rr : float
        Shortest accepted interval between beats (s), i.e. at most 180 bpm.
    max_rr : float
        Longest expected interval (s); longer gaps are searched again with a
        lower threshold.

    Returns
    -------
    r_peaks : ndarray of int
        Sample index of each R-peak, increasing.
    """
    x = np.asarray(ecg, dtype=np.float64).ravel()
    if x.size < int(3 * sfreq) or not np.isfinite(x).all() or np.ptp(x) == 0:
        raise ValueError("detect_r_peaks: the ECG is shorter than 3 s, flat or not finite")
    qrs = _bandpass(x, sfreq, 8.0, 30.0)
    wide = _bandpass(x, sfreq, 2.0, 40.0)
    dist = int(min_rr * sfreq)

    # 1. Energy detector: QRS-band power smoothed over 80 ms, threshold above the baseline.
    energy = _moving_mean(qrs**2, int(0.08 * sfreq))
    base = np.median(energy)
    top = np.percentile(energy, 99.5)
    cand, _ = sps.find_peaks(energy, height=base + 0.3 * (top - base), distance=dist)
    if cand.size < 3:
        raise ValueError("detect_r_peaks: found fewer than 3 heartbeats in the ECG")

    # 2. Polarity: sign of the largest deflection of each candidate QRS.
    half = int(0.06 * sfreq)
    signs = []
    for c in cand:
        seg = wide[max(c - half, 0) : c + half]
        signs.append(np.sign(seg[np.argmax(np.abs(seg))]))
    polarity = 1.0 if np.sum(signs) >= 0 else -1.0
    sig = polarity * wide

    # 3. Matched filter with the median QRS of the candidates (in the QRS band).
    win = int(0.05 * sfreq)
    inner = cand[(cand > win) & (cand < x.size - win)]
    beats = np.stack([qrs[c - win : c + win + 1] for c in inner])
    tmpl = np.median(beats, axis=0)
    tmpl = tmpl - tmpl.mean()
    score = sps.oaconvolve(qrs, tmpl[::-1], mode="same")
    score = np.maximum(score, 0.0)
    s_base = np.median(score)
    s_top = np.percentile(score[cand], 50)
    peaks, _ = sps.find_peaks(score, height=s_base + 0.35 * (s_top - s_base), distance=dist)

    # 4. Long gaps (missed beats): search again with a lower threshold.
    extra = []
    for a, b in zip(peaks[:-1], peaks[1:], strict=True):
        if b - a > max(max_rr * sfreq, 1.6 * np.median(np.diff(peaks))):
            seg = score[a + dist : b - dist]
            if seg.size:
                p, _ = sps.find_peaks(seg, height=s_base + 0.15 * (s_top - s_base), distance=dist)
                extra.extend(a + dist + p)
    if extra:
        peaks = np.sort(np.concatenate([peaks, np.asarray(extra, dtype=int)]))

    # 5. Place each beat on the R wave: the largest polarity-corrected deflection nearby.
    search = int(0.04 * sfreq)
    out = np.empty(peaks.size, dtype=np.int64)
    for i, p in enumerate(peaks):
        lo, hi = max(p - search, 0), min(p + search + 1, x.size)
        out[i] = lo + int(np.argmax(sig[lo:hi]))
    out = np.unique(out)
    # Keep the stronger of two detections closer than min_rr.
    keep = [0]
    for i in range(1, out.size):
        if out[i] - out[keep[-1]] < dist:
            if sig[out[i]] > sig[out[keep[-1]]]:
                keep[-1] = i
        else:
            keep.append(i)
    return out[keep]


#: Upper edge (Hz) of the band in which residual components are found and fitted: the
#: BCG lies below ~20 Hz, and mains (and its aliases) above this band must not pass as a
#: cardiac-locked component.
OBS_LOWPASS_HZ = 30.0


def _prewhiten(resid: np.ndarray, valid: np.ndarray, sfreq: float) -> np.ndarray:
    """Temporally pre-whitened residual epochs: first difference, then a 30 Hz low-pass.

    The EEG's power falls as 1/f and is dominated by its slow part (background, blinks,
    infraslow), which is far stronger than a beat's BCG residue and has random phase
    across beats: principal components found on the raw residual, and fitted to every
    beat, are then slow EEG waveforms and remove the EEG's low frequencies. The first
    difference flattens the 1/f spectrum; the low-pass keeps mains out.
    """
    both = (valid[:, 1:] & valid[:, :-1])[:, None, :]
    d = np.diff(resid, axis=2) * both
    sos = sps.butter(4, min(OBS_LOWPASS_HZ, 0.45 * sfreq), fs=sfreq, output="sos")
    return sps.sosfiltfilt(sos, d, axis=2) * both


def _residual_obs(resid, valid, sfreq, n_components, snr_threshold, *, joint):
    """OBS of the residual epochs (n, C, L), returned as their fitted part (n, C, L).

    The components and each beat's coefficients are found on the temporally
    pre-whitened residual (:func:`_prewhiten`), where the EEG's strong slow part no
    longer dominates; each component's waveform in the original domain is then the
    regression of the residual epochs on the beats' coefficients (averaged over all
    beats, the EEG cancels). Each beat's coefficients are shrunk by the component's
    signal-to-noise ratio (:func:`_components`).
    """
    n_beats, n_ch, length = resid.shape
    z = _prewhiten(resid, valid, sfreq)
    out = np.zeros_like(resid)
    if joint:
        white, unwhite = _whitener(z)
        zw = np.matmul(white, z).reshape(n_beats, -1)
        comps, keep = _components(zw, n_components, snr_threshold, shrink=True)
        logger.debug("remove_bcg: %d joint components kept", comps.shape[0])
        if comps.shape[0]:
            coef = zw @ comps.T
            u, *_ = np.linalg.lstsq(coef, resid.reshape(n_beats, -1), rcond=None)
            out[:] = ((coef * keep) @ u).reshape(n_beats, n_ch, length)
    else:
        for c in range(n_ch):
            comps, keep = _components(z[:, c, :], n_components, snr_threshold, shrink=True)
            if comps.shape[0]:
                coef = z[:, c, :] @ comps.T
                u, *_ = np.linalg.lstsq(coef, resid[:, c, :], rcond=None)
                out[:, c, :] = (coef * keep) @ u
    return out


def _whitener(resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spatial whitening (and its inverse) from residual epochs (n, C, L)."""
    flat = np.moveaxis(resid, 1, 0).reshape(resid.shape[1], -1)
    cov = flat @ flat.T / flat.shape[1]
    w, u = np.linalg.eigh(cov)
    w = np.maximum(w, w.max() * 1e-8 + 1e-300)
    white = (u / np.sqrt(w)) @ u.T
    unwhite = (u * np.sqrt(w)) @ u.T
    return white, unwhite


def _components(mat: np.ndarray, k: int, snr: float, *, seed: int = 0, shrink: bool = False):
    """Principal directions of the rows of ``mat`` above ``snr`` times the noise floor.

    The floor is the median eigenvalue of the next components (randomized SVD
    for large matrices). Returns (k_kept, n_cols); with ``shrink`` also each kept
    component's shrinkage factor ``1 - floor / spread`` (in [0, 1], the spread of its
    coefficients over beats measured robustly): the share of it that stands above the
    noise (empirical Bayes), by which the fitted coefficients are multiplied so that a
    component the data barely support removes little EEG.
    """
    n_rows, n_cols = mat.shape
    k = int(min(k, n_rows - 1, n_cols))
    if k <= 0:
        return np.zeros((0, n_cols))
    n_extra = int(min(16, min(n_rows, n_cols) - k))
    n_want = k + max(n_extra, 0)
    if min(n_rows, n_cols) <= 400:
        _u, s, vt = np.linalg.svd(mat, full_matrices=False)
    else:
        rng = np.random.default_rng(seed)
        q = mat @ rng.standard_normal((n_cols, n_want + 8))
        for _ in range(3):
            q, _r = np.linalg.qr(q)
            q = mat @ (mat.T @ q)
        q, _r = np.linalg.qr(q)
        _u, s, vt = np.linalg.svd(q.T @ mat, full_matrices=False)
    lam = s**2
    floor = np.median(lam[k : k + n_extra]) if n_extra > 0 else 0.0
    if n_extra > 0 and snr > 0:
        k = int(np.sum(lam[:k] > snr * floor))
    if not shrink:
        return vt[:k]
    # The spread of each component's coefficients over beats, measured robustly (the
    # median of the squares, scaled to the variance for Gaussian coefficients): cardiac
    # variability is in every beat, a blink or a movement in a few, whose large
    # coefficients would otherwise make an EEG event look like a strong component.
    coef = mat @ vt[:k].T
    spread = n_rows * np.median(coef**2, axis=0) / 0.4549
    return vt[:k], np.clip(1.0 - floor / np.maximum(spread, 1e-300), 0.0, 1.0)


def remove_bcg(
    data: np.ndarray,
    sfreq: float,
    r_peaks,
    *,
    n_components: int | None = None,
    joint: bool = True,
    snr_threshold: float = nbconfig.defaults("eeg.bcg.snr_threshold"),
    pre: float = 0.1,
    copy: bool = True,
    method: str = nbconfig.defaults("eeg.bcg.method"),
    window: int = nbconfig.defaults("eeg.bcg.window"),
    max_shift: float = nbconfig.defaults("eeg.bcg.max_shift"),
) -> np.ndarray:
    """Remove the cardiac-locked (BCG) artifact with an optimal basis set.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times) or (n_times,)
        EEG (V), gradient artifact already removed.
    sfreq : float
        Sampling rate (Hz) of ``data`` and ``r_peaks``.
    r_peaks : array of int
        R-peak samples (from :func:`detect_r_peaks`).
    n_components : int | None
        Most principal components of the residual (after the template) fitted to
        each beat; None means 4. Components that do not stand ``snr_threshold``
        times above the noise floor are dropped. They are found and fitted on the
        temporally pre-whitened residual (first difference, 30 Hz low-pass), so
        slow EEG, which has random phase across beats, is not taken for BCG.
    method : {"aligned", "obs"}
        ``"aligned"`` (default): per channel and per beat, the channel's template (mean
        of its ``window`` neighbouring beats, each aligned) is moved by the beat's own
        sub-sample latency and scaled by its own gain, both fitted by Gauss-Newton to
        the beat (:func:`neurobolt.eeg.bcg_fit.fit_beats`), then the residual's
        OBS (``n_components``, gated by ``snr_threshold``, ``joint`` chooses its
        kind) is removed: it follows shape changes that a shift and a gain cannot
        (e.g. the mix of the pulse's components changing from beat to beat).
        ``"obs"``: the OBS alone (``joint`` chooses its kind).
    window : int
        Beats averaged into a template (``"aligned"``).
    max_shift : float
        Largest latency change fitted per beat (s; ``"aligned"``).
    joint : bool
        Multichannel components with per-beat coefficients shared by all
        channels, after spatial whitening (default). False: the classic
        per-channel OBS (each channel its own components and coefficients).
    snr_threshold : float
        Keep a component only if its eigenvalue exceeds this multiple of the
        median eigenvalue of the following components (0 keeps all; default 3).
    pre : float
        Each beat's epoch starts this fraction of the median R-R interval
        before its R-peak; epochs tile the recording from beat to beat.
    copy : bool
        If False, correct ``data`` in place (float input only).

    Returns
    -------
    cleaned : ndarray, same shape as ``data``
    """
    with blas_single_thread():
        return _remove_bcg(
            data,
            sfreq,
            r_peaks,
            n_components=n_components,
            joint=joint,
            snr_threshold=snr_threshold,
            pre=pre,
            copy=copy,
            method=method,
            window=window,
            max_shift=max_shift,
        )


def _remove_bcg(
    data,
    sfreq,
    r_peaks,
    *,
    n_components,
    joint,
    snr_threshold,
    pre,
    copy,
    method,
    window,
    max_shift,
):
    arr = np.asarray(data)
    one = arr.ndim == 1
    x = arr[None] if one else arr
    out = x.astype(np.float64, copy=True) if (copy or x.dtype.kind != "f") else x
    peaks = np.unique(np.asarray(r_peaks, dtype=np.int64))
    peaks = peaks[(peaks >= 0) & (peaks < x.shape[1])]
    if peaks.size < 8:
        raise ValueError(f"remove_bcg: need at least 8 R-peaks, got {peaks.size}")
    rr = np.diff(peaks)
    med = float(np.median(rr))
    start = peaks - int(round(pre * med))
    length = int(min(rr.max(), round(1.5 * med)))
    region = np.minimum(np.append(rr, length), length)
    n_beats, n_ch, n_times = start.size, x.shape[0], x.shape[1]
    # Epochs (n_beats, C, L), zero-padded where they leave the recording.
    pad_lo = int(max(0, -start.min()))
    pad_hi = int(max(0, start.max() + length - n_times))
    padded = np.pad(out, ((0, 0), (pad_lo, pad_hi)))
    view = np.lib.stride_tricks.sliding_window_view(padded, length, axis=1)
    epochs = np.ascontiguousarray(view[:, start + pad_lo, :].transpose(1, 0, 2))
    # Only the samples of a beat's own region (inside the data) enter the model.
    pos = start[:, None] + np.arange(length)[None, :]
    valid = (np.arange(length)[None, :] < region[:, None]) & (pos >= 0) & (pos < n_times)
    epochs *= valid[:, None, :]
    count = np.maximum(valid.sum(axis=0), 1)
    if method == "aligned":
        from .bcg_fit import fit_beats

        # a few channels at a time: the beats' work arrays stay small
        fit0 = np.empty_like(epochs)
        for c0 in range(0, n_ch, 16):
            fit0[:, c0 : c0 + 16] = fit_beats(
                epochs[:, c0 : c0 + 16], valid, sfreq, window=window, max_shift=max_shift
            )
        resid = (epochs - fit0) * valid[:, None, :]
        fit = fit0
    else:
        mean = epochs.sum(axis=0) / count  # (C, L)
        resid = (epochs - mean[None]) * valid[:, None, :]
        fit = np.broadcast_to(mean, resid.shape).copy()
    del epochs
    if n_components is None:
        n_components = 4
    if n_components > 0:
        fit += _residual_obs(resid, valid, sfreq, n_components, snr_threshold, joint=joint)
    fit *= valid[:, None, :]
    for b in range(n_beats):
        lo = start[b]
        a = max(0, -lo)
        hi = min(lo + region[b], n_times)
        if hi > lo + a:
            out[:, lo + a : hi] -= fit[b, :, a : hi - lo]
    if out is not x:
        return out[0] if one else out
    return arr


def cardiac_events_from_eeg(
    data: np.ndarray, sfreq: float, *, min_rr: float = 0.45, band=(3.0, 12.0)
) -> np.ndarray:
    """Cardiac events from the BCG itself, for a missing or unusable ECG.

    The EEG channels are band-passed (``band``: above blinks and slow EEG), spatially
    whitened, and their first principal component (the BCG, present on every channel
    and locked to the heartbeat) is taken. Its energy (smoothed over 0.2 s) peaks once
    per beat; a matched filter with the median beat of those first peaks then places
    every beat on the same phase of the BCG (its largest deflection, some 200-300 ms
    after the R-peak), which is all the BCG removal needs.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        EEG (V), gradient artifact already removed.
    sfreq : float
        Sampling rate (Hz).
    min_rr : float
        Shortest accepted interval between beats (s).
    band : tuple of float
        Band (Hz) in which the BCG is looked for.

    Returns
    -------
    events : ndarray of int
    """
    x = _bandpass(np.atleast_2d(np.asarray(data, float)), sfreq, *band)
    if x.shape[1] < int(5 * sfreq):
        raise ValueError("cardiac_events_from_eeg: the EEG is shorter than 5 s")
    x = x - x.mean(axis=1, keepdims=True)
    # robust scaling per channel, then the first principal component
    x /= np.median(np.abs(x), axis=1, keepdims=True) + 1e-30
    w, u = np.linalg.eigh(x @ x.T)
    comp = u[:, -1] @ x
    dist = int(min_rr * sfreq)
    energy = _moving_mean(comp**2, int(0.2 * sfreq))
    base, top = np.median(energy), np.percentile(energy, 99)
    cand, _ = sps.find_peaks(energy, height=base + 0.2 * (top - base), distance=dist)
    if cand.size < 5:
        raise ValueError("cardiac_events_from_eeg: no heartbeat rhythm found in the EEG")
    half = int(0.3 * sfreq)
    inner = cand[(cand > half) & (cand < comp.size - half)]
    tmpl = np.median(np.stack([comp[c - half : c + half + 1] for c in inner]), axis=0)
    score = sps.oaconvolve(comp, tmpl[::-1], mode="same")
    s_top = np.median(score[inner])
    peaks, _ = sps.find_peaks(score, height=0.4 * s_top, distance=dist)
    if peaks.size < 5:
        raise ValueError("cardiac_events_from_eeg: no heartbeat rhythm found in the EEG")
    return peaks.astype(np.int64)
