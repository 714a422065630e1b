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

:func:`run_roi_signals` adds the file checks (MNI space, TR in sidecar vs
header, confounds rows vs volumes) and writes
``<run>_atlas-DiFuMo_scale-64_timeseries.tsv`` plus its JSON sidecar atomically.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import signal as sp_signal

from .atlas import (
    DEFAULT_ROIS,
    GLOBAL_SIGNAL,
    Atlas,
    is_global_signal,
    match_rois,
    read_labels,
)

#: The 6 rigid-body motion parameters of the fMRIPrep confounds TSV.
MOTION_6 = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
#: Defaults of the ``fmri`` config section (the schema holds the same values).
DEFAULTS: dict[str, Any] = {
    "atlas": {
        "dimension": 64,
        "resolution_mm": 2,
        "data_dir": None,
        "download": True,
        "maps": None,
        "labels": None,
        "template": None,
    },
    "rois": list(DEFAULT_ROIS),
    "confounds": list(MOTION_6),
    "drop_non_steady_state": True,
    "detrend_order": 1,
    "confound_filtering": "sequential",
    "lowpass_hz": 0.15,
    "lowpass_order": 5,
    "lowpass_cutoff": "zero_phase_3db",
    "normalize_percentile": 95.0,
    "nan_policy": "error",
    "min_volumes": 10,
    "tr_tolerance_s": 1e-3,
}
_NSS_PREFIX = "non_steady_state_outlier"


class FMRIInputError(ValueError):
    """A BOLD run, mask, sidecar or confounds file is unusable."""


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
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown fmri option(s) {unknown}; known: {sorted(DEFAULTS)}")
    options = copy.deepcopy(DEFAULTS)
    atlas = dict(config.pop("atlas", None) or {})
    unknown = sorted(set(atlas) - set(DEFAULTS["atlas"]))
    if unknown:
        raise ValueError(
            f"unknown fmri.atlas option(s) {unknown}; known: {sorted(DEFAULTS['atlas'])}"
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


# --------------------------------------------------------------------------- pure helpers


def lowpass_sos(
    *, sfreq: float, cutoff: float, order: int = 5, cutoff_definition: str = "zero_phase_3db"
) -> tuple[np.ndarray, float]:
    """Design the Butterworth low-pass applied forwards and backwards.

    Filtering forwards and backwards squares the magnitude response, which
    moves the −3 dB point of a Butterworth designed at ``f_c`` down to where
    the single pass is at −1.5 dB (0.144 Hz instead of 0.15 Hz at TR 2.1 s,
    0.138 Hz at TR 0.5 s). With ``cutoff_definition="zero_phase_3db"`` the
    design frequency is raised so that the *zero-phase* response is −3 dB at
    ``cutoff`` exactly, at any sampling rate (bilinear-transform warping is
    accounted for). ``"single_pass_3db"`` designs at ``cutoff`` as the
    NeuroBOLT reference code does.

    Parameters
    ----------
    sfreq : float
        Sampling frequency in Hz (1 / TR).
    cutoff : float
        Cut-off in Hz; must be below the Nyquist frequency.
    order : int
        Order of the single-pass Butterworth (the zero-phase filter is twice
        as steep).
    cutoff_definition : str
        ``"zero_phase_3db"`` or ``"single_pass_3db"``.

    Returns
    -------
    sos : ndarray, shape (n_sections, 6)
        Second-order sections.
    design_hz : float
        The frequency the Butterworth was designed at.
    """
    nyquist = sfreq / 2.0
    if not 0 < cutoff < nyquist:
        raise ValueError(
            f"low-pass cut-off {cutoff} Hz must lie in (0, {nyquist:.4g}) Hz, the Nyquist "
            f"frequency at TR {1 / sfreq:.4g} s; lower fmri.lowpass_hz or set it to null."
        )
    design = float(cutoff)
    if cutoff_definition == "zero_phase_3db":
        # |H(f)|^2 = 1 / (1 + (tan(pi f / fs) / tan(pi fd / fs))^(2 N)); forward-backward
        # gives |H|^2, which is 1/sqrt(2) where the ratio equals (sqrt(2) - 1)^(1 / 2N).
        ratio = (np.sqrt(2.0) - 1.0) ** (1.0 / (2 * order))
        design = float(np.arctan(np.tan(np.pi * cutoff / sfreq) / ratio) * sfreq / np.pi)
        if design >= nyquist:
            raise ValueError(
                f"low-pass cut-off {cutoff} Hz is too close to the Nyquist frequency "
                f"{nyquist:.4g} Hz for a zero-phase design; lower fmri.lowpass_hz."
            )
    elif cutoff_definition != "single_pass_3db":
        raise ValueError(f"unknown cutoff_definition {cutoff_definition!r}")
    sos = sp_signal.butter(order, design, btype="lowpass", fs=sfreq, output="sos")
    return sos, design


def lowpass_filter(
    signals: np.ndarray,
    *,
    sfreq: float,
    cutoff: float = 0.15,
    order: int = 5,
    cutoff_definition: str = "zero_phase_3db",
    axis: int = 0,
) -> np.ndarray:
    """Zero-phase Butterworth low-pass (forward-backward second-order sections).

    Parameters
    ----------
    signals : ndarray
        Time series; time along ``axis``.
    sfreq : float
        Sampling frequency in Hz (1 / TR).
    cutoff : float
        −3 dB frequency in Hz (see :func:`lowpass_sos` for its definition).
    order : int
        Butterworth order (5 in the reference).
    cutoff_definition : str
        ``"zero_phase_3db"`` (default) or ``"single_pass_3db"``.
    axis : int
        Time axis.

    Returns
    -------
    filtered : ndarray
        Same shape, float64.
    """
    signals = np.asarray(signals, dtype=np.float64)
    sos, _ = lowpass_sos(
        sfreq=sfreq, cutoff=cutoff, order=order, cutoff_definition=cutoff_definition
    )
    n = signals.shape[axis]
    default_padlen = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    return sp_signal.sosfiltfilt(sos, signals, axis=axis, padlen=min(default_padlen, n - 1))


def normalize_signals(
    signals: np.ndarray, *, percentile: float = 95.0, axis: int = 0
) -> np.ndarray:
    """Demean and divide by the given percentile of ``|x|``, per series.

    A series that is constant (percentile 0) stays at zero after demeaning
    and triggers a warning instead of a division by zero.

    Parameters
    ----------
    signals : ndarray
        Time series; time along ``axis``.
    percentile : float
        Percentile of the absolute demeaned values that becomes 1.
    axis : int
        Time axis.

    Returns
    -------
    normalized : ndarray
        Same shape, float64; each series has mean 0 and the given
        percentile of ``|x|`` equal to 1.
    """
    x = np.asarray(signals, dtype=np.float64)
    x = x - x.mean(axis=axis, keepdims=True)
    scale = np.percentile(np.abs(x), percentile, axis=axis, keepdims=True)
    flat = scale <= np.finfo(np.float64).tiny
    if np.any(flat):
        warnings.warn(
            f"{int(flat.sum())} constant series left at zero by normalisation", stacklevel=2
        )
    return x / np.where(flat, 1.0, scale)


def regress_out(
    signals: np.ndarray, regressors: np.ndarray | None, *, detrend_order: int = 0
) -> np.ndarray:
    """Remove regressors and a polynomial trend by ordinary least squares.

    Parameters
    ----------
    signals : ndarray, shape (n_times, n_series)
        Time series.
    regressors : ndarray, shape (n_times, n_regressors) | None
        Confounds (e.g. motion parameters); must be finite.
    detrend_order : int
        Polynomial order of the trend also removed (0 = the mean only,
        1 = mean and linear trend, ...).

    Returns
    -------
    residuals : ndarray, shape (n_times, n_series)
        Orthogonal to every regressor and to the polynomial.
    """
    y = np.asarray(signals, dtype=np.float64)
    squeeze = y.ndim == 1
    if squeeze:
        y = y[:, None]
    n = y.shape[0]
    t = np.linspace(-1.0, 1.0, n)
    columns = [np.polynomial.legendre.legval(t, np.eye(k + 1)[k]) for k in range(detrend_order + 1)]
    design = np.column_stack(columns)
    if regressors is not None:
        regressors = np.asarray(regressors, dtype=np.float64).reshape(n, -1)
        if not np.all(np.isfinite(regressors)):
            raise FMRIInputError("confound regressors contain NaN or inf after filling n/a")
        design = np.column_stack([design, regressors])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ beta
    return residuals[:, 0] if squeeze else residuals


def read_confounds(path: str | os.PathLike) -> pd.DataFrame:
    """Read an fMRIPrep ``*_desc-confounds_timeseries.tsv`` (``n/a`` → NaN).

    Parameters
    ----------
    path : path-like
        The TSV file.

    Returns
    -------
    confounds : pandas.DataFrame
        One row per BOLD volume.
    """
    path = Path(path)
    if not path.is_file():
        raise FMRIInputError(f"confounds file {path} does not exist")
    return pd.read_csv(path, sep="\t", na_values=["n/a", "N/A", "NaN", "nan", ""])


def select_confounds(confounds: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Pick confound columns, filling the leading ``n/a`` rows with 0.

    fMRIPrep leaves the first row(s) of derivative and power-derivative
    columns ``n/a``; those are set to 0. ``n/a`` anywhere else is an error.

    Parameters
    ----------
    confounds : pandas.DataFrame
        The confounds table.
    columns : sequence of str
        Column names or shell-style patterns (``"trans_*"``).

    Returns
    -------
    selected : pandas.DataFrame
        The chosen columns (float), in the order requested.
    """
    names: list[str] = []
    missing = []
    for pattern in columns:
        hits = [c for c in confounds.columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            missing.append(pattern)
        names.extend(h for h in hits if h not in names)
    if missing:
        raise FMRIInputError(
            f"confound column(s) {missing} are not in the confounds table (it has "
            f"{len(confounds.columns)} columns, e.g. {list(confounds.columns[:8])}); "
            "fix fmri.confounds."
        )
    selected = confounds[names].apply(pd.to_numeric, errors="coerce").astype(float)
    values = selected.to_numpy(copy=True)
    for j, name in enumerate(names):
        bad = ~np.isfinite(values[:, j])
        if not bad.any():
            continue
        first_good = int(np.argmin(bad)) if not bad.all() else len(bad)
        if first_good == len(bad) or bad[first_good:].any():
            rows = np.flatnonzero(bad)
            raise FMRIInputError(
                f"confound column {name!r} has n/a or non-numeric values in rows "
                f"{rows[:10].tolist()} beyond the leading ones; only leading n/a are filled."
            )
        values[:first_good, j] = 0.0
    return pd.DataFrame(values, columns=names, index=confounds.index)


def non_steady_state_mask(confounds: pd.DataFrame) -> np.ndarray:
    """Return which volumes fMRIPrep flags as non-steady-state.

    Parameters
    ----------
    confounds : pandas.DataFrame
        The confounds table; its ``non_steady_state_outlier*`` columns are
        one-hot per flagged volume.

    Returns
    -------
    flagged : ndarray of bool, shape (n_volumes,)
    """
    cols = [c for c in confounds.columns if str(c).startswith(_NSS_PREFIX)]
    if not cols:
        return np.zeros(len(confounds), dtype=bool)
    values = confounds[cols].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy()
    return np.any(values > 0.5, axis=1)


def bold_space(path: str | os.PathLike, sidecar: Mapping[str, Any] | None = None) -> str:
    """Return the template space of a BOLD file and refuse native space.

    The space comes from the ``space-<label>`` entity of the file name, or
    else from a ``Space``/``SpatialReference`` sidecar field.

    Parameters
    ----------
    path : path-like
        The BOLD file.
    sidecar : mapping | None
        Its JSON sidecar.

    Returns
    -------
    space : str
        E.g. ``"MNI152NLin6Asym"``.

    Raises
    ------
    FMRIInputError
        No space is declared (raw, native-space data) or it is not MNI.
    """
    name = Path(path).name
    match = re.search(r"(?:^|_)space-([A-Za-z0-9]+)", name)
    space = match.group(1) if match else None
    if space is None and sidecar:
        for key in ("Space", "SpatialReference", "space"):
            value = sidecar.get(key)
            if isinstance(value, str) and value:
                space = value
                break
    hint = (
        "use fMRIPrep's output in an MNI space "
        "(..._space-MNI152NLin6Asym_desc-preproc_bold.nii.gz; --output-spaces MNI152NLin6Asym)."
    )
    if space is None:
        raise FMRIInputError(
            f"{path}: no space- entity in the file name and no Space in its sidecar, so it is "
            f"taken as native space; the DiFuMo atlas needs MNI space: {hint}"
        )
    if not space.upper().startswith("MNI"):
        raise FMRIInputError(f"{path}: space-{space} is not an MNI space; {hint}")
    return space


def header_tr(img: nib.spatialimages.SpatialImage) -> float | None:
    """Return the TR in seconds stored in a 4-D NIfTI header (None if absent)."""
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] > 0:
        return None
    tr = float(zooms[3])
    try:
        unit = img.header.get_xyzt_units()[1]
    except Exception:
        unit = "sec"
    return tr / {"msec": 1e3, "usec": 1e6}.get(unit, 1.0)


def repetition_time(
    img: nib.spatialimages.SpatialImage,
    sidecar: Mapping[str, Any] | None,
    *,
    tolerance: float = 1e-3,
    names: str = "BOLD",
) -> float:
    """Return the TR from the sidecar, checked against the NIfTI header.

    Parameters
    ----------
    img : nibabel image
        The 4-D BOLD image.
    sidecar : mapping | None
        Its JSON sidecar (``RepetitionTime`` in s).
    tolerance : float
        Largest accepted difference in seconds.
    names : str
        How to name the files in error messages.

    Returns
    -------
    tr : float
        Seconds.
    """
    from_header = header_tr(img)
    from_sidecar = None if not sidecar else sidecar.get("RepetitionTime")
    if from_sidecar is None:
        if from_header is None:
            raise FMRIInputError(
                f"{names}: no RepetitionTime in the sidecar and none in the NIfTI header; "
                "add RepetitionTime (s) to the BOLD JSON sidecar."
            )
        warnings.warn(
            f"{names}: no RepetitionTime in the sidecar; using the header's {from_header:g} s",
            stacklevel=2,
        )
        return from_header
    tr = float(from_sidecar)
    if not tr > 0:
        raise FMRIInputError(f"{names}: sidecar RepetitionTime {from_sidecar!r} is not positive")
    if from_header is not None and abs(from_header - tr) > tolerance:
        raise FMRIInputError(
            f"{names}: TR disagreement: the sidecar says RepetitionTime {tr:g} s but the NIfTI "
            f"header says {from_header:g} s; fix whichever is wrong (fMRIPrep copies the raw "
            "BOLD's values)."
        )
    return tr


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
        The ``fmri`` config section; see :data:`DEFAULTS`.
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


def _load_img(img, what: str):
    if isinstance(img, str | os.PathLike):
        path = Path(img)
        if not path.is_file():
            raise FMRIInputError(f"{what} {path} does not exist")
        try:
            return nib.load(path)
        except Exception as exc:
            raise FMRIInputError(f"{what} {path} cannot be read as NIfTI: {exc}") from exc
    if not hasattr(img, "affine") or not hasattr(img, "shape"):
        raise FMRIInputError(f"{what} must be a NIfTI path or image, got {type(img).__name__}")
    return img


def _mask_on_grid(mask_img, img, data: np.ndarray) -> np.ndarray:
    """Boolean mask on the BOLD grid (nearest-neighbour resampling if needed)."""
    if mask_img is None:
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0).std(axis=3) > 0
    from nilearn.image import resample_img

    mask = _load_img(mask_img, "brain mask")
    if mask.ndim == 4 and mask.shape[3] == 1:
        mask = nib.Nifti1Image(np.asarray(mask.dataobj)[..., 0], mask.affine)
    if mask.ndim != 3:
        raise FMRIInputError(f"brain mask must be 3-D, got shape {mask.shape}")
    if mask.shape != img.shape[:3] or not np.allclose(mask.affine, img.affine, atol=1e-4):
        warnings.warn("resampling the brain mask to the BOLD grid (nearest)", stacklevel=3)
        mask = resample_img(
            mask,
            target_affine=img.affine,
            target_shape=img.shape[:3],
            interpolation="nearest",
            copy_header=True,
            force_resample=True,
        )
    return np.asarray(mask.dataobj) > 0


# --------------------------------------------------------------------------- file I/O


def sidecar_path(path: str | os.PathLike) -> Path:
    """Return the JSON sidecar path of a ``.nii``/``.nii.gz``/``.tsv`` file."""
    path = Path(path)
    name = re.sub(r"(\.nii\.gz|\.nii|\.tsv\.gz|\.tsv)$", "", path.name)
    return path.with_name(name + ".json")
