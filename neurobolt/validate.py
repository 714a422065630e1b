"""One validation pass over the inputs before any heavy work: every problem, as one table.

:func:`validate_dataset` checks the configuration and every selected run of a
BIDS EEG-fMRI dataset and returns a :class:`Report` listing **all** the
problems found (run, file, problem, how to fix), instead of stopping at the
first one. It reads headers, sidecars, marker tables and NIfTI headers only
(plus the small brain mask and the first BOLD volume), never a whole
recording, so it takes seconds. It reuses the checks of the stages
themselves (:mod:`neurobolt.eeg.clean`, :mod:`neurobolt.eeg.markers`,
:mod:`neurobolt.fmri.signals`, :mod:`neurobolt.store`), so a dataset that
passes here is not refused later for a reason that could have been seen now.

Errors stop the workflow (:mod:`neurobolt.jobs.validate` writes nothing under its final
name); warnings (e.g. an EEG recording without a BOLD run, which is skipped)
are listed and the work goes on.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import os
import re
import textwrap
import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import bids as nbids

logger = logging.getLogger("neurobolt.validate")

#: The config schema (next to the package in a source checkout or editable install).
SCHEMA = Path(__file__).with_name("config.schema.yaml")
#: The ``bids`` section's defaults (the schema's).
BIDS_DEFAULTS: dict[str, Any] = {
    "root": "data/simulated",
    "fmriprep_dir": None,
    "space": "MNI152NLin6Asym",
    "subjects": [],
    "sessions": [],
    "tasks": [],
}
#: Config keys that name an input file or folder: (dotted key, "file" | "dir").
CONFIG_PATHS = (
    ("bids.fmriprep_dir", "dir"),
    ("fmri.atlas.maps", "file"),
    ("fmri.atlas.labels", "file"),
    ("model.labram_checkpoint", "file"),
    ("train.inter_split_file", "file"),
)
DATASET = "(dataset)"
CONFIG = "(config)"
OUTPUTS = "(outputs)"


@dataclass(frozen=True)
class Finding:
    """One problem: where it is, what it is, and how to fix it."""

    run: str
    file: str
    problem: str
    fix: str
    severity: str = "error"  # "error" stops the work; "warning" is listed only


@dataclass
class Report:
    """Everything :func:`validate_dataset` found."""

    root: str
    runs: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        """The findings that stop the work."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings that are only reported."""
        return [f for f in self.findings if f.severity != "error"]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def table(self) -> pd.DataFrame:
        """One row per finding: severity, run, file, problem, fix."""
        rows = [asdict(f) for f in self.findings]
        return pd.DataFrame(rows, columns=["severity", "run", "file", "problem", "fix"])

    def format(self, *, width: int = 100) -> str:
        """The report as text: a summary line, then one block per finding.

        Each block is a row of the table: severity, run and file on the first line
        (the file is never wrapped, so it can be copied), then the problem and the fix.
        """
        head = (
            f"neurobolt validate: {self.root}: {len(self.runs)} run(s) checked in"
            f" {self.seconds:.1f} s: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )
        if not self.findings:
            return head + "\nNo problems found."
        lines = [head, "", "severity  run | file", "          problem", "          how to fix"]
        order = sorted(self.findings, key=lambda f: (f.severity != "error", f.run, f.file))
        for f in order:
            lines.append("-" * min(width, 100))
            lines.append(f"{f.severity.upper():<9} {f.run} | {f.file}")
            for label, text in (("problem: ", f.problem), ("fix:     ", f.fix)):
                if not text:
                    continue
                wrapped = textwrap.wrap(
                    " ".join(text.split()),
                    width=max(width - 19, 40),
                    break_long_words=False,
                    break_on_hyphens=False,
                )
                lines.append(" " * 10 + label + wrapped[0])
                lines += [" " * 19 + w for w in wrapped[1:]]
        if self.errors:
            lines += ["", f"{len(self.errors)} error(s): nothing was run. Fix them and rerun."]
        return "\n".join(lines)


class ValidationError(ValueError):
    """The inputs have problems (``report`` lists them all)."""

    def __init__(self, report: Report):
        super().__init__(report.format())
        self.report = report


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _load_schema(schema: str | os.PathLike | Mapping | None) -> Mapping | None:
    if isinstance(schema, Mapping):
        return schema
    path = Path(schema) if schema else SCHEMA
    if not path.is_file():
        return None
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def check_config(
    config: Mapping[str, Any],
    *,
    schema: str | os.PathLike | Mapping | None = None,
    source: str = "config",
) -> list[Finding]:
    """Unknown (misspelled) keys and wrongly typed values of a configuration.

    Parameters
    ----------
    config : mapping
        The configuration as read from YAML (before defaults are filled in).
    schema : path-like | mapping | None
        The JSON schema; default ``neurobolt/config.schema.yaml`` of the source
        checkout (:data:`SCHEMA`). When it cannot be found the keys cannot be checked,
        and that is an error finding saying how to get it.
    source : str
        The configuration file's name, for the table.

    Returns
    -------
    findings : list of Finding
        One per unknown key (with the closest known key) and per type error; one error
        when the schema file is missing.
    """
    wanted = schema
    schema = _load_schema(schema)
    if schema is None:
        missing = Path(wanted) if wanted is not None else SCHEMA
        return [
            Finding(
                CONFIG,
                source,
                f"the config schema {missing} was not found, so the config's keys and types"
                " cannot be checked (neurobolt was installed without its workflow/ folder)",
                "install neurobolt from its repository as an editable install (git clone, then"
                " pip install -e .) or run it from the repository, where"
                " neurobolt/config.schema.yaml is",
            )
        ]
    found: list[Finding] = []

    def walk(values, sub, prefix):
        props = sub.get("properties", {})
        for key, value in values.items():
            dotted = f"{prefix}{key}"
            if key not in props:
                close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
                hint = f"did you mean `{prefix}{close[0]}`? " if close else ""
                found.append(
                    Finding(
                        CONFIG,
                        source,
                        f"unknown config key `{dotted}`",
                        hint + f"known keys here: {', '.join(sorted(props))}",
                    )
                )
            elif isinstance(value, Mapping) and "properties" in props[key]:
                walk(value, props[key], f"{dotted}.")

    if not isinstance(config, Mapping):
        return [Finding(CONFIG, source, "the config is not a mapping of keys", "fix the YAML")]
    walk(config, schema, "")
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - installed with snakemake
        return found
    validator = jsonschema.Draft202012Validator(schema)
    for err in validator.iter_errors(copy.deepcopy(dict(config))):
        if err.validator == "additionalProperties":
            continue  # reported above, with a suggestion
        dotted = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        found.append(
            Finding(
                CONFIG,
                source,
                f"`{dotted}`: {err.message}",
                "see neurobolt/config.schema.yaml",
            )
        )
    return found


def _get(config: Mapping, dotted: str):
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def check_config_paths(
    config: Mapping[str, Any],
    *,
    bids_root: str | os.PathLike,
    results_dir: str | os.PathLike | None = None,
    base: str | os.PathLike | None = None,
    source: str = "config",
) -> list[Finding]:
    """Every path the configuration names, resolved and checked.

    Parameters
    ----------
    config : mapping
        The configuration.
    bids_root : path-like
        The input BIDS dataset.
    results_dir : path-like | None
        Where the outputs go; refused inside ``bids_root``.
    base : path-like | None
        Relative paths are resolved against it (default: the working directory).
    source : str
        The configuration file's name, for the table.

    Returns
    -------
    findings : list of Finding
    """
    base = Path(base) if base else Path.cwd()
    found: list[Finding] = []
    root = (base / Path(bids_root).expanduser()).resolve()
    if not (root / "dataset_description.json").is_file():
        found.append(
            Finding(
                DATASET,
                str(root),
                "not a BIDS dataset: dataset_description.json is missing"
                + ("" if root.is_dir() else " (the folder does not exist)"),
                "point `bids.root` (or the command's BIDS_DIR) at the dataset's top folder",
            )
        )
    if results_dir is not None:
        try:
            nbids.check_output_dir(base / Path(results_dir).expanduser(), root)
        except ValueError as err:
            found.append(
                Finding(
                    CONFIG,
                    str(results_dir),
                    f"output directory inside the input dataset: {err}",
                    "set `results_dir` to a folder outside the BIDS dataset",
                )
            )
    for dotted, kind in CONFIG_PATHS:
        value = _get(config, dotted)
        if not value:
            continue
        path = (base / Path(str(value)).expanduser()).resolve()
        ok = path.is_dir() if kind == "dir" else path.is_file()
        if not ok:
            what = "folder" if kind == "dir" else "file"
            found.append(
                Finding(
                    CONFIG,
                    str(path),
                    f"`{dotted}` names a {what} that does not exist ({value!r} resolves to {path})",
                    f"fix `{dotted}` in {source} (relative paths are taken from {base})",
                )
            )
    return found


def resolve_sections(config: Mapping[str, Any] | None) -> dict[str, dict]:
    """The ``bids``, ``eeg``, ``fmri`` and ``store`` sections with defaults filled in."""
    from .eeg.clean import DEFAULT_CONFIG as EEG
    from .fmri.signals import DEFAULTS as FMRI
    from .store import DEFAULTS as STORE

    config = dict(config or {})

    def merged(defaults, section):
        out = copy.deepcopy(defaults)
        for key, value in dict(section or {}).items():
            if isinstance(out.get(key), dict) and isinstance(value, Mapping):
                out[key] = {**out[key], **value}
            elif key in out:
                out[key] = value
        return out

    return {
        "bids": merged(BIDS_DEFAULTS, config.get("bids")),
        "eeg": merged(EEG, config.get("eeg")),
        "fmri": merged(FMRI, config.get("fmri")),
        "store": merged(STORE, config.get("store")),
    }


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


def _rel(path, root: Path) -> str:
    """``path`` relative to the dataset when inside it, else absolute."""
    path = Path(path)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _strip(message: str, *paths) -> str:
    """An error message without the leading ``<path>: `` (the table has a file column)."""
    text = str(message).strip()
    for path in paths:
        for prefix in (f"{path}: ", f"{Path(path).name}: "):
            if text.startswith(prefix):
                text = text[len(prefix) :]
    return text


def check_entities(root: str | os.PathLike) -> list[Finding]:
    """Entity labels that differ only by leading zeros or case (``sub-01`` and ``sub-1``)."""
    import mne_bids

    root = Path(root)
    found = []
    for key, prefix in (("subject", "sub"), ("session", "ses"), ("run", "run")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = mne_bids.get_entity_vals(root, key, ignore_subjects=None)
        groups: dict[str, list[str]] = {}
        for label in labels:
            groups.setdefault(label.lower().lstrip("0") or "0", []).append(label)
        for same in groups.values():
            if len(same) < 2:
                continue
            names = ", ".join(f"{prefix}-{label}" for label in sorted(same))
            found.append(
                Finding(
                    DATASET,
                    names,
                    f"ambiguous {key} labels: {names} differ only by leading zeros or case, so"
                    " they are different entities to BIDS (and to the pairing of EEG with BOLD)"
                    " but probably the same one",
                    f"rename them to one spelling (e.g. {prefix}-{max(same, key=len)}) everywhere,"
                    " fMRIPrep outputs included",
                )
            )
    return found


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_bold(run: nbids.Run, *, fmri: Mapping[str, Any], root: Path):
    """The raw BOLD run: 4-D, enough volumes, a sidecar whose TR agrees with the header.

    Returns
    -------
    findings : list of Finding
    meta : dict
        ``n_volumes`` and ``tr`` (None when unknown).
    """
    import nibabel as nib

    from .fmri.signals import FMRIInputError, repetition_time, sidecar_path

    name, bold = run.name, run.bold
    found: list[Finding] = []
    meta: dict[str, Any] = {"n_volumes": None, "tr": None}
    try:
        img = nib.load(bold)
    except Exception as err:  # noqa: BLE001 - any reader failure is reported
        found.append(
            Finding(name, _rel(bold, root), f"cannot be read as NIfTI: {err}", "re-copy the file")
        )
        return found, meta
    if img.ndim != 4:
        found.append(
            Finding(
                name,
                _rel(bold, root),
                f"3-D NIfTI: a BOLD run must be 4-D (x, y, z, time), got shape {img.shape}",
                "give the whole run as one 4-D image (e.g. merge the volumes with fslmerge -t)",
            )
        )
        return found, meta
    meta["n_volumes"] = int(img.shape[3])
    if img.shape[3] < int(fmri["min_volumes"]):
        found.append(
            Finding(
                name,
                _rel(bold, root),
                f"{img.shape[3]} volumes, fewer than fmri.min_volumes ({fmri['min_volumes']})",
                "exclude the run (bids.subjects/sessions/tasks) or lower fmri.min_volumes",
            )
        )
    side = sidecar_path(bold)
    sidecar = _read_json(side)
    if sidecar is None:
        found.append(
            Finding(
                name,
                _rel(side, root),
                "the BOLD sidecar is missing or not valid JSON; the EEG stage needs its"
                " RepetitionTime and SliceTiming",
                "add the BIDS JSON sidecar of the BOLD run",
            )
        )
        return found, meta
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            meta["tr"] = repetition_time(
                img,
                sidecar,
                tolerance=float(fmri["tr_tolerance_s"]),
                names=f"{_rel(side, root)} / {bold.name}",
            )
        except FMRIInputError as err:
            found.append(
                Finding(
                    name,
                    _rel(side, root),
                    str(err),
                    "make RepetitionTime in the sidecar and the NIfTI header's pixdim[4] agree",
                )
            )
    for w in caught:
        found.append(Finding(name, _rel(side, root), str(w.message), "", "warning"))
    return found, meta


def check_fmriprep(
    run: nbids.Run, *, fmri: Mapping[str, Any], n_volumes: int | None, root: Path
) -> list[Finding]:
    """fMRIPrep outputs: MNI space, 4-D, volumes and TR, the mask, the confounds table."""
    import nibabel as nib

    from .fmri.signals import (
        FMRIInputError,
        bold_space,
        read_confounds,
        repetition_time,
        select_confounds,
        sidecar_path,
    )

    name, prep = run.name, run.preproc_bold
    found: list[Finding] = []

    def add(path, problem, fix, severity="error"):
        found.append(Finding(name, _rel(path, root), problem, fix, severity))

    side = sidecar_path(prep)
    sidecar = _read_json(side) or _read_json(sidecar_path(run.bold)) or {}
    try:
        bold_space(prep, sidecar)
    except FMRIInputError as err:
        add(prep, f"BOLD not in MNI space: {_strip(err, prep)}", "set bids.space to an MNI space")
    img = None
    try:
        img = nib.load(prep)
    except Exception as err:  # noqa: BLE001
        add(prep, f"cannot be read as NIfTI: {err}", "rerun fMRIPrep or re-copy the file")
    n_prep = None
    if img is not None:
        if img.ndim != 4:
            add(
                prep,
                f"3-D NIfTI: the preprocessed BOLD must be 4-D, got shape {img.shape}",
                "use fMRIPrep's desc-preproc_bold output of the run",
            )
        else:
            n_prep = int(img.shape[3])
            if n_prep < int(fmri["min_volumes"]):
                add(
                    prep,
                    f"{n_prep} volumes, fewer than fmri.min_volumes ({fmri['min_volumes']})",
                    "exclude the run or lower fmri.min_volumes",
                )
            if n_volumes is not None and n_prep != n_volumes:
                add(
                    prep,
                    f"{n_prep} volumes but the raw BOLD run has {n_volumes}",
                    "rerun fMRIPrep on this run, or fix bids.fmriprep_dir",
                )
            try:
                repetition_time(
                    img, sidecar, tolerance=float(fmri["tr_tolerance_s"]), names=prep.name
                )
            except FMRIInputError as err:
                add(prep, str(err), "make the sidecar's RepetitionTime and the header agree")
    found += _check_mask(run, img if n_prep else None, fmri=fmri, root=root)
    try:
        confounds = read_confounds(run.confounds)
    except (FMRIInputError, ValueError, OSError) as err:
        add(run.confounds, f"cannot be read: {err}", "rerun fMRIPrep or re-copy the file")
        return found
    n = n_prep if n_prep is not None else n_volumes
    if n is not None and len(confounds) != n:
        add(
            run.confounds,
            f"confounds rows ≠ volumes: {len(confounds)} rows but the BOLD run has {n} volumes",
            "use the confounds file of this run (fMRIPrep writes one row per volume)",
        )
    if fmri["confounds"]:
        try:
            select_confounds(confounds, fmri["confounds"])
        except FMRIInputError as err:
            add(run.confounds, str(err), "fix the table or fmri.confounds")
    return found


def _check_mask(run, img, *, fmri, root) -> list[Finding]:
    """The brain mask (finite, not empty) and the first BOLD volume inside it (finite)."""
    import nibabel as nib

    found: list[Finding] = []
    mask_path = run.mask
    try:
        mask_img = nib.load(mask_path)
        mask_data = np.asarray(mask_img.dataobj)
    except Exception as err:  # noqa: BLE001
        return [Finding(run.name, _rel(mask_path, root), f"cannot be read: {err}", "re-copy it")]
    if mask_data.ndim == 4 and mask_data.shape[3] == 1:
        mask_data = mask_data[..., 0]
    if mask_data.ndim != 3:
        return [
            Finding(
                run.name,
                _rel(mask_path, root),
                f"the brain mask must be 3-D, got shape {mask_data.shape}",
                "use fMRIPrep's desc-brain_mask of the run",
            )
        ]
    bad = ~np.isfinite(mask_data)
    if bad.any():
        found.append(
            Finding(
                run.name,
                _rel(mask_path, root),
                f"NaN voxels in the mask: {int(bad.sum())} voxel(s) are NaN or inf",
                "use fMRIPrep's binary desc-brain_mask (0/1) of the run",
            )
        )
    inside = np.nan_to_num(mask_data, nan=0.0, posinf=0.0, neginf=0.0) > 0
    if not inside.any():
        found.append(
            Finding(run.name, _rel(mask_path, root), "the brain mask is empty", "use its mask")
        )
        return found
    if img is None:
        return found
    if img.shape[:3] != inside.shape:
        found.append(
            Finding(
                run.name,
                _rel(mask_path, root),
                f"the mask's grid {inside.shape} differs from the BOLD's {img.shape[:3]}; it"
                " will be resampled (nearest neighbour)",
                "use the mask fMRIPrep wrote for this run and space",
                "warning",
            )
        )
        return found
    first = np.asarray(img.dataobj[..., 0])
    nonfinite = int((~np.isfinite(first) & inside).sum())
    if nonfinite:
        refuse = fmri["nan_policy"] != "zero"
        found.append(
            Finding(
                run.name,
                _rel(run.preproc_bold, root),
                f"NaN voxels in the mask: {nonfinite} voxel(s) inside the brain mask are NaN or"
                " inf in the first BOLD volume"
                + ("" if refuse else " (fmri.nan_policy: zero sets them to 0)"),
                "fix the preprocessing or the mask, or set fmri.nan_policy: zero",
                "error" if refuse else "warning",
            )
        )
    return found


def check_eeg(
    run: nbids.Run,
    *,
    eeg: Mapping[str, Any],
    store: Mapping[str, Any],
    n_volumes: int | None,
    tr: float | None,
    root: Path,
) -> list[Finding]:
    """The EEG recording: files, size, channels, ECG, memory, and the volume markers.

    Reads the headers, ``channels.tsv`` and the markers (``events.tsv``, as the EEG
    stage does through mne-bids); the samples are never loaded.
    """
    import mne_bids

    from .eeg.clean import (
        EEGInputError,
        _find_ecg,
        _merge_config,
        _select_channels,
        brainvision_files,
        check_channel_names,
        check_eeg_size,
        check_memory,
    )
    from .eeg.markers import MarkerError, find_volume_markers, volume_onsets

    name, vhdr = run.name, run.eeg
    cfg = _merge_config(eeg)
    found: list[Finding] = []

    def add(path, problem, fix, severity="error"):
        found.append(Finding(name, _rel(path, root), problem, fix, severity))

    bids_path = mne_bids.get_bids_path_from_fname(vhdr)
    channels_tsv = bids_path.copy().update(suffix="channels", extension=".tsv").fpath
    events_tsv = bids_path.copy().update(suffix="events", extension=".tsv").fpath
    eeg_json = bids_path.copy().update(extension=".json").fpath
    unreadable = False
    if vhdr.suffix.lower() == ".vhdr":
        files = brainvision_files(vhdr)
        if not files["vmrk"].is_file():
            add(
                files["vmrk"],
                f"missing .vmrk: the marker file that {vhdr.name} names does not exist",
                "put the recording's .vmrk next to its .vhdr (a BrainVision recording is"
                " .vhdr + .vmrk + .eeg)",
            )
            unreadable = True
        try:
            check_eeg_size(vhdr, eeg_json=eeg_json)
        except EEGInputError as err:
            add(files["eeg"], _strip(err, files["eeg"], vhdr), "re-copy or re-export the recording")
            unreadable = True
        if Path(channels_tsv).is_file() and not unreadable:
            try:
                check_channel_names(vhdr, channels_tsv)
            except EEGInputError as err:
                add(channels_tsv, _strip(err, vhdr), "make channels.tsv match the .vhdr")
    if unreadable:
        return found
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = mne_bids.read_raw_bids(bids_path, verbose=False)
    except Exception as err:  # noqa: BLE001 - any reader failure is reported
        add(vhdr, f"cannot be read as BIDS EEG: {err}", "check the recording and its sidecars")
        return found

    try:
        keep, _, missing = _select_channels(raw, cfg, name)
        if missing:
            add(
                channels_tsv if Path(channels_tsv).is_file() else vhdr,
                f"{len(missing)} configured EEG channel(s) missing: {', '.join(missing)}"
                " (eeg.missing_channels: warn keeps the others)",
                "fix eeg.channels if they are named differently",
                "warning",
            )
    except EEGInputError as err:
        add(vhdr, _strip(err, name), "fix eeg.channels or set eeg.missing_channels: warn")
        keep = []
    try:
        ecg = _find_ecg(raw, cfg, name)
    except EEGInputError as err:
        add(vhdr, _strip(err, name), "fix eeg.ecg_channel")
        ecg = -1
    if ecg is None:
        problem = (
            "no ECG channel (no channel of type ECG in channels.tsv and none named ECG/EKG), so"
            " the heartbeats for BCG removal cannot be found"
        )
        if cfg["missing_ecg"] == "error":
            add(
                channels_tsv if Path(channels_tsv).is_file() else vhdr,
                problem,
                "set eeg.ecg_channel to the ECG's name (or its type to ECG in channels.tsv),"
                " or eeg.missing_ecg: skip_bcg to clean without BCG removal",
            )
        else:
            add(vhdr, problem + " (eeg.missing_ecg: skip_bcg)", "", "warning")
    try:
        n_read = len(keep) + (1 if ecg is not None and ecg >= 0 else 0)
        check_memory(
            n_channels=max(n_read, 1),
            n_times=raw.n_times,
            sfreq=float(raw.info["sfreq"]),
            config=cfg,
            run=name,
        )
    except EEGInputError as err:
        text, _, advice = _strip(err, name).partition(" Raise ")
        add(vhdr, text, "raise " + advice if advice else "raise eeg.max_memory_mb")

    marker_file = events_tsv if Path(events_tsv).is_file() else vhdr.with_suffix(".vmrk")
    dummy = int(store.get("dummy_markers") or 0)
    expected = None if n_volumes is None else n_volumes + dummy
    try:
        completed = (
            volume_onsets(
                raw,
                marker=cfg["volume_marker"],
                tr=tr,
                n_volumes=expected,
                tolerance=float(cfg["marker_tolerance"]),
                run=name,
            ).size
            - find_volume_markers(raw, marker=cfg["volume_marker"]).size
        )
        if completed > 0:
            add(
                marker_file,
                f"{completed} missing volume marker(s) in gaps of a whole number of TRs; the"
                " EEG stage completes them (listed in the QC JSON as completed_markers)",
                "check the marker file; nothing to do if the completion is right",
                severity="warning",
            )
    except MarkerError as err:
        text = _strip(err, name)
        text = re.sub(r"\nFix the marker file.*$", "", text, flags=re.S)
        text = " ".join(text.replace(":\n  - ", ": ").replace("\n  - ", "; ").split())
        fix = "fix the markers in events.tsv and the .vmrk, or exclude the run"
        if "no volume markers" in text:
            fix = "set eeg.volume_marker to the scanner trigger's description"
        elif dummy == 0 and "volume markers (one per BOLD volume)" in text:
            fix += "; if the scanner sent markers for unsaved dummy scans set store.dummy_markers"
        add(marker_file, text, fix)
    return found


# --------------------------------------------------------------------------------------------
# Existing outputs
# --------------------------------------------------------------------------------------------


def check_torch_file(path: str | os.PathLike) -> None:
    """Refuse a truncated or foreign ``torch.save`` file from its zip directory alone.

    Parameters
    ----------
    path : path-like
        A ``model.pt`` or ``checkpoint.pt``.

    Raises
    ------
    ValueError
        Naming the file: not a readable zip archive, or one without a ``data.pkl`` record.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a complete PyTorch file ({err})") from None
    if not any(n.endswith("data.pkl") for n in names):
        raise ValueError(f"{path}: not a PyTorch file (no data.pkl record)")


def check_outputs(results_dir: str | os.PathLike) -> list[Finding]:
    """Window stores and model/checkpoint files already under ``results_dir``.

    A damaged one (truncated by a full disk, a failed copy) is named with how to
    rebuild it; a missing ``results_dir`` has nothing to check.

    Parameters
    ----------
    results_dir : path-like
        The workflow's output folder (``results_dir``).

    Returns
    -------
    findings : list of Finding
        One error per damaged ``*_windows.h5`` or ``*.pt`` (temporary ``.tmp-*`` files
        are skipped); empty when all are sound or the folder does not exist.
    """
    results = Path(results_dir)
    if not results.is_dir():
        return []
    found = []
    stores = sorted(p for p in results.rglob("*_windows.h5") if not p.name.startswith(".tmp-"))
    if stores:
        from .store import StoreError, WindowStore

        for path in stores:
            try:
                WindowStore(path).close()
            except StoreError as err:
                found.append(
                    Finding(
                        OUTPUTS,
                        str(path),
                        f"damaged window store: {_strip(err, path)}",
                        f"delete it (rm {str(path)!r}) and rerun the workflow, which rebuilds it",
                    )
                )
    for path in sorted(p for p in results.rglob("*.pt") if not p.name.startswith(".tmp-")):
        try:
            check_torch_file(path)
        except ValueError as err:
            what = "checkpoint" if path.name == "checkpoint.pt" else "model"
            rebuild = (
                "training then restarts from scratch"
                if what == "checkpoint"
                else "the workflow retrains it"
            )
            found.append(
                Finding(
                    OUTPUTS,
                    str(path),
                    f"damaged {what} file: {_strip(err, path)}",
                    f"delete it (rm {str(path)!r}) and rerun: {rebuild}",
                )
            )
    return found


# --------------------------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------------------------


def validate_dataset(
    bids_root: str | os.PathLike | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    results_dir: str | os.PathLike | None = None,
    check_keys: bool = True,
    source: str = "config",
) -> Report:
    """Check the configuration and every selected run; report all problems at once.

    Parameters
    ----------
    bids_root : path-like | None
        The raw BIDS dataset; None takes ``config["bids"]["root"]``.
    config : mapping | None
        The workflow configuration (any subset of its sections; defaults fill the
        rest). Its ``bids`` section selects the runs (fMRIPrep folder, space, filters).
    results_dir : path-like | None
        The output folder: refused inside the dataset, and the stores and checkpoints
        already there are checked. None takes ``config["results_dir"]`` when given.
    check_keys : bool
        Check the configuration's keys and types against the schema.
    source : str
        The configuration file's name, for the table.

    Returns
    -------
    report : Report
    """
    t0 = time.perf_counter()
    config = dict(config or {})
    sections = resolve_sections(config)
    bids_cfg = sections["bids"]
    root = Path(bids_root if bids_root is not None else bids_cfg["root"])
    if results_dir is None:
        results_dir = config.get("results_dir")
    report = Report(root=str(root))
    findings = report.findings
    if check_keys and config:
        findings += check_config(config, source=source)
    findings += check_config_paths(config, bids_root=root, results_dir=results_dir, source=source)
    findings += check_gap(config.get("train"), source=source)
    if results_dir is not None:
        findings += check_outputs(results_dir)
    if not (root / "dataset_description.json").is_file():
        report.seconds = time.perf_counter() - t0
        return report  # reported by check_config_paths; nothing else can be checked
    fmriprep_dir = bids_cfg["fmriprep_dir"]
    if fmriprep_dir and not Path(fmriprep_dir).is_dir():
        report.seconds = time.perf_counter() - t0
        return report  # reported by check_config_paths
    found = nbids.find_runs(
        root,
        fmriprep_dir=fmriprep_dir,
        space=bids_cfg["space"],
        subjects=bids_cfg["subjects"],
        sessions=bids_cfg["sessions"],
        tasks=bids_cfg["tasks"],
    )
    findings += check_entities(root)
    for problem in found.unpaired:
        stem = re.sub(r"_(eeg|bold)(\.[a-z.]+)?$", "", Path(problem.path).name)
        findings.append(
            Finding(
                stem,
                _rel(problem.path, root),
                f"unpaired: {problem.problem}",
                problem.fix or "add the missing files, or leave the run out",
                "warning",
            )
        )
    if not found.runs:
        findings.append(
            Finding(
                DATASET,
                str(root),
                "no paired EEG-fMRI run: no EEG recording has a BOLD run with the same"
                " entities and its fMRIPrep outputs"
                f" (space {bids_cfg['space']}, filters {bids_cfg['subjects']}"
                f" {bids_cfg['sessions']} {bids_cfg['tasks']})",
                "check bids.root, bids.fmriprep_dir, bids.space and the filters",
            )
        )
    for run in found.runs:
        report.runs.append(run.name)
        bold_findings, meta = check_bold(run, fmri=sections["fmri"], root=root)
        findings += bold_findings
        findings += check_fmriprep(
            run, fmri=sections["fmri"], n_volumes=meta["n_volumes"], root=root
        )
        findings += check_eeg(
            run,
            eeg=sections["eeg"],
            store=sections["store"],
            n_volumes=meta["n_volumes"],
            tr=meta["tr"],
            root=root,
        )
    if "inter" in (config.get("evaluate") or {}).get("analyses", ["inter"]):
        findings += check_inter_split([run.name for run in found.runs], train=config.get("train"))
    report.seconds = time.perf_counter() - t0
    return report


def validate_datasets(config: Mapping[str, Any], *, source: str = "the config") -> Report:
    """:func:`validate_dataset` for each of several datasets, in one table.

    Each dataset's rows name it (``<label>/<run>``). With cross-dataset analyses in
    ``evaluate.analyses``, the source's inter-subject split, the target's split and the
    channels both caps share are checked too.
    """
    from .datasets import dataset_views
    from .train import TrainConfig, inter_scan_split, scan_subject
    from .transfer import ANALYSES, common_channels, section, source_target, target_split

    t0 = time.perf_counter()
    try:
        views = dataset_views(config)
    except ValueError as err:
        report = Report(root="(datasets)")
        report.findings.append(Finding(DATASET, f"{source}: datasets", str(err), "fix the list"))
        return report
    report = Report(root=", ".join(str(v["bids"]["root"]) for v in views.values()))
    runs: dict[str, list[str]] = {}
    for label, view in views.items():
        view = {**view, "evaluate": {**(view.get("evaluate") or {}), "analyses": []}}
        sub = validate_dataset(view["bids"]["root"], config=view, check_keys=False, source=source)
        runs[label] = list(sub.runs)
        report.runs += [f"{label}/{run}" for run in sub.runs]
        for finding in sub.findings:
            finding.run = f"{label}/{finding.run}"
            report.findings.append(finding)
    analyses = [a for a in (config.get("evaluate") or {}).get("analyses", []) if a in ANALYSES]
    if analyses:
        gen = section(config.get("generalisation"))
        fix = "fix generalisation (source, target, target_counts/fractions/split_file)"
        try:
            src, tgt = source_target(gen, list(views))
            scans = {x: [scan_subject(f"{r}_windows.h5") for r in runs[x]] for x in (src, tgt)}
            inter_scan_split(scans[src], TrainConfig.from_section(config.get("train")))
            target_split(scans[tgt], gen)
            common_channels(
                resolve_sections(views[src])["eeg"]["channels"],
                resolve_sections(views[tgt])["eeg"]["channels"],
                configured=gen["channels"],
            )
        except (ValueError, FileNotFoundError) as err:
            report.findings.append(
                Finding(DATASET, f"{source}: generalisation", f"cross-dataset split: {err}", fix)
            )
    report.seconds = time.perf_counter() - t0
    return report


#: Smallest gap (s) between training and held-out blocks that the statistics trust:
#: BOLD stays autocorrelated over about 10 TR (≈ 20 s) after the 0.15 Hz low-pass.
MIN_GAP_S = 20.0


def check_gap(train: Mapping[str, Any] | None, *, source: str = "config") -> list[Finding]:
    """A warning when ``train.gap_s`` is below :data:`MIN_GAP_S` (leakage through
    the autocorrelation of the BOLD targets across the block boundaries)."""
    gap = float((train or {}).get("gap_s", MIN_GAP_S))
    if gap >= MIN_GAP_S:
        return []
    return [
        Finding(
            CONFIG,
            f"{source}: train.gap_s",
            f"train.gap_s is {gap:g} s: below {MIN_GAP_S:g} s the BOLD targets on both sides"
            " of a block boundary are still correlated, so intra-subject test R is inflated",
            f"set train.gap_s to at least {MIN_GAP_S:g}",
            "warning",
        )
    ]


def check_inter_split(scans: Sequence[str], *, train: Mapping[str, Any] | None) -> list[Finding]:
    """Whether the inter-subject split the training rules will draw exists.

    Parameters
    ----------
    scans : sequence of str
        The selected runs' names (``sub-XX[_ses-YY]_task-...``).
    train : mapping | None
        The ``train`` config section (``inter_counts``, ``inter_fractions``,
        ``inter_split_file``, ``seed``); None checks nothing.

    Returns
    -------
    findings : list of Finding
        One error when the counts, fractions or split file do not fit the scans.
    """
    if train is None or not scans:
        return []
    from .train import TrainConfig, inter_scan_split, scan_subject

    try:
        inter_scan_split(
            [scan_subject(f"{scan}_windows.h5") for scan in scans],
            TrainConfig.from_section(train),
        )
    except (ValueError, FileNotFoundError) as err:
        return [
            Finding(
                DATASET,
                "config: train",
                f"no inter-subject split of the {len(scans)} selected scans: {err}",
                "make train.inter_counts (train, val, test scans) fit the scans, or use"
                " train.inter_fractions or train.inter_split_file; or drop 'inter' from"
                " evaluate.analyses",
            )
        ]
    return []

