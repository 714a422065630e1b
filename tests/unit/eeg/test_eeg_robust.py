"""Known-answer tests of the EEG stage on an independent generator (tests/helpers/eeg_generator.py).

The generator is not built the way the cleaner models the artifacts: the gradient
artifact is dG/dt of trapezoidal gradient waveforms plus cable vibration, mixed per
channel from three axes whose mix head motion changes continuously (the cleaner's
templates and basis set know nothing of axes); slices are placed at exact sub-sample
times (with a clock-rate error and per-slice jitter when unsynchronised); the BCG's
latency, gain and shape vary per channel and per beat; the ECG has an MR-enlarged T
wave taller than its R wave; the EEG holds an infraslow 0.03-0.3 Hz component.
"""

from __future__ import annotations

import mne
import numpy as np
import pytest
from eeg_generator import make_recording, score

from neurobolt.eeg.align import shift
from neurobolt.eeg.bcg import cardiac_events_from_eeg, detect_r_peaks, remove_bcg
from neurobolt.eeg.clean import clean_raw, resample
from neurobolt.eeg.gradient import remove_gradient


def _raw(rec):
    kinds = ["eeg"] * (len(rec["ch_names"]) - 1) + ["ecg"]
    raw = mne.io.RawArray(
        rec["data"], mne.create_info(rec["ch_names"], rec["sfreq"], kinds), verbose=False
    )
    raw.set_annotations(mne.Annotations(rec["onsets"] / rec["sfreq"], 0.0, "Response/R128"))
    return raw


def _clean(rec, **cfg):
    cfg = {"channels": rec["ch_names"][:-1], **cfg}
    clean, qc = clean_raw(
        _raw(rec), config=cfg, tr=rec["tr"], slice_timing=rec["slice_timing"], return_qc=True
    )
    truth = resample(rec["truth"], rec["sfreq"], 200.0)
    on = rec["onsets"] / rec["sfreq"] * 200
    span = (int(on[0]), int(on[-1] + rec["tr"] * 200))
    out = clean.get_data()
    return (
        score(out, truth, 200.0, 0.5, 40.0, span=span),
        score(out, truth, 200.0, 0.03, 0.3, span=span),
        qc,
    )


def test_fractional_shift_is_exact_for_band_limited_signals():
    t = np.arange(600.0)
    x = np.sin(2 * np.pi * 0.04 * t) + 0.5 * np.cos(2 * np.pi * 0.09 * t)
    y = shift(x[None], 0.37)[0]
    want = np.sin(2 * np.pi * 0.04 * (t - 0.37)) + 0.5 * np.cos(2 * np.pi * 0.09 * (t - 0.37))
    assert np.max(np.abs(y - want)[20:-20]) < 2e-3


def test_slow_sine_passes_gradient_removal():
    # A 0.1 Hz sine lost 86 % of its power through the old slice templates.
    rec = make_recording(n_channels=4, duration=60, motion=False, line_noise=False, seed=1)
    sf = rec["sfreq"]
    t = np.arange(rec["data"].shape[1]) / sf
    sine = 50e-6 * np.sin(2 * np.pi * 0.1 * t)
    x = rec["gradient"][:4] + sine
    y = remove_gradient(x, sf, rec["onsets"], n_slices=rec["n_slices"])
    lo = resample(y, sf, 20.0)
    ref = resample(np.broadcast_to(sine, y.shape), sf, 20.0)
    r, e = score(lo, ref, 20.0, 0.03, 0.3)
    assert r > 0.97 and e < 0.3, (r, e)


@pytest.mark.parametrize(
    "kw",
    [
        dict(protocol="continuous", sync=True, motion=True),
        dict(protocol="gap", sync=False, motion=True),
    ],
)
def test_whole_stage_on_independent_generator(kw):
    rec = make_recording(duration=90, seed=11, **kw)
    (r, e), (r_slow, _), qc = _clean(rec)
    assert r > 0.8 and e < 0.7, (r, e)
    assert r_slow > 0.9, r_slow
    assert qc["gradient"]["clocks"] == ("synchronised" if kw["sync"] else "unsynchronised")
    assert qc["bcg"]["removed"] and qc["bcg"]["events"] == "ecg"
    assert qc["bcg"]["locked_rms_after_uv"] < 0.5 * qc["bcg"]["locked_rms_before_uv"]


def test_r_peaks_with_enlarged_t_wave_within_10_ms():
    rec = make_recording(n_channels=2, duration=120, seed=4)
    ecg = rec["data"][-1] - rec["gradient"][-1]
    sf = rec["sfreq"]
    lo = resample(ecg, sf, 1000.0)
    peaks = detect_r_peaks(lo, 1000.0) * 5.0
    err = np.abs(rec["r_peaks"][:, None] - peaks[None, :]).min(axis=1) / sf
    assert np.mean(err <= 0.010) >= 0.97


def test_aligned_bcg_beats_obs_on_variable_bcg():
    rec = make_recording(duration=120, seed=3, line_noise=False)
    sf = 200.0
    tgt = resample(rec["truth"], rec["sfreq"], sf)
    x = resample(rec["truth"] + rec["bcg"][:-1], rec["sfreq"], sf)
    peaks = np.round(rec["r_peaks"] * sf / rec["sfreq"]).astype(int)
    r_al, e_al = score(remove_bcg(x, sf, peaks), tgt, sf, 0.5, 40.0)
    r_obs, e_obs = score(remove_bcg(x, sf, peaks, method="obs", n_components=4), tgt, sf, 0.5, 40)
    assert r_al > 0.9 and e_al < 0.45, (r_al, e_al)
    assert r_al > r_obs and e_al < e_obs


def test_cardiac_events_from_eeg_without_ecg():
    rec = make_recording(duration=90, seed=7, line_noise=False)
    sf = 200.0
    x = resample(rec["truth"] + rec["bcg"][:-1], rec["sfreq"], sf)
    ev = cardiac_events_from_eeg(x, sf)
    true = rec["r_peaks"] * sf / rec["sfreq"]
    # one event per beat at a fixed lag after the R-peak
    lag = np.array([ev[ev >= p][0] - p for p in true[:-2] if np.any(ev >= p)])
    assert abs(ev.size - true.size) <= 2
    assert np.mean(np.abs(lag - np.median(lag)) <= 0.02 * sf) >= 0.9


def test_bandpass_notch_and_completed_marker_are_recorded():
    rec = make_recording(n_channels=4, duration=60, seed=8)
    raw = _raw(rec)
    # drop one volume marker inside the scan: a gap of two TRs is completed
    ann = raw.annotations
    raw.set_annotations(ann[[i for i in range(len(ann)) if i != 10]])
    cfg = {"channels": rec["ch_names"][:-1], "bandpass": [0.1, 75.0], "notch": [50.0]}
    clean, qc = clean_raw(
        raw, config=cfg, tr=rec["tr"], slice_timing=rec["slice_timing"], return_qc=True
    )
    assert qc["completed_markers"] == 1 and qc["n_volumes"] == len(rec["onsets"])
    assert qc["conditioning"] == {"bandpass_hz": [0.1, 75.0], "notch_hz": [50.0]}
    from neurobolt.eeg.qc import band_power

    off, _ = clean_raw(
        _raw(rec),
        config={"channels": rec["ch_names"][:-1]},
        tr=rec["tr"],
        slice_timing=rec["slice_timing"],
        return_qc=True,
    )
    line_on = np.median(band_power(clean.get_data(), 200.0, [50.0]))
    line_off = np.median(band_power(off.get_data(), 200.0, [50.0]))
    assert line_on < 0.01 * line_off


def test_subject_page_qc_table_reads_the_qc_json():
    from neurobolt.report import eeg_qc_table

    qc = {
        "completed_markers": 2,
        "gradient": {
            "clocks": "synchronised",
            "slice_lines": [{"freq_hz": 16.0, "after_to_before": 0.001}],
        },
        "bcg": {
            "events": "ecg",
            "alpha_power_kept": 0.97,
            "locked_rms_before_uv": 30.0,
            "locked_rms_after_uv": 1.5,
        },
        "conditioning": {"bandpass_hz": None, "notch_hz": None},
    }
    table = dict(eeg_qc_table(qc).values.tolist())
    assert table["completed volume markers"] == 2
    assert table["alpha (8-12 Hz) power kept by the BCG step"] == 0.97
    assert table["cardiac-locked residual before / after (µV)"] == "30.00 / 1.50"
    assert table["slice harmonic 16.00 Hz: after / before"] == "0.001"


def test_slices_grouped_by_sampling_phase_only_when_it_changes_between_volumes():
    """A slice every 333.33 input samples (5 kHz, TR 2 s, 30 slices) samples the slices at
    three phases; with unsynchronised clocks each volume's slices are averaged per phase
    (10 slices each), with synchronised clocks (the same phases in every volume) all
    together, and a whole-sample slice period (45 ms) has a single phase."""
    from neurobolt.eeg.aas import GradientPlan

    onsets = np.arange(6) * 2000.0 + 100.0  # at the 1 kHz intermediate rate
    fractions = np.arange(30) / 30
    plan = GradientPlan.from_onsets(
        onsets, 1000.0, 14000, slice_fractions=fractions, clocks="unsynchronised"
    )
    plan.input_ratio = 5.0
    use = np.ones(30, dtype=bool)
    groups = plan._phase_classes(use)
    assert sorted(g.size for g in groups) == [10, 10, 10]
    assert all(np.all(np.diff(g) == 3) for g in groups)
    plan.synchronised = True
    assert [g.size for g in plan._phase_classes(use)] == [30]
    gap = GradientPlan.from_onsets(
        onsets * 0.975, 1000.0, 14000, slice_fractions=np.arange(39) * 0.045 / 1.95,
        clocks="unsynchronised",
    )  # fmt: skip
    gap.input_ratio = 5.0
    assert [g.size for g in gap._phase_classes(np.ones(39, dtype=bool))] == [39]


def test_shared_basis_follows_head_motion_better_than_the_residual_basis():
    # Gradient only (the BCG taken out of the data): the artifact's mix of the three axes
    # changes with head motion (random walk and jumps) and a slow drift, with a silent gap
    # and unsynchronised clocks. The cleaner knows nothing of axes or motion.
    # (measured: NRMSE 0.27 vs 0.36 here; 0.28 vs 0.31 with seed 11)
    rec = make_recording(duration=90, seed=12, protocol="gap", sync=False, motion=True)
    rec["data"][:-1] -= rec["bcg"][:-1]
    (r_sh, e_sh), (slow, _), qc = _clean(rec, gradient={"obs_basis": "shared"})
    (r_res, e_res), _, _ = _clean(rec, gradient={"obs_basis": "residual"})
    assert r_sh > 0.95 and e_sh < 0.30, (r_sh, e_sh)
    assert e_sh < e_res - 0.05, (e_sh, e_res)
    assert slow > 0.95, slow
    n_shapes = qc["gradient"]["obs_shapes"]  # chosen by cross-validation
    assert 1 <= n_shapes <= 6 and qc["gradient"]["obs_components_kept"] <= 2 * n_shapes


def test_basis_coefficients_the_data_do_not_support_are_shrunk_away():
    from neurobolt.eeg.aas import GradientPlan

    rng = np.random.default_rng(0)
    n_v, length = 200, 400
    plan = GradientPlan.from_onsets(np.arange(n_v) * length + 10.0, 1000.0, n_v * length + 20)
    plan.obs_highpass = 0.0
    basis = np.linalg.qr(rng.normal(size=(length, 2)))[0].T  # two orthonormal shapes
    plan.basis = (basis, basis)
    noise = rng.normal(size=(n_v, length))
    # component 0 varies from volume to volume (sd 5 per unit of noise), component 1 not
    coef = np.stack([rng.normal(0, 5.0, n_v), np.zeros(n_v)], axis=1)
    fit = plan._basis_fit(coef @ basis + noise)
    keep = plan.stats["obs_shrink"]
    assert keep[0] > 0.9 and keep[1] < 0.5, keep
    # the fit recovers the varying component to within the noise, and takes next to nothing
    # of the noise along the unsupported one
    err = fit - coef @ basis
    assert np.sqrt(np.mean(err**2)) < 0.12, np.sqrt(np.mean(err**2))
    pure = plan._basis_fit(noise)
    unshrunk = (noise @ basis.T) @ basis  # what the plain least-squares fit would remove
    assert np.mean(pure**2) < 0.25 * np.mean(unshrunk**2), (np.mean(pure**2), np.mean(unshrunk**2))


def test_adaptive_noise_cancellation_removes_a_filtered_copy_of_the_estimate():
    from neurobolt.eeg.anc import adaptive_cancel

    rng = np.random.default_rng(2)
    rate, n = 1000.0, 60_000
    t = np.arange(n) / rate
    # an artifact estimate with slice harmonics (24 Hz and up, changing amplitude)
    art = sum(np.sin(2 * np.pi * 24 * k * t + k) / k for k in range(1, 12))
    art *= 1 + 0.3 * np.sin(2 * np.pi * t / 40)
    # what the templates left: 10 % of the estimate, 1 ms late, with another gain above 60 Hz
    left = 0.1 * np.roll(art, 1) + 0.03 * np.roll(art, 2)
    eeg = np.cumsum(rng.normal(size=n)) * 0.02  # a slow (1/f^2) EEG, far above the residue
    eeg += 0.3 * np.sin(2 * np.pi * 10 * t)
    out = adaptive_cancel(eeg + left, art, rate, highpass=20.0)
    before = np.sqrt(np.mean(left**2))
    after = np.sqrt(np.mean((out - eeg) ** 2))
    assert after < 0.1 * before, (after, before)
    slow = slice(1000, n - 1000)
    assert np.corrcoef(out[slow], eeg[slow])[0, 1] > 0.999
    # without a residue nothing is removed
    same = adaptive_cancel(eeg, art, rate, highpass=20.0)
    assert np.sqrt(np.mean((same - eeg) ** 2)) < 0.02 * np.std(eeg)


def test_templates_do_not_subtract_averaged_slow_eeg():
    from neurobolt.eeg.aas import GradientPlan

    rng = np.random.default_rng(3)
    rate, n_v, length = 1000.0, 60, 500
    t = np.arange(length) / rate
    art = 50 * sum(np.sin(2 * np.pi * 32 * k * t) / k for k in range(1, 8))  # slice harmonics
    from scipy import signal as sps

    white = rng.normal(size=n_v * length + 20)
    eeg = 20 * sps.lfilter(*sps.butter(1, 3.0, fs=rate), white) / 0.08 + white  # mostly slow
    x = eeg.copy()
    for v in range(n_v):
        x[10 + v * length : 10 + (v + 1) * length] += art
    errors = {}
    for shrink in (True, False):
        plan = GradientPlan.from_onsets(np.arange(n_v) * length + 10.0, rate, x.size, window=20)
        plan.shrink = shrink
        y = plan.correct(x)
        errors[shrink] = np.sqrt(np.mean((y - eeg)[10 : 10 + n_v * length] ** 2))
    assert errors[True] < 0.6 * errors[False], errors


def test_bcg_components_present_in_few_beats_are_shrunk_away():
    from neurobolt.eeg.bcg import _components

    rng = np.random.default_rng(4)
    n_beats, n_cols = 120, 300
    shapes = np.linalg.qr(rng.normal(size=(n_cols, 2)))[0].T
    dense = rng.normal(0, 6.0, n_beats)  # a shape change in every beat
    sparse = np.zeros(n_beats)
    sparse[[7, 50, 90]] = 6.0 * np.sqrt(n_beats / 3)  # same energy, three beats (blinks)
    mat = np.outer(dense, shapes[0]) + np.outer(sparse, shapes[1])
    mat += rng.normal(size=mat.shape)
    comps, keep = _components(mat, 4, 3.0, shrink=True)
    which = np.argmax(np.abs(comps @ shapes.T), axis=1)  # 0: dense, 1: sparse
    assert set(which[:2]) == {0, 1}
    factor = {int(w): k for w, k in zip(which, keep, strict=False)}
    assert factor[0] > 0.8 and factor[1] < 0.5, factor  # by eigenvalue both would be ~0.9


def test_number_of_shapes_is_what_predicts_held_out_slices():
    from neurobolt.eeg.aas import GradientPlan

    rng = np.random.default_rng(5)
    rate, n_v, n_s, ls = 1000.0, 80, 8, 50
    length = n_s * ls
    t = np.arange(ls) / rate
    # three slice waveforms (the gradient axes), the same in every slice
    axes = np.stack([np.sin(2 * np.pi * f * t) * np.hanning(ls) for f in (60, 110, 170)])
    axes = np.tile(axes, (1, n_s))
    chosen = {}
    for moving in (0, 2):
        data = []
        for _channel in range(8):
            mix = rng.normal(0, 1, (1, 3)) + np.zeros((n_v, 3))
            # head motion changes the mix of the first `moving` axes from volume to volume
            mix[:, :moving] += rng.normal(0, 0.3, (n_v, moving))
            x = rng.normal(0, 0.05, n_v * length + 20)
            x[10 : 10 + n_v * length] += (mix @ axes).ravel()
            data.append(x)
        data = np.asarray(data)
        onsets = np.arange(n_v) * length + 10.0
        fractions = np.arange(n_s) / n_s
        plan = GradientPlan.from_onsets(onsets, rate, data.shape[1], slice_fractions=fractions)
        plan.obs_highpass = 20.0
        plan.fit_basis(data[:4], channels=data)
        chosen[moving] = plan.stats["obs_shapes"]
    assert chosen[0] <= 1 and chosen[2] >= 2, chosen


def _ringing_scan(*, ringing: bool, seed: int = 6):
    """Continuous acquisition whose slice artifact rings on through a resonance.

    The cable's vibration (a 30 Hz resonance, Q 2) carries each slice's artifact into the
    next slice, from the last volume into the time after the scan, and the first volume
    starts without it: no volume template holds the scan's two edges. Without ``ringing``
    the artifact ends inside its own slice.
    """
    from scipy import signal as sps

    rng = np.random.default_rng(seed)
    rate, n_v, n_s, ls, lead = 1000.0, 40, 8, 60, 600
    length = n_s * ls
    n = lead + n_v * length + lead
    drive = np.zeros(n)
    pulse = np.zeros(ls)
    pulse[5:15], pulse[25:35] = 1.0, -1.0  # one slice's gradient lobes (dG/dt)
    for v in range(n_v):
        for s in range(n_s):
            start = lead + v * length + s * ls
            drive[start : start + ls] += 300.0 * pulse
    art = sps.lfilter(*sps.iirpeak(30.0, 2.0, fs=rate), drive) if ringing else drive
    eeg = rng.normal(0, 5.0, n)
    onsets = lead + np.arange(n_v) * length + 0.0
    return rate, onsets, length, n_s, eeg, art


@pytest.mark.parametrize("ringing", [True, False])
def test_scan_edges_ringing_is_removed_where_no_template_has_it(ringing):
    from neurobolt.eeg.aas import GradientPlan

    rate, onsets, length, n_s, eeg, art = _ringing_scan(ringing=ringing)
    lo, hi = int(onsets[0]), int(onsets[-1] + length)
    err = {}
    for edges in (True, False):
        plan = GradientPlan.from_onsets(
            onsets, rate, eeg.size, slice_fractions=np.arange(n_s) / n_s, window=20
        )
        plan.scan_edges = edges
        y = plan.correct(eeg + art)
        e = y - eeg
        err[edges] = [
            float(np.sqrt(np.mean(e[a:b] ** 2))) for a, b in ((lo, lo + 60), (hi, hi + 100))
        ]
        if edges:
            stats = plan.stats["scan_edge_samples"][-1]  # (after, before) for this channel
    if ringing:
        # the first 60 ms of the scan and the 100 ms after it: the residue was many times
        # the EEG (sd 5) and is now within it
        assert err[False][0] > 20 and err[False][1] > 20, err
        assert err[True][0] < 7 and err[True][1] < 7, err
        assert stats[0] > 0
    else:
        # nothing rings on: nothing found, the data outside the scan is left as it was
        assert stats == [0, 0], stats
        assert err[True] == err[False]


def test_volume_slice_fit_keeps_common_changes_and_shrinks_noise_by_half_at_most():
    from neurobolt.eeg.aas import GradientPlan

    rng = np.random.default_rng(7)
    rate, n_v, n_s, ls = 1000.0, 60, 16, 50
    length = n_s * ls
    plan = GradientPlan.from_onsets(
        np.arange(n_v) * length + 10.0,
        rate,
        n_v * length + 20,
        slice_fractions=np.arange(n_s) / n_s,
    )
    t = np.arange(ls) / rate
    wave = np.sin(2 * np.pi * 40 * t) * np.hanning(ls)
    common = rng.normal(0, 1, (n_v, 1)) * wave[None, :]  # each volume's own slice change
    noise = rng.normal(0, 1, (n_v, length))
    fit = plan._volume_slice_fit(np.tile(common, (1, n_s)) + noise)
    want = np.tile(common - common.mean(axis=1, keepdims=True), (1, n_s))
    # the change is kept (its error is the averaged noise, sd 1/4)
    assert np.sqrt(np.mean((fit - want) ** 2)) < 0.3
    # pure noise: the unshrunk mean slice would take 1/16 of its power; at most half of
    # that mean is subtracted (a quarter of its power)
    pure = plan._volume_slice_fit(noise)
    plan.shrink = False
    plain = plan._volume_slice_fit(noise)
    ratio = np.mean(pure**2) / np.mean(plain**2)
    assert 0.2 < ratio < 0.3, ratio


def test_gap_with_drift_unsynchronised_meets_the_acceptance():
    # The case that failed at the last landing (r 0.885, NRMSE 0.48): a silent gap, a slow
    # drift, unsynchronised clocks, the per-channel per-beat BCG. The artifact shapes were
    # taking the BCG that averaging over 60 volumes leaves in weakly coupled channels; the
    # second gradient pass now finds them again without the BCG estimate.
    # (measured: r 0.92, NRMSE 0.40)
    rec = make_recording(duration=120, n_channels=8, seed=22, protocol="gap", sync=False)
    (r, e), (r_slow, _), _qc = _clean(rec)
    assert r > 0.9 and e < 0.45, (r, e)
    assert r_slow > 0.9, r_slow


def test_volume_slice_fit_removes_the_level_steps_of_interleaved_phases_only():
    from neurobolt.eeg.aas import GradientPlan

    rng = np.random.default_rng(9)
    rate, n_v, n_s, length = 1000.0, 50, 30, 2000  # a slice every 333.33 input samples
    n = n_v * length + 20
    plan = GradientPlan.from_onsets(
        np.arange(n_v) * length + 10.0,
        rate,
        n,
        slice_fractions=np.arange(n_s) / n_s,
        clocks="unsynchronised",
    )
    plan.input_ratio = 5.0
    groups = plan._phase_classes(plan._slice_geometry()[4])
    assert len(groups) == 3 and all(np.all(np.diff(g) == 3) for g in groups)
    # the aliased artifact's mean differs between the three sampling phases, and by how
    # much changes from volume to volume (each volume's own trigger jitter)
    steps = rng.normal(0, 1.0, (n_v, 3))
    steps -= steps.mean(axis=1, keepdims=True)
    seg = np.repeat(np.arange(plan.seg_edges.size - 1), np.diff(plan.seg_edges))
    pattern = steps[:, seg % 3]
    length = plan.length
    slow = np.cumsum(rng.normal(0, 0.05, n_v * length)).reshape(n_v, length)
    slow -= slow.mean(axis=1, keepdims=True)  # slow EEG (its volume mean is kept anyway)
    fit = plan._volume_slice_fit(pattern + slow)
    err = np.sqrt(np.mean((fit - pattern) ** 2)) / np.sqrt(np.mean(pattern**2))
    assert err < 0.2, err
    # slow EEG alone: the interleaved groups see the same level, almost nothing is taken
    taken = plan._volume_slice_fit(slow)
    assert np.sqrt(np.mean(taken**2)) < 0.1 * np.sqrt(np.mean(slow**2))
    # groups of neighbouring slices (phases drifting slowly) keep no level of their own
    plan.input_ratio = 333.01 / (plan.stats["volume_period_samples"] / n_s)  # 333.01 samples
    drifting = plan._phase_classes(plan._slice_geometry()[4])
    assert len(drifting) > 1 and np.all(np.diff(drifting[0]) == 1)
    levels = plan._volume_slice_fit(slow)
    assert np.sqrt(np.mean(levels**2)) < 0.1 * np.sqrt(np.mean(slow**2))
