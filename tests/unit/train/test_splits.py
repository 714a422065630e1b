"""Splits never share volumes, keep their gaps, never overlap in EEG, never split a subject."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurobolt import splits

SFREQ, TR, WINDOW_S = 200.0, 2.1, 16.0
STEP = int(TR * SFREQ)


def _scan(n=171, first=2000):
    onsets = first + STEP * np.arange(n)
    return onsets, onsets - 3200 >= 0


def test_intra_split_blocks_gaps_and_shares():
    onsets, valid = _scan()
    labels = splits.intra_split(onsets, valid, tr=TR, sfreq=SFREQ, window_s=WINDOW_S)
    n_valid = valid.sum()
    assert (labels[~valid] == "invalid").all()
    train, val, test = (np.flatnonzero(labels == s) for s in splits.SETS)
    assert len(val) == round(0.1 * n_valid) and len(test) == round(0.1 * n_valid)
    # Contiguous, ordered in time: train < val < test.
    for block in (train, val, test):
        assert np.all(np.diff(block) == 1)
    assert train.max() < val.min() and val.max() < test.min()
    gap = int(np.ceil(20 / TR))  # 10 volumes
    assert val.min() - train.max() - 1 >= gap
    assert test.min() - val.max() - 1 >= gap
    assert len(set(train) | set(val) | set(test)) == len(train) + len(val) + len(test)


@pytest.mark.parametrize("gap_s", [0.0, 4.2, 20.0])
def test_no_training_window_overlaps_a_held_out_window(gap_s):
    onsets, valid = _scan(120)
    labels = splits.intra_split(onsets, valid, tr=TR, sfreq=SFREQ, window_s=WINDOW_S, gap_s=gap_s)
    held = onsets[np.isin(labels, ("val", "test"))]
    for t in onsets[labels == "train"]:
        # window [t - 3200, t) vs [h - 3200, h): disjoint
        assert np.all((t <= held - 3200) | (t - 3200 >= held))
    test = onsets[labels == "test"]
    for t in onsets[labels == "val"]:  # validation windows stay off test windows too
        assert np.all((t <= test - 3200) | (t - 3200 >= test))
    if gap_s < 16:  # the overlap rule, not the gap, removed windows here
        assert (labels == "gap").sum() > 2 * np.ceil(gap_s / TR)
        # without the rule (positive controls only) windows do overlap
        off = splits.intra_split(
            onsets, valid, tr=TR, sfreq=SFREQ, window_s=WINDOW_S, gap_s=gap_s, exclude_overlap=False
        )
        assert (off == "gap").sum() == 2 * np.ceil(gap_s / TR)
        first_test = onsets[off == "test"].min()
        assert onsets[off == "val"].max() > first_test - 3200


@pytest.mark.parametrize("gap_s", [20.0, 0.0])
def test_blocked_kfold_tests_every_volume_once_with_gaps_and_no_overlap(gap_s):
    onsets, valid = _scan(171)
    labels = splits.intra_kfold_split(
        onsets, valid, tr=TR, sfreq=SFREQ, window_s=WINDOW_S, folds=5, gap_s=gap_s
    )
    assert labels.shape == (5, 171)
    test = labels == "test"
    # every valid volume is tested exactly once, in 5 contiguous blocks of ~equal length
    assert (test.sum(0) == valid).all()
    sizes = test.sum(1)
    assert sizes.max() - sizes.min() <= 1
    gap = int(np.ceil(gap_s / TR))
    for fold in labels:
        for name in ("test", "val"):
            block = np.flatnonzero(fold == name)
            assert block.size and np.all(np.diff(block) == 1)
        t, v, tr_ = (np.flatnonzero(fold == n) for n in ("test", "val", "train"))
        # gaps between test/val and any training volume, on both sides
        for held in (t, v):
            assert np.min(np.abs(tr_[:, None] - held[None, :])) > gap
        assert np.min(np.abs(v[:, None] - t[None, :])) > gap
        held = onsets[fold == "test"]
        for t_on in onsets[(fold == "train") | (fold == "val")]:  # the overlap rule
            assert np.all((t_on <= held - 3200) | (t_on - 3200 >= held))
        assert (fold[~valid] == "invalid").all()
    with pytest.raises(ValueError, match="too few"):
        splits.intra_kfold_split(
            onsets[:40], valid[:40], tr=TR, sfreq=SFREQ, window_s=WINDOW_S, folds=5
        )


def test_too_short_scans_are_refused():
    onsets, valid = _scan(25)  # 22 valid volumes: 2 x 10 gap volumes leave no room
    with pytest.raises(ValueError, match="too few"):
        splits.intra_split(onsets, valid, tr=TR, sfreq=SFREQ, window_s=WINDOW_S)


def _scans():
    # 22 subjects, 7 with two scans: 29 scans as in the paper.
    rows = []
    for s in range(22):
        for ses in range(2 if s < 7 else 1):
            rows.append({"scan": f"sub-{s:02d}_ses-{ses + 1:02d}", "subject": f"{s:02d}"})
    return pd.DataFrame(rows)


def test_inter_split_is_grouped_by_subject_seeded_and_counted():
    scans = _scans()
    split = splits.inter_split(scans, counts=(18, 5, 6), seed=3)
    subjects = dict(zip(scans["scan"], scans["subject"], strict=True))
    splits.check_grouped(split, subjects)
    counts = split.value_counts()
    assert abs(counts["train"] - 18) <= 1 and abs(counts["val"] - 5) <= 1
    assert counts.sum() == 29
    again = splits.inter_split(scans, counts=(18, 5, 6), seed=3)
    pd.testing.assert_series_equal(split, again)
    other = splits.inter_split(scans, counts=(18, 5, 6), seed=4)
    assert not split.equals(other)
    with pytest.raises(ValueError, match="do not add up"):
        splits.inter_split(scans, counts=(18, 5, 5))


def test_check_grouped_catches_a_straddling_subject():
    split = pd.Series({"a1": "train", "a2": "test", "b1": "val"})
    with pytest.raises(ValueError, match=r"\['a'\]"):
        splits.check_grouped(split, {"a1": "a", "a2": "a", "b1": "b"})


def test_explicit_split_table(tmp_path):
    path = tmp_path / "split.tsv"
    pd.DataFrame({"scan": ["x", "y", "z"], "split": ["train", "val", "test"]}).to_csv(
        path, sep="\t", index=False
    )
    assert splits.read_split_table(path, ["z", "x"]).tolist() == ["test", "train"]
    with pytest.raises(ValueError, match=r"not listed \['w'\]"):
        splits.read_split_table(path, ["x", "w"])
    pd.DataFrame({"scan": ["x"], "split": ["holdout"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match="unknown set name"):
        splits.read_split_table(path, ["x"])
