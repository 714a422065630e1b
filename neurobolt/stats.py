"""Statistics of predicted vs measured ROI series: per-scan tests, bootstrap CIs, group inference.

BOLD series are strongly autocorrelated (lag-1 ≈ 0.8 after the pipeline's 0.15 Hz
low-pass at TR 2.1 s): a test of Pearson R that treats volumes as independent is far
too optimistic, and so is a circular-shift null over a short test block (its few
shifts are nearly copies of each other and the wrap-around breaks the series).
The default per-scan test here (:func:`autocorr_p`) corrects the degrees of freedom
for both series' autocorrelations; it was chosen by its false-positive rate on several
kinds of autocorrelated nulls (``benchmarks/calibration.py``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from . import config as nbconfig

#: Tukey taper of the autocorrelation products, as a fraction of the series length:
#: 0.7 up to 57 volumes, widening (log-linearly in n) to the whole series at 575 and
#: beyond. Chosen by calibration (benchmarks/calibration.py): narrower tapers
#: under-estimate the variance for 1/f-like series, wider ones over-estimate it for
#: short series, whose far lags are noise.
TAPER = (0.7, 57, 1.0, 575)


def evaluate_default(key: str, value):
    """``value``, or the ``evaluate`` config section's default for ``key`` when it is None.

    The statistics' keywords that are also ``evaluate`` options (``test``, ``alpha``,
    ``n_boot``, ``block_s``, ``n_permutations``, ``seed``) default to the schema's value.
    """
    return nbconfig.defaults(f"evaluate.{key}") if value is None else value


def taper_fraction(n: int) -> float:
    """The default Tukey taper width (fraction of ``n``) for a series of ``n`` volumes."""
    lo, n_lo, hi, n_hi = TAPER
    t = (math.log(max(n, 1)) - math.log(n_lo)) / (math.log(n_hi) - math.log(n_lo))
    return float(lo + (hi - lo) * min(max(t, 0.0), 1.0))


def _centred(x) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    return x - x.mean()


def pearson(pred, true) -> float:
    """Pearson R of two 1-D series (NaN when either is constant)."""
    x, y = _centred(pred), _centred(true)
    den = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y / den) if den > 0 else float("nan")


def _autocov(x: np.ndarray) -> np.ndarray:
    """Sample autocovariance of a centred series at lags 0..n-1 (divisor n)."""
    n = x.size
    f = np.fft.rfft(x, 2 * n)
    return np.fft.irfft(f * np.conj(f), 2 * n)[:n] / n


def null_variance(pred, true, *, taper: float | None = None) -> float:
    """Variance of Pearson R between two independent autocorrelated series.

    Bartlett's formula ``Var(R) = sum_k (n - |k|) rho_x(k) rho_y(k) / n**2`` with each
    lag's term estimated without the downward bias of short series: the product of
    two sample autocovariances of the centred series (divisor ``n``) estimates
    ``((n - k) / n)**2`` times the lag-``k`` term, so it is divided by that, i.e.
    ``1/n + 2 * sum_{k>=1} w_k rho_x(k) rho_y(k) / (n - k)``, with Tukey weights
    ``w_k = (1 + cos(pi k / m)) / 2`` up to ``m = taper * n`` (the far lags are noise).

    Parameters
    ----------
    pred, true : array_like, shape (n,)
    taper : float | None
        Width of the Tukey lag window as a fraction of ``n``; None:
        :func:`taper_fraction` (0.7 up to 57 volumes, 1 from 575).

    Returns
    -------
    var : float
        Between ``1/n`` and 1 (NaN when a series is constant).
    """
    x, y = _centred(pred), _centred(true)
    n = x.size
    cx, cy = _autocov(x), _autocov(y)
    if n < 3 or cx[0] <= 0 or cy[0] <= 0:
        return float("nan")
    k = np.arange(1, n)
    m = max(2.0, (taper_fraction(n) if taper is None else taper) * n)
    w = np.where(k <= m, 0.5 * (1 + np.cos(np.pi * k / m)), 0.0)
    v = 1 / n + 2 * np.sum(w * (cx[1:] / cx[0]) * (cy[1:] / cy[0]) / (n - k))
    return float(min(max(v, 1 / n), 1.0))


def autocorr_p(pred, true, *, taper: float | None = None) -> float:
    """One-sided p-value of R > 0, corrected for both series' autocorrelation.

    The effective number of volumes is ``n_eff = 1 / null_variance(pred, true)`` and
    ``p = P(Z > atanh(R) * sqrt(n_eff - 3))`` (Fisher z; ``n_eff - 3`` is floored at 1).
    Defined for any length of at least 3 volumes (it never returns NaN for a
    non-constant pair); at ``n_eff`` near 4 it is rarely below 0.01 because R cannot
    be made large enough, which is the honest answer.

    Calibration (``benchmarks/calibration.py``, 2000 independent pairs per cell, 34 /
    57 / 115 / 575 volumes at TR 2.1 s, low-passed at 0.15 Hz): the false-positive rate
    at alpha .05 and .01 is within 2.5 binomial SE of alpha for low-passed white,
    1/f^0.5, 1/f and HRF-convolved noise and for white-vs-HRF pairs. Outside: 1/f^1.5
    noise (lag-1 0.86–0.96, beyond real ROI series) up to .068 at .05; AR(1) with lag-1
    0.87, AR(2) and 1/f^1.5-vs-AR(1) pairs are conservative (down to .034 at .05, .0025
    at .01).
    """
    r = pearson(pred, true)
    v = null_variance(pred, true, taper=taper)
    if not (np.isfinite(r) and np.isfinite(v)):
        return float("nan")
    z = math.atanh(float(np.clip(r, -0.9999999, 0.9999999)))
    return float(sps.norm.sf(z * math.sqrt(max(1.0 / v - 3.0, 1.0))))


def shift_p(
    pred, true, *, tr: float, min_shift_s: float = 30.0, alpha: float | None = None
) -> float:
    """Exact circular-shift test: every shift of at least ``min_shift_s`` seconds.

    The prediction is shifted circularly by each of ``m .. n - m`` volumes
    (``m = ceil(min_shift_s / tr)``), all enumerated; ``p = (1 + #{R_shift >= R}) /
    (1 + n_shifts)``. NaN when the smallest attainable p, ``1 / (1 + n_shifts)``, is not
    below ``alpha``. Not calibrated on short autocorrelated series (false-positive rate
    ≈ 0.1–0.2 at alpha .05 over 57 volumes): kept for comparison only. ``alpha`` None:
    ``evaluate.alpha``'s default.
    """
    alpha = evaluate_default("alpha", alpha)
    x, y = _centred(pred), _centred(true)
    n = x.size
    m = int(math.ceil(min_shift_s / tr - 1e-9))
    shifts = np.arange(max(m, 1), n - max(m, 1) + 1)
    den = math.sqrt(float(x @ x) * float(y @ y))
    if shifts.size == 0 or 1 / (1 + shifts.size) >= alpha or den == 0:
        return float("nan")
    # circular cross-correlation: cc[s] = sum_t x[t - s] y[t]
    cc = np.fft.irfft(np.fft.rfft(x) * np.conj(np.fft.rfft(y)), n)
    cc = np.roll(cc[::-1], 1)
    null = cc[shifts] / den
    r = float(x @ y / den)
    return float((1 + np.sum(null >= r - 1e-12)) / (1 + shifts.size))


def scan_p(
    pred, true, *, tr: float, method: str | None = None, alpha: float | None = None, **kw
) -> float:
    """The per-scan p-value of R > 0 by ``method`` (``autocorr`` or ``shift``; None:
    ``evaluate.test``'s default)."""
    method = evaluate_default("test", method)
    if method == "autocorr":
        return autocorr_p(pred, true, **kw)
    if method == "shift":
        return shift_p(pred, true, tr=tr, alpha=alpha, **kw)
    raise ValueError(f"unknown test {method!r}: use 'autocorr' or 'shift'")


def block_bootstrap_ci(
    pred,
    true,
    *,
    tr: float,
    block_s: float | None = None,
    n_boot: int | None = None,
    level: float = 0.95,
    seed=None,
) -> tuple[float, float]:
    """Circular block-bootstrap percentile CI of Pearson R.

    Blocks of ``ceil(block_s / tr)`` consecutive volumes (pairs kept together) are
    drawn with replacement, wrapping around the end, until ``n`` volumes are filled.
    NaN when the series holds fewer than two blocks. ``block_s``, ``n_boot``, ``seed``
    None: the ``evaluate`` section's defaults.
    """
    block_s = evaluate_default("block_s", block_s)
    n_boot = evaluate_default("n_boot", n_boot)
    seed = evaluate_default("seed", seed)
    x, y = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    n = x.size
    b = int(math.ceil(block_s / tr - 1e-9))
    if n < 2 * b or n_boot < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    k = int(math.ceil(n / b))
    starts = rng.integers(0, n, (n_boot, k))
    idx = ((starts[:, :, None] + np.arange(b)) % n).reshape(n_boot, -1)[:, :n]
    xs, ys = x[idx], y[idx]
    xs = xs - xs.mean(1, keepdims=True)
    ys = ys - ys.mean(1, keepdims=True)
    den = np.sqrt(np.sum(xs * xs, 1) * np.sum(ys * ys, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sum(xs * ys, 1) / den
    r = r[np.isfinite(r)]
    if r.size < 10:
        return float("nan"), float("nan")
    lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def scan_metrics(
    pred,
    true,
    *,
    tr: float,
    test: str | None = None,
    alpha: float | None = None,
    n_boot: int | None = None,
    block_s: float | None = None,
    seed=None,
) -> dict:
    """Every per-scan figure of ``metrics.json`` / ``metrics.tsv`` for one test series.

    Parameters
    ----------
    pred, true : array_like, shape (n,)
        Predicted and measured ROI series over the scan's test volumes, in time order.
    tr : float
        Repetition time (s).
    test : str | None
        Per-scan test, see :func:`scan_p`.
    alpha : float | None
        Level a test must be able to resolve (else its p is NaN).
    n_boot, block_s, seed
        Block bootstrap of the CI, see :func:`block_bootstrap_ci`.

    Every keyword left None takes the ``evaluate`` section's default.

    Returns
    -------
    metrics : dict
        ``r``, ``r_ci_low``, ``r_ci_high``, ``mse``, ``n_test``, ``p_permutation``
        (the p of ``test``; the name is kept from the earlier permutation test).
    """
    x, y = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    lo, hi = block_bootstrap_ci(x, y, tr=tr, block_s=block_s, n_boot=n_boot, seed=seed)
    return {
        "r": pearson(x, y),
        "r_ci_low": lo,
        "r_ci_high": hi,
        "mse": float(np.mean((x - y) ** 2)),
        "n_test": int(x.size),
        "p_permutation": scan_p(x, y, tr=tr, method=test, alpha=alpha),
    }


def _z(r):
    return np.arctanh(np.clip(r, -0.9999999, 0.9999999))


def group_summary(r, subjects, *, level: float = 0.95) -> dict:
    """Mean R over subjects in Fisher z (sessions averaged first), SD, CI; no p.

    Returns ``mean_r``, ``sd`` (of the subjects' R, NaN for one subject), ``n_subjects``,
    ``n_scans``, ``ci_low``, ``ci_high`` (Student t over the subjects' z, back-transformed;
    NaN for one subject) and ``p_group`` (NaN; see :func:`group_test`).
    """
    r = np.asarray(r, float).ravel()
    subjects = [str(s) for s in subjects]
    names = sorted(set(subjects))
    zs = np.array([np.mean(_z(r[[s == name for s in subjects]])) for name in names])
    n = len(names)
    g = float(np.mean(zs)) if n else float("nan")
    out = {
        "mean_r": float(np.tanh(g)),
        "sd": float(np.std(np.tanh(zs), ddof=1)) if n > 1 else float("nan"),
        "n_subjects": n,
        "n_scans": int(r.size),
        "ci_low": float("nan"),
        "ci_high": float("nan"),
        "p_group": float("nan"),
    }
    if n > 1 and np.all(np.isfinite(zs)):
        half = sps.t.ppf((1 + level) / 2, n - 1) * np.std(zs, ddof=1) / math.sqrt(n)
        out["ci_low"], out["ci_high"] = float(np.tanh(g - half)), float(np.tanh(g + half))
    return out


def group_test(
    preds,
    trues,
    subjects,
    *,
    n_permutations: int | None = None,
    alpha: float | None = None,
    level: float = 0.95,
    seed=None,
) -> dict:
    """Group-level inference on the test R of several scans (one model, one ROI).

    The group statistic is the mean over subjects of the Fisher z of R (the sessions of
    one subject averaged first, so ``n`` is the number of subjects). Its null is the
    between-scan ("mismatched") null: the subjects' predictions re-paired with the test
    targets of other subjects by a permutation of the subjects (a subject's m-th scan
    with the m-th scan, cyclically, of its partner), each pair cut to their common
    length and aligned by position. Whatever autocorrelation or shared structure the
    series have is kept, and the test is exact when subjects are exchangeable: every
    permutation is enumerated when there are at most ``n_permutations`` of them
    (``p = #{G_perm >= G} / n!``, the identity included), else ``p = (1 + #{G_perm
    >= G}) / (1 + n_permutations)`` over random permutations.

    Parameters
    ----------
    preds, trues : sequence of array_like
        Each scan's predicted and measured test series.
    subjects : sequence of str
        Each scan's subject.
    n_permutations : int
        Largest number of permutations drawn (all are enumerated when fewer exist).
    alpha : float
        The p is NaN when the null cannot resolve ``alpha`` (fewer than ``1/alpha``
        permutations of the subjects: at alpha .05, three subjects or fewer).
    level : float
        Coverage of the CI of the mean (Student t over the subjects' Fisher z).
    seed : int

    ``n_permutations``, ``alpha`` and ``seed`` left None take the ``evaluate`` section's
    defaults.

    Returns
    -------
    result : dict
        ``mean_r`` (tanh of the mean z), ``sd`` (SD over subjects of their R; NaN for
        one subject), ``n_subjects``, ``n_scans``, ``ci_low``, ``ci_high`` (NaN for one
        subject), ``p_group`` (one-sided, mean above chance).
    """
    import itertools

    n_permutations = evaluate_default("n_permutations", n_permutations)
    alpha = evaluate_default("alpha", alpha)
    seed = evaluate_default("seed", seed)

    preds = [np.asarray(p, float).ravel() for p in preds]
    trues = [np.asarray(t, float).ravel() for t in trues]
    subjects = [str(s) for s in subjects]
    names = sorted(set(subjects))
    n = len(names)
    scans = [[i for i, s in enumerate(subjects) if s == name] for name in names]
    k = len(preds)
    r = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            m = min(preds[i].size, trues[j].size)
            r[i, j] = pearson(preds[i][:m], trues[j][:m])
    z = _z(r)

    # pair[a, b]: subject a's predictions scored against subject b's targets (mean z)
    pair = np.array(
        [
            [np.mean([z[i, other[m % len(other)]] for m, i in enumerate(own)]) for other in scans]
            for own in scans
        ]
    )

    def stat(perms: np.ndarray) -> np.ndarray:
        return pair[np.arange(n), perms].mean(axis=-1)

    out = group_summary(np.diag(r), subjects, level=level)
    g = float(np.mean([np.mean(np.diag(z)[own]) for own in scans]))
    n_perm = math.factorial(n)
    if n < 2 or 1 / n_perm >= alpha or not np.isfinite(g):
        return out
    if n_perm <= n_permutations:
        null = stat(np.array(list(itertools.permutations(range(n)))))
        out["p_group"] = float(np.mean(null >= g - 1e-12))
    else:
        rng = np.random.default_rng(seed)
        null = stat(np.argsort(rng.random((n_permutations, n)), axis=1))
        out["p_group"] = float((1 + np.sum(null >= g - 1e-12)) / (1 + n_permutations))
    return out
