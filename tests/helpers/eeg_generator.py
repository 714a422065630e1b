"""An independent generator of in-scanner EEG for testing the EEG stage.

Independent of :mod:`neurobolt.simulate` and deliberately *not* built the way the
cleaner models the artifacts:

* **Gradient artifact** from the physics: trapezoidal gradient waveforms per slice
  (slice select, EPI read-out train, phase-encode blips, spoilers) on three axes; the
  induced voltage is ``dG/dt`` smoothed by the amplifier (a Gaussian, so the
  waveform is defined in continuous time and sampled at the exact, sub-sample slice
  times). Each channel sees its own mix of the three axes; **head motion** (six
  rigid-body parameters, a random walk with occasional jumps) changes the mix
  continuously in time, so the artifact changes amplitude *and* shape within and
  between volumes. The cleaner never sees the axes nor the mixing.
* **Timing**: ``sync=True`` puts slices every 312.5 samples (half-sample phases) and
  volume markers every 10 000 samples exactly; ``sync=False`` runs the EEG clock
  40 ppm fast with a random phase and adds a per-slice jitter (sd ``jitter_us``), and
  the markers are the sample *after* each volume start.
* **Protocols**: ``"continuous"`` (TR 2.0 s, 32 slices, no gap) and ``"gap"``
  (TR 1.95 s, 39 slices of 45 ms, a silent gap, 4 ms ramps of a background
  gradient at both edges of the slice train, and a slow ±4 % drift of the
  artifact's amplitude).
* **BCG**: per channel a mix of three damped oscillations at its own latency; per
  beat and channel the latency varies (sd 6 ms), the gain (sd 10 %) and the shape
  (mixing weights, sd 15 %): no single template per channel, no shared per-beat
  coefficients. Peak amplitude 40-160 µV.
* **ECG** with an MR-enlarged, sharp T wave (taller than the R wave) and realistic
  heart-rate variability (respiratory sinus arrhythmia + slow + random).
* **EEG**: spatially mixed 1/f background, posterior alpha with waxing/waning,
  an infraslow 0.03-0.3 Hz component, blinks leaking into frontal channels; 50 Hz
  line noise (in the data and in the truth: it is not an artifact the stage removes
  by default).

Everything is returned as numpy arrays in volts.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps
from scipy.special import erf

CH_NAMES = ["FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "O2", "T7", "P8", "CZ", "O1"]
FRONTAL = {"FP1": 1.0, "FP2": 1.0, "F3": 0.45, "F4": 0.45, "C3": 0.15, "C4": 0.15, "CZ": 0.2}
POSTERIOR = {"O1": 1.0, "O2": 1.0, "P3": 0.7, "P8": 0.6, "C3": 0.3, "C4": 0.3, "CZ": 0.3}


# ------------------------------------------------------------------------------------------
# Gradient waveforms
# ------------------------------------------------------------------------------------------


def _trap(steps, axis, t0, amp, ramp, plateau):
    """Append the four dG/dt steps of a trapezoid (ms units) to ``steps``."""
    h = amp / ramp
    steps += [
        (axis, t0, h),
        (axis, t0 + ramp, -h),
        (axis, t0 + ramp + plateau, -h),
        (axis, t0 + 2 * ramp + plateau, h),
    ]


def _slice_steps(period_ms: float) -> list:
    """dG/dt steps ``(axis, time_ms, height)`` of one EPI slice of ``period_ms``."""
    s: list = []
    _trap(s, 2, 0.6, 1.0, 0.2, 2.6)  # slice select (z)
    _trap(s, 2, 3.6, -0.55, 0.15, 1.0)  # refocusing lobe
    _trap(s, 0, 3.6, -0.5, 0.15, 0.6)  # read-out prephaser (x)
    _trap(s, 1, 3.7, -0.6, 0.1, 0.5)  # phase-encode prephaser (y)
    t = 5.0
    for line in range(48):  # EPI read-out train, echo spacing 0.5 ms
        _trap(s, 0, t, 1.0 if line % 2 == 0 else -1.0, 0.1, 0.3)
        if line < 47:  # phase-encode blip (triangle)
            _trap(s, 1, t + 0.45, 0.12, 0.05, 0.0)
        t += 0.5
    spoil = min(t + 3.0, period_ms - 5.0)
    for ax, a in ((0, 0.7), (1, 0.5), (2, 0.9)):
        _trap(s, ax, spoil, a, 0.3, 1.8)
    return s


def _render_steps(times_s, heights, n_times, sfreq, sigma_s):
    """Sum of Gaussian-smoothed steps (continuous time) sampled at ``k / sfreq``."""
    out = np.zeros(n_times + 1)
    half = int(np.ceil(6 * sigma_s * sfreq)) + 1
    start = np.floor(times_s * sfreq).astype(np.int64) - half
    width = 2 * half + 1
    ok = (start >= 0) & (start + width < n_times)
    times_s, heights, start = times_s[ok], heights[ok], start[ok]
    idx = start[:, None] + np.arange(width)[None, :]
    t = idx / sfreq
    vals = heights[:, None] * 0.5 * (1 + erf((t - times_s[:, None]) / (np.sqrt(2) * sigma_s)))
    out += np.bincount(idx.ravel(), weights=vals.ravel(), minlength=n_times + 1)[: n_times + 1]
    # After the window every step holds its full height.
    out += np.cumsum(np.bincount(start + width, weights=heights, minlength=n_times + 1))[
        : n_times + 1
    ]
    return out[:n_times]


def _motion(n_vol, rng, *, motion: bool):
    """Six rigid-body parameters per volume (mm / degrees): random walk + jumps."""
    if not motion:
        return np.zeros((n_vol, 6))
    walk = np.cumsum(rng.normal(0, 0.03, (n_vol, 6)), axis=0)
    jumps = np.zeros((n_vol, 6))
    for _ in range(max(1, n_vol // 25)):
        v = rng.integers(3, n_vol - 3)
        jumps[v:] += rng.normal(0, 0.6, 6)
    return walk + jumps


# ------------------------------------------------------------------------------------------
# Physiology
# ------------------------------------------------------------------------------------------


def _colored(rng, n_ch, n, sfreq, lo, hi, alpha=1.0):
    f = np.fft.rfftfreq(n, 1 / sfreq)
    gain = np.where((f >= lo) & (f <= hi), 1 / np.maximum(f, lo) ** (alpha / 2), 0.0)
    spec = (rng.normal(size=(n_ch, f.size)) + 1j * rng.normal(size=(n_ch, f.size))) * gain
    x = np.fft.irfft(spec, n=n, axis=1)
    return x / x.std(axis=1, keepdims=True)


def _r_peaks(duration, rng):
    """R-peak times (s): respiratory sinus arrhythmia, a slow component and noise."""
    t, out = 0.4 + rng.uniform(0, 0.3), []
    slow_phase = rng.uniform(0, 2 * np.pi)
    while t < duration - 0.3:
        out.append(t)
        rr = (
            0.92
            + 0.05 * np.sin(2 * np.pi * 0.27 * t)
            + 0.04 * np.sin(2 * np.pi * 0.05 * t + slow_phase)
            + rng.normal(0, 0.025)
        )
        t += float(np.clip(rr, 0.55, 1.4))
    return np.asarray(out)


def _gauss(t, c, w):
    return np.exp(-0.5 * ((t - c) / w) ** 2)


def _ecg(t, beats, rng):
    """In-scanner ECG (V): P, Q, R, S and an MR-enlarged T wave taller than the R wave."""
    ecg = np.zeros_like(t)
    sfreq = 1 / (t[1] - t[0])
    for b in beats:
        lo, hi = max(int((b - 0.3) * sfreq), 0), min(int((b + 0.6) * sfreq), t.size)
        tt = t[lo:hi] - b
        ecg[lo:hi] += (
            0.12 * _gauss(tt, -0.17, 0.022)
            - 0.12 * _gauss(tt, -0.03, 0.008)
            + 1.0 * _gauss(tt, 0.0, 0.009)
            - 0.3 * _gauss(tt, 0.03, 0.009)
            + rng.normal(1.35, 0.1) * _gauss(tt, 0.24, 0.035)  # magnetohydrodynamic T wave
            - 0.4 * _gauss(tt, 0.33, 0.05)
        )
    return 1e-3 * ecg


def _bcg(t, beats, n_ch, rng, *, latency_sd=0.006, gain_sd=0.10, shape_sd=0.15):
    """BCG (V): per channel its own mix of three damped oscillations and latency; per beat
    and channel an own latency, gain and mix."""
    sfreq = 1 / (t[1] - t[0])
    freqs = np.array([3.5, 6.0, 9.0])
    decay = np.array([0.09, 0.06, 0.045])
    phase = rng.uniform(0, 2 * np.pi, 3)
    mix = rng.normal(0, 1, (n_ch, 3))
    lat = rng.uniform(0.18, 0.28, n_ch)
    amp = rng.uniform(40e-6, 160e-6, n_ch)

    def wave(tt, w):
        env = np.where(tt > 0, (tt / decay[:, None]) * np.exp(1 - tt / decay[:, None]), 0.0)
        return (w[:, None] * env * np.cos(2 * np.pi * freqs[:, None] * tt + phase[:, None])).sum(0)

    # normalise each channel's mean waveform to its peak amplitude
    tt = np.arange(0, 0.8, 1 / sfreq)
    norm = np.array([np.abs(wave(tt, mix[c])).max() for c in range(n_ch)])
    out = np.zeros((n_ch, t.size))
    for b in beats:
        lo, hi = int(b * sfreq), min(int((b + 1.0) * sfreq), t.size)
        if lo >= t.size:
            continue
        common = rng.normal(0, 0.004)
        for c in range(n_ch):
            d = lat[c] + common + rng.normal(0, latency_sd)
            w = mix[c] * (1 + rng.normal(0, shape_sd, 3))
            g = amp[c] / norm[c] * (1 + rng.normal(0, gain_sd))
            out[c, lo:hi] += g * wave(t[lo:hi] - b - d, w)
    return out


# ------------------------------------------------------------------------------------------
# The recording
# ------------------------------------------------------------------------------------------


def make_recording(
    *,
    n_channels: int = 8,
    duration: float = 90.0,
    sfreq: float = 5000.0,
    protocol: str = "continuous",
    sync: bool = True,
    motion: bool = True,
    drift: bool | None = None,
    jitter_us: float = 20.0,
    clock_ppm: float = 40.0,
    line_noise: bool = True,
    lead: float = 3.0,
    seed: int = 0,
) -> dict:
    """One in-scanner recording and its ground truth.

    Returns
    -------
    rec : dict
        ``data`` (n_channels + 1, n_times): EEG channels and ECG last (V);
        ``truth`` (n_channels, n_times): the clean EEG (background, alpha, infraslow,
        blinks, line noise); ``infraslow`` its 0.03-0.3 Hz part; ``bcg``, ``gradient``
        (n_channels + 1, n_times); ``onsets`` (volume marker samples); ``r_peaks``
        (true R-peak samples, float); ``ch_names`` (EEG then ``ECG``); ``sfreq``, ``tr``,
        ``n_slices``, ``slice_timing`` (s); ``motion`` (n_volumes, 6).
    """
    rng = np.random.default_rng(seed)
    if protocol == "continuous":
        tr, n_slices, slice_ms, edge_ramp = 2.0, 32, 62.5, 0.0
    elif protocol == "gap":
        tr, n_slices, slice_ms, edge_ramp = 1.95, 39, 45.0, 4.0
    else:
        raise ValueError(protocol)
    if drift is None:
        drift = protocol == "gap"
    n_times = int(round(duration * sfreq))
    t = np.arange(n_times) / sfreq
    n_ch = int(n_channels)
    names = CH_NAMES[:n_ch]

    # Timing of the scanner in the EEG's clock.
    rate = 1.0 + (0.0 if sync else clock_ppm * 1e-6)  # EEG seconds per scanner second
    t0 = lead if sync else lead + rng.uniform(0, 1 / sfreq)
    n_vol = int((duration - 2 * lead) // tr)
    vol_start = t0 + np.arange(n_vol) * tr * rate
    slice_off = np.arange(n_slices) * slice_ms * 1e-3 * rate
    slice_times = vol_start[:, None] + slice_off[None, :]
    if not sync:
        slice_times = slice_times + rng.normal(0, jitter_us * 1e-6, slice_times.shape)
    onsets = (
        np.round(vol_start * sfreq).astype(np.int64)
        if sync
        else np.ceil(vol_start * sfreq).astype(np.int64)
    )

    # dG/dt per axis, continuous time.
    steps = _slice_steps(slice_ms)
    ax = np.array([s[0] for s in steps])
    st = np.array([s[1] for s in steps]) * 1e-3 * rate
    hs = np.array([s[2] for s in steps])
    all_t = (slice_times.ravel()[:, None] + st[None, :]).ravel()
    all_ax = np.broadcast_to(ax, (slice_times.size, ax.size)).ravel()
    all_h = np.broadcast_to(hs, (slice_times.size, hs.size)).ravel()
    if edge_ramp:
        # a background gradient on z ramped up before the slice train and down after it
        r = edge_ramp * 1e-3 * rate
        h = 2.5 / edge_ramp
        up = vol_start - r
        down = slice_times[:, -1] + slice_ms * 1e-3 * rate - 0.5e-3
        e_t = np.concatenate([up, up + r, down, down + r])
        e_h = np.repeat([h, -h, -h, h], n_vol)
        all_t = np.concatenate([all_t, e_t])
        all_ax = np.concatenate([all_ax, np.full(e_t.size, 2)])
        all_h = np.concatenate([all_h, e_h])
    sigma = 0.12e-3  # amplifier smoothing (~1 kHz)
    dgdt = np.stack(
        [
            _render_steps(all_t[all_ax == a], all_h[all_ax == a], n_times, sfreq, sigma)
            for a in range(3)
        ]
    )

    # Coupling of each channel (and the ECG) to each axis, changed by head motion.
    mot = _motion(n_vol, rng, motion=motion)
    base = rng.normal(0, 1, (n_ch + 1, 3))
    base[-1] *= 1.5
    sens = rng.normal(0, 0.12, (n_ch + 1, 3, 6))
    coup_v = base[None] + np.einsum("cap,vp->vca", sens, mot)  # (n_vol, C, 3)
    # Cable and electrode vibration driven by the gradients' Lorentz forces: G itself
    # through a damped mechanical resonance per axis (most of the artifact's power below
    # 100 Hz comes from here), with its own coupling, also changed by motion.
    gfield = np.cumsum(dgdt, axis=1) / sfreq * 1e3  # G (ms units)
    vib = np.empty_like(gfield)
    for a in range(3):
        f0 = rng.uniform(20.0, 60.0)
        b, a_ = sps.iirpeak(f0, 2.0, fs=sfreq)
        vib[a] = sps.lfilter(b, a_, gfield[a])  # G is 0 before the scan: no start transient
    vib /= vib.std(axis=1, keepdims=True) / dgdt.std(axis=1, keepdims=True)
    base_v = rng.normal(0, 1, (n_ch + 1, 3)) * 0.5
    sens_v = rng.normal(0, 0.1, (n_ch + 1, 3, 6))
    coup_vib = base_v[None] + np.einsum("cap,vp->vca", sens_v, mot)
    mid = vol_start + 0.5 * tr
    grad = np.zeros((n_ch + 1, n_times))
    for c in range(n_ch + 1):
        for a in range(3):
            grad[c] += np.interp(t, mid, coup_v[:, c, a]) * dgdt[a]
            grad[c] += np.interp(t, mid, coup_vib[:, c, a]) * vib[a]
    if drift:
        grad *= 1 + 0.04 * np.sin(2 * np.pi * t / 70.0 + rng.uniform(0, 2 * np.pi))
    peak = np.percentile(np.abs(grad[:n_ch]), 99.9)
    grad *= 4e-3 / peak  # ~4 mV peaks

    # Heart.
    beats = _r_peaks(duration, rng)
    ecg = _ecg(t, beats, rng) + 20e-6 * _colored(rng, 1, n_times, sfreq, 0.5, 200)[0]
    bcg = np.zeros((n_ch + 1, n_times))
    bcg[:n_ch] = _bcg(t, beats, n_ch, rng)

    # EEG.
    n_src = 6
    src = _colored(rng, n_src, n_times, sfreq, 0.5, 120.0)
    eeg = 12e-6 * rng.normal(0, 1, (n_ch, n_src)) @ src / np.sqrt(n_src)
    alpha = _colored(rng, 1, n_times, sfreq, 8.5, 11.5, alpha=0)[0]
    alpha *= 1 + 0.6 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 6))
    wpost = np.array([POSTERIOR.get(n, 0.1) for n in names])
    eeg += 10e-6 * wpost[:, None] * alpha[None]
    slow = _colored(rng, 2, n_times, sfreq, 0.03, 0.3, alpha=0)
    infraslow = 25e-6 * rng.uniform(0.5, 1.0, (n_ch, 2)) @ slow / np.sqrt(2)
    eeg += infraslow
    wfront = np.array([FRONTAL.get(n, 0.05) for n in names])
    blinks = np.zeros(n_times)
    tb = rng.uniform(1, 5)
    while tb < duration - 1:
        blinks += 150e-6 * _gauss(t, tb, 0.08)
        tb += rng.uniform(2.5, 7.0)
    eeg += wfront[:, None] * blinks[None]
    if line_noise:
        ph = rng.uniform(0, 2 * np.pi, n_ch)[:, None]
        eeg += 4e-6 * np.sin(2 * np.pi * 50 * t[None] + ph) + 1e-6 * np.sin(
            2 * np.pi * 150 * t[None] + 2 * ph
        )

    data = np.zeros((n_ch + 1, n_times))
    data[:n_ch] = eeg + bcg[:n_ch] + grad[:n_ch]
    data[n_ch] = ecg + grad[n_ch]
    return {
        "data": data,
        "truth": eeg,
        "infraslow": infraslow,
        "bcg": bcg,
        "gradient": grad,
        "onsets": onsets,
        "r_peaks": beats * sfreq,
        "ch_names": names + ["ECG"],
        "sfreq": float(sfreq),
        "tr": tr,
        "n_slices": n_slices,
        "slice_timing": list(slice_off / rate),
        "motion": mot,
    }


# ------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------


def band(x, sfreq, lo, hi, order=4):
    """Zero-phase Butterworth band-pass along the last axis."""
    sos = sps.butter(order, [lo, hi], btype="bandpass", fs=sfreq, output="sos")
    return sps.sosfiltfilt(sos, x, axis=-1)


def score(est, truth, sfreq, lo, hi, *, span=None):
    """Median over channels of Pearson r and NRMSE (rms error / rms truth) in ``[lo, hi]``.

    ``span`` (start, stop) in samples restricts the comparison (after filtering).
    """
    if lo < 0.2:
        # decimate first so the infraslow filter is well conditioned
        q = int(sfreq // 20)
        est, truth = est[..., ::1], truth[..., ::1]
        est = sps.resample_poly(est, 1, q, axis=-1)
        truth = sps.resample_poly(truth, 1, q, axis=-1)
        sfreq = sfreq / q
        if span is not None:
            span = (span[0] // q, span[1] // q)
    a, b = band(est, sfreq, lo, hi, order=2), band(truth, sfreq, lo, hi, order=2)
    if span is not None:
        a, b = a[..., span[0] : span[1]], b[..., span[0] : span[1]]
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    r = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)]
    e = np.sqrt(np.mean((a - b) ** 2, axis=1)) / np.sqrt(np.mean(b**2, axis=1))
    return float(np.median(r)), float(np.median(e))
