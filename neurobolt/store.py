"""The window store: one compact HDF5 file per run, read lazily for training.

No window is copied. A store holds the continuous cleaned EEG once (200 Hz,
float32, chunked along time), the sample index of every kept BOLD volume's
onset, the ROI targets and a validity flag::

    /eeg      float32 (n_channels, n_times)   cleaned EEG in volts
    /onsets   int64   (n_volumes,)            sample of each volume's onset in /eeg
    /volumes  int64   (n_volumes,)            index of each row in the BOLD run
    /targets  float32 (n_volumes, n_rois)     normalised ROI signals
    /valid    bool    (n_volumes,)            a full window of EEG precedes the onset
    attrs: sfreq, window_s, ch_names, roi_names, tr, sources (JSON: file -> sha256),
           neurobolt_version, config_hash, schema_version, compression

Window ``i`` is ``/eeg[:, onsets[i] - window_s * sfreq : onsets[i]]``,
returned in µV/100 after per-channel demeaning (LaBraM's scaling) and shaped
``(n_channels, window_s, sfreq)`` for the models.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from . import config as nbconfig
from .provenance import atomic_path, provenance

logger = logging.getLogger("neurobolt.store")

SCHEMA_VERSION = 1
#: µV/100 per volt: LaBraM's input scaling (±100 µV -> ±1).
SCALE = 1e6 / 100.0
_DATASETS = {"eeg": 2, "onsets": 1, "volumes": 1, "targets": 2, "valid": 1}
_ATTRS = ("sfreq", "window_s", "ch_names", "roi_names", "tr", "sources", "neurobolt_version")


def open_h5(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open an HDF5 file with HDF5's file locking off.

    HDF5's locks (``fcntl``/``flock``) fail or hang on many NFS and Lustre mounts;
    stores are written once under a temporary name and moved into place, and only read
    afterwards, so no lock is needed.
    """
    return h5py.File(path, mode, locking=False)


class StoreError(ValueError):
    """A window store is missing, truncated, corrupted or does not follow the schema."""


class AlignmentError(ValueError):
    """Volume markers and BOLD volumes cannot be paired."""


# --------------------------------------------------------------------------------------------
# Alignment (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alignment:
    """Which EEG sample starts each kept BOLD volume, and which volumes can be used."""

    onsets: np.ndarray  # int64 sample per kept volume (may fall outside the EEG: then invalid)
    volumes: np.ndarray  # int64 BOLD volume index per row
    valid: np.ndarray  # bool: a full window of EEG precedes the onset
    marker_tr: float  # TR measured from the markers (s)
    note: str  # how markers were matched to volumes (for the log and the QC record)


def align_volumes(
    marker_samples: Sequence[int],
    *,
    n_times: int,
    sfreq: float,
    n_bold_volumes: int,
    kept_volumes: Sequence[int],
    tr: float,
    window_s: float | None = None,
    dummy_markers: int | None = None,
    tr_tolerance: float | None = None,
    names: str = "",
) -> Alignment:
    """Pair every kept BOLD volume with its EEG volume marker.

    Parameters
    ----------
    marker_samples : sequence of int
        Sample indices (at ``sfreq``) of the volume markers in the EEG.
    n_times : int
        Number of EEG samples.
    sfreq : float
        EEG sampling rate (Hz).
    n_bold_volumes : int
        Volumes in the BOLD run (before the fMRI stage dropped any).
    kept_volumes : sequence of int
        The BOLD volumes the fMRI stage kept (rows of its table), in order.
    tr : float
        Repetition time from the BOLD sidecar (s).
    window_s : float | None
        Seconds of EEG a volume needs before its onset to be valid; None takes
        ``store.window_s``'s default (:func:`neurobolt.config.defaults`).
    dummy_markers : int | None
        Markers sent for dummy scans that the scanner did not save, before the first
        saved volume; they are dropped. None takes ``store.dummy_markers``'s default.
    tr_tolerance : float | None
        Largest accepted relative difference between the marker interval and ``tr``;
        None takes ``store.tr_tolerance``'s default.
    names : str
        The files involved, for error messages.

    Returns
    -------
    alignment : Alignment

    Notes
    -----
    After dropping ``dummy_markers``, the markers must number exactly
    ``n_bold_volumes``, except when the EEG recording started late or ended
    early: then markers are missing at the start (the first marker lies
    within one TR of the start of the EEG) or at the end (the last one lies
    within one TR of its end), and the missing volumes are placed on the
    markers' regular grid, outside the EEG, hence invalid. Anything else
    (extra markers, gaps inside the recording, a TR mismatch) is refused.
    """
    if window_s is None:
        window_s = float(nbconfig.defaults("store.window_s"))
    if dummy_markers is None:
        dummy_markers = int(nbconfig.defaults("store.dummy_markers"))
    if tr_tolerance is None:
        tr_tolerance = float(nbconfig.defaults("store.tr_tolerance"))
    markers = np.asarray(marker_samples, dtype=np.int64)
    where = f" ({names})" if names else ""
    if dummy_markers:
        markers = markers[dummy_markers:]
    if markers.size < 2:
        raise AlignmentError(f"only {markers.size} volume marker(s) found{where}")
    intervals = np.diff(markers) / sfreq
    marker_tr = float(np.median(intervals))
    if abs(marker_tr - tr) > tr_tolerance * tr:
        raise AlignmentError(
            f"TR from the volume markers is {marker_tr:.4f} s but the BOLD sidecar says {tr} s"
            f" (more than {tr_tolerance:.0%} apart){where}; check the marker description and"
            " the sidecar's RepetitionTime."
        )
    irregular = np.flatnonzero(np.abs(intervals - tr) > tr_tolerance * tr)
    if irregular.size:
        times = ", ".join(
            f"{markers[i] / sfreq:.3f}-{markers[i + 1] / sfreq:.3f} s" for i in irregular[:5]
        )
        raise AlignmentError(
            f"{irregular.size} volume-marker interval(s) differ from the TR of {tr} s by more"
            f" than {tr_tolerance:.0%} (missing or extra markers){where}: {times}"
        )
    step = tr * sfreq
    n = markers.size
    note = "one marker per BOLD volume"
    if n > n_bold_volumes:
        raise AlignmentError(
            f"{n} volume markers (after {dummy_markers} dummy) but {n_bold_volumes} BOLD volumes"
            f"{where}; if the scanner sent markers for dummy scans, set store.dummy_markers"
            f" to {n - n_bold_volumes}."
        )
    if n < n_bold_volumes:
        missing = n_bold_volumes - n
        starts_late = markers[0] <= step
        ends_early = n_times - markers[-1] <= step
        if starts_late == ends_early:
            raise AlignmentError(
                f"{n} volume markers but {n_bold_volumes} BOLD volumes{where}, and the EEG"
                " does not start (or end) within one TR of the first (last) marker: markers"
                " are missing inside the recording."
            )
        extra = np.round(np.arange(1, missing + 1) * step).astype(np.int64)
        if starts_late:  # the volumes before the first marker lie before the EEG
            markers = np.concatenate([markers[0] - extra[::-1], markers])
            note = f"EEG started late: the first {missing} volume(s) have no EEG"
        else:  # the volumes after the last marker lie after the EEG
            markers = np.concatenate([markers, markers[-1] + extra])
            note = f"EEG ended early: the last {missing} volume(s) have no EEG"
    kept = np.asarray(kept_volumes, dtype=np.int64)
    if kept.size and (kept.min() < 0 or kept.max() >= n_bold_volumes):
        raise AlignmentError(f"kept volume indices outside 0..{n_bold_volumes - 1}{where}")
    onsets = markers[kept]
    window = int(round(window_s * sfreq))
    valid = (onsets - window >= 0) & (onsets <= n_times)
    return Alignment(onsets, kept, valid, marker_tr, note)


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


def write_store(
    path: str | os.PathLike,
    *,
    eeg: np.ndarray,
    sfreq: float,
    alignment: Alignment,
    targets: np.ndarray,
    ch_names: Sequence[str],
    roi_names: Sequence[str],
    tr: float,
    window_s: float | None = None,
    sources: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    compression: str | None = None,
) -> Path:
    """Write a window store atomically (temporary file, then :func:`os.replace`).

    Parameters
    ----------
    path : path-like
        The final ``<run>_windows.h5``.
    eeg : ndarray, shape (n_channels, n_times)
        Cleaned EEG in volts at ``sfreq``; stored as float32.
    sfreq : float
        Sampling rate (Hz), 200 for the models.
    alignment : Alignment
        From :func:`align_volumes`.
    targets : ndarray, shape (n_volumes, n_rois)
        ROI targets, one row per kept volume (in ``alignment.volumes`` order).
    ch_names, roi_names : sequence of str
        Channel and ROI names.
    tr : float
        Repetition time (s).
    window_s : float | None
        Window length (s); None takes ``store.window_s``'s default.
    sources : mapping
        Source file name -> SHA-256.
    config : mapping
        The configuration that produced the store (its hash is recorded).
    compression : None | "lzf" | "gzip"
        HDF5 filter for /eeg. ``None`` (the default) stores it uncompressed:
        cleaned float32 EEG barely compresses (see ``benchmarks/store.py``)
        and uncompressed chunks read fastest.

    Returns
    -------
    path : pathlib.Path
    """
    if window_s is None:
        window_s = float(nbconfig.defaults("store.window_s"))
    eeg = np.asarray(eeg, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.float32)
    n_ch, n_times = eeg.shape
    if len(ch_names) != n_ch:
        raise ValueError(f"{len(ch_names)} channel names for {n_ch} EEG channels")
    if targets.shape != (alignment.onsets.size, len(roi_names)):
        raise ValueError(
            f"targets shaped {targets.shape}, expected ({alignment.onsets.size}, {len(roi_names)})"
        )
    if not np.isfinite(eeg).all() or not np.isfinite(targets).all():
        raise ValueError(f"{path}: the EEG or the targets contain NaN or inf")
    chunk = (n_ch, max(1, min(n_times, int(round(window_s * sfreq)))))
    with atomic_path(path) as tmp, open_h5(tmp, "w") as f:
        f.create_dataset("eeg", data=eeg, chunks=chunk, compression=compression)
        f.create_dataset("onsets", data=alignment.onsets.astype(np.int64))
        f.create_dataset("volumes", data=alignment.volumes.astype(np.int64))
        f.create_dataset("targets", data=targets)
        f.create_dataset("valid", data=alignment.valid.astype(bool))
        f.attrs.update(
            {
                "sfreq": float(sfreq),
                "window_s": float(window_s),
                "ch_names": json.dumps(list(ch_names)),
                "roi_names": json.dumps(list(roi_names), ensure_ascii=False),
                "tr": float(tr),
                "marker_tr": float(alignment.marker_tr),
                "alignment": alignment.note,
                "sources": json.dumps(dict(sources or {})),
                "schema_version": SCHEMA_VERSION,
                "compression": compression or "none",
                **provenance(config),
            }
        )
    return Path(path)


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


def _invalid(path, problem) -> StoreError:
    return StoreError(
        f"{path}: {problem}. The window store is unusable; delete it and rerun the workflow"
        " to rebuild it."
    )


class WindowStore:
    """Read windows from one store; validates the file when opened.

    Use as a context manager::

        with WindowStore(path) as store:
            x, y = store.window(store.valid_indices()[0])
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self.open()

    def open(self) -> WindowStore:
        """Open (or reopen) the file and check it against the schema."""
        if self._file is not None:
            return self
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such window store; run the `windows` rule")
        try:
            f = open_h5(self.path, "r")
        except OSError as err:
            raise _invalid(self.path, f"not a readable HDF5 file ({err})") from None
        try:
            self._check(f)
        except StoreError:
            f.close()
            raise
        self._file = f
        self.eeg = f["eeg"]
        attrs = self.attrs
        self.sfreq = attrs["sfreq"]
        self.window_s = attrs["window_s"]
        self.tr = attrs["tr"]
        self.ch_names = attrs["ch_names"]
        self.roi_names = attrs["roi_names"]
        self.onsets = f["onsets"][()]
        self.volumes = f["volumes"][()]
        self.targets = f["targets"][()]
        self.valid = f["valid"][()]
        return self

    def _check(self, f: h5py.File) -> None:
        for name, ndim in _DATASETS.items():
            if name not in f:
                raise _invalid(self.path, f"dataset /{name} is missing")
            if f[name].ndim != ndim:
                raise _invalid(self.path, f"/{name} has {f[name].ndim} dimensions, not {ndim}")
        missing = [a for a in _ATTRS if a not in f.attrs]
        if missing:
            raise _invalid(self.path, f"attributes missing: {missing}")
        self.attrs = attrs = plain_attrs(f.attrs, path=self.path)
        if attrs.get("schema_version") != SCHEMA_VERSION:
            raise _invalid(self.path, f"schema version {attrs.get('schema_version')}")
        n = f["onsets"].shape[0]
        for name in ("volumes", "valid"):
            if f[name].shape[0] != n:
                raise _invalid(self.path, f"/{name} has {f[name].shape[0]} rows, /onsets {n}")
        rois = attrs["roi_names"]
        if f["targets"].shape != (n, len(rois)):
            raise _invalid(
                self.path, f"/targets is {f['targets'].shape}, expected ({n}, {len(rois)})"
            )
        if f["eeg"].shape[0] != len(attrs["ch_names"]):
            raise _invalid(self.path, "/eeg rows do not match ch_names")
        window = int(round(attrs["window_s"] * attrs["sfreq"]))
        if window % int(round(attrs["sfreq"])) != 0:
            raise _invalid(self.path, "window_s * sfreq is not a whole number of 1 s patches")
        try:  # a truncated file fails when its last chunk is read
            f["eeg"][:, -1]
            f["eeg"][:, 0]
        except (OSError, RuntimeError) as err:
            raise _invalid(self.path, f"the EEG data cannot be read ({err})") from None
        onsets, valid = f["onsets"][()], f["valid"][()]
        bad = valid & ((onsets - window < 0) | (onsets > f["eeg"].shape[1]))
        if bad.any():
            raise _invalid(self.path, f"{bad.sum()} valid window(s) reach outside the EEG")

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> WindowStore:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self.onsets.size)

    @property
    def window_samples(self) -> int:
        """EEG samples per window."""
        return int(round(self.window_s * self.sfreq))

    def valid_indices(self) -> np.ndarray:
        """Rows whose volume has a full window of EEG."""
        return np.flatnonzero(self.valid)

    def raw_window(self, i: int) -> np.ndarray:
        """Window ``i`` as stored: float32 volts, ``(n_channels, window_samples)``."""
        if not self.valid[i]:
            raise IndexError(f"{self.path}: volume row {i} has no full EEG window")
        return cut_window(self.eeg, int(self.onsets[i]), n_samples=self.window_samples)

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``i`` for the models and its targets: ``(x, y)``."""
        return scale_window(self.raw_window(i), sfreq=self.sfreq), self.targets[i]


def plain_attrs(attrs: Mapping[str, Any], *, path: str | os.PathLike = "store") -> dict[str, Any]:
    """A store's attributes as plain, checked Python values (floats, ints, lists of str).

    Nothing in the file is trusted to be of the type the schema says: numbers are
    converted with :func:`float`/:func:`int`, name lists are JSON arrays of strings,
    ``sources`` a JSON object of strings; anything else is refused.

    Raises
    ------
    StoreError
        Naming the file and the attribute.
    """

    def text(value) -> str:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, str):
            return value
        raise TypeError(f"a {type(value).__name__}, not a string")

    def number(value, kind):
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool):
            raise TypeError(f"a {type(value).__name__}, not a number")
        out = kind(value)
        if not np.isfinite(out):
            raise ValueError(f"{out} is not finite")
        return out

    def names(value) -> list[str]:
        out = json.loads(text(value))
        if not isinstance(out, list) or not all(isinstance(v, str) for v in out):
            raise TypeError("not a JSON list of strings")
        return out

    def mapping(value) -> dict[str, str]:
        out = json.loads(text(value))
        if not isinstance(out, dict) or not all(isinstance(v, str) for v in out.values()):
            raise TypeError("not a JSON object of strings")
        return out

    parsers = {
        "sfreq": lambda v: number(v, float),
        "window_s": lambda v: number(v, float),
        "tr": lambda v: number(v, float),
        "schema_version": lambda v: number(v, int),
        "ch_names": names,
        "roi_names": names,
        "sources": mapping,
    }
    plain: dict[str, Any] = {}
    for key, value in attrs.items():
        try:
            plain[key] = parsers[key](value) if key in parsers else _plain_value(value)
        except (TypeError, ValueError, UnicodeDecodeError) as err:
            raise _invalid(path, f"attribute {key!r} is unusable ({err})") from None
    for key in ("sfreq", "window_s", "tr"):
        if key in plain and not plain[key] > 0:
            raise _invalid(path, f"attribute {key!r} is {plain[key]}, not positive")
    return plain


def _plain_value(value):
    """Any other attribute as a str/int/float/bool (or a list of them)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufU":
            raise TypeError(f"an array of {value.dtype}")
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"a {type(value).__name__}")


def cut_window(eeg, stop: int, *, n_samples: int) -> np.ndarray:
    """The ``n_samples`` of EEG before sample ``stop``: the window of a volume onset.

    Parameters
    ----------
    eeg : ndarray or h5py.Dataset, shape (n_channels, n_times)
        Continuous EEG (a store's ``/eeg`` or the same array in memory).
    stop : int
        End sample (exclusive): the onset.
    n_samples : int
        Window length in samples.

    Returns
    -------
    raw : ndarray, shape (n_channels, n_samples)
        ``eeg[:, stop - n_samples : stop]``.

    Raises
    ------
    IndexError
        When the window does not lie inside the EEG.
    """
    stop = int(stop)
    if stop < n_samples or stop > eeg.shape[1]:
        raise IndexError(
            f"a {n_samples}-sample window ending at sample {stop} is outside the EEG"
            f" ({eeg.shape[1]} samples)"
        )
    return eeg[:, stop - n_samples : stop]


def scale_window(raw: np.ndarray, *, sfreq: float) -> np.ndarray:
    """Volts -> µV/100, per-channel demeaned, shaped ``(n_channels, n_patches, sfreq)``.

    Parameters
    ----------
    raw : ndarray, shape (n_channels, n_samples)
        One window in volts; ``n_samples`` a multiple of ``sfreq``.
    sfreq : float
        Samples per patch (1 s).

    Returns
    -------
    x : ndarray of float32, shape (n_channels, n_samples // sfreq, sfreq)
    """
    x = np.asarray(raw, dtype=np.float32) * np.float32(SCALE)
    x -= x.mean(axis=1, keepdims=True)
    patch = int(round(sfreq))
    return x.reshape(x.shape[0], -1, patch)


# --------------------------------------------------------------------------------------------
# torch Dataset
# --------------------------------------------------------------------------------------------


def channel_rows(ch_names: Sequence[str], wanted: Sequence[str], source="recording") -> np.ndarray:
    """Rows of ``wanted`` electrodes in ``ch_names`` (case-insensitive), in ``wanted``'s order.

    Raises
    ------
    ValueError
        Naming ``source`` and every wanted electrode it lacks (a model trained on another
        cap cannot borrow a channel it never saw).
    """
    upper = {name.upper(): i for i, name in enumerate(ch_names)}
    missing = [name for name in wanted if name.upper() not in upper]
    if missing:
        raise ValueError(
            f"{source}: has no channel(s) {missing} that the model needs (it has "
            f"{list(ch_names)}); train on channels every dataset has (generalisation.channels),"
            " or leave this recording out"
        )
    return np.array([upper[name.upper()] for name in wanted], dtype=np.int64)


class WindowDataset(Dataset):
    """Windows of one or more stores as a torch Dataset of ``(x, y)``.

    Files are opened lazily in the process that reads them (each DataLoader
    worker opens its own handles; none crosses a fork).

    Parameters
    ----------
    paths : sequence of path-like
        Window stores; their channels must match (same names, same order).
    indices : sequence of array-like | None
        Per store, the rows (volume rows of that store) to use, e.g. a split.
        ``None`` uses every valid row. Rows without a full window are refused.
    rois : sequence of str | None
        Which targets to return (default: all, in the store's order).
    channels : sequence of str | None
        Electrode names to return, in this order (e.g. the channels a model was trained
        on, or those two caps share). A store lacking any of them is refused with the list.
        None: every store's own channels, which must then match.
    """

    def __init__(self, paths, indices=None, *, rois=None, channels=None):
        self.paths = [Path(p) for p in paths]
        metas = []
        self._chans = []
        for i, path in enumerate(self.paths):
            with WindowStore(path) as store:
                rows = store.valid_indices() if indices is None else np.asarray(indices[i], int)
                if rows.size and not store.valid[rows].all():
                    raise ValueError(f"{path}: rows {rows[~store.valid[rows]]} have no full window")
                cols = [store.roi_names.index(r) for r in rois] if rois else None
                names = list(store.ch_names)
                if channels is not None:
                    self._chans.append(channel_rows(names, channels, path))
                    names = list(channels)
                else:
                    self._chans.append(None)
                metas.append((names, rows, cols, store.roi_names))
        ch = {tuple(m[0]) for m in metas}
        if len(ch) > 1:
            raise ValueError(f"stores have different channels: {sorted(ch)}")
        self.ch_names = list(metas[0][0]) if metas else list(channels or [])
        self.roi_names = list(rois) if rois else (list(metas[0][3]) if metas else [])
        self._rows = [m[1] for m in metas]
        self._cols = [m[2] for m in metas]
        self._index = np.array(
            [(s, r) for s, rows in enumerate(self._rows) for r in rows], dtype=np.int64
        ).reshape(-1, 2)
        self._stores: dict[int, WindowStore] = {}
        self._pid = None

    def __len__(self) -> int:
        return len(self._index)

    def _store(self, s: int) -> WindowStore:
        if self._pid != os.getpid():  # a forked worker: never reuse the parent's handles
            self._stores, self._pid = {}, os.getpid()
        if s not in self._stores:
            self._stores[s] = WindowStore(self.paths[s])
        return self._stores[s]

    def __getitem__(self, item: int):
        s, row = self._index[item]
        x, y = self._store(int(s)).window(int(row))
        if self._chans[s] is not None:
            x = np.ascontiguousarray(x[self._chans[s]])
        if self._cols[s] is not None:
            y = y[self._cols[s]]
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(y))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_stores"], state["_pid"] = {}, None  # handles never travel to workers
        return state
