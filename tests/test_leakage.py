"""Leakage check: a ROI with no EEG coupling must come out at chance on the test split.

Synthetic scans of 28 min (800 volumes) make the statistic sharp: the null ROI is white
noise independent of the EEG, so a leak-free test R over ``n`` volumes has sd 1/sqrt(n)
(0.11 intra-subject with 80 test volumes per scan, 0.035 inter-subject with 800). A
positive control trains on the test volumes too and shows the check would catch it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from synthetic import SCANS, outputs, synthetic_store

from neurobolt import evaluate as ev
from neurobolt import train as tr

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


def _test_r(stores, directory, *, analysis, roi, model_name) -> list[float]:
    """Train one model and return its test R per test scan."""
    out = outputs(directory)
    params = {"analysis": analysis, "roi": roi, "model_name": model_name}
    params.update(model=MODEL, train=TRAIN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random init of the tiny model
        tr.run_train({"stores": stores}, out, params)
    metrics = ev.run_evaluate(
        {"model": out["model"], "splits": out["splits"], "stores": stores},
        out,
        {"n_permutations": 0},
    )
    return [scan["r"] for scan in metrics["scans"].values()]


@pytest.mark.parametrize("model_name", ["ridge_bandpower", "neurobolt"])
def test_null_roi_is_at_chance_and_the_coupled_roi_is_not(stores, tmp_path, model_name):
    intra = [
        _test_r([s], tmp_path / f"intra{i}", analysis="intra", roi=NULL, model_name=model_name)
        for i, s in enumerate(stores)
    ]
    inter = _test_r(stores, tmp_path / "inter", analysis="inter", roi=NULL, model_name=model_name)
    assert len(intra) == 5 and len(inter) == 1
    assert np.mean(np.abs(intra)) < 0.15, intra  # E|R| = 0.09 at 80 test volumes
    assert abs(inter[0]) < 0.15, inter  # sd 0.035
    if model_name == "ridge_bandpower":  # the same pipeline finds a real coupling
        coupled = _test_r(
            stores, tmp_path / "coupled", analysis="inter", roi=COUPLED, model_name=model_name
        )
        assert coupled[0] > 0.5, coupled


def test_training_on_the_test_volumes_would_be_caught(stores, tmp_path, monkeypatch):
    """Positive control: a split bug that also trains on the test rows inflates null R."""
    honest = tr.datasets_for

    def leaky(stores_, table, split, *, rois, **kw):
        if split == "train":
            table = table.assign(split=table["split"].replace("test", "train"))
        return honest(stores_, table, split, rois=rois, **kw)

    monkeypatch.setattr(tr, "datasets_for", leaky)
    kw = {"analysis": "intra", "roi": NULL, "model_name": "ridge_bandpower"}
    intra = [_test_r([s], tmp_path / f"leak{i}", **kw) for i, s in enumerate(stores)]
    assert np.mean(np.abs(intra)) > 0.15, intra
