"""Find the EEG recordings that pair with a BOLD run, and their fMRIPrep outputs.

One *run* is one EEG recording paired with one BOLD run with the same
subject, session, task, acquisition and run entities, plus the fMRIPrep
outputs for that BOLD run (preprocessed BOLD in the configured MNI space,
brain mask, confounds TSV). Discovery uses mne-bids; nothing is globbed by
hand.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mne_bids
import pandas as pd

from . import config as nbconfig

logger = logging.getLogger("neurobolt.bids")

#: EEG file formats mne-bids reads (BrainVision first: what in-scanner amplifiers write).
EEG_EXTENSIONS = (".vhdr", ".edf", ".bdf", ".set")
_ENTITIES = ("subject", "session", "task", "acquisition", "run")


@dataclass(frozen=True)
class Run:
    """One EEG recording paired with one BOLD run and its fMRIPrep outputs."""

    subject: str
    session: str | None
    task: str | None
    acquisition: str | None
    run: str | None
    eeg: Path
    bold: Path
    preproc_bold: Path
    mask: Path
    confounds: Path

    @property
    def entities(self) -> dict[str, str | None]:
        """The BIDS entities that identify the run."""
        return {k: getattr(self, k) for k in _ENTITIES}

    @property
    def name(self) -> str:
        """File-name stem shared by every output of the run, e.g. ``sub-01_ses-01_task-rest``."""
        return run_name(self.entities)

    @property
    def rel_dir(self) -> Path:
        """``sub-XX[/ses-YY]``: where the run's derivatives go."""
        parts = [f"sub-{self.subject}"] + ([f"ses-{self.session}"] if self.session else [])
        return Path(*parts)


@dataclass(frozen=True)
class Problem:
    """A file that could not be used, and why."""

    path: Path
    problem: str
    fix: str = ""


@dataclass
class Discovery:
    """What :func:`find_runs` found: the paired runs and everything left out."""

    runs: list[Run] = field(default_factory=list)
    unpaired: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        """A human-readable report of the runs found and the files left out."""
        lines = [f"{len(self.runs)} paired EEG-fMRI run(s)"]
        lines += [f"  {r.name}" for r in self.runs]
        if self.unpaired:
            lines.append(f"{len(self.unpaired)} file(s) left out:")
            lines += [
                f"  {p.path}: {p.problem}" + (f" ({p.fix})" if p.fix else "") for p in self.unpaired
            ]
        return "\n".join(lines)


def run_name(entities: dict[str, str | None]) -> str:
    """BIDS stem from entities, in BIDS order, skipping the unset ones."""
    keys = {"subject": "sub", "session": "ses", "task": "task", "acquisition": "acq", "run": "run"}
    return "_".join(f"{keys[k]}-{entities[k]}" for k in _ENTITIES if entities.get(k))


def default_fmriprep_dir(bids_root: str | os.PathLike) -> Path:
    """fMRIPrep's conventional location inside a BIDS dataset."""
    return Path(bids_root) / "derivatives" / "fmriprep"


def entity_labels(values: Sequence[str] | str | None) -> list[str] | None:
    """Filter labels without their ``sub-``/``ses-``/``task-`` prefix; None when empty."""
    if values is None or (not isinstance(values, str) and len(values) == 0):
        return None
    values = [values] if isinstance(values, str) else list(values)
    return [str(v).removeprefix("sub-").removeprefix("ses-").removeprefix("task-") for v in values]


def _is_derivative(path: Path, root: Path) -> bool:
    rel = path.resolve().relative_to(root.resolve())
    return rel.parts[0] in {"derivatives", "sourcedata"}


def find_runs(
    bids_root: str | os.PathLike,
    *,
    fmriprep_dir: str | os.PathLike | None = None,
    space: str = nbconfig.defaults("bids.space"),
    subjects: Sequence[str] | None = None,
    sessions: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> Discovery:
    """Find every EEG recording paired with a BOLD run and its fMRIPrep outputs.

    Parameters
    ----------
    bids_root : path-like
        The raw BIDS dataset.
    fmriprep_dir : path-like | None
        fMRIPrep's output directory; ``None`` means ``<bids_root>/derivatives/fmriprep``.
    space : str
        The MNI template fMRIPrep resampled to (the ``space-`` entity).
    subjects, sessions, tasks : list of str | None
        Keep only these labels (with or without their ``sub-``/``ses-``/``task-`` prefix);
        ``None`` or an empty list keeps all.

    Returns
    -------
    discovery : Discovery
        ``runs`` sorted by name, and ``unpaired``: EEG without BOLD, BOLD
        without EEG, and BOLD runs whose fMRIPrep outputs are missing, each with
        the reason and how to fix it.
    """
    root = Path(bids_root)
    if not (root / "dataset_description.json").is_file():
        raise FileNotFoundError(
            f"{root} is not a BIDS dataset: dataset_description.json is missing."
            " Point `bids.root` in the config at the dataset's top folder."
        )
    prep_root = Path(fmriprep_dir) if fmriprep_dir else default_fmriprep_dir(root)
    filters = {
        "subjects": entity_labels(subjects),
        "sessions": entity_labels(sessions),
        "tasks": entity_labels(tasks),
    }
    found = Discovery()
    eeg_paths = [
        p
        for p in mne_bids.find_matching_paths(
            root, datatypes="eeg", suffixes="eeg", extensions=list(EEG_EXTENSIONS), **filters
        )
        if not _is_derivative(p.fpath, root)
    ]
    bold_paths = [
        p
        for p in mne_bids.find_matching_paths(
            root, datatypes="func", suffixes="bold", extensions=[".nii.gz", ".nii"], **filters
        )
        if not _is_derivative(p.fpath, root)
    ]
    bold_by_key = {_key(p): p for p in bold_paths}
    eeg_keys = set()
    for eeg in sorted(eeg_paths, key=lambda p: str(p.fpath)):
        key = _key(eeg)
        if key in eeg_keys:
            found.unpaired.append(
                Problem(eeg.fpath, "a second EEG file for the same run", "keep one format per run")
            )
            continue
        eeg_keys.add(key)
        bold = bold_by_key.get(key)
        if bold is None:
            found.unpaired.append(
                Problem(
                    eeg.fpath,
                    "EEG recording without a BOLD run with the same entities (skipped)",
                    "expected "
                    + str(
                        eeg.copy()
                        .update(check=False)
                        .update(datatype="func", suffix="bold", extension=".nii.gz")
                        .fpath
                    ),
                )
            )
            continue
        prep = mne_bids.BIDSPath(
            root=prep_root,
            datatype="func",
            space=space,
            description="preproc",
            suffix="bold",
            extension=".nii.gz",
            check=False,
            **dict(zip(_ENTITIES, key, strict=True)),
        )
        mask = prep.copy().update(description="brain", suffix="mask")
        confounds = prep.copy().update(
            space=None, description="confounds", suffix="timeseries", extension=".tsv"
        )
        missing = [p.fpath for p in (prep, mask, confounds) if not p.fpath.is_file()]
        if missing:
            found.unpaired.append(
                Problem(
                    bold.fpath,
                    "fMRIPrep outputs missing (skipped): " + ", ".join(str(m) for m in missing),
                    f"run fMRIPrep with --output-spaces {space},"
                    " or set bids.fmriprep_dir / bids.space",
                )
            )
            continue
        found.runs.append(
            Run(
                *key,
                eeg=Path(eeg.fpath),
                bold=Path(bold.fpath),
                preproc_bold=Path(prep.fpath),
                mask=Path(mask.fpath),
                confounds=Path(confounds.fpath),
            )
        )
    for key, bold in sorted(bold_by_key.items(), key=lambda kv: str(kv[1].fpath)):
        if key not in eeg_keys:
            found.unpaired.append(
                Problem(bold.fpath, "BOLD run without an EEG recording (skipped)")
            )
    found.runs.sort(key=lambda r: r.name)
    for problem in found.unpaired:
        logger.warning("%s: %s", problem.path, problem.problem)
    return found


def _key(path: mne_bids.BIDSPath) -> tuple:
    return tuple(getattr(path, k) for k in _ENTITIES)


def check_output_dir(output_dir: str | os.PathLike, bids_root: str | os.PathLike) -> None:
    """Refuse an output directory inside the input BIDS dataset (it would alter the input).

    Raises
    ------
    ValueError
        If ``output_dir`` is ``bids_root`` or lies inside it.
    """
    out, root = Path(output_dir).resolve(), Path(bids_root).resolve()
    if out == root or root in out.parents:
        raise ValueError(
            f"The output directory {out} is inside the input BIDS dataset {root}."
            " Choose a results_dir outside it (the input dataset is never written to)."
        )


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: entities and the input files (absolute paths)."""
    rows = []
    for r in runs:
        row = {"run": r.name, **{k: v or "n/a" for k, v in r.entities.items() if k != "run"}}
        row["run_entity"] = r.run or "n/a"
        for kind in ("eeg", "bold", "preproc_bold", "mask", "confounds"):
            row[kind] = str(getattr(r, kind))
        rows.append(row)
    return pd.DataFrame(rows)


def dataset_description(*, source: str | None = None) -> dict:
    """The BIDS derivative ``dataset_description.json`` (see
    :func:`neurobolt.derivatives.dataset_description`; the source relative to the working
    directory)."""
    from .derivatives import dataset_description as describe

    return describe(source=source)


def filename_label(name: str) -> str:
    """A BIDS-safe label for an ROI name: ``Heschl’s gyrus`` -> ``HeschlsGyrus``."""
    words = re.sub(r"[’'`]", "", name).replace("-", " ").split()
    label = "".join(w[:1].upper() + w[1:] for w in words)
    label = re.sub(r"[^A-Za-z0-9]", "", label)
    if not label:
        raise ValueError(f"ROI name {name!r} has no letters or digits to name files with")
    return label
