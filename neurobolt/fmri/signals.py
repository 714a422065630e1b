"""fMRI targets: DiFuMo ROI signals and the global signal, cleaned and normalised.

Pipeline of :func:`extract_roi_signals` (one BOLD run, already in an MNI space):

1. every atlas map, resampled to the BOLD grid, is projected onto the data
   inside the brain mask with :class:`nilearn.maskers.NiftiMapsMasker`
   (least squares over the maps); the global signal is the mean over the mask;
2. volumes fMRIPrep flags as non-steady-state (``non_steady_state_outlier*``
   columns) are dropped; the indices of the kept volumes are recorded;
3. the motion regressors (the 6 rigid-body parameters by default) and a
   polynomial trend are regressed out;
4. a zero-phase Butterworth low-pass (5th order, 0.15 Hz by default). With
   ``confound_filtering="orthogonal"`` the regressors are low-passed too and
   the regression happens after the filter (Lindquist et al. 2019), so the
   filter cannot bring motion-correlated variance back;
5. each column is demeaned and divided by the 95th percentile of its ``|x|``.

:func:`neurobolt.jobs.roi_signals.run` adds the file checks (MNI space, TR in sidecar vs
header, confounds rows vs volumes) and writes
``<run>_atlas-DiFuMo_scale-64_timeseries.tsv`` plus its JSON sidecar atomically.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from .. import config as nbconfig
from .atlas import (
    GLOBAL_SIGNAL,
    Atlas,
    is_global_signal,
    match_rois,
    read_labels,
)

# The pieces, re-exported here where they were first defined (``neurobolt.fmri.signals``).
from .filters import lowpass_filter, lowpass_sos, normalize_signals, regress_out
from .inputs import (
    MOTION_6,
    FMRIInputError,
    _load_img,
    _mask_on_grid,
    bold_space,
    header_tr,
    non_steady_state_mask,
    read_confounds,
    repetition_time,
    select_confounds,
    sidecar_path,
)

__all__ = [
    "MOTION_6",
    "FMRIInputError",
    "bold_space",
    "extract_roi_signals",
    "header_tr",
    "lowpass_filter",
    "lowpass_sos",
    "non_steady_state_mask",
    "normalize_signals",
    "read_confounds",
    "regress_out",
    "repetition_time",
    "resolve_config",
    "select_confounds",
    "sidecar_path",
]

# --------------------------------------------------------------------------- config


def resolve_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the ``fmri`` options with defaults filled in.

    Parameters
    ----------
    config : mapping | None
        The ``fmri`` config section (possibly partial).

    Returns
    -------
    options : dict
        A new dict; ``options["atlas"]`` is a dict too.

    Raises
    ------
    ValueError
        An unknown key (the schema forbids them too).
    """
    config = dict(config or {})
    defaults = nbconfig.defaults("fmri")
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise ValueError(f"unknown fmri option(s) {unknown}; known: {sorted(defaults)}")
    options = defaults
    atlas = dict(config.pop("atlas", None) or {})
    unknown = sorted(set(atlas) - set(defaults["atlas"]))
    if unknown:
        raise ValueError(
            f"unknown fmri.atlas option(s) {unknown}; known: {sorted(defaults['atlas'])}"
        )
    options["atlas"].update(atlas)
    options.update(config)
    if options["nan_policy"] not in ("error", "zero"):
        raise ValueError(
            f"fmri.nan_policy must be 'error' or 'zero', got {options['nan_policy']!r}"
        )
    if options["confound_filtering"] not in ("sequential", "orthogonal"):
        raise ValueError(
            "fmri.confound_filtering must be 'sequential' or 'orthogonal', got "
            f"{options['confound_filtering']!r}"
        )
    if options["lowpass_cutoff"] not in ("zero_phase_3db", "single_pass_3db"):
        raise ValueError(
            "fmri.lowpass_cutoff must be 'zero_phase_3db' or 'single_pass_3db', got "
            f"{options['lowpass_cutoff']!r}"
        )
    return options


# --------------------------------------------------------------------------- extraction


def extract_roi_signals(
    bold_img,
    maps_img,
    *,
    mask_img=None,
    confounds=None,
    tr: float,
    config: Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Extract, clean and normalise every atlas ROI and the global signal.

    Parameters
    ----------
    bold_img : path-like | nibabel image
        4-D BOLD run in the atlas's (MNI) space.
    maps_img : Atlas | path-like | nibabel image
        4-D probabilistic maps; resampled (linear) to the BOLD grid.
    mask_img : path-like | nibabel image | None
        Brain mask (resampled, nearest, to the BOLD grid when needed). None
        uses the voxels whose time series is not constant.
    confounds : pandas.DataFrame | path-like | ndarray | None
        fMRIPrep confounds table (or its path): ``config["confounds"]``
        columns are regressed out and flagged non-steady-state volumes
        dropped. An array is taken as the regressors themselves. None skips
        both.
    tr : float
        Repetition time in seconds.
    config : mapping | None
        The ``fmri`` config section; its defaults are the schema's (``neurobolt.config``).
    labels : sequence of str | None
        One label per map; defaults to the :class:`~neurobolt.fmri.atlas.Atlas`
        labels, else ``config["atlas"]["labels"]``.

    Returns
    -------
    signals : pandas.DataFrame
        One row per kept volume (index ``volume``: the 0-based index in the
        BOLD run), one column per atlas label that overlaps the mask, then
        ``"global signal"``. ``signals.attrs`` records ``targets`` (the
        columns of the configured ROIs), ``kept_volumes``, ``n_volumes``,
        ``dropped_volumes``, ``regressors``, ``empty_rois``, ``lowpass``,
        ``nonfinite_voxels`` and ``tr``.

    Raises
    ------
    FMRIInputError
        Bad inputs: not 4-D, too few volumes, non-finite voxels inside the
        mask (with ``nan_policy="error"``), confounds rows not matching the
        volumes, an empty mask, a target ROI outside the mask.
    """
    from nilearn.image import resample_img
    from nilearn.maskers import NiftiMapsMasker

    opts = resolve_config(config)
    if not (tr and tr > 0):
        raise FMRIInputError(f"TR must be positive, got {tr!r}")
    img = _load_img(bold_img, "BOLD image")
    if img.ndim != 4:
        raise FMRIInputError(
            f"BOLD image must be 4-D (x, y, z, time), got shape {img.shape}; a single volume "
            "cannot give a time series."
        )
    n_volumes = img.shape[3]
    if n_volumes < opts["min_volumes"]:
        raise FMRIInputError(
            f"BOLD image has {n_volumes} volumes, fewer than fmri.min_volumes "
            f"({opts['min_volumes']})."
        )

    # Atlas.
    if isinstance(maps_img, Atlas):
        labels = list(labels) if labels is not None else list(maps_img.labels)
        maps_img = maps_img.maps
    maps = _load_img(maps_img, "atlas maps")
    if maps.ndim != 4:
        raise FMRIInputError(f"atlas maps must be 4-D, got shape {maps.shape}")
    if labels is None:
        labels_file = opts["atlas"].get("labels")
        labels = read_labels(labels_file) if labels_file else None
    if labels is None:
        labels = [f"Component {i + 1}" for i in range(maps.shape[3])]
    labels = [str(label) for label in labels]
    if len(labels) != maps.shape[3]:
        raise FMRIInputError(f"{len(labels)} labels for {maps.shape[3]} atlas maps")

    # Targets.
    # fmri.rois: all = every component of this atlas, then the global signal
    rois = [*labels, GLOBAL_SIGNAL] if opts["rois"] == "all" else list(opts["rois"])
    want_global = any(is_global_signal(r) for r in rois)
    target_idx = match_rois([r for r in rois if not is_global_signal(r)], labels)

    # Data and mask on the BOLD grid.
    data = np.asarray(img.get_fdata(dtype=np.float32))
    mask = _mask_on_grid(mask_img, img, data)
    n_mask = int(mask.sum())
    if n_mask == 0:
        raise FMRIInputError("the brain mask is empty on the BOLD grid")
    inside = data[mask]  # (n_mask, n_volumes), a copy
    finite = np.isfinite(inside)
    nonfinite = {"voxels": 0, "volumes": 0, "values": 0, "policy": opts["nan_policy"]}
    if not finite.all():
        bad_vox = int((~finite).any(axis=1).sum())
        bad_vol = int((~finite).any(axis=0).sum())
        nonfinite.update(voxels=bad_vox, volumes=bad_vol, values=int((~finite).sum()))
        if opts["nan_policy"] != "zero":
            raise FMRIInputError(
                f"BOLD image has NaN/inf in {bad_vox} of {n_mask} voxels inside the brain mask "
                f"({nonfinite['values']} values over {bad_vol} volumes); check the "
                "preprocessing or mask, or set fmri.nan_policy: zero to replace them with 0."
            )
        warnings.warn(
            f"replacing {nonfinite['values']} NaN/inf values in {bad_vox} voxels inside the "
            "mask with 0 (fmri.nan_policy: zero)",
            stacklevel=2,
        )
        inside[~finite] = 0.0
    data[~np.isfinite(data)] = 0.0
    global_signal = inside.mean(axis=0, dtype=np.float64)
    del inside, finite

    same_grid = maps.shape[:3] == img.shape[:3] and np.allclose(maps.affine, img.affine, atol=1e-4)
    if not same_grid:
        maps = resample_img(
            maps,
            target_affine=img.affine,
            target_shape=img.shape[:3],
            interpolation="linear",
            copy_header=True,
            force_resample=True,
        )
    maps_data = np.asarray(maps.get_fdata(dtype=np.float32))
    overlap = np.abs(maps_data[mask]).max(axis=0) > np.finfo(np.float32).eps
    empty = [labels[i] for i in np.flatnonzero(~overlap)]
    empty_targets = [labels[i] for i in target_idx if not overlap[i]]
    if empty_targets:
        raise FMRIInputError(
            f"target ROI(s) {empty_targets} do not overlap the brain mask on the BOLD grid; "
            "is the BOLD in the atlas's space and the mask correct?"
        )
    if empty:
        warnings.warn(f"{len(empty)} atlas maps miss the brain mask: {empty}", stacklevel=2)
    keep = np.flatnonzero(overlap)
    maps_kept = nib.Nifti1Image(maps_data[..., keep], img.affine)
    del maps_data
    mask_nii = nib.Nifti1Image(mask.astype(np.uint8), img.affine)
    data_nii = nib.Nifti1Image(data, img.affine)
    masker = NiftiMapsMasker(
        maps_img=maps_kept,
        mask_img=mask_nii,
        resampling_target="data",
        standardize=False,
        detrend=False,
        keep_masked_maps=False,
        reports=False,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*keep_masked_maps.*")
        roi = np.asarray(masker.fit_transform(data_nii), dtype=np.float64)
    del data, data_nii
    if roi.shape != (n_volumes, len(keep)):
        raise RuntimeError(
            f"NiftiMapsMasker returned shape {roi.shape}, expected {(n_volumes, len(keep))}"
        )
    columns = [labels[i] for i in keep] + [GLOBAL_SIGNAL]
    values = np.column_stack([roi, global_signal])

    # Confounds: drop non-steady-state volumes, regress motion + trend.
    regressors = None
    regressor_names: list[str] = []
    kept = np.arange(n_volumes)
    if confounds is not None:
        if isinstance(confounds, str | os.PathLike):
            confounds = read_confounds(confounds)
        n_rows = len(confounds)
        if n_rows != n_volumes:
            raise FMRIInputError(
                f"confounds have {n_rows} rows but the BOLD image has {n_volumes} volumes; "
                "use the confounds file of this run."
            )
        if isinstance(confounds, pd.DataFrame):
            if opts["drop_non_steady_state"]:
                flagged = non_steady_state_mask(confounds)
                n_flag = int(flagged.sum())
                if n_flag and not (flagged[:n_flag].all() and not flagged[n_flag:].any()):
                    raise FMRIInputError(
                        "non-steady-state volumes "
                        f"{np.flatnonzero(flagged)[:10].tolist()} are not a leading block; "
                        "dropping them would leave gaps that the low-pass cannot bridge. "
                        "Set fmri.drop_non_steady_state: false or fix the confounds."
                    )
                kept = np.flatnonzero(~flagged)
            if opts["confounds"]:
                sel = select_confounds(confounds, opts["confounds"])
                regressor_names = list(sel.columns)
                regressors = sel.to_numpy()
        else:
            regressors = np.asarray(confounds, dtype=np.float64).reshape(n_volumes, -1)
            regressor_names = [f"regressor {j}" for j in range(regressors.shape[1])]
    if len(kept) < opts["min_volumes"]:
        raise FMRIInputError(
            f"only {len(kept)} volumes remain after dropping non-steady-state ones, fewer than "
            f"fmri.min_volumes ({opts['min_volumes']})."
        )
    values = values[kept]
    if regressors is not None:
        regressors = regressors[kept]
    order_mode = opts["confound_filtering"]
    lowpass = None
    filt = None
    if opts["lowpass_hz"] is not None:
        filter_opts = {
            "sfreq": 1.0 / tr,
            "cutoff": float(opts["lowpass_hz"]),
            "order": int(opts["lowpass_order"]),
            "cutoff_definition": opts["lowpass_cutoff"],
        }
        _, design = lowpass_sos(**filter_opts)

        def filt(x):
            return lowpass_filter(x, **filter_opts)

        lowpass = {
            "Type": "Butterworth",
            "Order": int(opts["lowpass_order"]),
            "CutoffHz": float(opts["lowpass_hz"]),
            "CutoffDefinition": opts["lowpass_cutoff"],
            "DesignFrequencyHz": design,
            "ZeroPhase": True,
            "Implementation": "scipy.signal.sosfiltfilt",
        }
    detrend = int(opts["detrend_order"])
    if filt is not None and order_mode == "orthogonal":
        # Filter the regressors like the data, then regress (Lindquist et al. 2019): the
        # output is orthogonal to the filtered regressors and stays low-passed.
        values = regress_out(
            filt(values), None if regressors is None else filt(regressors), detrend_order=detrend
        )
    else:
        values = regress_out(values, regressors, detrend_order=detrend)
        if filt is not None:
            values = filt(values)
    values = normalize_signals(values, percentile=float(opts["normalize_percentile"]))

    frame = pd.DataFrame(values, columns=columns, index=pd.Index(kept, name="volume"))
    targets = [labels[i] for i in target_idx] + ([GLOBAL_SIGNAL] if want_global else [])
    frame.attrs.update(
        targets=targets,
        kept_volumes=kept.tolist(),
        dropped_volumes=np.setdiff1d(np.arange(n_volumes), kept).tolist(),
        n_volumes=int(n_volumes),
        regressors=regressor_names,
        detrend_order=detrend,
        confound_filtering=order_mode,
        empty_rois=empty,
        lowpass=lowpass,
        normalize_percentile=float(opts["normalize_percentile"]),
        nonfinite_voxels=nonfinite,
        mask_voxels=n_mask,
        tr=float(tr),
    )
    return frame
