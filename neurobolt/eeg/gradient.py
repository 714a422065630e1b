"""MR gradient artifact removal: slice- and volume-wise average artifact subtraction.

The gradient artifact repeats with every slice and every volume of the EPI
sequence. It is removed in three steps, one channel at a time so that memory
stays bounded by a few copies of one channel:

1. **Slice templates** (when the slice timing is known). Inside each volume
   every slice acquisition produces the same artifact, recorded with the same
   timing jitter relative to the EEG samples. The slice template of a volume is
   the mean of that volume's slice epochs, each aligned to the others with
   sub-sample precision; it is subtracted from every slice of the volume. This
   removes the slice-periodic artifact exactly as that volume was recorded,
   including the part that changes from volume to volume with the sub-sample
   jitter (when the amplifier's anti-aliasing filter is weak, the sampled
   artifact changes shape, not only position, with the jitter, and no
   template built from other volumes can follow it). The cost to the EEG is a
   notch of width ``1 / TR`` at the slice frequency and its harmonics.
2. **Volume templates** of the remaining (or, without slice timing, the whole)
   artifact: a sliding average of the ``window`` neighbouring volumes (the
   nearest full window at the first and last volumes, so every volume is
   corrected), aligned to each volume with sub-sample precision. Each volume's
   delay is estimated by Gauss-Newton cross-correlation with the template on a
   few reference channels; the template is moved to that delay with a
   second-order Taylor expansion in the delay. When slice templates ran first,
   the volume template is gated sample by sample by its signal-to-noise ratio
   across volumes, so that it only subtracts what is consistently there (it
   would otherwise add ``1 / window`` of the neighbours' EEG).
3. **Optimal basis set** (OBS): the principal components, across volumes, of
   the high-passed residual are fitted to each volume and subtracted, which
   removes what varies from volume to volume (residual misalignment, motion).

The result keeps the input sampling rate; low-pass it (e.g. with
:func:`neurobolt.eeg.clean.resample`) to the target rate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

logger = logging.getLogger("neurobolt.eeg.gradient")

__all__ = ["GradientRemover", "remove_gradient"]


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


_DERIV4 = np.array([1.0, -8.0, 0.0, 8.0, -1.0]) / 12.0  # 4th-order central difference


def _deriv(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """First derivative (per sample) along ``axis`` with a 4th-order central difference."""
    x = np.moveaxis(x, axis, -1)
    out = np.empty_like(x)
    out[..., 2:-2] = (x[..., :-4] - 8.0 * x[..., 1:-3] + 8.0 * x[..., 3:-1] - x[..., 4:]) / 12.0
    out[..., :2] = np.gradient(x[..., :4], axis=-1)[..., :2]
    out[..., -2:] = np.gradient(x[..., -4:], axis=-1)[..., -2:]
    return np.moveaxis(out, -1, axis)


def _shift_template(
    mean: np.ndarray, rel: np.ndarray, spread: np.ndarray | float = 0.0
) -> np.ndarray:
    """Move templates by ``rel`` samples with a second-order Taylor expansion.

    ``mean`` (..., n) is an average of epochs whose delays have variance
    ``spread`` around their mean; ``rel`` (...) is each target epoch's delay
    relative to that mean. Returns ``mean(t - rel)`` to second order.
    """
    d1 = _deriv(mean)
    d2 = _deriv(d1)
    rel = np.asarray(rel)[..., None]
    spread = np.asarray(spread)
    if spread.ndim:
        spread = spread[..., None]
    return mean - rel * d1 + 0.5 * (rel**2 - spread) * d2


def _neighbours(n: int, width: int) -> np.ndarray:
    """Indices of the ``width`` neighbours of each of ``n`` epochs, the epoch itself excluded.

    The window is centred where it fits and is the nearest full window at the
    edges, so the first and last epochs get a template of the same quality.
    """
    width = int(min(width, n - 1))
    if width < 1:
        raise ValueError(f"need at least 2 volumes for a volume template, got {n}")
    start = np.clip(np.arange(n) - (width + 1) // 2, 0, n - (width + 1))
    full = start[:, None] + np.arange(width + 1)[None, :]
    keep = full != np.arange(n)[:, None]
    # Every row has exactly one self index when inside the window, else drop the last.
    has_self = ~keep.all(axis=1)
    keep[~has_self, -1] = False
    return full[keep].reshape(n, width)


def _pca(mat: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Top ``k`` principal directions (k, n_cols) of the rows of ``mat`` (n_rows, n_cols).

    Exact (eigendecomposition of the smaller Gram matrix) for small matrices,
    randomized range finding with two power iterations for large ones.
    """
    k = int(min(k, *mat.shape))
    if k <= 0:
        return np.zeros((0, mat.shape[1]))
    if min(mat.shape) <= 256:
        if mat.shape[0] <= mat.shape[1]:
            w, u = np.linalg.eigh(mat @ mat.T)
            vec = u[:, np.argsort(w)[::-1][:k]].T @ mat
        else:
            w, v = np.linalg.eigh(mat.T @ mat)
            vec = v[:, np.argsort(w)[::-1][:k]].T
    else:
        rng = np.random.default_rng(seed)
        q = mat @ rng.standard_normal((mat.shape[1], k + 8))
        for _ in range(2):
            q, _r = np.linalg.qr(q)
            q = mat @ (mat.T @ q)
        q, _r = np.linalg.qr(q)
        _u, _s, vt = np.linalg.svd(q.T @ mat, full_matrices=False)
        vec = vt[:k]
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return vec / norm


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of width ``width`` along the last axis (edges shortened)."""
    width = max(int(width), 1)
    c = np.cumsum(x, axis=-1)
    c = np.concatenate([np.zeros(x.shape[:-1] + (1,)), c], axis=-1)
    n = x.shape[-1]
    lo = np.clip(np.arange(n) - width // 2, 0, n)
    hi = np.clip(np.arange(n) - width // 2 + width, 0, n)
    return (c[..., hi] - c[..., lo]) / (hi - lo)


def _whole_sample_slices(times: np.ndarray, rate: float, *, tol: float = 0.02):
    """Group equally spaced slices so that each slice epoch spans whole samples.

    A slice template is the mean of a volume's slice epochs, each moved to a common
    position; a shift by a fraction of a sample is only approximate for an artifact as
    sharp as the gradient's (a TR of 2.0 s with 30 slices at 5 kHz puts a slice every
    333.33 samples, and a 1/3-sample Taylor shift leaves tens of µV). Epochs of ``g``
    consecutive slices, with ``g`` the smallest divisor of the slice count for which
    ``g`` slice periods are a whole number of samples (3 in that example), need no such
    shift. Unequally spaced slice times are returned unchanged.

    Parameters
    ----------
    times : ndarray
        Sorted slice start times within a volume (s).
    rate : float
        Samples per second of the volume (the markers' slope over the TR).
    tol : float
        Largest distance (samples) from a whole number that counts as whole.

    Returns
    -------
    times : ndarray
        The start of every ``g``-th slice.
    group : int
        ``g``, slices per epoch (1: unchanged).
    """
    n = times.size
    steps = np.diff(times) * rate
    period = float(np.mean(steps))
    if n < 2 or np.ptp(steps) > tol or abs(period - round(period)) <= tol:
        return times, 1
    for group in range(2, n + 1):
        span = group * period
        if n % group == 0 and abs(span - round(span)) <= tol:
            return times[::group], group
    return times, 1


@dataclass
class GradientRemover:
    """A gradient-artifact correction plan shared by all channels of one recording.

    Build it with :meth:`from_onsets`, estimate the delays once with
    :meth:`estimate_delays` (from a few channels), then call :meth:`correct`
    on each channel. :func:`remove_gradient` does all three.

    Attributes
    ----------
    sfreq : float
        Sampling rate (Hz).
    onsets : ndarray of int, shape (n_volumes,)
        Sample of each volume marker.
    vol_len : int
        Length of a volume epoch (samples).
    region : ndarray of int, shape (n_volumes,)
        How many samples from its onset each volume corrects (up to the next
        onset; ``vol_len`` for the last one).
    slice_start : ndarray of int | None
        Start of each slice epoch inside a volume (samples), or None.
    slice_len : int
        Length of a slice epoch (samples).
    slice_frac : ndarray of float
        Sub-sample part of each slice's start (samples, in [-0.5, 0.5]).
    vol_delay : ndarray of float, shape (n_volumes,)
        Estimated sub-sample delay of each volume's artifact (samples).
    slice_delay : ndarray of float, shape (n_volumes, n_slices) | None
        Estimated delay of each slice relative to its volume (samples).
    """

    sfreq: float
    onsets: np.ndarray
    vol_len: int
    region: np.ndarray
    window: int = 30
    slice_start: np.ndarray | None = None
    slice_len: int = 0
    slice_frac: np.ndarray | None = None
    vol_delay: np.ndarray | None = None
    slice_delay: np.ndarray | None = None
    gate: bool = True
    obs_components: int = 4
    obs_highpass: float = 70.0
    stats: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_onsets(
        cls,
        volume_onsets,
        sfreq: float,
        n_times: int,
        *,
        n_slices: int | None = None,
        slice_timing=None,
        tr: float | None = None,
        window: int = 30,
        gate: bool | None = None,
        obs_components: int = 4,
        obs_highpass: float = 70.0,
    ) -> GradientRemover:
        """Plan the epochs of a recording from its volume onsets.

        Parameters
        ----------
        volume_onsets : array of int
            Sample index of each volume start (validated markers).
        sfreq : float
            Sampling rate (Hz).
        n_times : int
            Number of samples of the recording.
        n_slices : int | None
            Slices per volume (equally spaced over the TR when ``slice_timing``
            is None). None and no ``slice_timing``: volume templates only.
        slice_timing : array of float | None
            BIDS ``SliceTiming`` (s). Simultaneous (multiband) slices count once.
        tr : float | None
            Repetition time (s); None uses the median marker interval.
        window : int
            Number of neighbouring volumes averaged into a volume template.
        gate : bool | None
            Gate the volume template by its SNR; None means "when slice
            templates are used".
        obs_components : int
            Principal components of the high-passed residual fitted per volume
            (0 disables OBS).
        obs_highpass : float
            High-pass cutoff (Hz) of the residual that OBS models.
        """
        onsets = np.asarray(volume_onsets, dtype=np.int64)
        if onsets.ndim != 1 or onsets.size < 2:
            raise ValueError(f"need at least 2 volume onsets, got {onsets.size}")
        if np.any(np.diff(onsets) <= 0):
            raise ValueError("volume onsets must be strictly increasing")
        intervals = np.diff(onsets)
        # Samples per volume from a straight-line fit of the markers (the EEG and scanner
        # clocks may differ slightly), and each volume's sub-sample position on that line.
        idx = np.arange(onsets.size)
        slope, icpt = np.polyfit(idx, onsets.astype(float), 1)
        vol_delay = np.clip(slope * idx + icpt - onsets, -0.5, 0.5)
        tr_nominal = float(tr) if tr else slope / sfreq
        vol_len = int(max(intervals.max(), round(slope)))
        region = np.append(intervals, int(round(slope))).astype(np.int64)
        region = np.minimum(region, vol_len)
        region[-1] = min(region[-1], n_times - onsets[-1])
        if region[-1] <= 0:
            raise ValueError("the last volume onset is at or after the end of the data")

        slice_start = slice_frac = None
        slice_len = 0
        if slice_timing is not None and len(slice_timing) > 1:
            times = np.unique(np.round(np.asarray(slice_timing, float), 6))
        elif n_slices is not None and int(n_slices) > 1:
            times = np.arange(int(n_slices)) * tr_nominal / int(n_slices)
        else:
            times = None
        group = 1
        if times is not None and times.size > 1:
            times, group = _whole_sample_slices(times, slope / tr_nominal)
        if times is not None and times.size > 1:
            pos = times / tr_nominal * slope  # slice starts inside a volume (samples)
            start = np.round(pos).astype(np.int64)
            ends = np.append(pos[1:], slope)
            slice_len = int(np.floor(np.min(ends - pos)))
            if slice_len < 8 or start[0] < 0 or start[-1] + slice_len > vol_len:
                logger.warning("slice timing does not fit the volume; using volume templates only")
                slice_len = 0
            else:
                slice_start, slice_frac = start, pos - start
        if gate is None:
            gate = slice_start is not None
        stats = {"slices_per_epoch": group if slice_start is not None else 0}
        return cls(
            sfreq=float(sfreq),
            onsets=onsets,
            vol_len=vol_len,
            region=region,
            window=int(window),
            slice_start=slice_start,
            slice_len=slice_len,
            slice_frac=slice_frac,
            vol_delay=vol_delay,
            gate=bool(gate),
            obs_components=int(obs_components),
            obs_highpass=float(obs_highpass),
            stats=stats,
        )

    @property
    def n_volumes(self) -> int:
        """Number of volumes."""
        return int(self.onsets.size)

    @property
    def n_slices(self) -> int:
        """Number of slice epochs per volume (0 without slice templates)."""
        return 0 if self.slice_start is None else int(self.slice_start.size)

    # ------------------------------------------------------------------ epochs
    def _volume_epochs(self, x: np.ndarray) -> np.ndarray:
        """(n_volumes, vol_len) copy of the volume epochs of ``x`` (zero-padded at the end)."""
        need = self.onsets[-1] + self.vol_len
        if need > x.size:
            x = np.concatenate([x, np.zeros(need - x.size)])
        view = np.lib.stride_tricks.sliding_window_view(x, self.vol_len)
        return view[self.onsets]

    def _scatter(self, y: np.ndarray, epochs: np.ndarray) -> None:
        """Write each epoch's correction region of ``epochs`` back into ``y``."""
        for v in range(self.n_volumes):
            o, r = self.onsets[v], self.region[v]
            y[o : o + r] = epochs[v, :r]

    def _slice_views(self, vol: np.ndarray) -> list[np.ndarray]:
        """Views (n_volumes, slice_len) of each slice epoch inside volume epochs ``vol``."""
        return [vol[:, s : s + self.slice_len] for s in self.slice_start]

    def _slice_stack(self, vol: np.ndarray) -> np.ndarray:
        """(n_volumes, n_slices, slice_len) copy of the slice epochs."""
        return np.stack(self._slice_views(vol), axis=1)

    def _slice_delays(self) -> np.ndarray:
        """Delay (samples) of every slice epoch relative to its volume's slice mean."""
        d = np.broadcast_to(self.slice_frac, (self.n_volumes, self.n_slices)).copy()
        if self.slice_delay is not None:
            d = d + self.slice_delay
        return d - d.mean(axis=1, keepdims=True)

    # ------------------------------------------------------------------ steps
    def _slice_templates(self, vol: np.ndarray) -> np.ndarray:
        """Subtract each volume's aligned slice template from its slices (in place)."""
        views = self._slice_views(vol)
        mean = np.zeros((vol.shape[0], self.slice_len))
        for view in views:
            mean += view
        mean /= len(views)
        rel = self._slice_delays()
        if np.max(np.abs(rel)) < 1e-3:
            for view in views:
                view -= mean
            return vol
        spread = rel.var(axis=1)
        for s, view in enumerate(views):
            view -= _shift_template(mean, rel[:, s], spread)
        return vol

    def _volume_template(self, vol: np.ndarray) -> np.ndarray:
        """Sliding, aligned (and optionally gated) volume template of ``vol`` (n_v, L)."""
        nbr = _neighbours(self.n_volumes, self.window)
        w = nbr.shape[1]
        n_v = self.n_volumes
        # Local means via cumulative sums over the (contiguous) windows.
        csum = np.zeros((n_v + 1, vol.shape[1]))
        np.cumsum(vol, axis=0, out=csum[1:])
        first, last = nbr[:, 0], nbr[:, -1]
        tmpl = csum[last + 1] - csum[first]
        inside = (np.arange(n_v) >= first) & (np.arange(n_v) <= last)
        tmpl[inside] -= vol[inside]
        tmpl /= w
        delay = self.vol_delay
        if delay is not None and np.ptp(delay) > 1e-3:
            nb_delay = delay[nbr]
            rel = delay - nb_delay.mean(axis=1)
            tmpl = _shift_template(tmpl, rel, nb_delay.var(axis=1))
        if self.gate:
            mean = vol.mean(axis=0)
            var = vol.var(axis=0)
            # Keep only what stands 3 standard errors above zero across volumes.
            signal_pow = np.maximum(mean**2 - 9.0 * var / n_v, 0.0)
            noise_pow = var / w
            gain = signal_pow / (signal_pow + noise_pow + 1e-30)
            tmpl *= gain
        return tmpl

    def _obs(self, y: np.ndarray) -> np.ndarray:
        """Fit and remove (in place) the principal components of the high-passed residual."""
        k = self.obs_components
        if k <= 0 or self.n_volumes < 3 or not 0 < self.obs_highpass < 0.45 * self.sfreq:
            return y
        # Zero-phase FIR high-pass over the scan (transition band: half the cutoff).
        numtaps = int(np.ceil(3.3 * self.sfreq / (0.5 * self.obs_highpass))) | 1
        taps = sps.firwin(numtaps, 0.75 * self.obs_highpass, fs=self.sfreq, pass_zero=False)
        lo = self.onsets[0]
        hi = min(self.onsets[-1] + self.vol_len, y.size)
        hp = np.zeros_like(y)
        hp[lo:hi] = sps.oaconvolve(y[lo:hi], taps, mode="same")
        epochs = self._volume_epochs(hp)
        comps = _pca(epochs - epochs.mean(axis=0), k)
        fit = (epochs @ comps.T) @ comps
        for v in range(self.n_volumes):
            o, r = self.onsets[v], self.region[v]
            y[o : o + r] -= fit[v, :r]
        return y

    # ------------------------------------------------------------------ public
    def estimate_delays(self, ref: np.ndarray, *, n_iter: int = 3) -> GradientRemover:
        """Estimate the sub-sample delay of every volume (and slice) from reference channels.

        Gauss-Newton cross-correlation of the first derivative of each epoch
        with the first derivative of the (aligned) mean template, summed over
        the reference channels. The delays are relative (their mean is zero
        for the volumes, per volume for the slices).

        Parameters
        ----------
        ref : ndarray, shape (n_ref, n_times)
            A few channels with a large gradient artifact.
        n_iter : int
            Gauss-Newton iterations.

        Returns
        -------
        self : GradientRemover
        """
        ref = np.atleast_2d(np.asarray(ref, dtype=np.float64))
        vols = [_deriv(self._volume_epochs(x)) for x in ref]
        delay = np.asarray(self.vol_delay, float).copy()
        for _ in range(n_iter):
            num = np.zeros(self.n_volumes)
            den = 0.0
            for v in vols:
                rel = delay - delay.mean()
                # Move every epoch to the common (zero) delay to first order, average.
                tmpl = (v + rel[:, None] * _deriv(v)).mean(axis=0)
                d1 = _deriv(tmpl)
                pred = tmpl[None, :] - rel[:, None] * d1[None, :]
                num += ((v - pred) @ d1) * -1.0
                den += float(d1 @ d1)
            if den <= 0:
                break
            step = num / den
            delay = delay + np.clip(step, -0.5, 0.5)
            if np.max(np.abs(step)) < 1e-3:
                break
        self.vol_delay = delay - delay.mean()
        if self.slice_start is not None:
            num = np.zeros((self.n_volumes, self.n_slices))
            den = np.zeros((self.n_volumes, 1))
            base = self._slice_delays()
            for v in vols:
                sl = self._slice_stack(v)
                mean = sl.mean(axis=1)
                d1 = _deriv(mean)
                pred = mean[:, None, :] - base[:, :, None] * d1[:, None, :]
                num += -np.einsum("vsk,vk->vs", sl - pred, d1)
                den += np.einsum("vk,vk->v", d1, d1)[:, None]
            est = num / np.maximum(den, 1e-300)
            est -= est.mean(axis=1, keepdims=True)
            # Keep the slice delays only where they stand out from the estimation noise.
            self.slice_delay = est if np.std(est) > 0.05 else None
        self.stats.update(
            volume_delay_sd=float(np.std(self.vol_delay)),
            slice_delay_sd=float(np.std(self.slice_delay)) if self.slice_delay is not None else 0.0,
        )
        return self

    def correct(self, x: np.ndarray) -> np.ndarray:
        """Return one channel with the gradient artifact removed (same rate, float64).

        Parameters
        ----------
        x : ndarray, shape (n_times,)
            One channel (any float dtype). It is not modified.

        Returns
        -------
        y : ndarray, shape (n_times,)
            The corrected channel. Samples outside the volumes are unchanged.
        """
        y = np.array(x, dtype=np.float64, copy=True)
        vol = np.array(self._volume_epochs(y), dtype=np.float64)
        if self.slice_start is not None:
            self._slice_templates(vol)
        vol -= self._volume_template(vol)
        self._scatter(y, vol)
        del vol
        return self._obs(y)


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


def choose_reference_channels(data: np.ndarray, onsets, *, n_ref: int = 4) -> np.ndarray:
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
    window: int = 30,
    align: bool = True,
    n_ref: int = 4,
    gate: bool | None = None,
    obs_components: int = 4,
    obs_highpass: float = 70.0,
    copy: bool = True,
) -> np.ndarray:
    """Remove the MR gradient artifact from EEG recorded during fMRI.

    Slice templates (when the slice timing is known), a sliding volume
    template with sub-sample alignment, and an optimal basis set of the
    residual; see the module documentation for the method. Each channel is
    processed on its own (bounded memory).

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
        ``slice_timing`` is given). None: volume templates only.
    slice_timing : array of float | None
        BIDS ``SliceTiming`` (s).
    tr : float | None
        Repetition time (s); None uses the median marker interval.
    window : int
        Number of neighbouring volumes in the sliding volume template.
    align : bool
        Estimate and correct sub-sample delays of volumes and slices.
    n_ref : int
        Number of channels (largest artifact) used to estimate the delays.
    gate : bool | None
        Gate the volume template by its across-volume SNR (None: when slice
        templates are used).
    obs_components : int
        Principal components of the high-passed residual removed per volume
        (0 disables OBS).
    obs_highpass : float
        High-pass cutoff (Hz) of the residual that OBS models.
    copy : bool
        If False, write the result into ``data`` (which must be float).

    Returns
    -------
    cleaned : ndarray, same shape as ``data``
        The corrected data, at ``sfreq``. Samples before the first and after
        the last volume are unchanged.
    """
    with blas_single_thread():
        return _remove_gradient(
            data,
            sfreq,
            volume_onsets,
            n_slices=n_slices,
            slice_timing=slice_timing,
            tr=tr,
            window=window,
            align=align,
            n_ref=n_ref,
            gate=gate,
            obs_components=obs_components,
            obs_highpass=obs_highpass,
            copy=copy,
        )


def _remove_gradient(
    data,
    sfreq,
    volume_onsets,
    *,
    n_slices,
    slice_timing,
    tr,
    window,
    align,
    n_ref,
    gate,
    obs_components,
    obs_highpass,
    copy,
):
    arr = np.asarray(data)
    one = arr.ndim == 1
    arr2 = arr[None] if one else arr
    remover = GradientRemover.from_onsets(
        volume_onsets,
        sfreq,
        arr2.shape[1],
        n_slices=n_slices,
        slice_timing=slice_timing,
        tr=tr,
        window=window,
        gate=gate,
        obs_components=obs_components,
        obs_highpass=obs_highpass,
    )
    if align:
        refs = choose_reference_channels(arr2, remover.onsets, n_ref=n_ref)
        remover.estimate_delays(arr2[refs])
    if copy or not np.issubdtype(arr2.dtype, np.floating):
        out = np.empty(arr2.shape, dtype=np.result_type(arr2.dtype, np.float32))
    else:
        out = arr2
    for c in range(arr2.shape[0]):
        out[c] = remover.correct(arr2[c])
    return out[0] if one else out
