"""Signal primitives: noise, HRFs, slow envelopes, the per-subject traits, heart, stimuli.

Pure functions of a random generator and their arguments (no file I/O).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .params import (
    DIFUMO64_LABELS,
    EVOKED_ELECTRODES,
    EVOKED_S,
    GLOBAL_SIGNAL,
    RHYTHMS,
    WINDOW_S,
    SimParams,
    SimRun,
    montage,
)


def standard_positions(ch_names: Sequence[str]) -> np.ndarray:
    """3-D positions (m) of 10-20 electrodes from MNE's standard montage (case-insensitive)."""
    pos = {k.upper(): v for k, v in montage().get_positions()["ch_pos"].items()}
    return np.array([pos[name.upper()] for name in ch_names])


def _fast_len(n: int) -> int:
    from scipy.fft import next_fast_len

    return int(next_fast_len(int(n), real=True))


def _complex_normal(rng, shape, dtype):
    """Complex normal draws: the real parts first, then the imaginary parts.

    The same numbers as ``rng.standard_normal(shape) + 1j * rng.standard_normal(shape)``,
    written into the real and imaginary parts in place (no complex arithmetic).
    """
    out = np.empty(shape, np.result_type(dtype, np.complex64))
    out.real = rng.standard_normal(shape, dtype=dtype)
    out.imag = rng.standard_normal(shape, dtype=dtype)
    return out


def _unit_rows(x, workers: int = 1):
    """Divide each row of ``x`` by its standard deviation, in place; rows in ``workers``
    threads (each row's own ``std``: the same numbers as one ``std(axis=-1)``)."""
    if workers > 1 and x.shape[0] > 1:
        from concurrent.futures import ThreadPoolExecutor

        def unit(row):
            row /= row.std()

        with ThreadPoolExecutor(min(workers, x.shape[0])) as pool:
            list(pool.map(unit, x))
    else:
        x /= x.std(axis=-1, keepdims=True)
    return x


def bandlimited_noise(rng, n_times, sfreq, f_lo, f_hi, n=1, *, dtype=np.float64, workers=1):
    """Unit-variance Gaussian noise with a flat spectrum between ``f_lo`` and ``f_hi`` Hz.

    ``workers`` threads share the rows' transforms and normalisation (same numbers).
    """
    from scipy import fft

    n_fft = _fast_len(n_times)
    freqs = np.fft.rfftfreq(n_fft, 1 / sfreq)
    spec = _complex_normal(rng, (n, freqs.size), dtype)
    spec[:, (freqs < f_lo) | (freqs > f_hi)] = 0
    x = fft.irfft(spec, n=n_fft, axis=-1, overwrite_x=True, workers=workers)[:, :n_times]
    return _unit_rows(x, workers)  # in place: the transform's output is ours


def pink_noise(rng, n_times, sfreq, *, n=1, f_min=0.5, exponent=1.0, dtype=np.float64, workers=1):
    """Unit-variance noise with power ∝ 1/f**exponent above ``f_min`` Hz.

    ``dtype=np.float32`` halves the cost (for the long EEG noise series); ``workers``
    threads share the rows' transforms and normalisation (same numbers).
    """
    from scipy import fft

    n_fft = _fast_len(n_times)
    freqs = np.fft.rfftfreq(n_fft, 1 / sfreq)
    gain = np.zeros_like(freqs)
    gain[freqs >= f_min] = freqs[freqs >= f_min] ** (-exponent / 2)
    spec = _complex_normal(rng, (n, freqs.size), dtype)
    spec *= gain.astype(dtype)
    x = fft.irfft(spec, n=n_fft, axis=-1, overwrite_x=True, workers=workers)[:, :n_times]
    return _unit_rows(x, workers)  # in place: the transform's output is ours


def canonical_hrf(sfreq: float, *, length_s: float = WINDOW_S, delay_s: float = 6.0) -> np.ndarray:
    """SPM's canonical double-gamma HRF sampled at ``sfreq``, cut to ``length_s`` seconds.

    Cut to the 16 s window by default so that every BOLD value is a function of
    the EEG inside the window a model sees (the ceiling is then reachable).
    ``delay_s`` is the response's gamma shape (SPM's 6: a peak at 5 s); the undershoot
    follows 10 s later. HRFs differ between people, regions and sites by a second or two.
    """
    from scipy.stats import gamma

    t = np.arange(0, length_s, 1 / sfreq)
    h = gamma.pdf(t, delay_s) - gamma.pdf(t, delay_s + 10.0) / 6.0
    return h / h.sum()


def double_gamma_hrf(
    sfreq: float,
    *,
    peak_s: float = 5.0,
    scale_s: float = 1.0,
    undershoot: float = 1 / 6,
    undershoot_delay_s: float = 10.0,
    length_s: float = WINDOW_S,
) -> np.ndarray:
    """A double-gamma HRF whose response peaks at ``peak_s`` s, normalised to sum 1.

    The response is a gamma density with scale ``scale_s`` and shape
    ``peak_s / scale_s + 1`` (its mode is ``peak_s``); the undershoot, a unit-scale
    gamma peaking ``undershoot_delay_s`` later, is subtracted with weight
    ``undershoot``. SPM's canonical HRF is ``peak_s=5, scale_s=1, undershoot=1/6``.
    """
    from scipy.stats import gamma

    t = np.arange(0, length_s, 1 / sfreq)
    h = gamma.pdf(t, peak_s / scale_s + 1, scale=scale_s) - undershoot * gamma.pdf(
        t, peak_s + undershoot_delay_s + 1
    )
    return h / h.sum()


def respiration_response(sfreq: float, *, length_s: float = 40.0) -> np.ndarray:
    """Birn et al. (2008)'s respiration response function (peak-normalised)."""
    t = np.arange(0, length_s, 1 / sfreq)
    h = 0.6 * t**2.1 * np.exp(-t / 1.6) - 0.0023 * t**3.54 * np.exp(-t / 4.25)
    return h / np.abs(h).max()


def cardiac_response(sfreq: float, *, length_s: float = 30.0) -> np.ndarray:
    """Chang et al. (2009)'s cardiac response function (peak-normalised)."""
    t = np.arange(0, length_s, 1 / sfreq)
    h = 0.6 * t**2.7 * np.exp(-t / 1.6) - 16 / np.sqrt(2 * np.pi * 9) * np.exp(
        -0.5 * (t - 12) ** 2 / 9
    )
    return h / np.abs(h).max()


@dataclass
class Traits:
    """What is random per subject (and per site): rhythms, topographies, coupling, HRFs.

    ``freq``/``amp``: each rhythm's centre frequency (Hz) and amplitude factor;
    ``shift``/``width``: its source's offset (m) from the named electrodes' centre and
    its spatial spread (m); ``gain``: each coupled ROI's coupling amplitude factor;
    ``weights``: its band weights; ``lag``: the lag (s) of its EEG drive; ``hrf``: ROI
    (or ``"global"``, ``"default"``) -> HRF parameters (:func:`double_gamma_hrf`);
    ``arousal``: how strongly arousal moves each rhythm's log amplitude.
    """

    freq: dict
    amp: dict
    shift: dict
    width: dict
    gain: dict
    weights: dict
    lag: dict
    hrf: dict
    arousal: dict = field(default_factory=dict)

    def hrf_kernel(self, label: str, sfreq: float, *, length_s: float = WINDOW_S):
        """The HRF of ``label`` (an ROI, ``"global"``; others use ``"default"``)."""
        return double_gamma_hrf(
            sfreq, length_s=length_s, **self.hrf.get(label, self.hrf["default"])
        )

    def summary(self) -> dict:
        """JSON-able record (rounded) for ``simulation.json``."""

        def rnd(x):
            if isinstance(x, dict):
                return {k: rnd(v) for k, v in x.items()}
            if isinstance(x, np.ndarray | list | tuple):
                return [rnd(v) for v in x]
            return round(float(x), 4)

        return {
            "alpha_hz": rnd(self.freq["alpha_occipital"]),
            "rhythm_hz": rnd(self.freq),
            "rhythm_amplitude": rnd(self.amp),
            "coupling_gain": rnd(self.gain),
            "coupling_weights": rnd(self.weights),
            "lag_s": rnd(self.lag),
            "hrf": rnd(self.hrf),
            "arousal_gain": rnd(self.arousal),
        }


def draw_traits(params: SimParams, subject: str) -> Traits:
    """The traits of one subject of one simulated site (same for all its sessions).

    Site-level draws use the seed only; subject-level draws the seed and the subject.
    The ``easy`` preset returns the fixed traits of the simple simulator: the
    :data:`RHYTHMS` table, unit gains, no lag, SPM's canonical HRF everywhere.
    """
    coupling = {k: (dict(v[0]), float(v[1])) for k, v in params.coupling.items()}
    canonical = {"peak_s": params.hrf_delay_s - 1.0, "scale_s": 1.0, "undershoot": 1 / 6}
    if params.easy:
        return Traits(
            freq={k: v[0] for k, v in RHYTHMS.items()},
            amp={k: 1.0 for k in RHYTHMS},
            shift={k: np.zeros(3) for k in RHYTHMS},
            width={k: 0.04 for k in RHYTHMS},
            gain={k: 1.0 for k in coupling},
            weights={k: w for k, (w, _) in coupling.items()},
            lag={k: 0.0 for k in coupling},
            hrf={"default": canonical},
            arousal={k: 0.0 for k in RHYTHMS},
        )
    site = np.random.default_rng([params.seed, 0x5173])
    site_peak = params.hrf_delay_s - 1.0 + site.normal(0, 0.3)
    site_iaf = site.uniform(9.3, 10.7)
    rng = np.random.default_rng([params.seed, int(subject), 0x7A17])
    iaf = float(np.clip(site_iaf + rng.normal(0, 0.9), 8.0, 12.0))
    freq = {
        "alpha_occipital": iaf,
        "alpha_parietal": float(np.clip(iaf + rng.normal(0.3, 0.3), 8.0, 12.5)),
        "theta_frontal": rng.uniform(5.0, 7.0),
        "beta_central": rng.uniform(17.0, 23.0),
        "gamma_temporal": rng.uniform(34.0, 42.0),
    }
    freq.update({k: v[0] for k, v in RHYTHMS.items() if k not in freq})
    amp = {k: float(rng.lognormal(0, 0.25)) for k in RHYTHMS}
    shift = {k: rng.normal(0, 0.012, 3) for k in RHYTHMS}
    width = {k: rng.uniform(0.035, 0.055) for k in RHYTHMS}
    gain = {k: float(np.clip(rng.lognormal(0, 0.2), 0.7, 1.35)) for k in coupling}
    weights = {
        k: {b: w * float(rng.lognormal(0, 0.3)) for b, w in bands.items()}
        for k, (bands, _) in coupling.items()
    }
    lag = {k: rng.uniform(0.0, 2.0) for k in coupling}
    subject_peak = rng.normal(0, 0.5)

    def hrf():
        return {
            "peak_s": float(np.clip(site_peak + subject_peak + rng.normal(0, 0.4), 4.0, 7.0)),
            "scale_s": rng.uniform(0.75, 1.1),
            "undershoot": rng.uniform(0.08, 0.35),
        }

    hrfs = {"default": hrf(), "global": hrf()}
    hrfs.update({k: hrf() for k in coupling if k != GLOBAL_SIGNAL})
    hrfs.update({k: hrf() for k in params.null_rois})
    arousal = {k: 0.0 for k in RHYTHMS}
    arousal["alpha_occipital"] = rng.uniform(0.25, 0.4)
    arousal["alpha_parietal"] = rng.uniform(0.2, 0.35)
    arousal["theta_frontal"] = -rng.uniform(0.15, 0.3)
    return Traits(freq, amp, shift, width, gain, weights, lag, hrfs, arousal)


def roi_labels() -> list[str]:
    """The DiFuMo-64 labels in atlas order."""
    return list(DIFUMO64_LABELS)


def slow_envelopes(rng, n_env, n_times, sfreq, *, n_latent=3, f_max=0.1, drive=None):
    """Log-normal amplitude envelopes driven by shared slow latent sources.

    Returns ``(n_env, n_times)`` envelopes with mean ≈ 1; their squares are the
    band-power features that drive the BOLD signal. ``drive`` (None or
    ``(n_env, n_times)``) is added to the log amplitudes (arousal).
    """
    latent = bandlimited_noise(rng, n_times, sfreq, 0.005, f_max, n=n_latent)
    own = bandlimited_noise(rng, n_times, sfreq, 0.005, f_max, n=n_env)
    mix = rng.normal(0, 1, (n_env, n_latent))
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    log_amp = 0.45 * (0.7 * mix @ latent + 0.7 * own)
    if drive is not None:
        log_amp = log_amp + drive
    env = np.exp(log_amp)
    return env / env.mean(axis=1, keepdims=True)


def ecg_beat(t: np.ndarray, rr: float, *, t_gain: float = 1.0) -> np.ndarray:
    """One ECG beat (V) with P, Q, R, S and T waves, ``t`` in s relative to the R-peak.

    ``t_gain`` scales (and widens) the T wave: in the scanner the blood flow in the
    aortic arch adds a magnetohydrodynamic voltage in the ST-T segment that makes the
    T wave two to four times larger (Gupta et al. 2008).
    """
    waves = (  # amplitude (V), centre (s), width (s)
        (0.12e-3, -0.20, 0.025),
        (-0.12e-3, -0.035, 0.010),
        (1.20e-3, 0.0, 0.011),
        (-0.30e-3, 0.035, 0.011),
        (0.30e-3 * t_gain, 0.26 * np.sqrt(rr), 0.045 * (1 + 0.25 * (t_gain - 1))),
    )
    return sum(a * np.exp(-0.5 * ((t - c) / w) ** 2) for a, c, w in waves)


def heartbeat_times(rng, t_start: float, t_stop: float, *, drive=None) -> np.ndarray:
    """R-peak times (s) with heart-rate variability (respiratory and Mayer waves).

    ``drive`` is None or ``(times_s, z)``: a slow unit-variance process that moves the
    heart rate by ±4 bpm per unit (the heart-rate fluctuation the BOLD signal follows
    through the cardiac response function).
    """
    mean_rr = 60.0 / rng.uniform(58, 78)
    resp_f, resp_phase = rng.uniform(0.2, 0.3), rng.uniform(0, 2 * np.pi)
    lf_phase = rng.uniform(0, 2 * np.pi)
    times = [t_start + rng.uniform(0, mean_rr)]
    while times[-1] < t_stop:
        t = times[-1]
        base = mean_rr
        if drive is not None:
            base = 60.0 / (60.0 / mean_rr + 4.0 * np.interp(t, drive[0], drive[1]))
        rr = (
            base
            + 0.04 * np.sin(2 * np.pi * resp_f * t + resp_phase)
            + 0.03 * np.sin(2 * np.pi * 0.1 * t + lf_phase)
            + rng.normal(0, 0.015)
        )
        times.append(t + max(rr, 0.4))
    return np.asarray(times)


def stimulus_times(params: SimParams, run: SimRun) -> np.ndarray:
    """Stimulus onsets (s from the start of the EEG recording) of one run; empty for rest.

    Intervals are drawn uniformly from ``task_design["isi_s"]`` with a random
    stream of their own (seeded by the seed, subject, session and task), so
    they do not shift any other random draw. The first stimulus comes one
    interval after the first volume; the last one ends (with its 0.6 s evoked
    response) before the last volume does.
    """
    design = params.task_design
    if design is None:
        return np.zeros(0)
    rng = np.random.default_rng(
        [params.seed, int(run.subject), int(run.session), sum(run.task.encode()), 0x57_1D]
    )
    lo, hi = design["isi_s"]
    start = round(params.lead_in_s * params.sfreq) / params.sfreq  # the first volume
    stop = start + params.n_volumes * params.tr - max(design["duration_s"], EVOKED_S)
    times, t = [], start
    while True:
        t += rng.uniform(lo, hi)
        if t > stop:
            return np.asarray(times)
        times.append(t)


def evoked_waveform(t: np.ndarray) -> np.ndarray:
    """Shape of the evoked response (peak |value| 1): N1 at 100 ms, P2 at 190 ms."""
    w = -np.exp(-0.5 * ((t - 0.100) / 0.020) ** 2) + 0.6 * np.exp(-0.5 * ((t - 0.190) / 0.035) ** 2)
    return w * ((t >= 0) & (t < EVOKED_S))


def evoked_topography(pos: np.ndarray) -> np.ndarray:
    """Weight of the evoked response at each electrode position: 1 at the peak electrodes."""
    peaks = standard_positions(EVOKED_ELECTRODES)

    def field_at(p):
        d = np.linalg.norm(p[:, None, :] - peaks[None], axis=2)
        return np.exp(-0.5 * (d / 0.04) ** 2).sum(axis=1)

    return field_at(pos) / field_at(peaks).max()


def chunks(n: int, size: int):
    """Consecutive slices of ``range(n)`` of at most ``size`` elements."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def zscore(x):
    return (x - x.mean()) / x.std()
