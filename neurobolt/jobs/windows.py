"""Job of the ``windows`` rule: one run's window store from its cleaned EEG and ROI signals."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mne
import pandas as pd

from .. import config
from ..eeg.brainvision import read_clean_eeg
from ..eeg.markers import find_volume_markers
from ..provenance import sha256_file
from ..store import AlignmentError, align_volumes, write_store

logger = logging.getLogger("neurobolt.store")


def store_options(
    cfg: Mapping[str, Any] | None, *, volume_marker: str | None = None
) -> dict[str, Any]:
    """The ``store`` section with its defaults, and the volume marker it pairs with volumes.

    Parameters
    ----------
    cfg : mapping | None
        The ``store`` config section (possibly partial).
    volume_marker : str | None
        ``eeg.volume_marker``: the one key naming the volume markers. None falls back on the
        deprecated ``store.marker``, then on ``eeg.volume_marker``'s default.

    Returns
    -------
    options : dict
        ``window_s``, ``marker``, ``dummy_markers``, ``tr_tolerance``, ``compression``.

    Raises
    ------
    ValueError
        For a key the schema does not know.
    """
    opts = config.section("store", cfg)
    old = opts.pop("marker", None)
    if volume_marker is None:
        volume_marker = old if old is not None else config.defaults("eeg.volume_marker")
    elif old is not None and old != volume_marker:
        warnings.warn(
            f"store.marker {old!r} is deprecated and ignored: the store pairs volumes with"
            f" eeg.volume_marker {volume_marker!r}",
            DeprecationWarning,
            stacklevel=2,
        )
    return {
        "window_s": opts["window_s"],
        "marker": volume_marker,
        "dummy_markers": opts["dummy_markers"],
        "tr_tolerance": opts["tr_tolerance"],
        "compression": opts["compression"],
    }


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> Path:
    """Write ``<run>_windows.h5`` from the cleaned EEG and the ROI table.

    Parameters
    ----------
    inputs : mapping
        ``eeg`` (the EEG stage's ``<run>_desc-clean_eeg.vhdr``, with its volume markers
        kept as annotations), ``rois`` (the fMRI stage's ``<run>_atlas-*_timeseries.tsv``;
        its JSON sidecar lies next to it).
    outputs : mapping
        ``store``: ``<run>_windows.h5``.
    params : mapping
        ``cfg``: the ``store`` config section (``window_s``, ``dummy_markers``,
        ``tr_tolerance``, ``compression``); ``volume_marker``: ``eeg.volume_marker``.
    threads : int
        Unused.

    Returns
    -------
    path : Path
        The store.
    """
    params = store_options(params.get("cfg"), volume_marker=params.get("volume_marker"))
    eeg_path, roi_path = Path(inputs["eeg"]), Path(inputs["rois"])
    sidecar_path = roi_path.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    table = pd.read_csv(roi_path, sep="\t")
    raw = read_clean_eeg(eeg_path)
    markers = find_volume_markers(raw, marker=params["marker"])
    names = f"{eeg_path} and {roi_path}"
    alignment = align_volumes(
        markers,
        n_times=raw.n_times,
        sfreq=raw.info["sfreq"],
        n_bold_volumes=int(sidecar["NumberOfVolumes"]),
        kept_volumes=sidecar["KeptVolumes"],
        tr=float(sidecar["RepetitionTime"]),
        window_s=float(params["window_s"]),
        dummy_markers=int(params["dummy_markers"]),
        tr_tolerance=float(params["tr_tolerance"]),
        names=names,
    )
    if len(table) != alignment.volumes.size:
        raise AlignmentError(
            f"{roi_path} has {len(table)} rows but its sidecar keeps"
            f" {alignment.volumes.size} volumes"
        )
    rois = list(sidecar.get("TargetColumns") or table.columns)
    logger.info(
        "%s: %d volumes, %d with a full %g s window (%s)",
        eeg_path.name,
        alignment.volumes.size,
        alignment.valid.sum(),
        params["window_s"],
        alignment.note,
    )
    sources = {p.name: sha256_file(p) for p in (eeg_path, roi_path, sidecar_path)}
    return write_store(
        outputs["store"],
        eeg=raw.get_data(picks="eeg"),
        sfreq=raw.info["sfreq"],
        alignment=alignment,
        targets=table[rois].to_numpy(),
        ch_names=[raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True)],
        roi_names=rois,
        tr=float(sidecar["RepetitionTime"]),
        window_s=float(params["window_s"]),
        sources=sources,
        config=params,
        compression=params.get("compression") or None,
    )
