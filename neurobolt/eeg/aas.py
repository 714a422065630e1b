"""Gradient artifact: aligned average subtraction that follows drift and motion.

The plan (:class:`GradientPlan`) is shared by all channels of a recording and works
at any rate at which the artifact is band-limited (the EEG stage uses the
anti-aliased 1 kHz intermediate rate; :func:`neurobolt.eeg.gradient.remove_gradient`
the input rate). For every channel:

1. **Exact alignment.** Every slice of every volume is moved by its own delay (from
   the markers' sub-sample positions and, when the clocks are not synchronised,
   per-slice Gauss-Newton estimates on reference channels) with a windowed-sinc
   fractional-delay filter (:mod:`.align`), so that every volume epoch has its
   artifact at the same place.
2. **Local template with gain.** The template of a volume is the mean of its
   ``window`` neighbouring aligned volumes (itself excluded; or, with
   ``select="correlation"``, of the ``window`` volumes whose artifact correlates best
   with its own, as FARM does) scaled by a least-squares gain fitted to the volume, so
   a slow drift of the artifact's amplitude is followed. The EEG that a template
   averages is shrunk away per volume harmonic (a Wiener filter from the spread over
   volumes), so the template does not subtract averaged slow EEG where the artifact is
   weak.
3. **Optimal basis set.** What head motion changes is fitted to each volume: by
   Faraday's law every lead sees a mix of the same few waveforms (one per gradient axis,
   and the vibration each drives), and motion changes the mix, within a volume too. The
   basis is the leading shapes of all channels' mean artifacts and the same shapes
   ramped across the volume (or, with ``obs_basis="residual"``, the principal components
   of the residuals, Niazy et al. 2005); each volume's coefficients are fitted on its
   high-passed residual and shrunk by their signal-to-noise ratio, so a component that
   the data do not support costs the EEG nothing.
4. **Each volume's own slices.** What the slices of one volume share (per sampling-phase
   group, with each interleaved group's level) is fitted to them, shrunk by how far it
   stands above the EEG it averages (:mod:`.slices`).
5. The estimate is moved back by each slice's delay; the scan's two edges, which no
   volume template holds (the ringing after the last volume, the onset before the
   first), are completed from what is observed there (:mod:`.edges`), and the estimate
   is subtracted.

**Slow EEG is kept by construction**: every volume's artifact estimate is made
zero-mean before it is subtracted (the gradient artifact, a sum of ``dG/dt`` over
complete gradient lobes, has no mean over a volume), so nothing below the volume
frequency is removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .. import config as nbconfig
from .align import shift_segments
from .edges import scan_edges
from .resample import highpass_rows
from .slices import volume_slice_means

logger = logging.getLogger("neurobolt.eeg.aas")

__all__ = ["GradientPlan"]


def _neighbours(n: int, width: int) -> np.ndarray:
    """Indices of ``width`` neighbours of each of ``n`` epochs (itself excluded).

    Centred where it fits, the nearest full window at the edges.
    """
    width = int(min(width, n - 1))
    if width < 1:
        raise ValueError(f"need at least 2 volumes for a volume template, got {n}")
    start = np.clip(np.arange(n) - (width + 1) // 2, 0, n - (width + 1))
    full = start[:, None] + np.arange(width + 1)[None, :]
    keep = full != np.arange(n)[:, None]
    has_self = ~keep.all(axis=1)
    keep[~has_self, -1] = False
    return full[keep].reshape(n, width)


def _top_components(mat: np.ndarray, k: int) -> np.ndarray:
    """Top ``k`` principal directions (k, n_cols) of the rows of ``mat`` (exact, Gram)."""
    k = int(min(k, *mat.shape))
    if k <= 0:
        return np.zeros((0, mat.shape[1]))
    if mat.shape[0] <= mat.shape[1]:
        w, u = np.linalg.eigh(mat @ mat.T)
        vec = u[:, np.argsort(w)[::-1][:k]].T @ mat
    else:
        w, v = np.linalg.eigh(mat.T @ mat)
        vec = v[:, np.argsort(w)[::-1][:k]].T
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return vec / norm


def _orthonormal(hp: np.ndarray, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal rows in the high-passed domain, and the same combinations of the full band.

    A direction mostly below the high-pass would turn a small fitted coefficient into a
    large slow subtraction: only those whose full-band norm stays within 2 are kept.
    """
    if not hp.shape[0]:
        return hp, full
    uu, ss, vt = np.linalg.svd(hp, full_matrices=False)
    ok = ss > 1e-6 * ss[0]
    hp, full = vt[ok], (uu[:, ok] / ss[ok]).T @ full
    good = np.linalg.norm(full, axis=1) <= 2.0
    return hp[good], full[good]


@dataclass
class GradientPlan:
    """Epochs, slice segments and delays of one recording's gradient artifact.

    Attributes
    ----------
    rate : float
        Sampling rate (Hz) of the signals the plan corrects.
    starts : ndarray of int, shape (n_volumes,)
        First sample of each volume epoch.
    length : int
        Epoch length (samples).
    region : ndarray of int, shape (n_volumes,)
        Samples each volume corrects (up to the next volume).
    seg_edges : ndarray of int, shape (n_seg + 1,)
        Slice segment edges inside an epoch (one segment without slice timing).
    delays : ndarray of float, shape (n_volumes, n_seg)
        Delay of each slice's artifact behind its nominal place (samples).
    """

    rate: float
    starts: np.ndarray
    length: int
    region: np.ndarray
    seg_edges: np.ndarray
    delays: np.ndarray
    window: int = 20
    select: str = "local"
    obs_components: int = 6
    synchronised: bool = True
    obs_highpass: float = 8.0
    seg_pos: np.ndarray | None = None
    input_ratio: float = 1.0
    phase_harmonics: int = 2
    volume_slices: bool = True
    per_slice_delays: bool = False
    basis: tuple | None = None
    obs_basis: str = "shared"
    anc: bool = False
    shrink: bool = True
    scan_edges: bool = True
    stats: dict = field(default_factory=dict)

    @classmethod
    def from_onsets(
        cls,
        onsets,
        rate: float,
        n_times: int,
        *,
        slice_fractions=None,
        window: int = 20,
        select: str = "local",
        obs_components: int = nbconfig.defaults("eeg.gradient.obs_components"),
        clocks: str = nbconfig.defaults("eeg.gradient.clocks"),
    ) -> GradientPlan:
        """Plan from volume onsets (in samples of ``rate``, may be fractional).

        Parameters
        ----------
        onsets : array of float
            Volume starts in samples at ``rate`` (sub-sample positions allowed).
        rate : float
            Sampling rate (Hz).
        n_times : int
            Length of the signals.
        slice_fractions : array of float | None
            Slice starts as fractions of the TR (sorted, in [0, 1)); None: one segment.
        window : int
            Volumes averaged into a template.
        select : {"local", "correlation", "hybrid"}
            Neighbouring volumes, the best-correlated ones (FARM), or the best-correlated
            among the 3 x ``window`` nearest.
        obs_components : int
            Principal components of the residual fitted per volume (0: none).
        clocks : {"auto", "synchronised", "unsynchronised"}
            Whether the EEG and scanner clocks run in step. ``auto``: synchronised when
            every marker interval is the same whole number of input samples (decided
            by the caller, which passes "synchronised" or "unsynchronised").
        """
        on = np.asarray(onsets, dtype=np.float64)
        if on.ndim != 1 or on.size < 3:
            raise ValueError(f"need at least 3 volume onsets, got {on.size}")
        if np.any(np.diff(on) <= 0):
            raise ValueError("volume onsets must be strictly increasing")
        idx = np.arange(on.size)
        slope, icpt = np.polyfit(idx, on, 1)
        starts = np.floor(on + 1e-9).astype(np.int64)
        frac = on - starts
        length = int(np.ceil(slope))
        region = np.append(np.diff(starts), length).astype(np.int64)
        region = np.minimum(region, length)
        region[-1] = min(region[-1], n_times - starts[-1])
        if region[-1] <= 0 or starts[0] < 0:
            raise ValueError("volume onsets outside the data")
        if slice_fractions is not None and len(slice_fractions) > 1:
            fr = np.unique(np.asarray(slice_fractions, float))
            edges = np.round(fr * slope).astype(np.int64)
            edges = np.unique(np.clip(np.append(edges, length), 0, length))
            if edges[0] != 0:
                edges = np.insert(edges, 0, 0)
        else:
            edges = np.array([0, length])
        seg_pos = edges[:-1].astype(float)
        if slice_fractions is not None and len(slice_fractions) > 1 and edges.size - 1 == fr.size:
            seg_pos = fr * slope
        sync = clocks != "unsynchronised"
        if not sync:
            # Unsynchronised clocks: the markers carry their sampling's rounding; the volumes
            # lie on a straight line (a constant clock ratio), which is the better start.
            frac = slope * idx + icpt - starts
        delays = np.repeat(frac[:, None], edges.size - 1, axis=1)
        return cls(
            rate=float(rate),
            starts=starts,
            length=length,
            region=region,
            seg_edges=edges,
            seg_pos=seg_pos,
            delays=delays,
            window=int(window),
            select=str(select),
            obs_components=int(obs_components),
            synchronised=sync,
            stats={"volume_period_samples": float(slope)},
        )

    @property
    def n_volumes(self) -> int:
        """Number of volumes."""
        return int(self.starts.size)

    def _bounds(self) -> np.ndarray:
        """(n_volumes * n_seg, 2) start/stop of every slice segment in the signal."""
        e = self.seg_edges
        lo = self.starts[:, None] + e[None, :-1]
        hi = self.starts[:, None] + np.minimum(e[None, 1:], self.region[:, None])
        hi = np.maximum(hi, lo)
        return np.stack([lo.ravel(), hi.ravel()], axis=1)

    def _epochs(self, x: np.ndarray) -> np.ndarray:
        need = self.starts[-1] + self.length
        if need > x.size:
            x = np.concatenate([x, np.zeros(need - x.size)])
        view = np.lib.stride_tricks.sliding_window_view(x, self.length)
        return np.array(view[self.starts], dtype=np.float64)

    def _valid(self) -> np.ndarray:
        return np.arange(self.length)[None, :] < self.region[:, None]

    def _align(self, x: np.ndarray, sign: float) -> np.ndarray:
        return shift_segments(x, self._bounds(), sign * self.delays.ravel())

    def _templates(self, z: np.ndarray, width: int | None = None) -> np.ndarray:
        """Local (or correlation-selected) mean of other volumes, per volume (n_v, L)."""
        n_v = self.n_volumes
        nbr = _neighbours(n_v, width or self.window)
        if width is None and self.select in ("correlation", "hybrid") and n_v > self.window + 1:
            zc = z - z.mean(axis=1, keepdims=True)
            zc /= np.linalg.norm(zc, axis=1, keepdims=True) + 1e-30
            corr = zc @ zc.T
            np.fill_diagonal(corr, -np.inf)
            if self.select == "hybrid":
                # the best-correlated among the 3 x window nearest volumes
                far = np.abs(np.arange(n_v)[:, None] - np.arange(n_v)[None, :])
                corr = np.where(far <= 1.5 * self.window, corr, -np.inf)
            nbr = np.argsort(-corr, axis=1)[:, : self.window]
            weights = np.zeros((n_v, n_v))
            np.put_along_axis(weights, nbr, 1.0 / self.window, axis=1)
            return weights @ z
        csum = np.zeros((n_v + 1, z.shape[1]))
        np.cumsum(z, axis=0, out=csum[1:])
        first, last = nbr[:, 0], nbr[:, -1]
        tmpl = csum[last + 1] - csum[first]
        inside = (np.arange(n_v) >= first) & (np.arange(n_v) <= last)
        tmpl[inside] -= z[inside]
        return tmpl / nbr.shape[1]

    def estimate(self, z: np.ndarray, *, full: bool = True) -> np.ndarray:
        """Artifact estimate (n_v, L) of aligned epochs ``z``: gain-fitted template + OBS.

        Every row is zero-mean over the volume's region.
        """
        valid = self._valid()
        cnt = valid.sum(axis=1, keepdims=True)

        def demean(a):
            a = a * valid
            return (a - a.sum(axis=1, keepdims=True) / cnt) * valid

        zc = demean(z)
        t_full = self._templates(z) * valid
        if self.shrink:
            t_full = self._shrink_templates(z, t_full) * valid
        tc = demean(t_full)
        tt = np.maximum(np.einsum("vl,vl->v", tc, tc), 1e-300)
        phase = self.phase_harmonics > 0 and self.input_ratio > 1 and not self.synchronised
        aliased = np.zeros_like(z)
        # With unsynchronised clocks the aliased part of the artifact (which depends on
        # each slice's sampling phase) is in no template; fitted jointly with the gain
        # (alternating), so that it does not bias the gain of the volume.
        for _ in range(2 if (full and phase) else 1):
            gain = np.einsum("vl,vl->v", zc - demean(aliased), tc) / tt
            # The gain is fitted without the means (the volume's own mean is its slow
            # EEG); the template keeps its mean (the artifact's, over other volumes).
            est = gain[:, None] * t_full
            if self.basis is not None and self.basis[0].shape[0]:
                est = est + demean(self._basis_fit(zc - demean(est) - demean(aliased)))
            if full and phase:
                # Aliasing also has a mean (folded onto 0 Hz) that changes with the
                # sampling phase: fitted on the residual with its mean, and kept.
                aliased = self._phase_fit((z - est) * valid)
        self.stats["gain_sd"] = float(np.std(gain))
        if not full:
            return est
        est = est + aliased
        if self.volume_slices:
            est = est + demean(self._volume_slice_fit(demean(z - est)))
        return est

    def _shrink_templates(self, z: np.ndarray, t_full: np.ndarray) -> np.ndarray:
        """Templates with the EEG they average shrunk away, per volume harmonic (Wiener).

        A template is the mean of ``window`` other volumes, so it carries their EEG
        divided by the square root of their number, at every harmonic of the volume
        frequency; with 1/f EEG that is mostly below 5 Hz, where the artifact of a
        continuous acquisition is weak. Each harmonic (a frequency bin of the volume
        epoch) is kept in proportion to how far the mean over volumes stands above that
        noise, ``1 - var / (window |mean|^2)``: harmonics where the artifact dominates
        pass unchanged.
        """
        n_v, length = z.shape
        width = min(self.window, n_v - 1)
        spec = np.fft.rfft(z, axis=1)
        mean = spec.mean(axis=0)
        var = np.mean(np.abs(spec - mean) ** 2, axis=0)
        h = np.clip(1.0 - var / (width * np.abs(mean) ** 2 + 1e-300), 0.0, 1.0)
        self.stats["template_shrink_mean"] = float(h.mean())
        return np.fft.irfft(np.fft.rfft(t_full, axis=1) * h, n=length, axis=1)

    def _basis_fit(self, resid: np.ndarray) -> np.ndarray:
        """The basis set's part of each volume's residual (n_v, L), coefficients shrunk.

        The coefficients are fitted on the high-passed residual (orthonormal basis rows)
        and shrunk by how far their spread over volumes stands above the fit's noise
        (empirical Bayes, James-Stein): a component whose coefficients are no larger than
        what the EEG alone would give is not subtracted, so the fit costs the EEG little.
        """
        hp_basis, full_basis = self.basis
        valid = self._valid()
        resid_hp = highpass_rows(resid, self.rate, self.obs_highpass) * valid
        coef = resid_hp @ hp_basis.T
        if self.shrink:
            dof = max(int(valid.sum(axis=1).min()) - hp_basis.shape[0], 1)
            left = np.einsum("vl,vl->v", resid_hp, resid_hp) - np.einsum("vk,vk->v", coef, coef)
            noise = float(np.median(np.maximum(left, 0.0))) / dof
            power = np.mean(coef**2, axis=0)
            keep = np.clip(1.0 - noise / np.maximum(power, 1e-300), 0.0, 1.0)
            self.stats["obs_shrink"] = [round(float(k), 3) for k in keep]
            coef = coef * keep
        # the residual basis subtracts only its high-passed part (its full-band rows carry
        # the residuals' EEG); the shared shapes are clean in the full band
        return coef @ (full_basis if self.obs_basis == "shared" else hp_basis)

    def phases(self) -> np.ndarray:
        """Sampling phase (in [0, 1) input samples) of every slice's artifact onset."""
        pos = self.starts[:, None] + self.delays + self.seg_pos[None, :]
        return np.mod(pos * self.input_ratio, 1.0)

    def _slice_geometry(self):
        e = self.seg_edges
        lens = np.diff(e)
        med = np.median(lens)
        # slice segments proper (a silent gap makes the last one longer: left out)
        use = np.abs(lens - med) <= 1
        ls = int(np.max(lens[use]))
        return e, ls, 10, self.seg_pos - e[:-1], use

    def _slice_stack(self, resid: np.ndarray) -> np.ndarray:
        """(n_v, n_s, ls) slice epochs of ``resid``, each moved to a common sub-sample place."""
        from .align import shift

        e, ls, pad, off, use = self._slice_geometry()
        res_p = np.pad(resid, ((0, 0), (pad, pad + ls)))
        stack = np.zeros((self.n_volumes, e.size - 1, ls))
        for s in np.flatnonzero(use):
            seg = res_p[:, e[s] : e[s] + ls + 2 * pad]
            stack[:, s] = shift(seg, -off[s])[:, pad : pad + ls]
        return stack

    def _slice_unstack(self, fit: np.ndarray, n_times: int) -> np.ndarray:
        """Inverse of :meth:`_slice_stack`: (n_v, n_s, ls) back to (n_v, n_times)."""
        from .align import shift

        e, ls, pad, off, use = self._slice_geometry()
        out = np.zeros((self.n_volumes, n_times + ls))
        for s in np.flatnonzero(use):
            seg = np.pad(fit[:, s], ((0, 0), (pad, pad)))
            own = e[s + 1] - e[s]  # each sample belongs to one slice only
            out[:, e[s] : e[s] + own] = shift(seg, off[s])[:, pad : pad + own]
        return out[:, :n_times]

    def _volume_slice_fit(self, resid: np.ndarray) -> np.ndarray:
        """Each volume's own mean slice residual (what changed in this volume's slices).

        The slices of one volume share its head position and, when the triggers jitter
        per volume, its sampling phase; the mean of the volume's aligned slices (each
        moved to a common sub-sample place; per sampling-phase group with unsynchronised
        clocks, :meth:`_phase_classes`) is removed from each of them, shrunk by how far
        it stands above the EEG it averages (:func:`neurobolt.eeg.slices.volume_slice_means`).
        It costs the EEG a notch of width 1/TR at the slice frequency and its harmonics
        (about 1/n_slices of its power there; 1/group size with phase groups, whose lines
        are at the slice frequency divided by the number of groups).
        """
        if self.seg_edges.size - 1 < 4:
            return np.zeros_like(resid)
        stack = self._slice_stack(resid)
        groups = self._phase_classes(self._slice_geometry()[4])
        fit = volume_slice_means(stack, groups, shrink=self.shrink)
        return self._slice_unstack(fit, resid.shape[1])

    def _phase_classes(self, use: np.ndarray, *, min_size: int = 4) -> list:
        """Slices of a volume grouped by their nominal sampling phase at the input rate.

        A slice period that is a fraction of an input sample (312.5 or 333.33 samples)
        samples the slices at a few phases that repeat within every volume; the part of
        the artifact that aliased when the recording was sampled differs between them.
        When the phases change from volume to volume (unsynchronised clocks, jittering
        triggers), the volume templates average that part out; the slices are then
        grouped by phase (to 1/12 sample) when every group has ``min_size`` slices.
        Otherwise all slices form one group.
        """
        idx = np.flatnonzero(use)
        if self.input_ratio <= 1 or self.synchronised:
            # synchronised: every volume has the same phases, its template their aliasing
            return [idx]
        ph = np.mod(self.seg_pos[idx] * self.input_ratio, 1.0)
        key = np.mod(np.round(ph * 12).astype(int), 12)
        groups = [idx[key == k] for k in np.unique(key)]
        if len(groups) < 2 or min(g.size for g in groups) < min_size:
            return [idx]
        return groups

    def _phase_fit(self, resid: np.ndarray) -> np.ndarray:
        """The part of the residual explained by each slice's sampling phase (aliasing).

        Where the recording sampled the artifact before decimation, the part of it above
        the Nyquist frequency folded into the EEG band with a factor ``exp(2i pi k phi)``
        (``phi``: the slice onset's sub-sample phase at the input rate). With
        unsynchronised clocks ``phi`` changes from slice to slice, so this part is not in
        any template; it is fitted here, pooled over all slices (each moved to a common
        sub-sample position) as ``sum_k a_k(t) cos(2 pi k phi) + b_k(t) sin(2 pi k phi)``.
        """
        if self.seg_edges.size - 1 < 2:
            return np.zeros_like(resid)
        stack = self._slice_stack(resid)
        n_s, ls = stack.shape[1], stack.shape[2]
        use = self._slice_geometry()[4]
        stack = stack[:, use]
        n_s = stack.shape[1]
        phi = self.phases()[:, use]
        cols = []
        for k in range(1, self.phase_harmonics + 1):
            cols += [np.cos(2 * np.pi * k * phi), np.sin(2 * np.pi * k * phi)]
        design = np.stack(cols, axis=-1).reshape(-1, len(cols))
        design = design - design.mean(axis=0)
        obs = stack.reshape(-1, ls)
        coef, *_ = np.linalg.lstsq(design, obs - obs.mean(axis=0), rcond=None)
        fit = np.zeros((self.n_volumes, use.size, ls))
        fit[:, use] = (design @ coef).reshape(self.n_volumes, n_s, ls)
        return self._slice_unstack(fit, resid.shape[1])

    def fit_basis(
        self, refs: np.ndarray, *, channels: np.ndarray | None = None, snr: float = 3.0
    ) -> GradientPlan:
        """Optimal basis set of the artifact's changes from volume to volume.

        ``obs_basis="shared"`` (default): the leading principal shapes of every channel's
        mean artifact (``channels``; each channel's mean aligned volume, normalised), and
        the same shapes times a linear ramp across the volume. By Faraday's law each
        lead sees a mix of the same few waveforms (one per gradient axis, and the
        vibration each drives); head motion changes the mix, within a volume too. The
        shapes are estimated from means over all volumes, so they carry almost no EEG,
        and each volume's few coefficients are fitted on its whole length.
        ``obs_basis="residual"``: the classic optimal basis set (Niazy et al. 2005) of the
        reference channels' residuals (aligned volume minus its gain-fitted template),
        high-passed at ``obs_highpass`` and pooled; components are kept while they stand
        ``snr`` times above the median eigenvalue, and only their high-passed part is
        subtracted.

        Either way each volume's coefficients are fitted on the high-passed residual and
        shrunk towards zero by their signal-to-noise ratio (:meth:`_basis_fit`).
        """
        k = self.obs_components
        self.basis = None
        self.stats["scan_edge_samples"] = []
        if k <= 0 or self.n_volumes < k + 3:
            return self
        valid = self._valid()
        if self.obs_basis == "shared":
            chans = np.atleast_2d(refs if channels is None else channels)
            means = []
            for x in chans:
                z = self._epochs(self._align(np.asarray(x, float), -1.0)) * valid
                z = z - z.sum(axis=1, keepdims=True) / valid.sum(axis=1, keepdims=True)
                means.append((z * valid).sum(axis=0) / np.maximum(valid.sum(axis=0), 1))
            means = np.asarray(means)
            means -= means.mean(axis=1, keepdims=True)
            norm = np.linalg.norm(means, axis=1, keepdims=True)
            means = means[norm[:, 0] > 0] / norm[norm[:, 0] > 0]
            shapes = _top_components(means, min(k, means.shape[0]))
            n_shapes = self._cross_validated_shapes(shapes, refs)
            hp, full = self._shape_basis(shapes[:n_shapes])
            self.stats["obs_shapes"] = int(n_shapes)
        else:
            rows_hp, rows = [], []
            for x in np.atleast_2d(refs):
                z = self._epochs(self._align(np.asarray(x, float), -1.0))
                r = z - z.mean(axis=1, keepdims=True) - self.estimate(z)
                rows.append(r)
                rows_hp.append(highpass_rows(r, self.rate, self.obs_highpass))
            rh = np.concatenate(rows_hp) * self._valid_tile(len(rows))
            rf = np.concatenate(rows) * self._valid_tile(len(rows))
            scale = np.linalg.norm(rh, axis=1, keepdims=True)
            scale[scale == 0] = 1.0
            w, u = np.linalg.eigh((rh / scale) @ (rh / scale).T)
            order = np.argsort(w)[::-1]
            w, u = w[order], u[:, order]
            floor = np.median(w[w > 0]) if np.any(w > 0) else 0.0
            keep = int(np.sum(w[:k] > snr * floor)) if floor > 0 else 0
            u = u[:, :keep] / scale
            hp, full = u.T @ rh, u.T @ rf
            hp, full = _orthonormal(hp, full)
        self.basis = (hp, full)
        self.stats["obs_components_kept"] = int(hp.shape[0])
        return self

    def _shape_basis(self, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(high-passed, full-band) orthonormal basis of ``shapes`` and their ramped copies."""
        ramp = np.linspace(-1.0, 1.0, self.length)[None, :]
        full = np.concatenate([shapes, shapes * ramp])
        return _orthonormal(highpass_rows(full, self.rate, self.obs_highpass), full)

    def _cross_validated_shapes(self, shapes: np.ndarray, refs: np.ndarray) -> int:
        """How many shapes predict the reference channels' residual best, out of sample.

        Every volume's coefficients are fitted on the samples of its even slices and
        judged on its odd ones, and the other way round (blocks of a sixteenth of the
        volume without slice timing): the artifact's mix is the same across the volume,
        the EEG that a fit takes is not, so the held-out error stops falling once the
        shapes begin to fit EEG. Zero shapes (the template alone) is a candidate; the
        fewest shapes within 2 % of the best error are kept.
        """
        valid = self._valid()
        e = self.seg_edges
        if e.size - 1 >= 4:
            seg = np.repeat(np.arange(e.size - 1), np.diff(e))[: self.length]
        else:
            seg = np.arange(self.length) // max(self.length // 16, 1)
        halves = [seg % 2 == 0, seg % 2 == 1]
        resid = []
        for x in np.atleast_2d(refs):
            z = self._epochs(self._align(np.asarray(x, float), -1.0))
            zc = (z - (z * valid).sum(1, keepdims=True) / valid.sum(1, keepdims=True)) * valid
            r = (zc - self.estimate(z, full=False)) * valid
            resid.append(highpass_rows(r, self.rate, self.obs_highpass) * valid)
        resid = np.concatenate(resid)
        errors = []
        for n in range(shapes.shape[0] + 1):
            hp = self._shape_basis(shapes[:n])[0] if n else np.zeros((0, self.length))
            err = 0.0
            for a, b in (halves, halves[::-1]):
                if hp.shape[0]:
                    coef, *_ = np.linalg.lstsq(hp[:, a].T, resid[:, a].T, rcond=None)
                    left = resid[:, b] - coef.T @ hp[:, b]
                else:
                    left = resid[:, b]
                err += float(np.sum(left**2))
            errors.append(err)
        base = errors[0] if errors[0] > 0 else 1.0  # a flat residual: nothing to fit
        self.stats["obs_shape_cv_error"] = [round(v / base, 4) for v in errors]
        # the fewest shapes within 2 % of the best held-out error (each one costs the EEG)
        return int(np.flatnonzero(np.asarray(errors) <= 1.02 * min(errors))[0])

    def _valid_tile(self, n: int) -> np.ndarray:
        return np.tile(self._valid(), (n, 1))

    def estimate_delays(
        self, refs: np.ndarray, *, n_iter: int = 3, per_slice: bool | None = None
    ) -> GradientPlan:
        """Per-slice delays by Gauss-Newton cross-correlation on reference channels.

        Only for unsynchronised clocks (with synchronised ones the markers' sub-sample
        positions are exact). The delays are measured against each volume's own
        artifact estimate (local template with gain, OBS) in the aligned frame.
        """
        if self.synchronised:
            return self
        if per_slice is None:
            per_slice = self.per_slice_delays
        refs = np.atleast_2d(np.asarray(refs, dtype=np.float64))
        e = self.seg_edges
        seg_of = np.repeat(np.arange(e.size - 1), np.diff(e))
        valid = self._valid()
        for _ in range(n_iter):
            num = np.zeros(self.delays.shape)
            den = np.zeros(self.delays.shape)
            for x in refs:
                z = self._epochs(self._align(x, -1.0))
                est = self.estimate(z, full=False)
                zc = z - (z * valid).sum(1, keepdims=True) / valid.sum(1, keepdims=True)
                d1 = np.gradient(est, axis=1)
                r = (zc - est) * valid
                # z ≈ est(t - e) ≈ est - e est'  →  e = -<r, est'> / <est', est'>
                np.add.at(num.T, seg_of, -(r * d1).T)
                np.add.at(den.T, seg_of, (d1 * d1 * valid).T)
            if not per_slice:
                num = np.repeat(num.sum(axis=1, keepdims=True), num.shape[1], axis=1)
                den = np.repeat(den.sum(axis=1, keepdims=True), den.shape[1], axis=1)
            step = np.clip(num / np.maximum(den, 1e-300), -0.5, 0.5)
            self.delays = self.delays + step
            if np.max(np.abs(step)) < 1e-3:
                break
        self.stats["slice_delay_sd"] = float(
            np.std(self.delays - self.delays.mean(1, keepdims=True))
        )
        self.stats["volume_delay_sd"] = float(np.std(self.delays.mean(axis=1)))
        return self

    def triggers_jitter(self, refs: np.ndarray, *, threshold: float = 0.05) -> bool:
        """Whether the artifact moves against regular markers (per-volume delays).

        Markers that are exactly regular suggest synchronised clocks, but a recording
        whose artifact still jitters from volume to volume (by more than ``threshold``
        input samples, sd) is handled as unsynchronised.
        """
        probe = GradientPlan(
            rate=self.rate,
            starts=self.starts,
            length=self.length,
            region=self.region,
            seg_edges=self.seg_edges,
            delays=self.delays.copy(),
            window=self.window,
            select=self.select,
            obs_components=0,
            synchronised=False,
            seg_pos=self.seg_pos,
            input_ratio=self.input_ratio,
        )
        probe.estimate_delays(refs, per_slice=False)
        sd = probe.stats["volume_delay_sd"] * self.input_ratio
        self.stats["trigger_jitter_sd_input_samples"] = float(sd)
        if sd > threshold:
            self.synchronised = False
            self.delays = probe.delays
            return True
        return False

    def correct(self, x: np.ndarray) -> np.ndarray:
        """One channel with the gradient artifact removed (float64 copy)."""
        x = np.asarray(x, dtype=np.float64)
        aligned = self._align(x, -1.0)
        z = self._epochs(aligned)
        est = self.estimate(z)
        art = np.zeros_like(x)
        for v in range(self.n_volumes):
            s, r = self.starts[v], self.region[v]
            art[s : s + r] = est[v, :r]
        art = self._align(art, 1.0)
        lo, hi = int(self.starts[0]), int(self.starts[-1] + self.region[-1])  # the scan
        if self.scan_edges:
            art, found = scan_edges(x, art, lo, hi, rate=self.rate, longest=0.5 * self.length)
            # per channel corrected since the basis was fitted: (after, before) the scan
            self.stats.setdefault("scan_edge_samples", []).append(found)
        if self.anc:
            from .anc import adaptive_cancel

            return adaptive_cancel(
                x - art, art, self.rate, highpass=self.obs_highpass, span=(lo, hi)
            )
        return x - art
