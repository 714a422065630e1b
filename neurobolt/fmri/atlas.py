"""DiFuMo atlas: find or fetch the maps and labels, and match ROI names.

The atlas comes from one of two places:

- local files given in the configuration (``maps`` + ``labels``), e.g. the
  simulator's ``derivatives/simulation/atlas/maps.nii.gz`` and
  ``labels_64_dictionary.csv`` in the demo;
- nilearn's DiFuMo layout under a data directory
  (``<data_dir>/difumo_atlases/<dimension>/<resolution>mm/maps.nii.gz`` and
  ``<data_dir>/difumo_atlases/<dimension>/labels_<dimension>_dictionary.csv``),
  downloaded with :func:`nilearn.datasets.fetch_atlas_difumo` when absent and
  downloading is allowed.

Files that are already in place are read directly: nilearn is only called
when something is missing, so a complete offline copy never touches the network.
"""

from __future__ import annotations

import difflib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import pandas as pd

from .. import config as nbconfig

DIFUMO_DIMENSIONS = (64, 128, 256, 512, 1024)
DIFUMO_RESOLUTIONS_MM = (2, 3)
#: Template the DiFuMo maps are defined in (as declared by nilearn).
DIFUMO_TEMPLATE = "MNI152NLin6Asym"
#: OSF archives nilearn downloads (each unpacks to ``<dimension>/...``).
DIFUMO_URLS = {
    64: "https://osf.io/pqu9r/download",
    128: "https://osf.io/wjvd5/download",
    256: "https://osf.io/3vrct/download",
    512: "https://osf.io/9b76y/download",
    1024: "https://osf.io/34792/download",
}
#: The six DiFuMo-64 regions of the NeuroBOLT paper (the atlas spells U+2019).
PAPER_ROIS = (
    "Cuneus",
    "Heschl\u2019s gyrus",
    "Middle frontal gyrus anterior",
    "Precuneus anterior",
    "Putamen",
    "Thalamus",
)
#: Column name of the global signal (mean over the brain mask).
GLOBAL_SIGNAL = "global signal"
#: Default targets: the paper's six regions plus the global signal.
DEFAULT_ROIS = (*PAPER_ROIS, GLOBAL_SIGNAL)
_GLOBAL_ALIASES = frozenset({"global", "global signal", "global_signal", "globalsignal", "gs"})

# Apostrophe look-alikes: right/left single quotes, modifier letters, prime,
# grave and acute accents, fullwidth apostrophe.
_APOSTROPHES = "\u2019\u2018\u201b\u02bc\u02b9\u02bb\u2032\u0060\u00b4\uff07"
_APOSTROPHE_TABLE = str.maketrans({c: "'" for c in _APOSTROPHES})
_LABEL_COLUMNS = ("difumo_names", "name", "label", "labels", "roi", "region")


class AtlasNotFoundError(FileNotFoundError):
    """The atlas files are neither present nor downloadable."""


@dataclass(frozen=True)
class Atlas:
    """A probabilistic atlas: 4-D maps and one label per map.

    Attributes
    ----------
    maps : pathlib.Path
        4-D NIfTI, one volume per region.
    labels : tuple of str
        ``labels[i]`` names ``maps[..., i]``.
    template : str
        Template space of the maps (e.g. ``"MNI152NLin6Asym"``).
    source : str
        ``"local"`` (configured files), ``"data_dir"`` (found in the nilearn
        layout) or ``"nilearn"`` (downloaded now).
    dimension : int
        Number of maps.
    resolution_mm : int | None
        DiFuMo resolution when known.
    labels_file : pathlib.Path | None
        Where the labels were read from.
    """

    maps: Path
    labels: tuple[str, ...]
    template: str = DIFUMO_TEMPLATE
    source: str = "local"
    dimension: int = 0
    resolution_mm: int | None = None
    labels_file: Path | None = None

    def describe(self) -> dict[str, Any]:
        """Return a JSON-serialisable description (for sidecars)."""
        return {
            "Name": "DiFuMo",
            "Dimension": self.dimension,
            "ResolutionMM": self.resolution_mm,
            "Template": self.template,
            "Source": self.source,
            "Maps": str(self.maps),
            "Labels": None if self.labels_file is None else str(self.labels_file),
        }


def normalize_label(label: str) -> str:
    """Return a comparison key for an ROI label.

    Unicode is NFKC-normalised, every apostrophe look-alike (``’ ‘ ʼ ′ ` ´``)
    becomes ``'``, case is folded and runs of white space collapse to one
    space, so ``"Heschl’s gyrus"``, ``"heschl's Gyrus"`` and
    ``"Heschl`s  gyrus"`` compare equal.

    Parameters
    ----------
    label : str
        The label.

    Returns
    -------
    key : str
        The normalised key.
    """
    text = unicodedata.normalize("NFKC", str(label)).translate(_APOSTROPHE_TABLE)
    return re.sub(r"\s+", " ", text).strip().casefold()


def is_global_signal(name: str) -> bool:
    """Return True when ``name`` requests the global signal."""
    return normalize_label(name) in _GLOBAL_ALIASES


def match_rois(requested: Iterable[str], labels: Sequence[str]) -> list[int]:
    """Find the index of each requested ROI among the atlas labels.

    Matching uses :func:`normalize_label` (apostrophe variants and case).

    Parameters
    ----------
    requested : iterable of str
        ROI names (global-signal aliases must be removed by the caller).
    labels : sequence of str
        The atlas labels.

    Returns
    -------
    indices : list of int
        ``labels[indices[i]]`` is the i-th requested ROI.

    Raises
    ------
    ValueError
        A name matches no label (the closest labels are suggested) or more
        than one label.
    """
    keys: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        keys.setdefault(normalize_label(label), []).append(i)
    indices = []
    for name in requested:
        hits = keys.get(normalize_label(name), [])
        if len(hits) == 1:
            indices.append(hits[0])
            continue
        if len(hits) > 1:
            raise ValueError(
                f"ROI {name!r} matches {len(hits)} atlas labels "
                f"({', '.join(repr(labels[i]) for i in hits)}); the atlas labels must be unique."
            )
        close = difflib.get_close_matches(normalize_label(name), list(keys), n=3, cutoff=0.6)
        hint = [labels[keys[c][0]] for c in close]
        raise ValueError(
            f"ROI {name!r} is not an atlas label"
            + (f"; closest: {', '.join(map(repr, hint))}" if hint else "")
            + f". Fix fmri.rois (the atlas has {len(labels)} labels, e.g. {list(labels[:3])})."
        )
    return indices


def read_labels(path: str | os.PathLike) -> list[str]:
    """Read atlas labels from a DiFuMo-style CSV/TSV or a one-per-line text file.

    A table is recognised by a header column named ``Difumo_names`` (or
    ``name``/``label``/``roi``/``region``, any case). When a ``Component``
    column holds 1..n in another order, rows are sorted by it, so that
    ``labels[i]`` names map volume ``i``.

    Parameters
    ----------
    path : path-like
        The labels file.

    Returns
    -------
    labels : list of str
        One label per map.
    """
    path = Path(path)
    if not path.is_file():
        raise AtlasNotFoundError(f"atlas labels file {path} does not exist")
    first = path.read_text(encoding="utf-8-sig").splitlines()[:1]
    sep = "\t" if (path.suffix.lower() == ".tsv" or (first and "\t" in first[0])) else ","
    if first and sep not in first[0] and path.suffix.lower() not in (".csv", ".tsv"):
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        return [line.strip() for line in lines if line.strip()]
    table = pd.read_csv(path, sep=sep, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    lower = {c.strip().lower(): c for c in table.columns}
    column = next((lower[c] for c in _LABEL_COLUMNS if c in lower), None)
    if column is None:
        raise ValueError(
            f"atlas labels file {path} has no label column: expected one of "
            f"{list(_LABEL_COLUMNS)} (case-insensitive), found {list(table.columns)}."
        )
    if "component" in lower:
        try:
            comp = table[lower["component"]].astype(int).to_numpy()
        except ValueError:
            comp = None
        if comp is not None and sorted(comp.tolist()) == list(range(1, len(comp) + 1)):
            table = table.iloc[comp.argsort(kind="stable")]
    return [str(v).strip() for v in table[column]]


def difumo_files(
    data_dir: str | os.PathLike,
    *,
    dimension: int = nbconfig.defaults("fmri.atlas.dimension"),
    resolution_mm: int = nbconfig.defaults("fmri.atlas.resolution_mm"),
) -> dict[str, Path]:
    """Return where nilearn's DiFuMo layout keeps the maps and labels.

    Parameters
    ----------
    data_dir : path-like
        The nilearn data directory (the parent of ``difumo_atlases``).
    dimension : int
        Number of DiFuMo components.
    resolution_mm : int
        2 or 3.

    Returns
    -------
    files : dict
        ``{"maps": Path, "labels": Path}``.
    """
    _check_difumo_options(dimension, resolution_mm)
    root = Path(data_dir).expanduser() / "difumo_atlases" / str(dimension)
    return {
        "maps": root / f"{resolution_mm}mm" / "maps.nii.gz",
        "labels": root / f"labels_{dimension}_dictionary.csv",
    }


def load_atlas(
    *,
    dimension: int = nbconfig.defaults("fmri.atlas.dimension"),
    resolution_mm: int = nbconfig.defaults("fmri.atlas.resolution_mm"),
    data_dir: str | os.PathLike | None = None,
    maps: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    download: bool = True,
    template: str | None = None,
) -> Atlas:
    """Locate (and if allowed download) the DiFuMo atlas.

    Parameters
    ----------
    dimension : int
        Number of components (64, 128, 256, 512 or 1024).
    resolution_mm : int
        2 or 3.
    data_dir : path-like | None
        nilearn data directory; None uses nilearn's default directories
        (``NILEARN_DATA``, ``~/nilearn_data``).
    maps, labels : path-like | None
        Local atlas files; when both are given they are used as is and
        nothing is fetched.
    download : bool
        Whether a missing atlas may be downloaded with
        :func:`nilearn.datasets.fetch_atlas_difumo`.
    template : str | None
        Template space of the maps; None means DiFuMo's (MNI152NLin6Asym).

    Returns
    -------
    atlas : Atlas
        The maps path and labels.

    Raises
    ------
    AtlasNotFoundError
        The atlas is absent and could not be (or may not be) downloaded; the
        message lists the files to place and where.
    """
    template = template or DIFUMO_TEMPLATE
    if (maps is None) != (labels is None):
        raise ValueError(
            "fmri.atlas.maps and fmri.atlas.labels must be given together (got "
            f"maps={maps!r}, labels={labels!r}); set both, or neither to use DiFuMo."
        )
    if maps is not None:
        maps, labels = Path(maps).expanduser(), Path(labels).expanduser()
        missing = [str(p) for p in (maps, labels) if not p.is_file()]
        if missing:
            raise AtlasNotFoundError(
                f"atlas file(s) {', '.join(missing)} do not exist; fix fmri.atlas.maps / "
                "fmri.atlas.labels (or set both to null to use DiFuMo from nilearn)."
            )
        return _make_atlas(maps, labels, template=template, source="local", resolution_mm=None)

    _check_difumo_options(dimension, resolution_mm)
    candidates = [Path(data_dir).expanduser()] if data_dir is not None else _nilearn_default_dirs()
    for directory in candidates:
        files = difumo_files(directory, dimension=dimension, resolution_mm=resolution_mm)
        if files["maps"].is_file() and files["labels"].is_file():
            return _make_atlas(
                files["maps"],
                files["labels"],
                template=template,
                source="data_dir",
                resolution_mm=resolution_mm,
            )
    target = candidates[0]
    files = difumo_files(target, dimension=dimension, resolution_mm=resolution_mm)
    if not download:
        raise AtlasNotFoundError(
            _missing_message(files, dimension, resolution_mm, "downloading is disabled")
        )
    from nilearn import datasets

    try:
        datasets.fetch_atlas_difumo(
            dimension=dimension, resolution_mm=resolution_mm, data_dir=str(target), verbose=0
        )
    except Exception as exc:  # network errors come in many types
        reason = f"the download failed: {type(exc).__name__}: {exc}"
        raise AtlasNotFoundError(_missing_message(files, dimension, resolution_mm, reason)) from exc
    if not (files["maps"].is_file() and files["labels"].is_file()):
        raise AtlasNotFoundError(
            _missing_message(files, dimension, resolution_mm, "nilearn put the files elsewhere")
        )
    return _make_atlas(
        files["maps"],
        files["labels"],
        template=template,
        source="nilearn",
        resolution_mm=resolution_mm,
    )


def atlas_from_config(config: Mapping[str, Any] | None) -> Atlas:
    """Call :func:`load_atlas` with the ``fmri.atlas`` options of a config section.

    Parameters
    ----------
    config : mapping | None
        The ``fmri`` section (its ``atlas`` sub-mapping is used) or the
        ``atlas`` mapping itself.

    Returns
    -------
    atlas : Atlas
    """
    config = dict(config or {})
    section = dict(config.get("atlas", config))
    return load_atlas(
        dimension=int(section.get("dimension", 64)),
        resolution_mm=int(section.get("resolution_mm", 2)),
        data_dir=section.get("data_dir"),
        maps=section.get("maps"),
        labels=section.get("labels"),
        download=bool(section.get("download", True)),
        template=section.get("template"),
    )


def _check_difumo_options(dimension: int, resolution_mm: int) -> None:
    if dimension not in DIFUMO_DIMENSIONS:
        raise ValueError(
            f"fmri.atlas.dimension {dimension!r} is not a DiFuMo dimension {DIFUMO_DIMENSIONS}"
        )
    if resolution_mm not in DIFUMO_RESOLUTIONS_MM:
        raise ValueError(
            f"fmri.atlas.resolution_mm {resolution_mm!r} is not one of {DIFUMO_RESOLUTIONS_MM}"
        )


def _nilearn_default_dirs() -> list[Path]:
    from nilearn.datasets import get_data_dirs

    return [Path(d).expanduser() for d in get_data_dirs()]


def _missing_message(
    files: Mapping[str, Path], dimension: int, resolution_mm: int, why: str
) -> str:
    return (
        f"DiFuMo-{dimension} atlas ({resolution_mm} mm) is not available offline and {why}.\n"
        f"Place these two files (from the archive {DIFUMO_URLS[dimension]}, which unpacks to "
        f"'{dimension}/labels_{dimension}_dictionary.csv' and "
        f"'{dimension}/{resolution_mm}mm/maps.nii.gz'):\n"
        f"  {files['maps']}\n"
        f"  {files['labels']}\n"
        "or set fmri.atlas.data_dir to a directory that holds difumo_atlases/, or set "
        "fmri.atlas.maps and fmri.atlas.labels to local files (the demo uses the simulator's "
        "derivatives/simulation/atlas/maps.nii.gz and labels_64_dictionary.csv)."
    )


def _make_atlas(
    maps: Path, labels_file: Path, *, template: str, source: str, resolution_mm: int | None
) -> Atlas:
    try:
        shape = nib.load(maps).shape
    except Exception as exc:
        raise ValueError(f"atlas maps {maps} cannot be read as NIfTI: {exc}") from exc
    if len(shape) != 4:
        raise ValueError(f"atlas maps {maps} must be 4-D (one volume per region), got {shape}")
    labels = read_labels(labels_file)
    if len(labels) != shape[3]:
        raise ValueError(
            f"atlas labels {labels_file} list {len(labels)} labels but maps {maps} hold "
            f"{shape[3]} volumes; use the labels file that belongs to these maps."
        )
    return Atlas(
        maps=maps,
        labels=tuple(labels),
        template=template,
        source=source,
        dimension=int(shape[3]),
        resolution_mm=resolution_mm,
        labels_file=labels_file,
    )
