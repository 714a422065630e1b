"""Job of the ``predict`` rule: ROI signals (and voxel maps) of a recording from its EEG alone.

:func:`predict_eeg_file` is the keyword-level function (the ``neurobolt predict`` command
calls it); :func:`run` hands it the rule's inputs, outputs and params. The pieces (cleaning,
prediction times, channels, batched prediction, back-projection) are in
:mod:`neurobolt.predict`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import config as nbconfig
from ..derivatives import training_data
from ..eeg.markers import find_volume_markers
from ..heads import record_rois
from ..inference import load_model
from ..predict import (
    MissingChannelsError,
    check_channels,
    clean_recording,
    eeg_channels,
    predict_options,
    predict_recording,
    prediction_onsets,
    recording_name,
    write_back_projection,
)
from ..provenance import atomic_path, provenance, sha256_file, write_json

logger = logging.getLogger("neurobolt.predict")


def run(inputs: Mapping, outputs: Mapping, params: Mapping, *, threads: int = 1) -> dict:
    """Predict the ROI signals (and voxel maps) of one EEG recording from its EEG alone.

    Parameters
    ----------
    inputs : mapping
        ``eeg``: the recording; ``models``: ``model.pt`` files; optional ``atlas_maps``,
        ``atlas_labels`` (override ``params["fmri"]``'s atlas).
    outputs : mapping
        ``timeseries``, optional ``sidecar`` and ``bold`` (see :func:`predict_eeg_file`).
    params : mapping
        ``cfg``: the ``predict`` section; ``eeg``: the ``eeg`` section; ``window_s`` and
        ``dummy_markers``: the ``store`` section's; ``fmri``: the ``fmri`` section.
    threads : int
        Unused (the rule's script limits the thread pools).

    Returns
    -------
    sidecar : dict
        The JSON sidecar that was written.
    """
    return predict_eeg_file(
        inputs["eeg"],
        models=inputs["models"],
        timeseries=outputs["timeseries"],
        sidecar=outputs.get("sidecar"),
        bold=outputs.get("bold"),
        atlas_maps=inputs.get("atlas_maps"),
        atlas_labels=inputs.get("atlas_labels"),
        options=params.get("cfg"),
        eeg_config=params.get("eeg"),
        window_s=params.get("window_s"),
        dummy_markers=params.get("dummy_markers"),
        fmri=params.get("fmri"),
    )


def predict_eeg_file(
    eeg: str | os.PathLike,
    *,
    models: Sequence[str | os.PathLike],
    timeseries: str | os.PathLike,
    sidecar: str | os.PathLike | None = None,
    bold: str | os.PathLike | None = None,
    atlas_maps: str | os.PathLike | None = None,
    atlas_labels: str | os.PathLike | None = None,
    options: Mapping[str, Any] | None = None,
    eeg_config: Mapping[str, Any] | None = None,
    window_s: float | None = None,
    dummy_markers: int | None = None,
    fmri: Mapping[str, Any] | None = None,
) -> dict:
    """Predict the ROI signals (and voxel maps) of one EEG recording from its EEG alone.

    Parameters
    ----------
    eeg : path-like
        The recording (a BIDS ``_eeg.vhdr``/``.edf``/``.bdf``/``.set``; its
        ``channels.tsv`` and ``events.tsv`` apply).
    models : sequence of path-like
        ``model.pt`` files (their ``splits.tsv`` next to them is read when present).
    timeseries : path-like
        ``<recording>_desc-predicted_timeseries.tsv``.
    sidecar : path-like | None
        Its JSON sidecar (None: the same name with ``.json``).
    bold : path-like | None
        ``<recording>_desc-predicted_bold.nii.gz``; written when given.
    atlas_maps, atlas_labels : path-like | None
        Override ``fmri``'s atlas for the voxel map.
    options : mapping | None
        The ``predict`` section (:func:`neurobolt.predict.predict_options`).
    eeg_config : mapping | None
        The ``eeg`` section (how the EEG is cleaned).
    window_s : float | None
        The store's window (s) for models that do not record it (None: the default).
    dummy_markers : int | None
        The store's ``dummy_markers``: volume markers of unsaved dummy scans (None: the
        default).
    fmri : mapping | None
        The ``fmri`` section (its atlas, for the voxel map).

    Returns
    -------
    sidecar : dict
        The JSON sidecar that was written.
    """
    opts = predict_options(options)
    eeg_cfg = dict(eeg_config or {})
    if dummy_markers is None:
        dummy_markers = nbconfig.defaults("store.dummy_markers")
    dummy = int(dummy_markers or 0)
    if dummy < 0:
        raise ValueError(f"dummy_markers must be >= 0, got {dummy}")
    path = Path(eeg)
    name = recording_name(path)
    model_paths = [Path(p) for p in np.atleast_1d(models)]
    if not model_paths:
        raise ValueError("no model given to predict with")
    models = [load_model(p) for p in model_paths]
    first_channels = list(models[0][1]["ch_names"])
    for p, (_, record) in zip(model_paths, models, strict=True):
        if list(record["ch_names"]) != first_channels:
            raise ValueError(
                f"{p} was trained on other channels than {model_paths[0]}; predict with them"
                " separately."
            )
    rois = [roi for _, record in models for roi in record_rois(record)]
    if len(set(rois)) != len(rois):
        raise ValueError(f"two models predict the same ROI: {rois}")

    raw = _read_eeg(path)
    used, dropped = check_channels(
        first_channels, eeg_channels(raw), droppable=opts["droppable_channels"], recording=name
    )
    if dropped:
        baselines = [
            str(p)
            for p, (_, r) in zip(model_paths, models, strict=True)
            if r["model"] == "ridge_bandpower"
        ]
        if baselines:
            raise MissingChannelsError(
                f"{name}: channels {', '.join(dropped)} are missing and ridge_bandpower models"
                f" need every training channel: {', '.join(baselines)}"
            )
        logger.warning("%s: predicting without the missing channels %s", name, dropped)

    clean, info = clean_recording(
        raw,
        config=eeg_cfg,
        channels=used,
        gradient=opts["gradient"],
        bcg=opts["bcg"],
        n_slices=opts["n_slices"],
        run=name,
    )
    sfreq = float(clean.info["sfreq"])
    markers = find_volume_markers(clean, marker=info["volume_marker"])
    n_patches = {int(r.get("options", {}).get("n_patches", 0)) for _, r in models} - {0}
    window_s = (
        float(n_patches.pop())
        if len(n_patches) == 1
        else float(nbconfig.defaults("store.window_s") if window_s is None else window_s)
    )
    try:
        onsets, volumes = prediction_onsets(
            clean.n_times,
            sfreq=sfreq,
            window_s=window_s,
            step_s=opts["step_s"],
            markers=markers if markers.size >= 2 else None,
            tr_s=float(opts["tr_s"]),
            dummy_markers=dummy if markers.size >= 2 else 0,
        )
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    if onsets.size < 2:
        raise ValueError(
            f"{name}: {clean.n_times / sfreq:.1f} s of EEG gives {onsets.size} prediction(s);"
            f" each needs {window_s:g} s of EEG before it."
        )
    at_markers = bool((volumes >= 0).all())
    step = float(np.median(np.diff(onsets)) / sfreq)
    out_tsv = Path(timeseries)
    out_tsv.parent.mkdir(parents=True, exist_ok=True)
    pred = predict_recording(
        models,
        clean.get_data(picks=used),
        sfreq=sfreq,
        ch_names=used,
        onsets=onsets,
        window_s=window_s,
        batch_size=int(opts["batch_size"]),
    )
    table = pd.DataFrame({"onset_s": onsets / sfreq})
    if at_markers:
        table["volume"] = volumes
    for j, roi in enumerate(rois):
        table[roi] = pred[:, j]
    if opts["rois"]:  # predict.rois: some of the ROIs of a multi-ROI (shared heads) model
        missing = sorted(set(opts["rois"]) - set(rois))
        if missing:
            raise ValueError(f"predict.rois {missing} are not predicted by the models ({rois})")
        rois = [r for r in rois if r in set(opts["rois"])]
        table = table[[c for c in table.columns if c in ("onset_s", "volume") or c in rois]]

    entries = []
    for p, (_, record) in zip(model_paths, models, strict=True):
        sets = _recording_split(p, name)
        entry = {
            "Path": str(p),
            "SHA256": sha256_file(p),
            "Model": record["model"],
            "Analysis": record.get("analysis"),
            "ROIs": record_rois(record),
            "ValidationR": record.get("best_val_r"),
            "Pretrained": record.get("pretrained"),
            "RecordingInSplits": sets,
            "TrainingData": training_data(p.with_name("splits.tsv")),
        }
        if set(sets) & {"train", "val"}:
            entry["Warning"] = (
                f"{name} was in this model's {'/'.join(s for s in sets if s != 'test')} split:"
                " its predictions of this recording are not out-of-sample."
            )
            logger.warning(entry["Warning"])
        entries.append(entry)
    qc = info.pop("qc", None)
    described = {
        "Description": "ROI signals predicted from EEG alone (neurobolt predict), in the"
        " normalised units of the training targets",
        "SamplingFrequency": 1.0 / step,
        "RepetitionTime": step,
        "StartTime": float(onsets[0] / sfreq),
        "Columns": list(table.columns),
        "PredictionTimes": (
            "at the volume markers (onset_s = the volume's onset; volume = its index in the"
            " BOLD run, dummy-scan markers skipped)"
            if at_markers
            else f"every {step:g} s"
        ),
        "WindowSeconds": window_s,
        "WindowDefinition": f"the {window_s:g} s of EEG before onset_s",
        "Models": entries,
        "EEG": {
            "Recording": str(path),
            "SHA256": sha256_file(path),
            "Channels": used,
            "DroppedChannels": dropped,
            "GradientRemoved": info["gradient_removed"],
            "BCGRemoved": info["bcg_removed"],
            "VolumeMarkers": info["n_markers"],
            "DummyMarkers": dummy if markers.size >= 2 else 0,
            "ECGChannel": info["ecg_channel"],
            "DurationSeconds": clean.n_times / sfreq,
        },
        **provenance({"predict": opts, "eeg": eeg_cfg, "window_s": window_s}),
    }
    if qc is not None:
        described["EEG"]["CleaningQC"] = {
            k: qc[k] for k in ("n_slices", "heart_rate_bpm", "n_beats", "bcg") if k in qc
        }

    out_json = Path(sidecar or out_tsv.with_suffix(".json"))
    written = [out_tsv, out_json]
    try:
        with atomic_path(out_tsv) as tmp:
            table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
        if bold:
            described["VoxelMap"] = _write_voxel_map(
                bold, table, rois, step, maps=atlas_maps, labels=atlas_labels, fmri=fmri
            )
            written.append(Path(bold))
        write_json(out_json, described)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    logger.info(
        "%s: %d predictions of %s every %.2f s (%s)",
        name,
        len(table),
        ", ".join(rois),
        step,
        "gradient removed" if info["gradient_removed"] else "no gradient removal",
    )
    return described


def _write_voxel_map(path, table, rois, step, *, maps, labels, fmri) -> dict:
    """Back-project the atlas ROIs of ``table`` and write the 4-D image atomically."""
    from nilearn.image import index_img

    from ..fmri.atlas import atlas_from_config, is_global_signal, match_rois

    atlas_opts = dict((fmri or {}).get("atlas", {}))
    if maps or labels:
        atlas_opts.update(maps=maps, labels=labels)
    atlas = atlas_from_config(atlas_opts)
    mapped = [r for r in rois if not is_global_signal(r)]
    if not mapped:
        raise ValueError(
            f"none of the predicted ROIs ({rois}) has an atlas map (the global signal has"
            " none); no voxel map can be made."
        )
    idx = match_rois(mapped, atlas.labels)
    maps_img = index_img(str(atlas.maps), idx)
    write_back_projection(path, table[mapped].to_numpy(), maps_img, tr=step)
    return {
        "Atlas": atlas.describe(),
        "ROIs": mapped,
        "NotBackProjected": [r for r in rois if r not in mapped],
        "Method": "sum over ROIs of the predicted series times the ROI's atlas map"
        " (nilearn NiftiMapsMasker.inverse_transform)",
    }


def _read_eeg(path: Path):
    """A recording with its BIDS sidecars applied when it is in a BIDS dataset."""
    import mne
    import mne_bids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            bids_path = mne_bids.get_bids_path_from_fname(path)
            if bids_path.root is None:
                bids_path.root = path.parents[2 if bids_path.session is None else 3]
            return mne_bids.read_raw_bids(bids_path, verbose=False)
        except Exception as err:  # noqa: BLE001 - not BIDS: read the file as it is
            logger.info("%s: not read as BIDS (%s); reading the file directly", path, err)
            return mne.io.read_raw(path, preload=False, verbose=False)


def _recording_split(model_path: Path, name: str) -> list[str]:
    """The sets the recording had in the model's splits.tsv (empty: not in it)."""
    splits = model_path.with_name("splits.tsv")
    if not splits.is_file():
        return []
    table = pd.read_csv(splits, sep="\t", dtype={"scan": str, "split": str})
    sets = table.loc[table["scan"] == name, "split"]
    return [s for s in ("train", "val", "test") if (sets == s).any()]
