"""Leakage checks: a ROI with no EEG coupling must come out at chance on the test split.

The null ROI of the synthetic scans is BOLD-like noise independent of the EEG
(HRF-convolved, low-passed at 0.15 Hz, lag-1 autocorrelation ≈ 0.8, as real ROI
series), not white noise: a leak through the slow haemodynamics or through shared EEG
then shows up as it would on real data, and "at chance" is judged by the calibrated
per-scan test (effective degrees of freedom), not by ``1 / sqrt(n)``.

Positive control: a split bug that also trains on the test volumes must trip the check.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from synthetic import SCANS, outputs, synthetic_store

from neurobolt import evaluate as ev
from neurobolt import stats
from neurobolt import train as tr
from neurobolt import validate as va

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


def _test_series(stores, directory, *, analysis, roi, model_name, train=None) -> dict:
    """Train one model; ``{scan: (prediction, truth)}`` over its test volumes."""
    out = outputs(directory)
    params = {"analysis": analysis, "roi": roi, "model_name": model_name}
    params.update(model=MODEL, train={**TRAIN, **(train or {})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random init of the tiny model
        tr.run_train({"stores": stores}, out, params)
    ev.run_evaluate(
        {"model": out["model"], "splits": out["splits"], "stores": stores},
        out,
        {"n_boot": 1},
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
def test_null_roi_is_at_chance_and_the_coupled_roi_is_not(stores, tmp_path, model_name):
    intra = {}
    for i, s in enumerate(stores):
        intra |= _test_series(
            [s], tmp_path / f"intra{i}", analysis="intra", roi=NULL, model_name=model_name
        )
    inter = _test_series(
        stores, tmp_path / "inter", analysis="inter", roi=NULL, model_name=model_name
    )
    assert len(intra) == 5 and len(inter) == 1
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
    honest = tr.datasets_for

    def leaky(stores_, table, split, *, rois, **kw):
        if split == "train":
            table = table.assign(split=table["split"].replace("test", "train"))
        return honest(stores_, table, split, rois=rois, **kw)

    monkeypatch.setattr(tr, "datasets_for", leaky)
    kw = {"analysis": "intra", "roi": NULL, "model_name": "ridge_bandpower"}
    series = {}
    for i, s in enumerate(stores):
        series |= _test_series([s], tmp_path / f"leak{i}", **kw)
    assert leak_z(series) > 2.33, leak_z(series)


def test_validate_warns_about_short_gaps():
    (finding,) = va.check_gap({"gap_s": 10})
    assert finding.severity == "warning" and "train.gap_s" in finding.file
    assert va.check_gap({"gap_s": 20}) == [] and va.check_gap(None) == []
