"""Job of the ``roi_signals`` rule: one BOLD run's ROI signals, checked and written.

The file checks (MNI space, TR in sidecar vs header, confounds rows vs volumes) around
:func:`neurobolt.fmri.signals.extract_roi_signals`; writes
``<run>_atlas-DiFuMo_scale-64_timeseries.tsv`` and its JSON sidecar atomically.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib

from ..fmri.atlas import atlas_from_config
from ..fmri.inputs import FMRIInputError, bold_space, read_confounds, repetition_time, sidecar_path
from ..fmri.signals import extract_roi_signals, resolve_config
from ..provenance import atomic_path, provenance, sha256_file, write_json


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> dict[str, Any]:
    """Run the fMRI stage for one BOLD run and write the ROI time series.

    Parameters
    ----------
    inputs : mapping
        ``preproc_bold`` (fMRIPrep ``*_space-MNI..._desc-preproc_bold.nii.gz``;
        ``bold`` is used when ``preproc_bold`` is absent, and is otherwise the
        raw BOLD whose sidecar backs up a missing preprocessed one),
        ``mask`` (``*_desc-brain_mask.nii.gz``), ``confounds``
        (``*_desc-confounds_timeseries.tsv``; may be None only when
        ``cfg["confounds"]`` is empty), optional ``bold_json`` (default:
        the preprocessed BOLD's sidecar next to it), optional ``atlas_maps`` and
        ``atlas_labels`` (override ``cfg["atlas"]["maps"/"labels"]``).
    outputs : mapping
        ``timeseries``: ``<run>_atlas-DiFuMo_scale-64_timeseries.tsv``; optional
        ``sidecar`` (default: the same name with ``.json``).
    params : mapping
        ``cfg``: the ``fmri`` config section.
    threads : int
        Unused.

    Returns
    -------
    sidecar : dict
        The JSON sidecar that was written.
    """
    params_given = dict(params.get("cfg") or {})
    opts = resolve_config(params_given)
    bold = Path(inputs.get("preproc_bold") or inputs["bold"])
    if not bold.is_file():
        raise FMRIInputError(f"BOLD file {bold} does not exist")
    bold_json = inputs.get("bold_json")
    if bold_json is None:
        candidates = [sidecar_path(bold)]
        if inputs.get("preproc_bold") and inputs.get("bold"):
            candidates.append(sidecar_path(inputs["bold"]))  # the raw BOLD's sidecar
        bold_json = next((c for c in candidates if c.is_file()), candidates[0])
    sidecar: dict[str, Any] = {}
    if Path(bold_json).is_file():
        sidecar = json.loads(Path(bold_json).read_text(encoding="utf-8"))
    elif inputs.get("bold_json"):
        raise FMRIInputError(f"BOLD sidecar {bold_json} does not exist")
    space = bold_space(bold, sidecar)

    atlas_opts = dict(opts["atlas"])
    if inputs.get("atlas_maps") or inputs.get("atlas_labels"):
        atlas_opts.update(maps=inputs.get("atlas_maps"), labels=inputs.get("atlas_labels"))
    atlas = atlas_from_config(atlas_opts)
    if space != atlas.template:
        warnings.warn(
            f"{bold.name}: the data are in {space} but the atlas is defined in {atlas.template}; "
            "the templates differ by a few mm. Prefer fMRIPrep --output-spaces "
            f"{atlas.template}.",
            stacklevel=2,
        )

    img = nib.load(bold)
    names = str(bold)
    if img.ndim != 4:
        raise FMRIInputError(f"{names}: BOLD must be 4-D (x, y, z, time), got shape {img.shape}")
    if img.shape[3] < opts["min_volumes"]:
        raise FMRIInputError(
            f"{names}: {img.shape[3]} volumes, fewer than fmri.min_volumes ({opts['min_volumes']})"
        )
    tr = repetition_time(
        img, sidecar, tolerance=float(opts["tr_tolerance_s"]), names=f"{names} / {bold_json}"
    )

    confounds_path = inputs.get("confounds")
    confounds = None
    if confounds_path:
        confounds = read_confounds(confounds_path)
        if len(confounds) != img.shape[3]:
            raise FMRIInputError(
                f"{confounds_path} has {len(confounds)} rows but {names} has {img.shape[3]} "
                "volumes; use the confounds file of this run."
            )
    elif opts["confounds"]:
        raise FMRIInputError(
            f"no confounds file for {names} but fmri.confounds asks for {opts['confounds']}; "
            "give the fMRIPrep confounds TSV or set fmri.confounds: []."
        )

    mask = inputs.get("mask")
    try:
        frame = extract_roi_signals(
            img, atlas, mask_img=mask, confounds=confounds, tr=tr, config=opts
        )
    except FMRIInputError as exc:
        raise FMRIInputError(f"{names}: {exc}") from exc

    attrs = frame.attrs
    sources = {
        "preproc_bold": bold,
        "bold_json": bold_json,
        "mask": mask,
        "confounds": confounds_path,
    }
    sources.update(atlas_maps=atlas.maps, atlas_labels=atlas.labels_file)
    meta = {
        "Description": "DiFuMo ROI signals and global signal, motion-regressed, low-passed, "
        "demeaned and divided by the 95th percentile of |x| (neurobolt roi_signals)",
        "SamplingFrequency": 1.0 / tr,
        "RepetitionTime": tr,
        "StartTime": float(attrs["kept_volumes"][0] * tr),
        "Columns": list(frame.columns),
        "TargetColumns": attrs["targets"],
        "NumberOfVolumes": attrs["n_volumes"],
        "KeptVolumes": attrs["kept_volumes"],
        "DroppedVolumes": attrs["dropped_volumes"],
        "Space": space,
        "Atlas": atlas.describe(),
        "EmptyRois": attrs["empty_rois"],
        "ConfoundRegressors": attrs["regressors"],
        "DetrendOrder": attrs["detrend_order"],
        "ConfoundFiltering": attrs["confound_filtering"],
        "LowPassFilter": attrs["lowpass"],
        "Normalization": {
            "Method": "demean, divide by percentile of |x|",
            "Percentile": attrs["normalize_percentile"],
        },
        "NonFiniteVoxels": attrs["nonfinite_voxels"],
        "MaskVoxels": attrs["mask_voxels"],
        "Sources": {
            key: {"path": str(p), "sha256": sha256_file(p)}
            for key, p in sources.items()
            if p and Path(p).is_file()
        },
        **provenance(params_given),
    }
    out_tsv = Path(outputs["timeseries"])
    out_json = Path(outputs.get("sidecar") or sidecar_path(out_tsv))
    with atomic_path(out_tsv) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.8g", na_rep="n/a")
    try:
        write_json(out_json, meta)
    except BaseException:
        out_tsv.unlink(missing_ok=True)
        raise
    return meta
