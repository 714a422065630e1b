"""Leak-free train / validation / test splits.

Intra-subject (one scan): contiguous blocks in time, test last, validation
before it, training first, with a gap of ``ceil(gap_s / TR)`` volumes between
the blocks; a training window whose EEG overlaps a validation or test
window's EEG is excluded as well. Inter-subject (many scans): whole scans,
grouped by subject so that no subject straddles two sets, drawn with a fixed
seed or read from an explicit table. Every split is written to a TSV next to
the model so anyone can audit it.

Every split of the workflow is computed here, by one function each:
:func:`intra_split` / :func:`intra_kfold_split` (one scan in time),
:func:`inter_scan_split` (whole scans grouped by subject; :func:`held_out_scans` names
its test scans from the run names), and :func:`make_splits` (the split table of a
training job, over its stores); :func:`datasets_for` reads one split's rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import config as nbconfig
from .provenance import write_text

SETS = ("train", "val", "test")


def intra_split(
    onsets: np.ndarray,
    valid: np.ndarray,
    *,
    tr: float,
    sfreq: float,
    window_s: float,
    fractions: Sequence[float] | None = None,
    gap_s: float | None = None,
    exclude_overlap: bool = True,
) -> np.ndarray:
    """Label every volume row of one scan ``train``, ``val``, ``test``, ``gap`` or ``invalid``.

    Parameters
    ----------
    onsets : ndarray of int, shape (n_volumes,)
        EEG sample of each volume's onset (the store's ``/onsets``), in time order.
    valid : ndarray of bool, shape (n_volumes,)
        Whether a full window of EEG precedes the onset.
    tr, sfreq, window_s : float
        Repetition time (s), EEG rate (Hz) and window length (s).
    fractions : (float, float, float) | None
        Train, validation and test shares of the valid volumes. Validation and test
        get their share; training gets what is left after both gaps. None:
        ``train.intra_fractions``'s default.
    gap_s : float | None
        Seconds between the blocks; ``ceil(gap_s / tr)`` volumes are left out there.
        None: ``train.gap_s``'s default.
    exclude_overlap : bool
        The overlap rule (default on): a training window whose EEG overlaps a
        validation or test window, and a validation window whose EEG overlaps a test
        window, become ``gap``. Off only for positive controls of the leakage checks.

    Returns
    -------
    labels : ndarray of str, shape (n_volumes,)
        ``invalid`` (no full window), ``gap`` (between blocks, or a training window
        whose EEG overlaps a validation/test window), or the set name.
    """
    if fractions is None:
        fractions = tuple(nbconfig.defaults("train.intra_fractions"))
    if gap_s is None:
        gap_s = nbconfig.defaults("train.gap_s")
    onsets = np.asarray(onsets)
    valid = np.asarray(valid, dtype=bool)
    if not np.all(np.diff(onsets) > 0):
        raise ValueError("volume onsets must increase")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6) or min(fractions) < 0:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    rows = np.flatnonzero(valid)
    n = rows.size
    gap = math.ceil(gap_s / tr - 1e-9)
    n_test = int(round(fractions[2] * n))
    n_val = int(round(fractions[1] * n))
    n_train = n - n_test - n_val - 2 * gap
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(
            f"{n} valid volumes are too few for a {fractions} split with {gap}-volume gaps"
            f" ({gap_s} s at TR {tr} s): {n_train} train, {n_val} val, {n_test} test"
        )
    labels = np.full(onsets.shape, "invalid", dtype=object)
    labels[rows] = "gap"
    labels[rows[:n_train]] = "train"
    labels[rows[n_train + gap : n_train + gap + n_val]] = "val"
    labels[rows[n - n_test :]] = "test"
    if exclude_overlap:
        window = int(round(window_s * sfreq))
        _drop_overlapping(labels, onsets, window, "train", ("val", "test"))
        _drop_overlapping(labels, onsets, window, "val", ("test",))
        if not np.any(labels == "val"):
            raise ValueError(
                f"every validation window overlaps a test window ({n_val} validation volumes,"
                f" {window_s} s windows, gap {gap_s} s): lengthen the scan or the gap"
            )
    return labels.astype(str)


def intra_kfold_split(
    onsets: np.ndarray,
    valid: np.ndarray,
    *,
    tr: float,
    sfreq: float,
    window_s: float,
    folds: int | None = None,
    val_fraction: float | None = None,
    gap_s: float | None = None,
    exclude_overlap: bool = True,
) -> np.ndarray:
    """Blocked k-fold labels of one scan: each fold tests one contiguous block.

    The valid volumes are cut into ``folds`` contiguous test blocks of (nearly) equal
    length, so that together the folds test the whole scan. In fold ``k`` the
    validation block (``val_fraction`` of the valid volumes) lies just before the test
    block (just after it for the first fold), ``ceil(gap_s / tr)`` volumes of gap
    separate test, validation and training on every side, training is everything else
    (before and after), and the overlap rule of :func:`intra_split` applies.

    Parameters
    ----------
    onsets, valid, tr, sfreq, window_s, gap_s, exclude_overlap
        As :func:`intra_split`.
    folds : int | None
        Number of folds (test blocks), at least 2. None: ``train.intra_folds``'s default.
    val_fraction : float | None
        Validation share of the valid volumes in every fold. None: the validation share
        of ``train.intra_fractions``'s default.

    Returns
    -------
    labels : ndarray of str, shape (folds, n_volumes)
        One row of labels per fold, as :func:`intra_split`.
    """
    if folds is None:
        folds = nbconfig.defaults("train.intra_folds")
    if val_fraction is None:
        val_fraction = nbconfig.defaults("train.intra_fractions")[1]
    if gap_s is None:
        gap_s = nbconfig.defaults("train.gap_s")
    onsets = np.asarray(onsets)
    valid = np.asarray(valid, dtype=bool)
    if folds < 2:
        raise ValueError(f"blocked k-fold needs at least 2 folds, got {folds}")
    rows = np.flatnonzero(valid)
    n = rows.size
    gap = math.ceil(gap_s / tr - 1e-9)
    n_val = int(round(val_fraction * n))
    edges = np.linspace(0, n, folds + 1).round().astype(int)
    out = np.full((folds, onsets.size), "invalid", dtype=object)
    window = int(round(window_s * sfreq))
    for k in range(folds):
        a, b = edges[k], edges[k + 1]
        if k == 0:
            val = (b + gap, b + gap + n_val)
        else:
            val = (a - gap - n_val, a - gap)
        n_train = n - (b - a) - n_val - (3 if 0 < k < folds - 1 else 2) * gap
        if min(n_val, b - a, n_train) < 1 or val[0] < 0 or val[1] > n:
            raise ValueError(
                f"{n} valid volumes are too few for {folds} folds with {n_val} validation"
                f" volumes and {gap}-volume gaps ({gap_s} s at TR {tr} s)"
            )
        labels = out[k]
        labels[rows] = "train"
        lo, hi = min(a, val[0]) - gap, max(b, val[1]) + gap
        labels[rows[max(lo, 0) : min(hi, n)]] = "gap"
        labels[rows[a:b]] = "test"
        labels[rows[val[0] : val[1]]] = "val"
        if k == 0:  # the gap between test and validation
            labels[rows[b : b + gap]] = "gap"
        else:
            labels[rows[a - gap : a]] = "gap"
        if exclude_overlap:
            _drop_overlapping(labels, onsets, window, "train", ("val", "test"))
            _drop_overlapping(labels, onsets, window, "val", ("test",))
    return out.astype(str)


def fold_paths(model_path: str | os.PathLike, n_folds: int) -> list[Path]:
    """``model.fold-K.pt`` next to ``model.pt``: the models of the blocked k-fold folds."""
    model_path = Path(model_path)
    return [model_path.with_name(f"{model_path.stem}.fold-{k}.pt") for k in range(n_folds)]


def _drop_overlapping(labels, onsets, window: int, kept: str, held: Sequence[str]) -> None:
    """Relabel ``gap`` every ``kept`` window sharing EEG samples with a ``held`` window."""
    held_out = onsets[np.isin(labels, held)]
    for i in np.flatnonzero(labels == kept):
        if np.any((onsets[i] - window < held_out) & (onsets[i] > held_out - window)):
            labels[i] = "gap"


def inter_split(
    scans: pd.DataFrame,
    *,
    counts: Sequence[int] | None = None,
    fractions: Sequence[float] | None = None,
    seed: int | None = None,
) -> pd.Series:
    """Assign whole scans to train / val / test, keeping every subject in one set.

    Parameters
    ----------
    scans : DataFrame
        One row per scan with columns ``scan`` and ``subject``.
    counts : (int, int, int) | None
        Wanted scans per set (e.g. 18, 5, 6 as in the paper); they must add up to the
        number of scans. ``None`` uses ``fractions``.
    fractions : (float, float, float) | None
        Shares of scans per set when ``counts`` is None (None:
        ``train.inter_fractions``'s default).
    seed : int | None
        Seed of the subject shuffle (None: ``train.seed``'s default).

    Returns
    -------
    split : Series
        Indexed by scan, values in ``train``, ``val``, ``test``.

    Notes
    -----
    Subjects are shuffled with ``seed`` and placed, largest first, into the set
    that still lacks the most scans. With subjects of several scans the
    counts may be missed by one where no grouping reaches them exactly.
    """
    if fractions is None:
        fractions = nbconfig.defaults("train.inter_fractions")
    if seed is None:
        seed = nbconfig.defaults("train.seed")
    n = len(scans)
    if counts is None:
        raw = np.asarray(fractions, float) * n
        counts = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - counts))[: n - counts.sum()]:
            counts[i] += 1
    counts = [int(c) for c in counts]
    if sum(counts) != n:
        raise ValueError(f"split counts {counts} do not add up to the {n} scans")
    sizes = scans.groupby("subject")["scan"].count()
    if sizes.size < 3 and min(counts) > 0:
        raise ValueError(f"{sizes.size} subject(s) cannot fill three subject-disjoint sets")
    rng = np.random.default_rng(seed)
    order = list(sizes.index[rng.permutation(sizes.size)])
    order.sort(key=lambda s: -sizes[s])  # stable: shuffled within equal sizes
    need = dict(zip(SETS, counts, strict=True))
    assign = {}
    for subject in order:
        fits = [s for s in SETS if need[s] >= sizes[subject]]
        target = max(fits or SETS, key=lambda s: (need[s], -SETS.index(s)))
        assign[subject] = target
        need[target] -= sizes[subject]
    return pd.Series(
        [assign[s] for s in scans["subject"]], index=scans["scan"].to_numpy(), name="split"
    )


def read_split_table(path: str | os.PathLike, scans: Sequence[str]) -> pd.Series:
    """Read an explicit inter-subject split (TSV with columns ``scan`` and ``split``).

    Every scan must be listed once, with a set name from ``train``, ``val``, ``test``.
    """
    table = pd.read_csv(path, sep="\t", dtype=str)
    if not {"scan", "split"} <= set(table.columns):
        raise ValueError(f"{path}: needs columns 'scan' and 'split', has {list(table.columns)}")
    bad = sorted(set(table["split"]) - set(SETS))
    if bad:
        raise ValueError(f"{path}: unknown set name(s) {bad}; use train, val or test")
    dup = table["scan"][table["scan"].duplicated()].tolist()
    missing = sorted(set(scans) - set(table["scan"]))
    if dup or missing:
        raise ValueError(f"{path}: scans listed twice {dup}; scans not listed {missing}")
    return table.set_index("scan")["split"].loc[list(scans)]


def check_grouped(split: pd.Series, subjects: Mapping[str, str]) -> None:
    """Raise if any subject has scans in two sets."""
    frame = pd.DataFrame({"split": split, "subject": [subjects[s] for s in split.index]})
    mixed = frame.groupby("subject")["split"].nunique()
    if (mixed > 1).any():
        raise ValueError(f"subjects in more than one set: {sorted(mixed.index[mixed > 1])}")


def write_split(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a split table as TSV (atomically)."""
    return write_text(path, table.to_csv(sep="\t", index=False))


# --------------------------------------------------------------------------------------------
# The splits of the workflow's jobs
# --------------------------------------------------------------------------------------------


def scan_subject(store_path: str | os.PathLike) -> tuple[str, str]:
    """``(scan, subject)`` from a store's file name ``sub-XX[_ses-YY]..._windows.h5``."""
    scan = Path(store_path).name.removesuffix("_windows.h5")
    subject = scan.split("_")[0].removeprefix("sub-")
    return scan, subject


def inter_scan_split(
    scans: Sequence[tuple[str, str]],
    *,
    counts: Sequence[int] | None = None,
    fractions: Sequence[float] | None = None,
    seed: int | None = None,
    split_file: str | os.PathLike | None = None,
) -> pd.Series:
    """The inter-subject split of whole scans: ``Series`` scan -> ``train``/``val``/``test``.

    The one function every inter-subject split goes through (training, the cross-dataset
    analyses, the held-out recordings of ``predict`` and ``neurobolt validate``).

    Parameters
    ----------
    scans : sequence of (str, str)
        ``(scan, subject)`` pairs (:func:`scan_subject`).
    counts, fractions, seed
        The draw, see :func:`inter_split` (``train.inter_counts``, ``inter_fractions``,
        ``seed``; None: their defaults).
    split_file : path-like | None
        An explicit split table (``train.inter_split_file``), read instead of the draw.

    Raises
    ------
    ValueError
        When the draw or the table does not fit the scans, or a subject straddles two sets.
    """
    frame = pd.DataFrame(list(scans), columns=["scan", "subject"])
    if split_file:
        by_scan = read_split_table(split_file, frame["scan"])
    else:
        by_scan = inter_split(frame, counts=counts, fractions=fractions, seed=seed)
    check_grouped(by_scan, dict(scans))
    return by_scan


def inter_split_of(config) -> dict:
    """:func:`inter_scan_split`'s keywords from a :class:`~neurobolt.train.TrainConfig`."""
    return {
        "counts": config.inter_counts,
        "fractions": config.inter_fractions,
        "seed": config.seed,
        "split_file": config.inter_split_file,
    }


def held_out_scans(scans: Sequence[str], *, train_section: Mapping | None) -> list[str]:
    """The inter-subject test scans: the split ``train_inter`` makes, from the scan names.

    Parameters
    ----------
    scans : sequence of str
        Run names (``sub-XX[_ses-YY]_...``).
    train_section : mapping | None
        The ``train`` config section (seed, counts, fractions or split file).

    Returns
    -------
    test : list of str
        The scans no inter-subject model trains or validates on.
    """
    train = nbconfig.section("train", train_section)
    pairs = [scan_subject(f"{s}_windows.h5") for s in sorted(scans)]
    split = inter_scan_split(
        pairs,
        counts=train["inter_counts"],
        fractions=train["inter_fractions"],
        seed=train["seed"],
        split_file=train["inter_split_file"],
    )
    return [s for s in split.index if split[s] == "test"]


def make_splits(
    stores: Sequence[str | os.PathLike],
    *,
    analysis: str,
    config,
    scans: Sequence[str] | None = None,
    roles: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Split tables: one row per store row (``scan, subject, row, volume, onset_s, split``).

    Parameters
    ----------
    stores : sequence of path-like
        The window stores.
    analysis : str
        ``intra`` (each store split in time), ``inter`` (whole scans, grouped by subject),
        or a cross-dataset analysis, whose whole-scan ``roles`` are given.
    config : TrainConfig
        The split settings (:class:`neurobolt.train.TrainConfig`).
    scans : sequence of str | None
        Each store's scan key (the workflow's run key, ``dataset/name`` when several
        datasets are configured); None: the store's file name.
    roles : mapping | None
        Scan key -> ``train``/``val``/``test``/``unused`` for a cross-dataset analysis.

    Returns
    -------
    table : DataFrame
        With ``train.intra_scheme: blocked_kfold``, every row once per fold, with a
        ``fold`` column (see :func:`intra_kfold_split`).
    """
    from .store import WindowStore

    named = [scan_subject(p) for p in stores]
    keys = list(scans) if scans is not None else [scan for scan, _ in named]
    if analysis == "inter":
        by_name = inter_scan_split(named, **inter_split_of(config))
        by_scan = pd.Series([by_name[scan] for scan, _ in named], index=keys)
    elif analysis != "intra":
        if roles is None:
            raise ValueError(f"analysis {analysis!r} needs the scans' roles")
        by_scan = pd.Series(roles)
    kfold = analysis == "intra" and config.intra_scheme == "blocked_kfold"
    rows = []
    for path, scan, (_, subject) in zip(stores, keys, named, strict=True):
        with WindowStore(path) as store:
            timing = {"tr": store.tr, "sfreq": store.sfreq, "window_s": store.window_s}
            if kfold:
                folds = intra_kfold_split(
                    store.onsets,
                    store.valid,
                    **timing,
                    folds=config.intra_folds,
                    val_fraction=config.intra_fractions[1],
                    gap_s=config.gap_s,
                )
            elif analysis == "intra":
                folds = [
                    intra_split(
                        store.onsets,
                        store.valid,
                        **timing,
                        fractions=config.intra_fractions,
                        gap_s=config.gap_s,
                    )
                ]
            else:
                folds = [np.where(store.valid, by_scan[scan], "invalid")]
            for fold, labels in enumerate(folds):
                rows += [
                    {
                        "scan": scan,
                        "subject": subject,
                        "row": row,
                        "volume": int(store.volumes[row]),
                        "onset_s": float(store.onsets[row] / store.sfreq),
                        "split": str(label),
                        **({"fold": fold} if kfold else {}),
                    }
                    for row, label in enumerate(labels)
                ]
    return pd.DataFrame(rows)


def datasets_for(stores, table, split: str, *, rois, scans=None, channels=None):
    """A WindowDataset of one split's rows over the stores.

    ``scans`` are the stores' keys in ``table["scan"]`` (default: their file names);
    ``channels`` the electrodes to read, in order (default: the stores' own).
    """
    from .store import WindowDataset

    keys = list(scans) if scans is not None else [scan_subject(p)[0] for p in stores]
    indices = [
        table.loc[(table["scan"] == key) & (table["split"] == split), "row"].to_numpy()
        for key in keys
    ]
    keep = [i for i, rows in enumerate(indices) if rows.size]
    return WindowDataset(
        [stores[i] for i in keep], [indices[i] for i in keep], rois=rois, channels=channels
    )
