"""Reading the fMRI stage's inputs: confounds, BOLD space and TR, images and masks."""

from __future__ import annotations

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

#: The 6 rigid-body motion parameters of the fMRIPrep confounds TSV.
MOTION_6 = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_NSS_PREFIX = "non_steady_state_outlier"


class FMRIInputError(ValueError):
    """A BOLD run, mask, sidecar or confounds file is unusable."""


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


def sidecar_path(path: str | os.PathLike) -> Path:
    """Return the JSON sidecar path of a ``.nii``/``.nii.gz``/``.tsv`` file."""
    path = Path(path)
    name = re.sub(r"(\.nii\.gz|\.nii|\.tsv\.gz|\.tsv)$", "", path.name)
    return path.with_name(name + ".json")
