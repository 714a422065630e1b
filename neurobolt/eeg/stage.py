"""The artifact part of the ``clean_eeg`` stage, on arrays.

:func:`clean_array` takes the kept EEG channels (and the ECG) at the recording's rate
and returns the cleaned EEG at the output rate with its QC record:

1. every channel is low-passed and decimated to an intermediate rate (1 kHz from
   5 kHz: pass band to 100 Hz, nothing aliased, 100 dB), at which the gradient
   artifact is band-limited, so exact fractional shifts are cheap and every later step
   costs a fifth; the filtering is linear and time-invariant, so the artifact stays a
   repetition of delayed templates;
2. the gradient artifact is removed (:class:`neurobolt.eeg.aas.GradientPlan`);
3. R-peaks are found on the ECG (or, when it is missing or unusable, cardiac events
   on the BCG itself, :func:`neurobolt.eeg.bcg.cardiac_events_from_eeg`);
4. optional band-pass and notch (``eeg.bandpass``, ``eeg.notch``), then resampling to
   the output rate;
5. the BCG is removed (:func:`neurobolt.eeg.bcg.remove_bcg`);
6. with ``bcg.refine_gradient`` (default), the gradient is removed a second time from
   the EEG minus that BCG estimate, so the gradient templates do not carry averaged
   BCG (:func:`_gradient_without_bcg`).
"""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import signal as sps

from .aas import GradientPlan
from .bcg import cardiac_events_from_eeg, detect_r_peaks, remove_bcg
from .qc import alpha_ratio, background, band_power, locked_rms, median
from .resample import lowpass_taps

logger = logging.getLogger("neurobolt.eeg.stage")

__all__ = ["clean_array", "intermediate_rate"]


def intermediate_rate(sfreq: float, sfreq_out: float) -> tuple[float, list]:
    """The rate at which the gradient is removed, and the decimation stages to it.

    An integer divisor ``d`` of the decimation such that ``sfreq / d >= 4 * sfreq_out``
    (the largest); the stage passes ``max(0.1 * rate, 0.45 * sfreq_out)`` Hz flat and
    removes 100 dB from half the new rate. Without one: the input rate, no stage.
    """
    ratio = Fraction(sfreq_out / sfreq).limit_denominator(10000)
    if ratio.numerator != 1:
        return sfreq, []
    cands = [d for d in range(2, ratio.denominator + 1) if ratio.denominator % d == 0]
    cands = [d for d in cands if sfreq / d >= 4 * sfreq_out]
    if not cands:
        return sfreq, []
    d = max(cands)
    rate = sfreq / d
    f_pass = max(0.1 * rate, 0.45 * sfreq_out)
    taps = lowpass_taps(sfreq, f_pass, 0.5 * rate, atten=100.0)
    return rate, [(1, d, taps)]


def _condition(y: np.ndarray, rate: float, bandpass, notch) -> np.ndarray:
    if bandpass:
        lo, hi = float(bandpass[0]), float(bandpass[1])
        sos = sps.butter(4, [lo, hi], btype="bandpass", fs=rate, output="sos")
        y = sps.sosfiltfilt(sos, y, axis=-1)
    for f0 in notch or []:
        f = float(f0)
        while f < 0.45 * rate and (not bandpass or f <= float(bandpass[1]) + 5):
            b, a = sps.iirnotch(f, 30.0, fs=rate)
            y = sps.filtfilt(b, a, y, axis=-1)
            f += float(f0)
    return y


def _gradient_without_bcg(
    plan, raw_eeg, bcg_out, *, refs, rate, sfreq_out, cfg, apply_stages, out_stages_for, n_out
):
    """Second gradient pass with the first pass's BCG estimate taken out of the data.

    A volume's gradient template is the mean of other volumes, so it carries their
    non-artifact signal divided by the square root of their number; the BCG, several
    times stronger than the EEG and not locked to the volumes, dominates it. Every
    volume then loses the same few microvolts of averaged BCG (a residue at the volume
    frequency and its harmonics, below 5 Hz). Here the BCG estimate (``bcg_out``, at
    the output rate) is brought to the intermediate rate and subtracted from the
    uncorrected EEG; the gradient is removed again from what is left, so the templates
    average only EEG, and the result, conditioned and resampled, is the cleaned EEG
    (the BCG estimate is not added back: its removal is the BCG step's). The shared
    artifact shapes are found again from that EEG too: each channel's mean volume
    carries the BCG averaged over the volumes, strongest where a channel couples weakly
    to the gradients, and every volume's fitted shapes would subtract its slow part.
    """
    ratio = Fraction(rate / sfreq_out).limit_denominator(1000)
    bcg = sps.resample_poly(bcg_out, ratio.numerator, ratio.denominator, axis=1)
    n = raw_eeg.shape[1]
    if bcg.shape[1] < n:
        bcg = np.pad(bcg, ((0, 0), (0, n - bcg.shape[1])))
    y = np.empty(raw_eeg.shape)
    for i in range(raw_eeg.shape[0]):
        y[i] = raw_eeg[i].astype(np.float64) - bcg[i, :n]
    # the shapes again, from the EEG without the BCG estimate (see above)
    plan.fit_basis(y[refs], channels=y)
    for i in range(raw_eeg.shape[0]):
        y[i] = plan.correct(y[i])
    del bcg
    y = _condition(y, rate, cfg["bandpass"], cfg["notch"])
    out = apply_stages(y, out_stages_for(rate))
    if out.shape[1] < n_out:
        out = np.pad(out, ((0, 0), (0, n_out - out.shape[1])))
    return np.ascontiguousarray(out[:, :n_out])


def clean_array(
    src,
    n_eeg: int,
    has_ecg: bool,
    *,
    sfreq: float,
    sfreq_out: float,
    onsets: np.ndarray,
    tr: float | None,
    slice_fractions,
    cfg: dict[str, Any],
    apply_stages,
    out_stages_for,
    skip_without_ecg: bool = False,
    keep: dict | None = None,
) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """Clean ``n_eeg`` channels read with ``src(i)`` (the ECG is ``src(n_eeg)``).

    Returns the cleaned EEG at ``sfreq_out`` (n_eeg, n_out), the QC record and the
    cardiac events at ``sfreq_out`` (None without). A ``keep`` dictionary receives
    ``after_gradient``: the EEG after gradient removal and before BCG removal, at
    ``sfreq_out`` (for the QC signals; nothing else changes).
    """
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    g = cfg["gradient"]
    rate, dec = intermediate_rate(sfreq, sfreq_out)
    q = sfreq / rate
    n_ch = n_eeg + int(has_ecg)
    first = apply_stages(src(0), dec)
    data = np.empty((n_ch, first.size))
    data[0] = first
    del first
    for i in range(1, n_ch):
        data[i] = apply_stages(src(i), dec)
    timing["decimate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    steps = np.diff(onsets)
    clocks = str(g["clocks"])
    if clocks == "auto":
        clocks = "synchronised" if np.ptp(steps) == 0 else "unsynchronised"
    plan = GradientPlan.from_onsets(
        onsets / q,
        rate,
        data.shape[1],
        slice_fractions=slice_fractions if g["slice_templates"] else None,
        window=int(g["window"]),
        select=str(g["select"]),
        obs_components=int(g["obs_components"]),
        clocks=clocks,
    )
    plan.obs_highpass = float(g["obs_highpass"])
    plan.obs_basis = str(g["obs_basis"])
    plan.anc = bool(g["anc"])
    plan.scan_edges = bool(g["scan_edges"])
    plan.input_ratio = float(q)
    scan = slice(int(plan.starts[0]), int(min(plan.starts[-1] + plan.length, data.shape[1])))
    power = np.mean(np.diff(data[:n_eeg, scan], axis=1) ** 2, axis=1)
    refs = np.argsort(power)[::-1][: int(min(g["n_ref"], n_eeg))]
    if g["align"] and str(g["clocks"]) == "auto" and clocks == "synchronised":
        if plan.triggers_jitter(data[refs]):
            clocks = "unsynchronised (artifact jitters against regular markers)"
    if g["align"]:
        plan.estimate_delays(data[refs])
    plan.fit_basis(data[refs], channels=data[:n_eeg])
    timing["plan"] = time.perf_counter() - t0

    # slice / volume lines before cleaning, at the intermediate rate
    n_slices = len(slice_fractions) if slice_fractions is not None else 0
    vol_f = rate / plan.stats["volume_period_samples"]
    slice_f = n_slices * vol_f if n_slices else None
    slice_freqs = (
        [slice_f * k for k in range(1, 7) if slice_f * k < 0.45 * sfreq_out] if slice_f else []
    )
    vol_freqs = [vol_f * k for k in range(1, 7)]
    before_lines = band_power(data[:n_eeg, scan], rate, slice_freqs + vol_freqs)

    t0 = time.perf_counter()
    bcg_cfg = cfg["bcg"]
    # The uncorrected EEG, kept for the second gradient pass (bcg.refine_gradient).
    raw_eeg = data[:n_eeg].astype(np.float32) if bcg_cfg["refine_gradient"] else None
    for i in range(n_ch):
        data[i] = plan.correct(data[i])
    timing["gradient"] = time.perf_counter() - t0

    # Heartbeats.
    t0 = time.perf_counter()
    events = None
    source = "none"
    if has_ecg:
        try:
            events = detect_r_peaks(data[n_eeg], rate)
            source = "ecg"
        except ValueError as err:
            logger.warning("no usable heartbeats in the ECG (%s)", err)
    if events is None and bcg_cfg["fallback"] == "eeg" and (has_ecg or not skip_without_ecg):
        try:
            events = cardiac_events_from_eeg(data[:n_eeg], rate)
            source = "eeg"
        except ValueError as err:
            logger.warning("no cardiac events in the EEG either (%s)", err)
    timing["rpeaks"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    eeg = _condition(data[:n_eeg], rate, cfg["bandpass"], cfg["notch"])
    del data
    out = apply_stages(eeg, out_stages_for(rate))
    del eeg
    timing["resample"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_out = out.shape[1]
    scan_out = slice(
        int(round(scan.start * sfreq_out / rate)), int(round(scan.stop * sfreq_out / rate))
    )
    bcg_qc: dict[str, Any] = {"removed": False, "events": source}
    peaks_out = None
    if events is not None:
        peaks_out = np.round(events * sfreq_out / rate).astype(np.int64)
        peaks_out = peaks_out[(peaks_out >= 0) & (peaks_out < n_out)]
        hr = 60.0 / (np.median(np.diff(events)) / rate)
        bcg_options = {
            "method": str(bcg_cfg["method"]),
            "n_components": int(bcg_cfg["n_components"]),
            "joint": bool(bcg_cfg["joint"]),
            "snr_threshold": float(bcg_cfg["snr_threshold"]),
            "window": int(bcg_cfg["window"]),
            "max_shift": float(bcg_cfg["max_shift"]),
        }
        before = out.copy()
        if keep is not None:
            keep["after_gradient"] = before
        remove_bcg(out, sfreq_out, peaks_out, copy=False, **bcg_options)
        if raw_eeg is not None:
            t1 = time.perf_counter()
            out_prev = out
            out = _gradient_without_bcg(
                plan,
                raw_eeg,
                before - out,
                refs=refs,
                rate=rate,
                sfreq_out=sfreq_out,
                cfg=cfg,
                apply_stages=apply_stages,
                out_stages_for=out_stages_for,
                n_out=n_out,
            )
            timing["gradient_refined"] = time.perf_counter() - t1
            # ... and the BCG step again, on the EEG now free of that residue.
            out += before - out_prev
            del out_prev
            remove_bcg(out, sfreq_out, peaks_out, copy=False, **bcg_options)
        hr_f = hr / 60.0
        bcg_qc = {
            "removed": True,
            "events": source,
            "heart_rate_bpm": float(hr),
            "n_beats": int(peaks_out.size),
            "locked_rms_before_uv": locked_rms(before, peaks_out, sfreq_out),
            "locked_rms_after_uv": locked_rms(out, peaks_out, sfreq_out),
            "cardiac_freqs_hz": [hr_f, 2 * hr_f],
            "cardiac_power_before_uv2": [
                median(v) * 1e12
                for v in band_power(before[:, scan_out], sfreq_out, [hr_f, 2 * hr_f]).T
            ],
            "cardiac_power_after_uv2": [
                median(v) * 1e12
                for v in band_power(out[:, scan_out], sfreq_out, [hr_f, 2 * hr_f]).T
            ],
            "alpha_power_kept": alpha_ratio(out[:, scan_out], before[:, scan_out], sfreq_out),
        }
        del before
    elif keep is not None:  # no BCG step: the gradient-cleaned EEG is the output
        keep["after_gradient"] = out
    timing["bcg"] = time.perf_counter() - t0

    after_lines = band_power(out[:, scan_out], sfreq_out, slice_freqs + vol_freqs)
    backgr = background(out[:, scan_out], sfreq_out, slice_freqs + vol_freqs)

    def lines(freqs, offset):
        rows = []
        for j, f in enumerate(freqs):
            k = offset + j
            rows.append(
                {
                    "freq_hz": float(f),
                    "before_uv2": median(before_lines[:, k]) * 1e12,
                    "after_uv2": median(after_lines[:, k]) * 1e12,
                    "after_to_before": median(after_lines[:, k] / before_lines[:, k]),
                    "after_to_background": median(after_lines[:, k] / backgr[:, k]),
                }
            )
        return rows

    qc = {
        "n_slices": n_slices,
        "intermediate_rate_hz": rate,
        "gradient": {
            "method": "aligned local template + gain + OBS (neurobolt.eeg.aas)",
            "clocks": clocks,
            "select": plan.select,
            "reference_channels": [int(r) for r in refs],
            **plan.stats,
            "slice_lines": lines(slice_freqs, 0),
            "volume_lines": lines(vol_freqs, len(slice_freqs)),
        },
        "bcg": bcg_qc,
        "conditioning": {"bandpass_hz": cfg["bandpass"], "notch_hz": cfg["notch"]},
        "timing": timing,
    }
    return out, qc, peaks_out
