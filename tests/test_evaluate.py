"""Train and evaluate rules on synthetic stores: splits audited, test never read in training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic import SCANS, outputs, synthetic_store

from neurobolt import evaluate as ev
from neurobolt import train as tr

TRAIN = {"epochs": 2, "warmup_epochs": 1, "batch_size_intra": 16, "batch_size_inter": 32}
MODEL = {"preset": "tiny", "drop_path": 0.0}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    return [synthetic_store(root / f"{n}_windows.h5", seed) for seed, n in enumerate(SCANS)]


@pytest.mark.parametrize("model_name", ["ridge_bandpower", "neurobolt"])
def test_intra_train_never_reads_test_and_evaluate_scores(stores, tmp_path, reads, model_name):
    out = outputs(tmp_path)
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
    out = outputs(tmp_path)
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
    assert not test_scans & {tr.scan_subject(path)[0] for path, _ in reads}
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
