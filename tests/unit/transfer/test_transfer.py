"""Cross-dataset analyses on synthetic stores of two 'sites' (caps and TRs differ).

Known answers: the splits are grouped by subject within each dataset; the target's test
scans are read only by the evaluation; zero_shot reads nothing of the target before the
test, finetune nothing of the source; the occipital alpha that drives 'Cuneus' is on both
caps, so a ridge model trained on the source predicts the target's test scans; a model
refuses a recording that lacks one of its channels, naming it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic import CH, SCANS, outputs, synthetic_store

from neurobolt import transfer as tf
from neurobolt.datasets import dataset_views, run_key, split_key
from neurobolt.inference import load_checkpoint
from neurobolt.jobs import evaluate as evaluate_job
from neurobolt.jobs import train as train_job
from neurobolt.jobs import train_transfer as transfer_job
from neurobolt.splits import scan_subject

#: The second site's cap: O1/O2 (the alpha channels) and CZ shared, FZ missing, PZ new.
CAP_B = ["O1", "O2", "CZ", "PZ"]
TARGET_SCANS = [
    "sub-01_ses-01_task-auditory",
    "sub-01_ses-02_task-auditory",
    "sub-02_task-auditory",
    "sub-03_task-auditory",
    "sub-04_task-auditory",
    "sub-05_task-auditory",
]
TRAIN = {"epochs": 1, "warmup_epochs": 0, "batch_size_inter": 32, "inter_counts": [3, 1, 1]}
GEN = {"target_counts": [3, 1, 2]}
MODEL = {"preset": "tiny", "drop_path": 0.0}


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """(store, key) of the source (paper-like cap, TR 2.1) and target (CAP_B, TR 2.0)."""
    root = tmp_path_factory.mktemp("sites")
    source = [
        (synthetic_store(root / "a" / f"{n}_windows.h5", seed), run_key("rest", n))
        for seed, n in enumerate(SCANS)
    ]
    target = [
        (
            synthetic_store(root / "b" / f"{n}_windows.h5", 100 + seed, ch_names=CAP_B, tr=2.0),
            run_key("auditory", n),
        )
        for seed, n in enumerate(TARGET_SCANS)
    ]
    return [(str(p), k) for p, k in source], [(str(p), k) for p, k in target]


def _params(sites, analysis, model_name="ridge_bandpower"):
    source, target = sites
    return {
        "analysis": analysis,
        "roi": "Cuneus",
        "model_name": model_name,
        "model": MODEL,
        "train": TRAIN,
        "generalisation": GEN,
        "source_label": "rest",
        "target_label": "auditory",
        "source_scans": [k for _, k in source],
        "target_scans": [k for _, k in target],
    }


def _inputs(sites):
    source, target = sites
    return {"source": [p for p, _ in source], "target": [p for p, _ in target]}


def test_roles_test_only_on_the_target_test_scans():
    source = {"a1": "train", "a2": "val", "a3": "test"}
    target = {"b1": "train", "b2": "val", "b3": "test"}
    expected = {
        "zero_shot": ["train", "val", "unused", "unused", "unused", "test"],
        "finetune": ["unused", "unused", "unused", "train", "val", "test"],
        "joint": ["train", "unused", "unused", "train", "val", "test"],
    }
    for analysis, uses in expected.items():
        roles = tf.scan_roles(source, target, analysis=analysis)
        assert [roles[s] for s in ["a1", "a2", "a3", "b1", "b2", "b3"]] == uses
    with pytest.raises(ValueError, match="both the source and the target"):
        tf.scan_roles({"x": "train"}, {"x": "test"}, analysis="joint")
    with pytest.raises(ValueError, match="unknown cross-dataset analysis"):
        tf.scan_roles(source, target, analysis="inter")


def test_common_channels_by_name_and_refusals():
    paper = ["FP1", "FZ", "O1", "O2", "TP9"]
    other = ["o2", "O1", "FP1", "CP5"]
    assert tf.common_channels(paper, other) == ["FP1", "O1", "O2"]  # the source's order
    assert tf.common_channels(paper, other, configured=["O2", "O1"]) == ["O2", "O1"]
    with pytest.raises(ValueError, match=r"\['TP9'\] are not in the target"):
        tf.common_channels(paper, other, configured=["O1", "TP9"])
    with pytest.raises(ValueError, match="share no electrode"):
        tf.common_channels(["FZ"], ["CZ"])


@pytest.mark.parametrize("analysis", tf.ANALYSES)
def test_splits_are_grouped_and_training_never_reads_the_target_test(
    sites, tmp_path, reads, analysis
):
    source, target = sites
    out = outputs(tmp_path)
    # ridge has no weights to start from: its finetune refits on the target alone
    record = transfer_job.run(_inputs(sites), out, _params(sites, analysis))
    table = pd.read_csv(out["splits"], sep="\t", dtype={"subject": str})
    valid = table[table["split"] != "invalid"]
    # one split per scan within its dataset, and a subject's scans in one split
    for dataset, rows in valid.groupby("dataset"):
        per_subject = rows.groupby("subject")["dataset_split"].nunique()
        assert per_subject.max() == 1, dataset
    assert (valid.groupby("scan")["split"].nunique() == 1).all()
    test_scans = set(valid.loc[valid["split"] == "test", "scan"])
    b_test = set(
        valid.loc[(valid["dataset"] == "target") & (valid["dataset_split"] == "test"), "scan"]
    )
    assert test_scans == b_test and len(b_test) == 2
    read_paths = {path for path, _ in reads}
    path_of = dict((k, p) for p, k in [*source, *target])
    assert not {path_of[s] for s in test_scans} & read_paths  # test never read in training
    a_paths = {p for p, _ in source}
    b_paths = {p for p, _ in target}
    if analysis == "zero_shot":
        assert read_paths <= a_paths  # B unseen before the test
    elif analysis == "finetune":
        assert read_paths <= b_paths
    else:
        assert read_paths & a_paths and read_paths & b_paths
    assert record["ch_names"] == ["O1", "O2", "CZ"]  # both caps' electrodes only
    reads.clear()
    metrics = evaluate_job.run(
        {
            "model": out["model"],
            "splits": out["splits"],
            "stores": [p for p, _ in [*source, *target]],
        },
        out,
        {"cfg": {"n_permutations": 50}, "scans": [k for _, k in [*source, *target]]},
    )
    assert set(metrics["scans"]) == test_scans
    assert {path for path, _ in reads} == {path_of[s] for s in test_scans}
    assert metrics["analysis"] == analysis
    # the alpha rhythm drives Cuneus on both caps: ridge transfers across sites
    assert np.mean([s["r"] for s in metrics["scans"].values()]) > 0.5


def test_finetune_starts_from_the_zero_shot_weights(sites, tmp_path):
    zero = outputs(tmp_path / "zero")
    fine = outputs(tmp_path / "fine")
    for o in (zero, fine):
        o["model"].parent.mkdir(parents=True)
    with pytest.warns(UserWarning, match="random init"):
        transfer_job.run(_inputs(sites), zero, _params(sites, "zero_shot", "neurobolt"))
    params = _params(sites, "finetune", "neurobolt")
    params["generalisation"] = {**GEN, "finetune": {"epochs": 1, "lr": 1e-5}}
    record = transfer_job.run({**_inputs(sites), "init": zero["model"]}, fine, params)
    assert record["init"] == str(zero["model"])
    start = load_checkpoint(zero["model"])["state_dict"]
    moved = [
        float((record["state_dict"][k] - v).abs().max())
        for k, v in start.items()
        if v.is_floating_point()
    ]
    assert 0 < max(moved) < 0.05  # trained further from there, at a small lr


def test_a_model_refuses_a_recording_without_its_channels(sites, tmp_path):
    source, target = sites
    out = outputs(tmp_path)
    params = {
        "analysis": "intra",
        "roi": "Cuneus",
        "model_name": "ridge_bandpower",
        "model": MODEL,
        "train": TRAIN,
    }
    train_job.run({"stores": [source[0][0]]}, out, params)  # on the paper-like cap (has FZ)
    assert load_checkpoint(out["model"])["ch_names"] == CH
    table = pd.read_csv(out["splits"], sep="\t")
    table["scan"] = scan_subject(target[0][0])[0]  # pretend the rows are B's
    table.to_csv(out["splits"], sep="\t", index=False)
    with pytest.raises(ValueError, match=r"has no channel\(s\) \['FZ'\] that the model needs"):
        evaluate_job.run(
            {"model": out["model"], "splits": out["splits"], "stores": [target[0][0]]},
            out,
            {"cfg": {"n_permutations": 10}},
        )


def test_dataset_views_merge_sections_and_refuse_bad_entries():
    config = {
        "results_dir": "r",
        "bids": {"root": "a", "tasks": []},
        "eeg": {"volume_marker": "R128", "gradient": {"window": 30, "align": True}},
        "datasets": [
            {"label": "rest", "bids": {"root": "data/rest"}},
            {
                "label": "task",
                "bids": {"root": "data/task", "tasks": ["auditory"]},
                "eeg": {"volume_marker": "V", "gradient": {"window": 20}},
            },
        ],
    }
    views = dataset_views(config)
    assert list(views) == ["rest", "task"]
    assert views["task"]["eeg"] == {"volume_marker": "V", "gradient": {"window": 20, "align": True}}
    assert views["rest"]["eeg"]["volume_marker"] == "R128" and "datasets" not in views["rest"]
    assert views["task"]["bids"] == {"root": "data/task", "tasks": ["auditory"]}
    assert dataset_views({"bids": {"root": "x"}}) == {"": {"bids": {"root": "x"}}}
    assert split_key(run_key("task", "sub-01_task-a")) == ("task", "sub-01_task-a")
    assert split_key("sub-01_task-a") == ("", "sub-01_task-a")
    bad = [
        ({"label": "a-b"}, "letters and digits"),
        ({"label": "other", "train": {}}, "unknown key"),
    ]
    for entry, message in bad:
        with pytest.raises(ValueError, match=message):
            dataset_views({**config, "datasets": [config["datasets"][0], entry]})
    with pytest.raises(ValueError, match="used twice"):
        dataset_views({**config, "datasets": [config["datasets"][0]] * 2})
    same_root = [config["datasets"][0], {"label": "b", "bids": {"root": "data/rest"}}]
    with pytest.raises(ValueError, match="same bids.root"):
        dataset_views({**config, "datasets": same_root})


def test_generalisation_table_puts_the_analyses_side_by_side():
    rows = [
        (a, f"b/s{i}", roi, "neurobolt", r + 0.1 * i)
        for a, r in (("zero_shot", 0.3), ("finetune", 0.4), ("joint", 0.5))
        for roi in ("Cuneus",)
        for i in range(2)
    ]
    metrics = pd.DataFrame(rows, columns=["analysis", "scan", "roi", "model", "r"])
    table = tf.transfer_table(metrics)
    assert list(table.columns) == ["model", "roi", "zero_shot", "finetune", "joint", "n_test_scans"]
    assert table.loc[0, ["zero_shot", "finetune", "joint"]].tolist() == pytest.approx(
        [0.35, 0.45, 0.55]
    )
    assert table.loc[0, "n_test_scans"] == 2


def test_source_and_target_default_to_the_first_two_datasets():
    assert tf.source_target({}, ["rest", "task", "other"]) == ("rest", "task")
    assert tf.source_target({"source": "task"}, ["rest", "task"]) == ("task", "rest")
    with pytest.raises(ValueError, match="generalisation.target 'nope' is not a dataset label"):
        tf.source_target({"target": "nope"}, ["rest", "task"])
    with pytest.raises(ValueError, match="the same dataset"):
        tf.source_target({"source": "rest", "target": "rest"}, ["rest", "task"])
