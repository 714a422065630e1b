"""Calibration of the per-scan and group tests of R on autocorrelated nulls.

The null series are NOT what the tests assume: the per-scan test's variance formula is
exact for stationary Gaussian series of known autocorrelation, while these are 1/f
noise and HRF-convolved noise, each low-passed like the pipeline's targets (0.15 Hz,
5th-order zero-phase Butterworth at TR 2.1 s; lag-1 autocorrelation ≈ 0.8, as real ROI
series), cut from longer series at random positions, with prediction and target of
different spectra. A naive Pearson test on the same draws must fail the check, so the
check can fail.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import signal
from scipy import stats as sps

from neurobolt import evaluate as ev
from neurobolt import stats

TR = 2.1
LONG = 640


def _lowpass(x):
    return signal.sosfiltfilt(signal.butter(5, 0.15, fs=1 / TR, output="sos"), x, axis=-1)


def _pink(rng, k, beta=1.0):
    f = np.fft.rfftfreq(LONG, TR)
    amp = np.r_[0.0, f[1:] ** (-beta / 2)]
    z = rng.normal(size=(k, f.size)) + 1j * rng.normal(size=(k, f.size))
    return _lowpass(np.fft.irfft(z * amp, LONG, axis=-1))


def _hrf_noise(rng, k):
    t = np.arange(0, 32, TR)
    h = sps.gamma.pdf(t, 6) - sps.gamma.pdf(t, 16) / 6
    x = signal.lfilter(h, [1.0], rng.normal(size=(k, LONG + 20)), axis=-1)[:, 20:]
    return _lowpass(x)


def _cut(x, n, rng):
    start = rng.integers(0, x.shape[1] - n + 1, x.shape[0])
    return np.take_along_axis(x, start[:, None] + np.arange(n), axis=1)


def _lag1(x):
    x = x - x.mean(1, keepdims=True)
    return float(np.mean(np.sum(x[:, 1:] * x[:, :-1], 1) / np.sum(x * x, 1)))


def _within(rate, alpha, draws, k=2.5):
    return abs(rate - alpha) <= k * np.sqrt(alpha * (1 - alpha) / draws)


@pytest.mark.parametrize("n", [34, 57, 115])
def test_scan_test_false_positive_rate(n):
    rng = np.random.default_rng(n)
    draws = 600
    pred = _cut(_pink(rng, draws), n, rng)  # 1/f-like prediction ...
    true = _cut(_hrf_noise(rng, draws), n, rng)  # ... against an HRF-smooth target
    assert 0.7 < _lag1(_cut(_pink(rng, 200), 115, rng)) < 0.9
    assert 0.7 < _lag1(_cut(_hrf_noise(rng, 200), 115, rng)) < 0.9
    p = np.array([ev.permutation_p(a, b, tr=TR) for a, b in zip(pred, true, strict=True)])
    assert not np.isnan(p).any()  # defined at every length
    assert _within(np.mean(p < 0.05), 0.05, draws)
    naive = np.array([sps.pearsonr(a, b).pvalue / 2 for a, b in zip(pred, true, strict=True)])
    naive_r = np.array([stats.pearson(a, b) for a, b in zip(pred, true, strict=True)])
    naive = np.where(naive_r > 0, naive, 1 - naive)
    assert not _within(np.mean(naive < 0.05), 0.05, draws)  # the check has teeth


def test_scan_test_power():
    """A prediction with R ≈ 0.6 to its target over 575 volumes is detected."""
    rng = np.random.default_rng(7)
    draws, n = 100, 575
    true = _cut(_hrf_noise(rng, draws), n, rng)
    noise = _cut(_pink(rng, draws), n, rng)
    true /= true.std(1, keepdims=True)
    noise /= noise.std(1, keepdims=True)
    pred = 0.6 * true + 0.8 * noise
    r = np.array([stats.pearson(a, b) for a, b in zip(pred, true, strict=True)])
    assert 0.5 < r.mean() < 0.7
    p = np.array([ev.permutation_p(a, b, tr=TR) for a, b in zip(pred, true, strict=True)])
    assert np.mean(p < 0.05) >= 0.8


def test_group_test_false_positive_rate_and_power():
    """Six subjects (one with two sessions), 57 test volumes each, independent series."""
    rng = np.random.default_rng(3)
    draws, n = 300, 57
    subjects = ["a", "b", "c", "d", "e", "e"]
    null_p, coupled_p = [], []
    for _ in range(draws):
        true = list(_cut(_hrf_noise(rng, 6), n, rng))
        pred = list(_cut(_pink(rng, 6), n, rng))
        null_p.append(stats.group_test(pred, true, subjects, n_permutations=200, seed=0)["p_group"])
        if len(coupled_p) < 30:
            mixed = [t / t.std() + 2.0 * p / p.std() for t, p in zip(true, pred, strict=True)]
            coupled_p.append(stats.group_test(mixed, true, subjects, n_permutations=200)["p_group"])
    null_p = np.array(null_p)
    assert not np.isnan(null_p).any()
    assert _within(np.mean(null_p < 0.05), 0.05, draws)
    assert np.mean(np.array(coupled_p) < 0.05) >= 0.8  # per-scan R ≈ 0.45


def test_group_test_figures_and_n_a():
    rng = np.random.default_rng(0)
    true = [rng.normal(size=40) for _ in range(4)]
    pred = [t + rng.normal(size=40) for t in true]
    res = stats.group_test(pred, true, ["a", "b", "c", "c"])
    assert (res["n_subjects"], res["n_scans"]) == (3, 4)
    assert np.isnan(res["p_group"])  # 3! = 6 permutations cannot resolve .05
    r = [stats.pearson(p, t) for p, t in zip(pred, true, strict=True)]
    zs = [np.arctanh(r[0]), np.arctanh(r[1]), np.mean(np.arctanh(r[2:]))]
    assert res["mean_r"] == pytest.approx(np.tanh(np.mean(zs)))
    assert res["ci_low"] < res["mean_r"] < res["ci_high"]
    one = stats.group_test(pred[:1], true[:1], ["a"])
    assert np.isnan(one["sd"]) and np.isnan(one["ci_low"]) and np.isnan(one["p_group"])
    four = stats.group_test(pred, true, ["a", "b", "c", "d"])  # 24 permutations, enumerated
    assert four["p_group"] == pytest.approx(1 / 24)


def test_permutation_p_keywords_and_shift_test():
    rng = np.random.default_rng(1)
    true = _cut(_hrf_noise(rng, 1), 57, rng)[0]
    pred = true + 0.3 * rng.normal(size=57)
    # exact shift test: shifts of >= 30 s at TR 2.1 s are 15..42 volumes: 28 of them
    p = ev.permutation_p(pred, true, tr=TR, method="shift")
    assert p == pytest.approx(1 / 29)
    assert np.isnan(ev.permutation_p(pred[:34], true[:34], tr=TR, method="shift"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ev.permutation_p(pred, true, tr=TR) < 0.01
    with pytest.warns(DeprecationWarning, match="min_shift"):
        old = ev.permutation_p(pred, true, tr=TR, method="shift", min_shift=18)
    assert old == pytest.approx(1 / 23)  # 18 volumes: shifts 18..39
    with pytest.warns(DeprecationWarning, match="n_permutations"):
        ev.permutation_p(pred, true, tr=TR, n_permutations=200, seed=0)
    with pytest.warns(DeprecationWarning, match="tr="):
        ev.permutation_p(pred, true)


def test_block_bootstrap_ci_covers_and_scan_metrics():
    rng = np.random.default_rng(2)
    true = _cut(_hrf_noise(rng, 1), 115, rng)[0]
    pred = true / true.std() + rng.normal(size=115)
    m = stats.scan_metrics(pred, true, tr=TR, n_boot=500)
    assert set(m) == {"r", "r_ci_low", "r_ci_high", "mse", "n_test", "p_permutation"}
    assert m["r_ci_low"] < m["r"] < m["r_ci_high"] <= 1
    assert m["n_test"] == 115
    # fewer than two 30-s blocks: no CI
    assert np.isnan(stats.block_bootstrap_ci(pred[:20], true[:20], tr=TR)[0])
