"""Synthetic window stores with a known answer: alpha power drives 'Cuneus', a null ROI."""

from __future__ import annotations

import numpy as np

from neurobolt import store as st

SFREQ, TR = 200.0, 2.1
CH = ["O1", "O2", "CZ", "FZ"]
ROIS = ["Cuneus", "Cerebellum Crus II"]


def bold_like_noise(rng, n_vol: int, *, tr: float = TR) -> np.ndarray:
    """Standardised BOLD-like noise: white noise convolved with a double-gamma HRF, then
    low-passed like the pipeline's targets (0.15 Hz, 5th-order zero-phase Butterworth)."""
    from scipy import signal, stats

    t = np.arange(0, 32, tr)
    hrf = stats.gamma.pdf(t, 6) - stats.gamma.pdf(t, 16) / 6
    x = signal.lfilter(hrf, [1.0], rng.normal(size=n_vol + 40))[40:]
    sos = signal.butter(5, 0.15, fs=1 / tr, output="sos")
    x = signal.sosfiltfilt(sos, x)
    return (x - x.mean()) / x.std()


def synthetic_store(path, seed, n_vol=90, *, ch_names=CH, tr=TR):
    """Write a window store whose 'Cuneus' target follows the occipital alpha power.

    EEG: white noise on ``CH`` plus a 10 Hz rhythm on O1/O2 with a slowly varying
    log-normal envelope. 'Cuneus' = the alpha power smoothed over 6 s, 2 s before each
    volume, plus noise (R with the power ~0.95). 'Cerebellum Crus II' = BOLD-like noise
    independent of the EEG (:func:`bold_like_noise`: HRF-convolved, low-passed at 0.15 Hz,
    lag-1 autocorrelation ≈ 0.8 as real ROI series), so its true R with any EEG-based
    prediction is 0, but test R over ``n`` volumes spreads far wider than ``1 / sqrt(n)``
    and neighbouring volumes across a split boundary are correlated, as in real data.
    ``ch_names`` (the first two carry the alpha rhythm) and ``tr`` make another site's
    cap and timing.
    """
    rng = np.random.default_rng(seed)
    first = int(17 * SFREQ)
    step = int(tr * SFREQ)
    markers = first + step * np.arange(n_vol)
    n_times = int(markers[-1] + 2 * SFREQ)
    t = np.arange(n_times) / SFREQ
    env = np.exp(np.convolve(rng.normal(0, 1, n_times), np.ones(2000) / 45, "same"))
    eeg = rng.normal(0, 5e-6, (len(ch_names), n_times))
    eeg[:2] += 20e-6 * env * np.sin(2 * np.pi * 10 * t)
    power = np.convolve(env**2, np.ones(1200) / 1200)[:n_times]  # 6 s smoothing, causal
    cuneus = power[markers - 400] + rng.normal(0, 0.3 * power.std(), n_vol)
    null = bold_like_noise(np.random.default_rng([seed, 1]), n_vol, tr=tr)
    targets = np.c_[(cuneus - cuneus.mean()) / cuneus.std(), null]
    align = st.align_volumes(
        markers,
        n_times=n_times,
        sfreq=SFREQ,
        n_bold_volumes=n_vol,
        kept_volumes=range(n_vol),
        tr=tr,
    )
    return st.write_store(
        path,
        eeg=eeg,
        sfreq=SFREQ,
        alignment=align,
        targets=targets,
        ch_names=list(ch_names),
        roi_names=ROIS,
        tr=tr,
    )


#: Scan names of four subjects, the first with two sessions.
SCANS = [
    "sub-01_ses-01_task-rest",
    "sub-01_ses-02_task-rest",
    "sub-02_task-rest",
    "sub-03_task-rest",
    "sub-04_task-rest",
]


def outputs(directory):
    """The output paths of one train + evaluate job in ``directory``."""
    return {
        k: directory / f
        for k, f in [
            ("model", "model.pt"),
            ("splits", "splits.tsv"),
            ("log", "log.tsv"),
            ("predictions", "predictions.tsv"),
            ("metrics", "metrics.json"),
        ]
    }
