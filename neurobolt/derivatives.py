"""Names and dataset-level files of neurobolt's BIDS derivative folder.

The ROI signals carry the BIDS atlas entities: ``atlas-DiFuMo`` with DiFuMo's number of
components as ``scale-<dimension>`` (``scale`` distinguishes the resolutions, in regions, of
one atlas; ``seg`` names a segmentation variant, which DiFuMo does not have), and the
derivative root holds ``atlas-DiFuMo_description.json``. ``dataset_description.json``
records the code (``GeneratedBy`` with ``CodeURL``) and its source dataset in a form that
makes sense on another machine (a DOI when the source declares one, else the path relative
to the derivative folder, through a BIDS URI and ``DatasetLinks``), never a ``file://``
path of the machine that ran it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from . import __version__

#: Where the code lives (``GeneratedBy[0].CodeURL``; pyproject.toml's ``[project.urls]``).
CODE_URL = "https://github.com/neurobolt/neurobolt"

#: The atlas label of every ROI-signal file (``atlas-<label>``) and its description file.
ATLAS_LABEL = "DiFuMo"

#: BIDS version the derivative folder follows (atlas entities and description: BIDS 1.10).
BIDS_VERSION = "1.10.0"

#: What the BIDS validator should not read: neurobolt's own files that no BIDS rule covers.
BIDSIGNORE = [
    "models/",
    "group/",
    "logs/",
    "*.html",
    "runs.tsv",
    "runs.json",
    "validation*.tsv",
    "*_windows.h5",
    "*_desc-clean_qc.json",
    "*_desc-clean_qc.h5",
    "figures/",
    ".snakemake/",
]


def atlas_entities(atlas: Mapping[str, Any] | None = None) -> str:
    """The atlas entities of the ROI-signal files: ``atlas-DiFuMo_scale-<dimension>``.

    Parameters
    ----------
    atlas : mapping | None
        The config's ``fmri.atlas`` section (``dimension``; default 64).
    """
    dimension = int((atlas or {}).get("dimension") or 64)
    return f"atlas-{ATLAS_LABEL}_scale-{dimension}"


def roi_signals_suffix(atlas: Mapping[str, Any] | None = None) -> str:
    """``atlas-DiFuMo_scale-<dimension>_timeseries``: a run's ROI signals, before the extension."""
    return f"{atlas_entities(atlas)}_timeseries"


#: The source dataset's name in BIDS URIs (``bids:raw:``) and ``DatasetLinks``.
SOURCE_NAME = "raw"


def source_reference(
    source: str | os.PathLike, *, derivative_root: str | os.PathLike
) -> tuple[dict, dict]:
    """``SourceDatasets`` and ``DatasetLinks`` that make sense off this machine.

    Parameters
    ----------
    source : path-like
        The input BIDS dataset.
    derivative_root : path-like
        The folder that holds the derivative's ``dataset_description.json``.

    Returns
    -------
    entry : dict
        The ``SourceDatasets`` entry: the BIDS URI ``{"URL": "bids:raw:"}``, with the
        source's ``DatasetDOI`` as ``DOI`` (and its ``DatasetVersion`` as ``Version``) when
        its ``dataset_description.json`` declares one.
    links : dict
        ``DatasetLinks``: ``{"raw": <the source's path relative to the derivative root>}``,
        a relative URI reference (``/`` separators, percent-encoded), e.g.
        ``../data/simulated``, never an absolute ``file://`` path of this machine.
    """
    source = Path(source).resolve()
    entry: dict[str, str] = {"URL": f"bids:{SOURCE_NAME}:"}
    desc_path = source / "dataset_description.json"
    desc: dict[str, Any] = {}
    if desc_path.is_file():
        try:
            desc = json.loads(desc_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            desc = {}
    doi = str(desc.get("DatasetDOI") or "").strip()
    if doi:
        doi = doi.removeprefix("https://doi.org/").removeprefix("doi:")
        entry["DOI"] = f"doi:{doi}"
        if desc.get("DatasetVersion"):
            entry["Version"] = str(desc["DatasetVersion"])
    rel = os.path.relpath(source, Path(derivative_root).resolve())
    return entry, {SOURCE_NAME: quote(Path(rel).as_posix(), safe="/.-_~")}


def dataset_description(
    *, source: str | os.PathLike | None = None, derivative_root: str | os.PathLike | None = None
) -> dict:
    """The derivative ``dataset_description.json``.

    Parameters
    ----------
    source : path-like | None
        The input BIDS dataset (``SourceDatasets``; left out when None).
    derivative_root : path-like | None
        Where the file goes (the source is given relative to it); default: the working
        directory.
    """
    desc: dict[str, Any] = {
        "Name": "neurobolt derivatives",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "neurobolt",
                "Version": __version__,
                "Description": "EEG-to-fMRI prediction (NeuroBOLT) pipeline",
                "CodeURL": CODE_URL,
            }
        ],
    }
    if source:
        root = derivative_root if derivative_root is not None else Path.cwd()
        entry, links = source_reference(source, derivative_root=root)
        desc["SourceDatasets"] = [entry]
        desc["DatasetLinks"] = links
    return desc


def atlas_description(atlas: Mapping[str, Any] | None = None, *, simulated: bool = False) -> dict:
    """``atlas-DiFuMo_description.json``: what the ``atlas-DiFuMo`` files were made with.

    Parameters
    ----------
    atlas : mapping | None
        The config's ``fmri.atlas`` section.
    simulated : bool
        Whether the maps are the simulator's stand-in for DiFuMo (the demo).
    """
    atlas = dict(atlas or {})
    dimension = int(atlas.get("dimension") or 64)
    resolution = int(atlas.get("resolution_mm") or 2)
    custom = bool(atlas.get("maps") and atlas.get("labels"))
    if simulated:
        origin = (
            "the simulator's stand-in for DiFuMo (neurobolt simulate; maps on the simulated BOLD"
            " grid, DiFuMo's labels), found in the source dataset's derivatives/simulation/atlas"
        )
    elif custom:
        origin = "local maps and labels given in the configuration (fmri.atlas.maps/labels)"
    else:
        origin = f"DiFuMo {dimension} at {resolution} mm, fetched with nilearn"
    return {
        "Name": f"DiFuMo {dimension}: Dictionaries of Functional Modes, {dimension} components",
        "Description": (
            "Probabilistic functional modes; the ROI signals are the modes' time courses"
            " estimated from the BOLD inside the brain mask by nilearn's NiftiMapsMasker"
            f" (least squares on the maps). Maps used: {origin}. The scale entity gives the"
            " number of components."
        ),
        "Authors": [
            "Kamalaker Dadi",
            "Gaël Varoquaux",
            "Antonia Machlouzarides-Shalit",
            "Krzysztof J. Gorgolewski",
            "Demian Wassermann",
            "Bertrand Thirion",
            "Arthur Mensch",
        ],
        "License": "See the DiFuMo distribution: https://parietal-inria.github.io/DiFuMo/",
        "ReferencesAndLinks": [
            "https://doi.org/10.1016/j.neuroimage.2020.117126",
            "https://parietal-inria.github.io/DiFuMo/",
        ],
        "Species": "Human",
        "Dimensions": 4,
        "SpatialReference": atlas.get("template") or "MNI152NLin6Asym",
        "Resolution": f"{resolution} mm (resampled to the BOLD grid)",
    }


def training_data(splits: str | os.PathLike) -> dict[str, list[str]]:
    """The scans a model was trained and selected on, from its ``splits.tsv``.

    Returns
    -------
    data : dict
        ``TrainingScans`` and ``ValidationScans`` (sorted scan names; empty when the file
        is missing).
    """
    path = Path(splits)
    if not path.is_file():
        return {"TrainingScans": [], "ValidationScans": []}
    table = pd.read_csv(path, sep="\t", dtype={"scan": str, "split": str})

    def scans(split):
        return sorted(set(table.loc[table["split"] == split, "scan"]))

    return {"TrainingScans": scans("train"), "ValidationScans": scans("val")}
