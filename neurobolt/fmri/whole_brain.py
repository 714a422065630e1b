"""The whole brain as targets: ``fmri.rois: all`` = every atlas component + the global signal.

The workflow plans one output folder per ROI before any file exists, so the names of
"every component" must be known without the atlas: DiFuMo-64's are built in (the
simulator's stand-in atlas uses the same labels); for another dimension the labels file
(``fmri.atlas.labels``, or nilearn's DiFuMo copy in ``fmri.atlas.data_dir``) must be present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ALL", "DIFUMO64_LABELS", "expand_rois"]

#: The ``fmri.rois`` value that selects every atlas component and the global signal.
ALL = "all"

#: DiFuMo-64 component labels in atlas order (U+2019 in "Heschl\u2019s gyrus", as the atlas has it).
DIFUMO64_LABELS = (
    "Superior frontal sulcus",
    "Fusiform gyrus",
    "Calcarine cortex posterior",
    "Cingulate cortex posterior",
    "Parieto-occipital sulcus superior",
    "Insula antero-superior",
    "Superior temporal sulcus with angular gyrus",
    "Planum temporale",
    "Cerebellum Crus II",
    "Superior parts of Postcentral and Precentral gyri",
    "Transverse sinus",
    "Paracentral gyrus RH",
    "Superior occipital gyrus",
    "Cingulate gyrus mid-posterior",
    "ventricles",
    "Fusiform gyrus posterior",
    "Superior frontal gyrus medial",
    "Precuneus superior",
    "Planum polare",
    "Parieto-occipital sulcus middle",
    "Cerebellum I-V",
    "Superior fornix and isthmus",
    "Anterior Cingulate Cortex",
    "Descending occipital gyrus",
    "Putamen",
    "Cingulate gyrus mid-anterior",
    "Superior parietal lobule posterior",
    "Paracentral lobule",
    "Inferior occipital gyrus",
    "Superior rostral gyrus",
    "Calcarine sulcus anterior",
    "Intraparietal sulcus",
    "Superior parietal lobule anterior",
    "Precentral gyrus medial",
    "Lingual gyrus anterior",
    "Angular gyrus superior",
    "Supramarginal gyrus",
    "Intraparietal sulcus LH",
    "Dorsomedial prefrontal cortex antero-superior",
    "Precentral gyrus superior",
    "Postcentral gyrus inferior",
    "Lateral occipital cortex",
    "Callosomarginal sulcus",
    "Paracentral lobule superior",
    "Heschl\u2019s gyrus",
    "Occipital pole",
    "Thalamus",
    "Intraparietal sulcus RH",
    "Inferior frontal sulcus",
    "Postcentral gyrus LH",
    "Middle frontal gyrus",
    "Inferior frontal gyrus",
    "Parieto-occipital sulcus anterior",
    "Precuneus anterior",
    "Lingual gyrus",
    "Superior occipital sulcus",
    "Superior parietal lobule",
    "Middle frontal gyrus anterior",
    "Angular gyrus inferior",
    "Cuneus",
    "Middle temporal gyrus",
    "Superior frontal gyrus",
    "Central sulcus",
    "Caudate",
)


def expand_rois(rois: str | Sequence[str], atlas: Mapping[str, Any] | None = None) -> list[str]:
    """``fmri.rois`` as a list: ``"all"`` becomes every atlas label, then the global signal.

    Parameters
    ----------
    rois : "all" | sequence of str
        The ``fmri.rois`` value.
    atlas : mapping | None
        The ``fmri.atlas`` section (``dimension``, ``labels``, ``data_dir``).

    Returns
    -------
    rois : list of str
        ``rois`` itself when it is a list.

    Raises
    ------
    ValueError
        ``"all"`` with an atlas whose labels are neither built in nor on disk.
    """
    from .atlas import GLOBAL_SIGNAL, difumo_files, read_labels

    if not isinstance(rois, str):
        return [str(r) for r in rois]
    if rois != ALL:
        raise ValueError(f"fmri.rois must be a list of ROI names or {ALL!r}, got {rois!r}")
    atlas = dict(atlas or {})
    dimension = int(atlas.get("dimension", 64))
    candidates = [atlas.get("labels")]
    if atlas.get("data_dir"):
        resolution = int(atlas.get("resolution_mm", 2))
        candidates.append(
            difumo_files(atlas["data_dir"], dimension=dimension, resolution_mm=resolution)["labels"]
        )
    for path in candidates:
        if path and Path(path).is_file():
            return [*read_labels(path), GLOBAL_SIGNAL]
    if atlas.get("labels"):
        raise ValueError(f"fmri.rois: all reads the atlas labels, but {atlas['labels']} is missing")
    if dimension == 64:
        return [*DIFUMO64_LABELS, GLOBAL_SIGNAL]
    raise ValueError(
        f"fmri.rois: all needs the labels of DiFuMo-{dimension} before the workflow runs:"
        " set fmri.atlas.labels (or fmri.atlas.data_dir holding nilearn's DiFuMo copy);"
        " only DiFuMo-64's labels are built in"
    )
