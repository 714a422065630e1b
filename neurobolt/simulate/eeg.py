"""One run's in-scanner EEG: clean EEG (neural sources, blinks, infraslow), artifacts, markers.

:func:`simulate_eeg` draws the run's slow latent processes (band envelopes, arousal,
respiration depth, heart-rate drive), builds the clean EEG from them, then adds the
ballistocardiogram, blinks, the gradient artifact (slice by slice, following the head),
ECG/EOG, mains interference, amplifier noise and the 0.5 µV quantisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np

from .artifacts import (
    add_bcg,
    add_gradient_artifact,
    add_line_noise,
    blink_topography,
    blink_waveform,
)
from .params import EEG_RESOLUTION_UV, ENV_SFREQ, EVOKED_S, RHYTHMS, TRUTH_SFREQ, WINDOW_S
from .signals import (
    bandlimited_noise,
    chunks,
    ecg_beat,
    evoked_topography,
    evoked_waveform,
    heartbeat_times,
    pink_noise,
    slow_envelopes,
    standard_positions,
    stimulus_times,
)

#: Clock drift of the scanner against the EEG amplifier when they are not synchronised (ppm).
UNSYNCED_DRIFT_PPM = 3.0
#: Samples per block when a sum over the whole recording is built block by block (the
#: blocks of all channels stay in cache; every sample sees the same operations in order).
BLOCK = 1 << 13


@dataclass
class Latents:
    """The run's slow processes on the envelope grid ``t`` (s from the EEG's start).

    ``env``: rhythm -> amplitude envelope (mean ≈ 1); ``arousal``, ``rvt`` (breathing
    depth) and ``heart_rate``: unit-variance series (zeros in the easy preset).
    """

    t: np.ndarray
    env: dict
    arousal: np.ndarray
    rvt: np.ndarray
    heart_rate: np.ndarray


@dataclass
class EEGRun:
    """The simulated EEG of one run and what the BOLD side needs from it."""

    raw: tuple  # (data in V (n_channels, n_times), channel names) at params.sfreq
    clean_200: mne.io.RawArray  # ground-truth clean EEG at 200 Hz
    onsets: np.ndarray  # volume-marker samples
    r_peaks: np.ndarray  # true R-peak samples
    stimuli: np.ndarray  # stimulus samples
    latents: Latents


def _to_truth_rate(x, sfreq):
    """Resample rows of ``x`` from ``sfreq`` to :data:`TRUTH_SFREQ` (Kaiser-windowed FIR)."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(TRUTH_SFREQ / sfreq).limit_denominator(10_000)
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)


def _heart_rate_series(beats, t):
    """Instantaneous heart rate (bpm) at times ``t``, z-scored."""
    hr = 60.0 / np.diff(beats)
    x = np.interp(t, beats[1:], hr)
    return (x - x.mean()) / (x.std() or 1.0)


def simulate_eeg(params, run, rng, traits, motion, progress, *, workers: int = 1) -> EEGRun:
    """Simulate one run's EEG (see the module docstring); ``motion`` is (n_volumes, 6).

    ``workers`` threads share the multi-channel noise transforms and the resampling of
    the clean EEG (the result does not depend on it).
    """
    sfreq, tr = params.sfreq, params.tr
    easy = params.easy
    n_vol = params.n_volumes
    spt = int(round(tr * sfreq))
    total_s = params.lead_in_s + n_vol * tr + params.lead_out_s
    n_times = int(round(total_s * sfreq))
    eeg_names = list(params.channels)
    n_eeg = len(eeg_names)
    pos = standard_positions(eeg_names)

    # Slow processes (from WINDOW_S + 4 s before the recording, so early windows are defined).
    pad_s = WINDOW_S + 4.0
    n_env = int(np.ceil((total_s + pad_s) * ENV_SFREQ)) + 1
    t_env = np.arange(n_env) / ENV_SFREQ - pad_s
    names = list(RHYTHMS)
    # The long noise series: single precision is plenty (easy keeps double: its random
    # streams, and so its datasets, stay those the unit tests were tuned on).
    fast = np.float64 if easy else np.float32
    if easy:
        arousal = rvt = np.zeros(n_env)
        drive = None
    else:
        arousal = bandlimited_noise(rng, n_env, ENV_SFREQ, 0.005, 0.05)[0]
        rvt = bandlimited_noise(rng, n_env, ENV_SFREQ, 0.01, 0.1)[0]
        drive = np.array([traits.arousal[name] for name in names])[:, None] * arousal[None]
    env = slow_envelopes(rng, len(names), n_env, ENV_SFREQ, drive=drive)
    # Stimuli (task design only) raise one rhythm's envelope while they last: its band
    # power, and through the coupling the BOLD signal, respond to them.
    design = params.task_design
    stim_s = stimulus_times(params, run)
    if design is not None and stim_s.size:
        on = np.zeros(n_env, bool)
        for ts in stim_s:
            on |= (t_env >= ts) & (t_env < ts + design["duration_s"])
        env[names.index(design["rhythm"])] *= 1.0 + design["gamma_gain"] * on

    # Recording buffer: EEG channels, ECG, EOG (V). Components are added in place to bound memory.
    n_ch = n_eeg + 2
    data = np.zeros((n_ch, n_times))
    clean = data[:n_eeg]  # a view: the clean EEG is built first, then artifacts are added

    # Clean EEG: 1/f background sources + rhythms with focal topographies + channel noise.
    n_bg = 8
    bg = pink_noise(rng, n_times, sfreq, n=n_bg, dtype=fast, workers=workers)
    bg_topo = rng.normal(0, 1, (n_eeg, n_bg))
    bg_topo *= 9e-6 / np.sqrt((bg_topo**2).sum(axis=1, keepdims=True))
    t = np.arange(n_times) / sfreq
    sources = []  # (topography column, carrier) of each rhythm
    for r, name in enumerate(names):
        _, half_bw, amp, peaks = RHYTHMS[name]
        f0 = traits.freq[name]
        # Placed by the standard positions of its electrodes, on the cap or not.
        centre = standard_positions(peaks).mean(axis=0) + traits.shift[name]
        dist = np.linalg.norm(pos - centre, axis=1)
        topo = amp * traits.amp[name] * np.exp(-0.5 * (dist / traits.width[name]) ** 2)
        carrier = bandlimited_noise(rng, n_times, sfreq, f0 - half_bw, f0 + half_bw, dtype=fast)[0]
        carrier *= np.interp(t, t_env, env[r])
        sources.append((topo[:, None], carrier))
    # Background, then each rhythm, added block by block (blocks that stay in cache).
    for sl in chunks(n_times, BLOCK):
        block = clean[:, sl]
        # (the sources cast to double first: what einsum does with them, but unbuffered)
        block += np.einsum("ck,kn->cn", bg_topo, bg[:, sl].astype(np.float64))
        for topo, carrier in sources:
            block += topo * carrier[sl]
    del bg, sources
    if design is not None and stim_s.size:  # evoked responses (own random stream)
        erp_rng = np.random.default_rng(
            [params.seed, int(run.subject), int(run.session), sum(run.task.encode()), 0xE7]
        )
        topo = design["evoked_v"] * evoked_topography(pos)
        n_erp = int(round(EVOKED_S * sfreq))
        for ts in stim_s:
            start = int(round(ts * sfreq))
            stop = min(start + n_erp, n_times)
            wave = evoked_waveform(np.arange(stop - start) / sfreq) * erp_rng.lognormal(0, 0.2)
            clean[:, start:stop] += topo[:, None] * wave[None]
    for sl in chunks(n_eeg, 8):
        noise = pink_noise(rng, n_times, sfreq, n=sl.stop - sl.start, dtype=fast, workers=workers)
        noise *= 2e-6
        clean[sl] += noise
    del noise

    # EOG: blinks and slow drifts; blinks also reach the frontal electrodes (realistic).
    eog = pink_noise(rng, n_times, sfreq, n=1, dtype=fast)[0] * 15e-6
    leak = None if easy else blink_topography(eeg_names)
    for tb in np.cumsum(rng.uniform(2.5, 6.0, int(total_s / 2.5) + 1)):
        c = int(tb * sfreq)
        lo, hi = max(c - 1000, 0), min(c + 1000, n_times)
        if hi > lo:
            blink = blink_waveform(hi - lo, sfreq, c - lo)
            eog[lo:hi] += blink
            if leak is not None:
                clean[:, lo:hi] += leak[:, None] * blink[None]
    if not easy:
        # Infraslow (< 0.5 Hz) activity: two broad sources, ~10 µV.
        slow = bandlimited_noise(rng, n_env, ENV_SFREQ, 0.01, 0.5, n=2)
        topo = rng.normal(0, 1, (n_eeg, 2)) * 6e-6 + 4e-6
        for sl in chunks(n_times, BLOCK):
            slow_sl = np.stack([np.interp(t[sl], t_env, s) for s in slow])
            clean[:, sl] += np.einsum("ck,kn->cn", topo, slow_sl)
    # Ground-truth clean EEG at 200 Hz (polyphase anti-aliased resampling), before artifacts.
    groups = [clean[sl] for sl in chunks(n_eeg, 8)]
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            clean_200 = np.concatenate(
                list(pool.map(_to_truth_rate, groups, [sfreq] * len(groups)))
            )
    else:
        clean_200 = np.concatenate([_to_truth_rate(g, sfreq) for g in groups])
    del groups
    progress.update(1)

    # Volume onsets: whole samples for the markers; the true starts may fall between samples.
    first = int(round(params.lead_in_s * sfreq))
    if params.gradient_clock == "unsynced" and not easy:
        clock = 1.0 + UNSYNCED_DRIFT_PPM * 1e-6 * rng.choice([-1.0, 1.0])
        starts = first + rng.uniform(0, 1) + spt * clock * np.arange(n_vol)
        onsets = np.round(starts).astype(int)  # the marker: the next sample after the trigger
        jitter = rng.normal(0, params.gradient_jitter_samples, (n_vol, params.n_slices))
    else:
        clock = 1.0
        onsets = first + spt * np.arange(n_vol)
        starts = onsets.astype(float)
        jitter = None
        if easy:  # one trigger jitter per volume, every slice alike
            per_volume = rng.uniform(-1, 1, n_vol) * params.gradient_jitter_samples
            jitter = np.repeat(per_volume[:, None], params.n_slices, axis=1)

    # ECG, R-peaks, BCG.
    hr_drive = None if easy else (t_env, bandlimited_noise(rng, n_env, ENV_SFREQ, 0.005, 0.08)[0])
    beats = heartbeat_times(rng, -1.0, total_s + 1.0, drive=hr_drive)
    r_peaks_s = beats[(beats >= 0) & (beats < total_s)]
    heart_rate = np.zeros(n_env) if easy else _heart_rate_series(beats, t_env)
    ecg = np.zeros(n_times)
    half = int(0.45 * sfreq)
    t_gain = 1.0 if easy else rng.uniform(2.0, 3.5)  # MR-enlarged T wave
    for i, tb in enumerate(beats):
        rr = beats[i + 1] - tb if i + 1 < len(beats) else beats[i] - beats[i - 1]
        c = int(round(tb * sfreq))
        lo, hi = max(c - half, 0), min(c + half, n_times)
        if hi > lo:
            ecg[lo:hi] += ecg_beat((np.arange(lo, hi) / sfreq) - tb, rr, t_gain=t_gain)
    ecg *= rng.uniform(0.8, 1.3)
    if run.inverted_ecg:
        ecg = -ecg
    ecg += 50e-6 * np.sin(2 * np.pi * 0.25 * t)  # respiration-driven baseline wander

    drift = 1 + 0.15 * np.sin(2 * np.pi * t_env / rng.uniform(120, 300) + rng.uniform(0, 6))
    if easy:

        def modulation(tb):
            return np.interp(tb, t_env, drift)

    else:
        resp_f = rng.uniform(0.2, 0.3)

        def modulation(tb):
            breath = 1 + 0.1 * np.sin(2 * np.pi * resp_f * tb)
            return np.interp(tb, t_env, drift) * breath * (1 + 0.1 * np.interp(tb, t_env, rvt))

    add_bcg(
        data[:n_eeg], sfreq, r_peaks_s, pos, rng, peak_v=params.bcg_peak_v, easy=easy,
        modulation=modulation,
    )  # fmt: skip
    progress.update(1)

    # Gradient artifact: slice by slice, channel-specific axis gains that follow the head.
    gains = rng.normal(0, 1, (n_ch, 3))
    gains *= (params.gradient_peak_v * rng.uniform(0.4, 1.0, n_ch) / np.abs(gains).sum(axis=1))[
        :, None
    ]
    gains[n_eeg] *= 1.5  # the ECG lead runs across the chest: bigger loop, bigger artifact
    drift_phase = rng.uniform(0, 2 * np.pi, n_ch)
    sensitivity = None if easy else rng.normal(0, 0.08, (n_ch, 3, 6))  # per mm
    add_gradient_artifact(
        data,
        sfreq,
        starts,
        tr=tr,
        n_slices=params.n_slices,
        gains=gains,
        slice_gap_s=params.slice_gap_s,
        jitter=jitter,
        clock_scale=clock,
        motion=None if easy else motion,
        motion_sensitivity=sensitivity,
        drift_phase=drift_phase,
    )
    progress.update(1)

    # ECG and EOG channels, mains, amplifier noise, quantisation to 0.5 µV (int16 in the file).
    data[n_eeg] += ecg
    data[n_eeg + 1] += eog
    if not easy and params.line_noise_v > 0:
        add_line_noise(data, sfreq, rng, amplitude_v=params.line_noise_v)
    res = EEG_RESOLUTION_UV * 1e-6
    for sl in chunks(n_ch, 8):
        noise = rng.standard_normal((sl.stop - sl.start, n_times), dtype=fast)
        noise *= params.noise_v
        for tsl in chunks(n_times, BLOCK):
            block = data[sl, tsl]  # a view: add the noise and quantise in place
            block += noise[:, tsl]
            np.divide(block, res, out=block)
            np.round(block, out=block)
            np.multiply(block, res, out=block)
    ch_names = eeg_names + ["ECG", "EOG"]
    clean_200 = mne.io.RawArray(
        clean_200, mne.create_info(eeg_names, TRUTH_SFREQ, "eeg"), verbose=False
    )
    progress.update(1)
    latents = Latents(t_env, dict(zip(names, env, strict=True)), arousal, rvt, heart_rate)
    return EEGRun(
        (data, ch_names),
        clean_200,
        onsets,
        np.round(r_peaks_s * sfreq).astype(int),
        np.round(stim_s * sfreq).astype(int),
        latents,
    )
