"""Calibration of per-scan tests of Pearson R on autocorrelated nulls (exploration harness).

Prints one figure per line: the false-positive rate of each method at alpha .05 and .01
for each null generator and series length, the power of each method on coupled pairs
(R ≈ 0.6 over 575 volumes), and the false-positive rate of the group test
(:func:`neurobolt.stats.group_test`, 5 subjects).

Null pairs are two INDEPENDENT series (a "prediction" and a "target"), each generated
long (1200 volumes at TR 2.1 s), low-passed like the pipeline's targets (0.15 Hz,
5th-order zero-phase Butterworth) and cut to a segment at a random position, so the
segments carry the filter's and the generator's autocorrelation the way real test
blocks do. The generators deliberately differ from each other and from any model a
test assumes (none is AR(1) after the low-pass): white noise, 1/f^beta noise
(beta 0.5, 1, 1.5), HRF-convolved noise, AR(1) with lag-1 0.75 / 0.87, AR(2), and
mixed pairs in which the prediction has a different spectrum than the target.

Usage::

    nice python benchmarks/calibration.py [--draws 2000] [--seed 0] [--methods a,b]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import signal
from scipy import stats as sps

from neurobolt import stats

TR = 2.1
LENGTHS = (34, 57, 115, 575)
ALPHAS = (0.05, 0.01)
LONG = 1200


def _lowpass(x: np.ndarray) -> np.ndarray:
    sos = signal.butter(5, 0.15, fs=1 / TR, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1)


def _hrf(tr: float) -> np.ndarray:
    t = np.arange(0, 32, tr)
    from scipy.stats import gamma

    h = gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6
    return h / h.sum()


def gen_white(rng, n):
    return rng.normal(size=(n, LONG))


def gen_powerlaw(beta):
    def gen(rng, n):
        f = np.fft.rfftfreq(LONG, TR)
        amp = np.zeros_like(f)
        amp[1:] = f[1:] ** (-beta / 2)
        z = rng.normal(size=(n, f.size)) + 1j * rng.normal(size=(n, f.size))
        return np.fft.irfft(z * amp, LONG, axis=-1)

    return gen


def gen_hrf(rng, n):
    e = rng.normal(size=(n, LONG + 40))
    return signal.lfilter(_hrf(TR), [1.0], e, axis=-1)[:, 40:]


def gen_ar(coefs):
    def gen(rng, n):
        e = rng.normal(size=(n, LONG + 200))
        return signal.lfilter([1.0], [1.0, *(-np.asarray(coefs))], e, axis=-1)[:, 200:]

    return gen


GENERATORS = {
    "white": (gen_white, gen_white),
    "pink0.5": (gen_powerlaw(0.5), gen_powerlaw(0.5)),
    "pink1.0": (gen_powerlaw(1.0), gen_powerlaw(1.0)),
    "pink1.5": (gen_powerlaw(1.5), gen_powerlaw(1.5)),
    "hrf": (gen_hrf, gen_hrf),
    "ar1_.75": (gen_ar([0.75]), gen_ar([0.75])),
    "ar1_.87": (gen_ar([0.87]), gen_ar([0.87])),
    "ar2": (gen_ar([1.2, -0.35]), gen_ar([1.2, -0.35])),
    "white~hrf": (gen_white, gen_hrf),  # rough prediction, smooth target
    "pink1.5~ar1": (gen_powerlaw(1.5), gen_ar([0.8])),
}


def segments(gen, rng, n_draws, length, *, lowpass=True):
    x = gen(rng, n_draws)
    if lowpass:
        x = _lowpass(x)
    start = rng.integers(0, LONG - length + 1, n_draws)
    idx = start[:, None] + np.arange(length)
    return np.take_along_axis(x, idx, axis=1)


def lag1(x):
    x = x - x.mean(axis=1, keepdims=True)
    return float(np.mean(np.sum(x[:, 1:] * x[:, :-1], 1) / np.sum(x * x, 1)))


def pyper_peterman_p(pred, true):
    """The issue's quick check: sample ACFs up to n/5, (n-k)/n weights, t with n_eff - 2 df."""
    x, y = pred - pred.mean(), true - true.mean()
    n = x.size
    m = max(1, n // 5)
    k = np.arange(1, m + 1)
    rx = np.array([x[:-j] @ x[j:] for j in k]) / (x @ x)
    ry = np.array([y[:-j] @ y[j:] for j in k]) / (y @ y)
    n_eff = 1 / (1 / n + 2 / n * np.sum((n - k) / n * rx * ry))
    r = stats.pearson(x, y)
    df = max(n_eff - 2, 1)
    return float(sps.t.sf(r * np.sqrt(df / (1 - r * r)), df))


def bartlett_t_p(pred, true):
    """Same variance as the default, Student t with n_eff - 2 df instead of Fisher z."""
    r, v = stats.pearson(pred, true), stats.null_variance(pred, true)
    df = max(1 / v - 2, 1)
    return float(sps.t.sf(r * np.sqrt(df / (1 - r * r)), df))


METHODS = {
    "autocorr": stats.autocorr_p,  # the default of neurobolt.evaluate.permutation_p
    "shift30s": lambda p, t: stats.shift_p(p, t, tr=TR, min_shift_s=30.0),
    "pyper_pet": pyper_peterman_p,
    "bartlett_t": bartlett_t_p,
    "taper.5": lambda p, t: stats.autocorr_p(p, t, taper=0.5),
    "taper.7": lambda p, t: stats.autocorr_p(p, t, taper=0.7),
    "taper1": lambda p, t: stats.autocorr_p(p, t, taper=1.0),
}


def _run_method(fn, pred, true):
    return np.array([fn(p, t) for p, t in zip(pred, true, strict=True)])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--generators", default=",".join(GENERATORS))
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    ap.add_argument("--skip-scan", action="store_true", help="only the group test")
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    lengths = [int(v) for v in args.lengths.split(",")]
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    print("# FPR: fraction p < alpha on independent pairs (NaN = not significant)")
    tol = [2.5 * np.sqrt(a * (1 - a) / args.draws) for a in ALPHAS]
    print(f"# draws {args.draws}; 2.5 binomial SE: .05 +- {tol[0]:.4f}, .01 +- {tol[1]:.4f}")
    for gname in [] if args.skip_scan else args.generators.split(","):
        gp, gt = GENERATORS[gname]
        for n in lengths:
            pred = segments(gp, rng, args.draws, n)
            true = segments(gt, rng, args.draws, n)
            for m in methods:
                p = _run_method(METHODS[m], pred, true)
                fpr = [np.mean(np.nan_to_num(p, nan=1.0) < a) for a in ALPHAS]
                print(
                    f"fpr gen={gname:12s} n={n:04d} lag1={lag1(true):.2f} method={m:10s} "
                    f"a.05={fpr[0]:.4f} a.01={fpr[1]:.4f} nan={np.mean(np.isnan(p)):.3f}",
                    flush=True,
                )
    # power: target BOLD-like, prediction = target + independent BOLD-like noise, R ~ 0.6
    n = 575
    for gname in () if args.skip_scan else ("hrf", "pink1.0", "ar1_.87"):
        gp, gt = GENERATORS[gname]
        true = segments(gt, rng, args.draws, n)
        noise = segments(gp, rng, args.draws, n)
        true = true / true.std(1, keepdims=True)
        noise = noise / noise.std(1, keepdims=True)
        pred = 0.6 * true + 0.8 * noise
        r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(pred, true, strict=True)])
        for m in methods:
            p = _run_method(METHODS[m], pred, true)
            print(
                f"power gen={gname:12s} n={n:4d} meanR={r.mean():.3f} method={m:10s} "
                f"a.05={np.mean(np.nan_to_num(p, nan=1) < 0.05):.4f}"
                f" a.01={np.mean(np.nan_to_num(p, nan=1) < 0.01):.4f}",
                flush=True,
            )
    # group test: 6 subjects (one with two sessions), each scan's prediction independent
    # of every target; the 6! = 720 subject permutations are enumerated
    subjects = ["a", "b", "c", "d", "e", "e"]
    for gname in ("hrf", "pink1.0", "white~hrf"):
        gp, gt = GENERATORS[gname]
        for n in (34, 57):
            draws = max(args.draws // 4, 100)
            pred = segments(gp, rng, draws * 6, n).reshape(draws, 6, n)
            true = segments(gt, rng, draws * 6, n).reshape(draws, 6, n)
            p = np.array(
                [
                    stats.group_test(list(a), list(b), subjects, n_permutations=1000)["p_group"]
                    for a, b in zip(pred, true, strict=True)
                ]
            )
            print(
                f"group gen={gname:12s} n={n:04d} draws={draws} subjects=5 "
                f"a.05={np.mean(p < 0.05):.4f} a.01={np.mean(p < 0.01):.4f}",
                flush=True,
            )
    print(f"# {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
