"""Train and evaluate rules on synthetic stores: splits audited, test never read in training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neurobolt import evaluate as ev
from neurobolt import store as st
from neurobolt import train as tr

SFREQ, TR = 200.0, 2.1
CH = ["O1", "O2", "CZ", "FZ"]
TRAIN = {"epochs": 2, "warmup_epochs": 1, "batch_size_intra": 16, "batch_size_inter": 32}
MODEL = {"preset": "tiny", "drop_path": 0.0}


def _store(path, seed, n_vol=90):
    """EEG whose alpha power drives the 'Cuneus' target (HRF-like smoothing), plus a null ROI."""
    rng = np.random.default_rng(seed)
    first = int(17 * SFREQ)
    step = int(TR * SFREQ)
    markers = first + step * np.arange(n_vol)
    n_times = int(markers[-1] + 2 * SFREQ)
    t = np.arange(n_times) / SFREQ
    env = np.exp(np.convolve(rng.normal(0, 1, n_times), np.ones(2000) / 45, "same"))
    eeg = rng.normal(0, 5e-6, (4, n_times))
    eeg[:2] += 20e-6 * env * np.sin(2 * np.pi * 10 * t)
    power = np.convolve(env**2, np.ones(1200) / 1200)[:n_times]  # 6 s smoothing, causal
    cuneus = power[markers - 400] + rng.normal(0, 0.3 * power.std(), n_vol)
    targets = np.c_[(cuneus - cuneus.mean()) / cuneus.std(), rng.normal(size=n_vol)]
    align = st.align_volumes(
        markers,
        n_times=n_times,
        sfreq=SFREQ,
        n_bold_volumes=n_vol,
        kept_volumes=range(n_vol),
        tr=TR,
    )
    return st.write_store(
        path,
        eeg=eeg,
        sfreq=SFREQ,
        alignment=align,
        targets=targets,
        ch_names=CH,
        roi_names=["Cuneus", "Cerebellum Crus II"],
        tr=TR,
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    names = [
        "sub-01_ses-01_task-rest",
        "sub-01_ses-02_task-rest",
        "sub-02_task-rest",
        "sub-03_task-rest",
        "sub-04_task-rest",
    ]
    return [_store(root / f"{n}_windows.h5", seed) for seed, n in enumerate(names)]


@pytest.fixture()
def reads(monkeypatch):
    """Record every (store, row) the Dataset reads."""
    seen = []
    original = st.WindowDataset.__getitem__

    def spy(self, item):
        s, row = self._index[item]
        seen.append((tr.scan_subject(self.paths[s])[0], int(row)))
        return original(self, item)

    monkeypatch.setattr(st.WindowDataset, "__getitem__", spy)
    return seen


def _outputs(d):
    return {
        k: d / f
        for k, f in [
            ("model", "model.pt"),
            ("splits", "splits.tsv"),
            ("log", "log.tsv"),
            ("predictions", "predictions.tsv"),
            ("metrics", "metrics.json"),
        ]
    }


@pytest.mark.parametrize("model_name", ["ridge_bandpower", "neurobolt"])
def test_intra_train_never_reads_test_and_evaluate_scores(stores, tmp_path, reads, model_name):
    out = _outputs(tmp_path)
    params = {
        "analysis": "intra",
        "roi": "Cuneus",
        "model_name": model_name,
        "model": MODEL,
        "train": TRAIN,
    }
    with (
        pytest.warns(UserWarning, match="random init")
        if model_name == "neurobolt"
        else _nullcontext()
    ):
        tr.run_train({"stores": [stores[0]]}, out, params)
    split = pd.read_csv(out["splits"], sep="\t")
    test_rows = set(split.loc[split["split"] == "test", "row"])
    assert test_rows and not test_rows & {row for _, row in reads}
    reads.clear()
    metrics = ev.run_evaluate(
        {"model": out["model"], "splits": out["splits"], "stores": [stores[0]]},
        out,
        {"n_permutations": 200, "seed": 0},
    )
    assert {row for _, row in reads} == test_rows
    scan = metrics["scans"]["sub-01_ses-01_task-rest"]
    assert scan["n_test"] == len(test_rows)
    pred = pd.read_csv(out["predictions"], sep="\t")
    assert list(pred.columns) == ["scan", "volume", "onset_s", "truth", "prediction"]
    assert scan["r"] == pytest.approx(
        np.corrcoef(pred["truth"], pred["prediction"])[0, 1], abs=1e-4
    )
    if model_name == "ridge_bandpower":
        assert scan["r"] > 0.5  # alpha power is the signal; ridge on band power finds it


def test_inter_split_is_by_subject_and_metrics_per_scan(stores, tmp_path, reads):
    out = _outputs(tmp_path)
    params = {
        "analysis": "inter",
        "roi": "Cuneus",
        "model_name": "ridge_bandpower",
        "model": MODEL,
        "train": {**TRAIN, "inter_counts": [3, 1, 1]},
    }
    tr.run_train({"stores": stores}, out, params)
    split = pd.read_csv(out["splits"], sep="\t", dtype={"subject": str})
    per_scan = split[split["split"] != "invalid"].groupby("scan")["split"].unique()
    assert all(len(v) == 1 for v in per_scan)
    assert split.groupby("subject")["split"].apply(lambda s: len(set(s) - {"invalid"})).max() == 1
    test_scans = set(split.loc[split["split"] == "test", "scan"])
    assert not test_scans & {scan for scan, _ in reads}
    metrics = ev.run_evaluate(
        {"model": out["model"], "splits": out["splits"], "stores": stores},
        out,
        {"n_permutations": 100},
    )
    assert set(metrics["scans"]) == test_scans


def test_permutation_p_and_group_tables(tmp_path):
    rng = np.random.default_rng(0)
    truth = np.convolve(rng.normal(size=300), np.ones(10), "same")
    assert ev.permutation_p(truth + rng.normal(size=300), truth, n_permutations=200) < 0.05
    assert ev.permutation_p(rng.normal(size=300), truth, n_permutations=200) > 0.05
    paths = []
    for i, (model, r) in enumerate(
        [("neurobolt", 0.6), ("neurobolt", 0.4), ("ridge_bandpower", 0.5)]
    ):
        p = tmp_path / f"m{i}.json"
        p.write_text(
            json.dumps(
                {
                    "analysis": "intra",
                    "roi": "Cuneus",
                    "model": model,
                    "scans": {f"s{i}": {"r": r, "mse": 1.0, "n_test": 10, "p_permutation": 0.01}},
                }
            )
        )
        paths.append(p)
    out = {"metrics": tmp_path / "metrics.tsv", "table": tmp_path / "table.tsv"}
    ev.run_group_metrics({"metrics": paths}, out, {})
    metrics = pd.read_csv(out["metrics"], sep="\t")
    assert list(metrics.columns[:7]) == ["analysis", "scan", "roi", "model", "r", "mse", "n_test"]
    table = pd.read_csv(out["table"], sep="\t")
    row = table[table["model"] == "neurobolt"].iloc[0]
    assert row["Cuneus"].startswith("0.500 ± 0.141 (2/2)")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
