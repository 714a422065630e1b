"""Leakage checks: a ROI with no EEG coupling must come out at chance on the test split.

The null ROI of the synthetic scans is BOLD-like noise independent of the EEG
(HRF-convolved, low-passed at 0.15 Hz, lag-1 autocorrelation ≈ 0.8, as real ROI
series), not white noise: a leak through the slow haemodynamics or through shared EEG
then shows up as it would on real data, and "at chance" is judged by the calibrated
per-scan test (effective degrees of freedom), not by ``1 / sqrt(n)``.

Positive controls: a split bug that also trains on the test volumes must trip the check,
and so must blocked k-fold with ``gap_s: 0`` and the overlap rule off under a model that
memorises each window's EEG (training windows then share 14 of 16 s of EEG with the
test windows at each block edge); the defaults, and either guard alone, must not.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from synthetic import CH, ROIS, SCANS, outputs, synthetic_store

from neurobolt import evaluate as ev
from neurobolt import splits as sp
from neurobolt import stats
from neurobolt import store as st
from neurobolt import validate as va
from neurobolt.jobs import evaluate as evaluate_job
from neurobolt.jobs import train as train_job

N_VOL = 800
TRAIN = {"epochs": 1, "warmup_epochs": 0, "inter_counts": [3, 1, 1], "seed": 0}
MODEL = {"preset": "tiny"}
NULL, COUPLED = "Cerebellum Crus II", "Cuneus"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    return [
        synthetic_store(root / f"{n}_windows.h5", 100 + i, n_vol=N_VOL) for i, n in enumerate(SCANS)
    ]


@pytest.fixture(scope="module")
def occipital_stores(tmp_path_factory):
    """The same scans (seeds, 800 volumes, null ROI series identical) on O1 only.

    The network's cost grows with its input channels (one token per channel and second);
    the null ROI is independent of every channel, so the leak check keeps its power (80
    test volumes per scan, 2,400 in the inter-subject test scans) at a lower training cost.
    """
    root = tmp_path_factory.mktemp("occipital")
    return [
        synthetic_store(root / f"{n}_windows.h5", 100 + i, n_vol=N_VOL, ch_names=CH[:1])
        for i, n in enumerate(SCANS)
    ]


def _test_series(stores, directory, *, analysis, roi, model_name, train=None) -> dict:
    """Train one model; ``{scan: (prediction, truth)}`` over its test volumes."""
    out = outputs(directory)
    params = {"analysis": analysis, "roi": roi, "model_name": model_name}
    params.update(model=MODEL, train={**TRAIN, **(train or {})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random init of the tiny model
        train_job.run({"stores": stores}, out, params)
    evaluate_job.run(
        {"model": out["model"], "splits": out["splits"], "stores": stores},
        out,
        {"cfg": {"n_boot": 1}},
    )
    series = ev.read_test_series([out["metrics"]])
    return {key[-1]: value for key, value in series.items()}


def leak_z(series: dict) -> float:
    """The check: mean Fisher z of the test R over scans, in units of its null SD.

    Each scan's null SD of z is ``1 / sqrt(n_eff - 3)`` with the autocorrelation-corrected
    effective length of :func:`neurobolt.stats.null_variance`, so the check is calibrated
    for autocorrelated series; it trips above 2.33 (one-sided alpha .01).
    """
    z, var = [], []
    for pred, true in series.values():
        z.append(math.atanh(stats.pearson(pred, true)))
        var.append(1 / max(1 / stats.null_variance(pred, true) - 3, 1))
    return float(np.sum(z) / math.sqrt(np.sum(var)))


@pytest.mark.parametrize("model_name", ["ridge_bandpower", "neurobolt"])
def test_null_roi_is_at_chance_and_the_coupled_roi_is_not(request, tmp_path, model_name):
    """The network reads 1-channel scans in 64-window batches (as inter-subject models do).

    Its cost is per training window, so its inter-subject model trains on 1 scan and is
    tested on 3 (800 training windows instead of 2,400; 2,400 test volumes instead of 800).
    Power, measured with the split bug of
    :func:`test_training_on_the_test_volumes_would_be_caught` (training on the test rows
    too): intra-subject z = 3.1 (2.75 with O1/O2), inter-subject z = 2.0 (1.5 with O1/O2
    and 3 training scans); one epoch of a randomly initialised network memorises little, so
    such a leak is caught through the intra-subject models.
    """
    net = model_name == "neurobolt"
    stores = request.getfixturevalue("occipital_stores" if net else "stores")
    train = {"batch_size_intra": 64, "inter_counts": [1, 1, 3]} if net else None
    intra = {}
    for i, s in enumerate(stores):
        intra |= _test_series(
            [s],
            tmp_path / f"intra{i}",
            analysis="intra",
            roi=NULL,
            model_name=model_name,
            train=train,
        )
    inter = _test_series(
        stores, tmp_path / "inter", analysis="inter", roi=NULL, model_name=model_name, train=train
    )
    assert len(intra) == 5 and len(inter) == (3 if net else 1)
    assert abs(leak_z(intra)) < 2.33, leak_z(intra)
    assert abs(leak_z(inter)) < 2.33, leak_z(inter)
    if model_name == "ridge_bandpower":  # the same pipeline finds a real coupling
        coupled = _test_series(
            stores, tmp_path / "coupled", analysis="inter", roi=COUPLED, model_name=model_name
        )
        assert leak_z(coupled) > 5
        ((pred, true),) = coupled.values()
        assert stats.pearson(pred, true) > 0.5


def test_training_on_the_test_volumes_would_be_caught(stores, tmp_path, monkeypatch):
    """Positive control: a split bug that also trains on the test rows."""
    honest = train_job.datasets_for

    def leaky(stores_, table, split, *, rois, **kw):
        if split == "train":
            table = table.assign(split=table["split"].replace("test", "train"))
        return honest(stores_, table, split, rois=rois, **kw)

    monkeypatch.setattr(train_job, "datasets_for", leaky)
    kw = {"analysis": "intra", "roi": NULL, "model_name": "ridge_bandpower"}
    series = {}
    for i, s in enumerate(stores):
        series |= _test_series([s], tmp_path / f"leak{i}", **kw)
    assert leak_z(series) > 2.33, leak_z(series)


def test_validate_warns_about_short_gaps():
    (finding,) = va.check_gap({"gap_s": 10})
    assert finding.severity == "warning" and "train.gap_s" in finding.file
    assert va.check_gap({"gap_s": 20}) == [] and va.check_gap(None) == []


@pytest.fixture(scope="module")
def memoriser(stores):
    """Per store: the memorising model's kernel between all windows, and the null ROI.

    The model is a kernel regression on the window's broadband log power spectrum
    (50–100 Hz, 4 channels, 1/16 Hz bins): ``pred_i = sum_j exp((c_ij - 1) / 0.1) (y_j -
    mean y)`` over the training windows ``j`` (``c``: correlation of the spectra). Windows
    that share 14 of 16 s of EEG correlate at ≈ 0.6, windows that share none at 0 ± 0.02,
    so it predicts the targets of the training windows whose EEG overlaps the test window
    and nothing elsewhere: a memoriser, as an over-fitted network is at its worst.
    """
    out = []
    for path in stores:
        with st.WindowStore(path) as s:
            rows = s.valid_indices()
            x = np.stack([s.raw_window(i) for i in rows]).astype(float)
            y, onsets = s.targets[rows, ROIS.index(NULL)], s.onsets[rows]
            tr_, sfreq = s.tr, s.sfreq
        spec = np.abs(np.fft.rfft(x - x.mean(-1, keepdims=True), axis=-1)[..., 1:]) ** 2
        feat = np.log(spec[..., spec.shape[-1] // 2 :]).reshape(len(x), -1)
        feat -= feat.mean(1, keepdims=True)
        feat /= np.linalg.norm(feat, axis=1, keepdims=True)
        out.append((np.exp((feat @ feat.T - 1) / 0.1), y, onsets, tr_, sfreq))
    return out


def _kfold_series(kernel, y, onsets, tr_, sfreq, *, gap_s, exclude_overlap, folds=40):
    """The memoriser's blocked k-fold test series of one scan (every volume tested once).

    Each fold's prediction and truth are centred within its test block and joined (the
    pooled within-block R of :func:`neurobolt.jobs.evaluate.run`).
    """
    labels = sp.intra_kfold_split(
        onsets,
        np.ones(len(y), bool),
        tr=tr_,
        sfreq=sfreq,
        window_s=16.0,
        folds=folds,
        val_fraction=0.0125,  # 10 volumes: room for 20-volume test blocks and 10-volume gaps
        gap_s=gap_s,
        exclude_overlap=exclude_overlap,
    )
    pred, true = np.zeros(len(y)), np.zeros(len(y))
    for fold in labels:
        train, test = fold == "train", fold == "test"
        p = kernel[np.ix_(test, train)] @ (y[train] - y[train].mean())
        pred[test], true[test] = p - p.mean(), y[test] - y[test].mean()
    return pred, true


@pytest.mark.parametrize(
    ("gap_s", "exclude_overlap", "leaks"),
    [(0.0, False, True), (20.0, True, False), (0.0, True, False), (20.0, False, False)],
    ids=["gap0-overlap-off", "defaults", "gap0-only", "overlap-off-only"],
)
def test_kfold_without_gaps_and_overlap_rule_is_caught(memoriser, gap_s, exclude_overlap, leaks):
    """Positive control of the guards in blocked k-fold, on a memorising model.

    With ``gap_s: 0`` and the overlap rule off, the ~7 training windows after each test
    block share EEG with its last test windows; the null ROI is BOLD-like (lag-1
    autocorrelation ≈ 0.8), so their targets predict the neighbouring test targets and
    the memoriser scores R > 0 on a ROI independent of the EEG. 40 folds (20-volume test
    blocks, so ~2–3 of every 20 test volumes leak) and pooling over the whole scan make
    the leak decisive. Unlike what the check assumes (a prediction independent of the
    truth under the null), here the leaking predictions copy neighbouring truth; the
    check must see it (z ≈ 9, 4 of 5 scans at p < .01), while the default gaps + overlap
    rule, and either guard alone, keep the same model at chance (|z| < 1.5).
    """
    series = {
        i: _kfold_series(*scan, gap_s=gap_s, exclude_overlap=exclude_overlap)
        for i, scan in enumerate(memoriser)
    }
    z = leak_z(series)
    print(f"memoriser, blocked 40-fold, gap {gap_s} s, overlap rule {exclude_overlap}: z = {z:.2f}")
    if leaks:
        assert z > 5, z
        p = [stats.scan_p(pred, true, tr=2.1) for pred, true in series.values()]
        assert sum(v < 0.01 for v in p) >= 3, p
    else:
        assert abs(z) < 2.33, z


def test_holdout_gap0_cannot_leak_into_test(memoriser):
    """In holdout the test block (last) borders only validation, so even with ``gap_s: 0``
    and the overlap rule off no training window shares EEG with a test window and the
    same memoriser stays at chance (80 test volumes per scan, the 10 % test share).
    Validation windows do share EEG with the test block then; only model selection
    sees them, which this fixed-bandwidth memoriser does not use."""
    series = {}
    for i, (kernel, y, onsets, tr_, sfreq) in enumerate(memoriser):
        labels = sp.intra_split(
            onsets,
            np.ones(len(y), bool),
            tr=tr_,
            sfreq=sfreq,
            window_s=16.0,
            gap_s=0,
            exclude_overlap=False,
        )
        train, test = labels == "train", labels == "test"
        assert onsets[test].min() - onsets[train].max() >= 16 * sfreq  # no shared EEG
        pred = kernel[np.ix_(test, train)] @ (y[train] - y[train].mean())
        series[i] = (pred, y[test])
    print(f"memoriser, holdout, gap 0 s, overlap rule off: z = {leak_z(series):.2f}")
    assert abs(leak_z(series)) < 2.33, leak_z(series)
