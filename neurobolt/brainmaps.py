"""Pictures of whole-brain predictions: measured vs predicted maps, and test R per region.

ROI series are back-projected through the atlas maps (each voxel = the sum over ROIs of
the ROI's value times its map weight, as :func:`neurobolt.predict.back_project` and
nilearn's ``NiftiMapsMasker.inverse_transform`` do), so the measured and the predicted
maps are on the same footing: both are what the atlas can represent. Only the volumes
shown are projected, so the figure costs little whatever the recording's length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["fig_brain_maps", "project_volumes", "r_map"]


def project_volumes(values: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Back-project rows of ROI values: ``(n, k)`` and maps ``(x, y, z, k)`` -> ``(x, y, z, n)``."""
    return np.tensordot(np.asarray(maps, float), np.asarray(values, float).T, axes=([3], [0]))


def r_map(maps: np.ndarray, r: Sequence[float]) -> np.ndarray:
    """Each voxel gets the R of the region whose map weighs most there (NaN outside the maps).

    Parameters
    ----------
    maps : ndarray, shape (x, y, z, k)
        The regions' atlas maps.
    r : sequence of float, length k
        Test R per region (NaN: not known).
    """
    maps = np.asarray(maps, float)
    r = np.asarray(r, float)
    best = np.argmax(maps, axis=3)
    out = r[best]
    out[np.max(maps, axis=3) <= 0] = np.nan
    return out


def _columns(frame: pd.DataFrame, labels: Sequence[str]) -> dict[int, str]:
    """Atlas index -> column of ``frame`` naming that atlas label."""
    from .fmri.atlas import normalize_label

    keys = {normalize_label(c): c for c in frame.columns}
    return {
        i: keys[normalize_label(lab)]
        for i, lab in enumerate(labels)
        if normalize_label(lab) in keys
    }


def fig_brain_maps(
    predicted: pd.DataFrame,
    measured: pd.DataFrame,
    *,
    kept_volumes: Sequence[int],
    maps: np.ndarray,
    labels: Sequence[str],
    r_by_roi: Mapping[str, float],
    n_volumes: int = 3,
    title: str = "",
):
    """Measured vs predicted maps at a few volumes, and the test R of each region, on one
    axial slice (the one the predicted regions cover most). The measured maps are the
    measured series of the predicted regions, back-projected the same way.

    Parameters
    ----------
    predicted : DataFrame
        A ``_desc-predicted_timeseries.tsv`` made at the volume markers.
    measured : DataFrame
        The fMRI stage's ROI table of the same run (every atlas component is a column).
    kept_volumes : sequence of int
        The BOLD volume of each row of ``measured``.
    maps : ndarray, shape (x, y, z, k)
        The atlas maps, in ``labels`` order.
    labels : sequence of str
        The atlas labels.
    r_by_roi : mapping
        ROI -> test R (predicted vs measured); regions not in it are left blank.
    n_volumes : int
        Volumes shown, evenly spaced over those both tables have.
    title : str
        The figure's title.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = measured.assign(volume=np.asarray(kept_volumes, dtype=np.int64))
    both = predicted.merge(truth, on="volume", suffixes=("_pred", "_meas"))
    if both.empty:
        raise ValueError("the predicted and measured tables share no volume")
    rows = np.unique(np.linspace(0, len(both) - 1, n_volumes).round().astype(int))
    pred_cols = _columns(predicted.drop(columns=["onset_s", "volume"], errors="ignore"), labels)
    meas_cols = _columns(measured, labels)

    def values(cols: dict[int, str], suffix: str) -> np.ndarray:
        out = np.zeros((len(rows), len(labels)))
        for i, col in cols.items():
            name = f"{col}{suffix}" if f"{col}{suffix}" in both.columns else col
            out[:, i] = both[name].to_numpy(float)[rows]
        return out

    # like with like: the measured map of the regions that are predicted
    meas_cols = {i: col for i, col in meas_cols.items() if i in pred_cols}
    meas_maps = project_volumes(values(meas_cols, "_meas"), maps)
    pred_maps = project_volumes(values(pred_cols, "_pred"), maps)
    shown = np.asarray(maps)[..., sorted(pred_cols)] if pred_cols else np.asarray(maps)
    z = int(np.argmax((shown > 0).any(axis=3).sum(axis=(0, 1))))  # covering them most
    r = [r_by_roi.get(lab, np.nan) for lab in labels]
    rm = r_map(maps, r)
    lim = float(np.nanmax(np.abs(meas_maps[:, :, z]))) or 1.0
    fig, axes = plt.subplots(
        2, len(rows) + 1, figsize=(2.6 * (len(rows) + 1), 5.4), layout="constrained", squeeze=False
    )
    for j, row in enumerate(rows):
        volume = int(both["volume"].iloc[row])
        for i, (img, what) in enumerate(((meas_maps, "measured"), (pred_maps, "predicted"))):
            ax = axes[i, j]
            im = ax.imshow(np.rot90(img[:, :, z, j]), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"{what}, volume {volume}", fontsize=8)
            ax.axis("off")
    fig.colorbar(im, ax=axes[:, len(rows) - 1], shrink=0.6, label="normalised BOLD")
    ax = axes[0, -1]
    im = ax.imshow(np.rot90(rm[:, :, z]), cmap="viridis", vmin=-0.2, vmax=1.0)
    ax.set_title(f"test R per region ({sum(np.isfinite(r))} regions)", fontsize=8)
    ax.axis("off")
    fig.colorbar(im, ax=ax, shrink=0.8, label="R")
    axes[1, -1].axis("off")
    axes[1, -1].text(
        0.0,
        0.5,
        f"axial slice z = {z}\n{len(pred_cols)} of {len(labels)} regions predicted;\n"
        "maps = ROI series back-projected\nthrough the atlas",
        fontsize=8,
        va="center",
    )
    fig.suptitle(title, fontsize=10)
    return fig


def report_figure(predicted, measured, *, kept_volumes, comparison, inputs, atlas, title):
    """:func:`fig_brain_maps` for the group report, or None when no atlas can be read.

    Parameters
    ----------
    predicted, measured, kept_volumes
        As :func:`fig_brain_maps`.
    comparison : DataFrame
        :func:`neurobolt.predict.compare_with_measured`'s table indexed by ROI.
    inputs : mapping
        The report's inputs: ``atlas_maps`` and ``atlas_labels`` when the simulator's
        atlas stands in for DiFuMo.
    atlas : mapping | None
        The ``fmri.atlas`` section (never downloads here: predict has fetched it).
    title : str
        The figure's title.
    """
    import logging

    import nibabel as nib

    from .fmri.atlas import atlas_from_config

    opts = {**dict(atlas or {}), "download": False}
    if inputs.get("atlas_maps"):
        opts.update(maps=inputs["atlas_maps"], labels=inputs["atlas_labels"])
    try:
        found = atlas_from_config(opts)
        maps = np.asarray(nib.load(str(found.maps)).get_fdata(dtype=np.float32))
    except (OSError, ValueError) as err:
        logging.getLogger("neurobolt.report").warning("no brain maps in the report: %s", err)
        return None
    r_by_roi = {roi: float(r) for roi, r in comparison["r"].items()}
    return fig_brain_maps(
        predicted,
        measured,
        kept_volumes=kept_volumes,
        maps=maps,
        labels=list(found.labels),
        r_by_roi=r_by_roi,
        title=title,
    )
