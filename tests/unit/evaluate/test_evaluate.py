"""Train and evaluate rules on synthetic stores: splits audited, test never read in training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic import SCANS, outputs, synthetic_store

from neurobolt import evaluate as ev
from neurobolt.jobs import evaluate as evaluate_job
from neurobolt.jobs import group_metrics as group_job
from neurobolt.jobs import train as train_job
from neurobolt.metrics import fold_metrics
from neurobolt.splits import scan_subject

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
        train_job.run({"stores": [stores[0]]}, out, params)
    split = pd.read_csv(out["splits"], sep="\t")
    test_rows = set(split.loc[split["split"] == "test", "row"])
    assert test_rows and not test_rows & {row for _, row in reads}
    reads.clear()
    metrics = evaluate_job.run(
        {"model": out["model"], "splits": out["splits"], "stores": [stores[0]]},
        out,
        {"cfg": {"n_boot": 200, "seed": 0}},
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


def test_blocked_kfold_tests_each_scan_over_its_whole_length(tmp_path, monkeypatch):
    """intra_scheme blocked_kfold: one ridge per fold, each trained without its own test
    block; evaluate joins the folds' test blocks into one series per scan."""
    store = synthetic_store(tmp_path / f"{SCANS[0]}_windows.h5", 3, n_vol=200)
    out = outputs(tmp_path)
    params = {
        "analysis": "intra",
        "roi": "Cuneus",
        "model_name": "ridge_bandpower",
        "model": MODEL,
        "train": {**TRAIN, "intra_scheme": "blocked_kfold", "intra_folds": 4},
    }
    fits = []
    fit = train_job.train_model

    def spy(stores, table, **kw):  # each fold's table: its test rows are never trained on
        fits.append(table)
        return fit(stores, table, **kw)

    monkeypatch.setattr(train_job, "train_model", spy)
    record = train_job.run({"stores": [store]}, out, params)
    split = pd.read_csv(out["splits"], sep="\t")
    assert sorted(split["fold"].unique()) == [0, 1, 2, 3] and len(fits) == 4
    assert record["folds"] == [f"model.fold-{k}.pt" for k in range(4)]
    assert all((tmp_path / name).exists() for name in record["folds"])
    for k, table in enumerate(fits):
        assert (table["fold"] == k).all()
    log = pd.read_csv(out["log"], sep="\t")
    assert sorted(log["fold"].unique()) == [0, 1, 2, 3]
    metrics = evaluate_job.run(
        {"model": out["model"], "splits": out["splits"], "stores": [store]},
        out,
        {"cfg": {"n_boot": 100}},
    )
    (scan,) = metrics["scans"].values()
    n_tested = int((split["split"] == "test").sum())
    valid = split[split["fold"] == 0]["split"] != "invalid"
    assert scan["n_test"] == n_tested == int(valid.sum())  # the whole scan, once
    pred = pd.read_csv(out["predictions"], sep="\t")
    assert (np.diff(pred["volume"]) == 1).all()  # one series in time order
    assert scan["r"] > 0.5


def test_kfold_r_ignores_each_folds_intercept():
    """A fold's model predicts around its training mean, the opposite of its test block's
    mean: joined naively, R of an unrelated prediction is strongly negative. The k-fold
    R is invariant to any per-fold offset of the prediction."""
    rng = np.random.default_rng(4)
    kernel = np.exp(-0.5 * (np.arange(-8, 9) / 3) ** 2)
    truth = np.convolve(rng.normal(size=240), kernel, "same")
    noise = np.convolve(rng.normal(size=240), kernel, "same")
    fold = np.repeat(np.arange(4), 60)
    block_mean = pd.Series(truth).groupby(fold).transform("mean").to_numpy()
    rows = pd.DataFrame({"truth": truth, "prediction": 0.1 * noise - block_mean, "fold": fold})
    assert np.corrcoef(rows["prediction"], rows["truth"])[0, 1] < -0.2  # the naive join
    plain = rows.assign(prediction=0.1 * noise)
    got = fold_metrics(rows, tr=2.1, n_boot=50)
    assert got["r"] == pytest.approx(fold_metrics(plain, tr=2.1, n_boot=50)["r"])
    assert got["mse"] == pytest.approx(np.mean((rows["prediction"] - truth) ** 2))


def test_inter_split_is_by_subject_and_metrics_per_scan(stores, tmp_path, reads):
    out = outputs(tmp_path)
    params = {
        "analysis": "inter",
        "roi": "Cuneus",
        "model_name": "ridge_bandpower",
        "model": MODEL,
        "train": {**TRAIN, "inter_counts": [3, 1, 1]},
    }
    train_job.run({"stores": stores}, out, params)
    split = pd.read_csv(out["splits"], sep="\t", dtype={"subject": str})
    per_scan = split[split["split"] != "invalid"].groupby("scan")["split"].unique()
    assert all(len(v) == 1 for v in per_scan)
    assert split.groupby("subject")["split"].apply(lambda s: len(set(s) - {"invalid"})).max() == 1
    test_scans = set(split.loc[split["split"] == "test", "scan"])
    assert not test_scans & {scan_subject(path)[0] for path, _ in reads}
    metrics = evaluate_job.run(
        {"model": out["model"], "splits": out["splits"], "stores": stores},
        out,
        {"cfg": {"n_permutations": 100}},
    )
    assert set(metrics["scans"]) == test_scans


def test_permutation_p_and_group_tables(tmp_path):
    """Group tables from metrics.json + predictions.tsv: per-scan columns, Fisher-z means,
    group p of the mismatched null (n/a for too few subjects), control ROIs out of the
    average. The predictions are a moving-average target plus independent noise."""
    rng = np.random.default_rng(0)
    truth = np.convolve(rng.normal(size=300), np.ones(10), "same")
    assert ev.permutation_p(truth + rng.normal(size=300), truth, tr=2.1) < 0.05
    assert ev.permutation_p(rng.normal(size=300), truth, tr=2.1) > 0.05
    paths = []
    cases = [("neurobolt", "Cuneus", 5), ("neurobolt", "Cuneus", 5)]
    cases += [("ridge_bandpower", "Cuneus", 1), ("neurobolt", "Cerebellum Crus II", 5)]
    for i, (model, roi, n_sub) in enumerate(cases):
        d = tmp_path / f"m{i}"
        d.mkdir()
        scans, rows = {}, []
        for s in range(n_sub):
            scan = f"sub-{s:02d}_ses-{i:02d}_task-rest"
            t = np.convolve(rng.normal(size=60), np.ones(5), "same")
            p = t / t.std() + 2.0 * rng.normal(size=60) if roi == "Cuneus" else rng.normal(size=60)
            r = float(np.corrcoef(p, t)[0, 1])
            scans[scan] = {"r": r, "mse": 1.0, "n_test": 60, "p_permutation": 0.01}
            rows += [(scan, v, 2.1 * v, t[v], p[v]) for v in range(60)]
        (d / "metrics.json").write_text(
            json.dumps({"analysis": "intra", "roi": roi, "model": model, "scans": scans})
        )
        pd.DataFrame(rows, columns=["scan", "volume", "onset_s", "truth", "prediction"]).to_csv(
            d / "predictions.tsv", sep="\t", index=False
        )
        paths.append(d / "metrics.json")
    out = {"metrics": tmp_path / "metrics.tsv", "table": tmp_path / "table.tsv"}
    group_job.run({"metrics": paths}, out, {"cfg": {"n_permutations": 500}})
    metrics = pd.read_csv(out["metrics"], sep="\t", dtype={"subject": str})
    assert list(metrics.columns) == ev.METRIC_COLUMNS
    assert set(metrics["subject"]) == {f"sub-{s:02d}" for s in range(5)}
    table = pd.read_csv(out["table"], sep="\t")
    nb = table[(table["model"] == "neurobolt") & (table["roi"] == "Cuneus")].iloc[0]
    # two sessions of each of 5 subjects, averaged in Fisher z per subject first
    cun = metrics[(metrics["model"] == "neurobolt") & (metrics["roi"] == "Cuneus")]
    z = np.arctanh(cun["r"]).groupby(cun["subject"]).mean()
    assert nb["mean_r"] == pytest.approx(np.tanh(z.mean()), abs=1e-5)
    assert nb["sd"] == pytest.approx(np.tanh(z).std(ddof=1), abs=1e-5)
    assert (nb["n_subjects"], nb["n_scans"], nb["n_significant"]) == (5, 10, 10)
    assert nb["ci_low"] < nb["mean_r"] < nb["ci_high"] and nb["p_group"] < 0.05
    ridge = table[table["model"] == "ridge_bandpower"].iloc[0]
    assert np.isnan(ridge["sd"]) and np.isnan(ridge["p_group"]) and np.isnan(ridge["ci_low"])
    null = table[table["roi"] == "Cerebellum Crus II"].iloc[0]
    assert null["control"] and null["p_group"] > 0.05
    t1 = ev.table1(metrics, group=table)
    row = t1[t1["model"] == "neurobolt"].iloc[0]
    assert row["Cuneus"].startswith(f"{nb['mean_r']:.3f} ± {nb['sd']:.3f} [")
    assert row["average"] == f"{nb['mean_r']:.3f}"  # the control ROI is left out
    assert "n/a ± n/a" not in row["Cuneus"]
    assert "± n/a" in t1[t1["model"] == "ridge_bandpower"].iloc[0]["Cuneus"]


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_group_series_skip_missing_targets(tmp_path):
    """A shared-heads model writes rows whose target is missing (NaN); evaluate does not
    score them, and neither does the group test's series (a NaN would make its p NaN)."""
    (tmp_path / "metrics.json").write_text(
        json.dumps({"analysis": "intra", "roi": "Cuneus", "model": "neurobolt", "scans": {}})
    )
    pd.DataFrame(
        {
            "scan": ["a"] * 4,
            "volume": [0, 1, 2, 3],
            "onset_s": [0.0, 2.1, 4.2, 6.3],
            "truth": [0.1, np.nan, 0.3, 0.4],
            "prediction": [0.2, 0.5, 0.1, 0.3],
        }
    ).to_csv(tmp_path / "predictions.tsv", sep="\t", index=False)
    pred, true = ev.read_test_series([tmp_path / "metrics.json"])[
        ("intra", "Cuneus", "neurobolt", "a")
    ]
    np.testing.assert_array_equal(true, [0.1, 0.3, 0.4])
    np.testing.assert_array_equal(pred, [0.2, 0.1, 0.3])
