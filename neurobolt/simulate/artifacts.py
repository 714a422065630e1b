"""MR and physiological EEG artifacts: gradient (per slice), BCG, blinks, line noise.

Pure functions that add an artifact to a ``(n_channels, n_times)`` buffer in volts (in
place) or return a waveform; the random draws come from the generator passed in.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from .. import config as nbconfig
from .params import FINE_SFREQ
from .signals import chunks, standard_positions


def gradient_axis_waveforms(tr: float, n_slices: int, *, fine_sfreq: float = FINE_SFREQ):
    """Induced voltage (dG/dt) of the three gradient axes over one volume, at ``fine_sfreq``.

    Each slice repeats: a slice-select trapezoid with its refocusing lobe
    (z), an EPI read-out train of alternating trapezoids (x) and phase blips
    (y). A short navigator pulse at the start of the volume makes the volume
    differ slightly from a plain repetition of slices. The waveforms pass a
    1 kHz first-order low-pass, as the amplifier's hardware filter does.
    Returns ``(3, n)`` normalised to a peak of 1.
    """
    n_vol = int(round(tr * fine_sfreq))
    slice_len = tr / n_slices
    t = np.arange(n_vol) / fine_sfreq
    ts = np.mod(t, slice_len)
    g = np.zeros((3, n_vol))

    def trapezoid(tt, start, flat, ramp):
        up = np.clip((tt - start) / ramp, 0, 1)
        down = np.clip((start + ramp + flat + ramp - tt) / ramp, 0, 1)
        return np.minimum(up, down)

    ramp = 1e-4
    g[2] = trapezoid(ts, 0.0005, 0.0025, ramp) - 0.55 * trapezoid(ts, 0.0034, 0.0020, ramp)
    esp = 0.0006  # echo spacing
    readout_start = 0.006
    n_echo = int(min(48, (slice_len - readout_start - 0.002) // esp))
    lobe = np.floor((ts - readout_start) / esp).astype(int)
    in_train = (ts >= readout_start) & (lobe < n_echo)
    phase = ts - readout_start - lobe * esp
    sign = np.where(lobe % 2 == 0, 1.0, -1.0)
    g[0] = np.where(in_train, sign * trapezoid(phase, 0.0, esp - 2 * 0.00012, 0.00012), 0.0)
    g[1] = np.where(in_train, trapezoid(phase, esp - 0.00012, 0.00002, 0.00005), 0.0) * 0.3
    g[1] -= 0.5 * trapezoid(ts, 0.0042, 0.0012, ramp)  # phase pre-winder
    g[2] += 0.4 * trapezoid(t, 0.0, 0.004, ramp)  # volume navigator (first slice only)
    emf = np.gradient(g, axis=1) * fine_sfreq
    sos = sps.butter(1, 1000.0, fs=fine_sfreq, output="sos")
    # Periodic steady state: filter three periods and keep the last.
    emf = sps.sosfilt(sos, np.tile(emf, 3), axis=1)[:, 2 * n_vol :]
    return emf / np.abs(emf).max(axis=1, keepdims=True)


def _trapezoid(tt, start, flat, ramp):
    up = np.clip((tt - start) / ramp, 0, 1)
    down = np.clip((start + ramp + flat + ramp - tt) / ramp, 0, 1)
    return np.minimum(up, down)


def slice_waveforms(slice_s: float, *, fine_sfreq: float = FINE_SFREQ):
    """Induced voltage of the three gradient axes over one slice, and the volume navigator.

    The slice is the same EPI slice as in :func:`gradient_axis_waveforms` (slice
    select with refocusing lobe, phase pre-winder, read-out train and blips); the
    navigator is the extra pulse on the first slice of every volume. Both pass the
    amplifier's 1 kHz first-order low-pass (periodic steady state).

    Returns
    -------
    slice_wave, navigator : ndarray, shape (3, round(slice_s * fine_sfreq))
        Scaled together so that the slice's largest axis peak is 1.
    """
    n = int(round(slice_s * fine_sfreq))
    ts = np.arange(n) / fine_sfreq
    g = np.zeros((3, n))
    ramp = 1e-4
    g[2] = _trapezoid(ts, 0.0005, 0.0025, ramp) - 0.55 * _trapezoid(ts, 0.0034, 0.0020, ramp)
    esp, readout_start = 0.0006, 0.006
    n_echo = int(min(48, max(slice_s - readout_start - 0.002, 0) // esp))
    lobe = np.floor((ts - readout_start) / esp).astype(int)
    in_train = (ts >= readout_start) & (lobe < n_echo)
    phase = ts - readout_start - lobe * esp
    sign = np.where(lobe % 2 == 0, 1.0, -1.0)
    g[0] = np.where(in_train, sign * _trapezoid(phase, 0.0, esp - 2 * 0.00012, 0.00012), 0.0)
    g[1] = np.where(in_train, _trapezoid(phase, esp - 0.00012, 0.00002, 0.00005), 0.0) * 0.3
    g[1] -= 0.5 * _trapezoid(ts, 0.0042, 0.0012, ramp)
    nav = np.zeros((3, n))
    nav[2] = 0.4 * _trapezoid(ts, 0.0, 0.004, ramp)
    sos = sps.butter(1, 1000.0, fs=fine_sfreq, output="sos")
    out = []
    for w in (g, nav):
        emf = np.gradient(w, axis=1) * fine_sfreq
        out.append(sps.sosfilt(sos, np.tile(emf, 3), axis=1)[:, 2 * n :])
    scale = np.abs(out[0]).max(axis=1, keepdims=True)
    return out[0] / scale, out[1] / scale


def add_gradient_artifact(
    data,
    sfreq: float,
    volume_starts,
    *,
    tr: float,
    n_slices: int,
    gains,
    slice_gap_s: float = nbconfig.defaults("simulate.slice_gap_s"),
    jitter=None,
    clock_scale: float = 1.0,
    motion=None,
    motion_sensitivity=None,
    drift_phase=None,
    fine_sfreq: float = FINE_SFREQ,
):
    """Add the gradient artifact, built slice by slice, to ``data`` (in place).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        The recording (V).
    sfreq : float
        EEG sampling rate (Hz).
    volume_starts : ndarray, shape (n_volumes,)
        True start of each volume in EEG samples (float: it may fall between samples).
    tr : float
        Repetition time in the scanner's clock (s).
    n_slices : int
        Slices per volume; they fill ``tr - slice_gap_s`` (a slice period may be a
        fraction of a sample: TR 2.0 s, 32 slices at 5 kHz is 312.5 samples).
    gains : ndarray, shape (n_channels, 3)
        Peak voltage of each gradient axis at each channel (the wire loop's areas).
    slice_gap_s : float
        Silent gap at the end of each TR (0: continuous acquisition).
    jitter : ndarray, shape (n_volumes, n_slices) | None
        Offset of each slice trigger in samples (unsynchronised clocks).
    clock_scale : float
        EEG samples per scanner sample (1 + clock drift).
    motion : ndarray, shape (n_volumes, 6) | None
        Head position per volume (mm, rad); with ``motion_sensitivity``
        ``(n_channels, 3, 6)`` it changes each channel's axis gains (the loops move in
        the field): amplitude and shape of the artifact follow the head.
    drift_phase : ndarray, shape (n_channels,) | None
        Phase of a slow (240 s) ±4 % gain drift per channel.
    """
    n_ch, n_times = data.shape
    slice_s = (tr - slice_gap_s) / n_slices
    wave, nav = slice_waveforms(slice_s, fine_sfreq=fine_sfreq)
    n_fine = wave.shape[1]
    fine_t = np.arange(n_fine) / fine_sfreq
    spt = tr * sfreq * clock_scale
    k = np.arange(int(np.ceil(spt)) + 2)
    slice_starts = np.arange(n_slices) * slice_s * sfreq * clock_scale
    cache = {}
    for v, start in enumerate(volume_starts):
        first = int(np.floor(start))
        onsets = start + slice_starts - first
        if jitter is not None:
            onsets = onsets + jitter[v]
        key = onsets.tobytes()
        if key in cache:  # synchronised clocks: every volume has the same slice timing
            w = cache[key]
        else:
            w = cache[key] = _volume_waveform(onsets, k, wave, nav, fine_t, sfreq * clock_scale)
            if len(cache) > 4:
                cache.clear()
        if w is None:
            continue
        g = gains
        if motion is not None and motion_sensitivity is not None:
            pos = np.asarray(motion[v], float).copy()
            pos[3:] *= 50.0  # rad -> mm of arc on a 50 mm head radius
            g = gains * (1.0 + motion_sensitivity @ pos)
        if drift_phase is not None:
            g = g * (1.0 + 0.04 * np.sin(2 * np.pi * start / sfreq / 240.0 + drift_phase))[:, None]
        stop = min(first + k.size, n_times)
        # einsum: a 3-term inner product, far cheaper than a BLAS call per volume
        data[:, first:stop] += np.einsum("ca,an->cn", g, w[:, : stop - first])


def _volume_waveform(onsets, k, wave, nav, fine_t, rate):
    """The three axes' waveforms at samples ``k`` of a volume whose slices start at
    ``onsets`` (samples, fractional); None if no sample falls inside a slice."""
    idx = np.searchsorted(onsets, k, side="right") - 1
    tau = (k - onsets[np.maximum(idx, 0)]) / rate
    ok = (idx >= 0) & (tau < fine_t[-1] + (fine_t[1] - fine_t[0]))
    if not ok.any():
        return None
    w = np.zeros((3, k.size))
    w[:, ok] = np.stack([np.interp(tau[ok], fine_t, a) for a in wave])
    first_slice = ok & (idx == 0)
    if first_slice.any():
        w[:, first_slice] += np.stack([np.interp(tau[first_slice], fine_t, a) for a in nav])
    return w


def add_bcg(data, sfreq, beats_s, pos, rng, *, peak_v, easy=False, modulation=None):
    """Add the ballistocardiogram after each heartbeat to ``data`` (EEG rows, in place).

    Each channel's pulse is a mix of three bumps at 190, 270 and 400 ms (head rotation,
    scalp pulsation, Hall voltage), larger laterally. ``easy``: one fixed template per
    channel times a per-beat scalar and a 4 ms beat jitter (what a template-based OBS
    assumes). Otherwise each channel also has its own latency (±10 ms, through the bumps'
    time derivatives), and every beat its own bump amplitudes (±20 %) and latency
    (±6 ms, later after a longer interval), so no fixed template fits exactly.
    ``modulation`` (None or a callable of time in s) scales each beat (respiration,
    slow drift).
    """
    n_eeg, n_times = data.shape
    n_bcg = int(0.7 * sfreq)
    tb_rel = np.arange(n_bcg) / sfreq
    bumps = np.array([[0.19, 0.025], [0.27, 0.035], [0.40, 0.06]])  # delay, width (s)
    shape_weights = rng.normal(0, 1, (n_eeg, len(bumps)))
    shape_weights[:, 0] += 1.0
    lateral = 1.0 + 2.0 * np.abs(pos[:, 0]) / np.abs(pos[:, 0]).max()

    def basis(shift=0.0):
        d = tb_rel[None] - bumps[:, :1] - shift
        b = np.exp(-0.5 * (d / bumps[:, 1:]) ** 2)
        return b, -d / bumps[:, 1:] ** 2 * b  # bumps and their time derivatives

    b0, _ = basis()
    norm = (peak_v * lateral / np.abs(shape_weights @ b0).max(axis=1)) / 2
    if not easy:
        latency = rng.normal(0, 0.010, n_eeg)  # s, per channel
    rr = np.diff(beats_s, prepend=beats_s[0] - 1.0)
    for i, tb in enumerate(beats_s):
        scale = rng.normal(1.0, 0.08) * (1.0 if modulation is None else modulation(tb))
        if easy:
            start = int(round((tb + rng.normal(0, 0.004)) * sfreq))
            template = np.einsum("cb,bn->cn", shape_weights, b0) * norm[:, None]
        else:
            shift = rng.normal(0, 0.006) + 0.03 * (rr[i] - np.median(rr))
            start = int(round(tb * sfreq))
            b, db = basis(shift)
            amps = 1.0 + rng.normal(0, 0.2, len(bumps))
            w = shape_weights * amps
            template = np.einsum("cb,bn->cn", w, b) + np.einsum(
                "cb,bn->cn", w * latency[:, None], db
            )
            template *= norm[:, None]
        if start >= n_times or start + n_bcg <= 0:
            continue
        lo, hi = max(start, 0), min(start + n_bcg, n_times)
        data[:, lo:hi] += scale * template[:, lo - start : hi - start]


def blink_waveform(n: int, sfreq: float, centre: int) -> np.ndarray:
    """A 150 µV blink (Gaussian, 60 ms sd) centred at sample ``centre`` of ``n``."""
    t = np.arange(n)
    return 150e-6 * np.exp(-0.5 * ((t - centre) / (0.06 * sfreq)) ** 2)


def blink_topography(ch_names) -> np.ndarray:
    """Fraction of the EOG's blink seen at each electrode: ~0.8 at FP1/FP2, ~0.2 at F3/F4.

    Decays with the distance from the eyes (below and in front of FP1/FP2).
    """
    pos = standard_positions(ch_names)
    eyes = standard_positions(["FP1", "FP2"]).mean(axis=0) + np.array([0.0, 0.02, -0.03])
    d = np.linalg.norm(pos - eyes, axis=1)
    return np.clip(1.6 * np.exp(-d / 0.035), 0, 1)


def add_line_noise(data, sfreq, rng, *, amplitude_v, line_freq=50.0):
    """Add mains interference (50 Hz and a third harmonic) with per-channel amplitude and phase."""
    n_ch, n_times = data.shape
    amp = amplitude_v * rng.lognormal(0, 0.5, n_ch)
    phase = rng.uniform(0, 2 * np.pi, n_ch)
    # sin(x + p) = sin x cos p + cos x sin p; the harmonic at 20 % and phase 3p. Per
    # channel: amplitude and the four weights (scalars, as numbers of their own).
    a1 = np.array([amp[c] for c in range(n_ch)])[:, None]
    a3 = np.array([0.2 * amp[c] for c in range(n_ch)])[:, None]
    w = np.array(
        [
            [np.cos(phase[c]), np.sin(phase[c]), np.cos(3 * phase[c]), np.sin(3 * phase[c])]
            for c in range(n_ch)
        ]
    ).T[:, :, None]
    for sl in chunks(n_times, 1 << 13):  # all channels, block by block (in cache)
        t = np.arange(sl.start, sl.stop) / sfreq
        base = [f(2 * np.pi * m * line_freq * t) for m in (1, 3) for f in (np.sin, np.cos)]
        block = data[:, sl]
        block += a1 * (w[0] * base[0] + w[1] * base[1])
        block += a3 * (w[2] * base[2] + w[3] * base[3])
