"""The cleaned EEG as a BIDS derivative: BrainVision + ``channels.tsv`` + ``eeg.json``.

BIDS allows only raw EEG formats (BrainVision, EDF, EEGLAB, BDF) for EEG data, also in
derivatives; ``.fif`` is not one of them. :func:`write_clean_eeg` writes
``<run>_desc-clean_eeg.vhdr/.vmrk/.eeg`` with pybv (IEEE float32 in µV, so the
precision is relative, about 1e-7 of each value), the markers (volume markers as
``Response`` markers, e.g. ``R128``; other annotations as comments),
``<run>_desc-clean_channels.tsv`` and ``<run>_desc-clean_eeg.json`` (sampling rate,
filters, provenance). :func:`read_clean_eeg` reads it back (``.fif`` from older runs
too).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mne

__all__ = [
    "EEGInputError",
    "brainvision_files",
    "check_brainvision",
    "check_channel_names",
    "check_eeg_size",
    "clean_eeg_sidecars",
    "read_clean_eeg",
    "write_clean_eeg",
]


class EEGInputError(ValueError):
    """An input file of the EEG stage is unusable (nothing was written)."""


def clean_eeg_sidecars(vhdr: str | Path) -> dict[str, Path]:
    """Paths of the files that belong to ``<run>_desc-clean_eeg.vhdr``."""
    vhdr = Path(vhdr)
    stem = re.sub(r"_eeg$", "", vhdr.stem)
    return {
        "vhdr": vhdr,
        "vmrk": vhdr.with_suffix(".vmrk"),
        "eeg": vhdr.with_suffix(".eeg"),
        "channels": vhdr.with_name(f"{stem}_channels.tsv"),
        "json": vhdr.with_suffix(".json"),
    }


def _events(raw) -> list[dict]:
    """pybv events from the annotations: ``Response/R128`` → Response 128, others comments."""
    out = []
    sfreq = raw.info["sfreq"]
    for onset, dur, desc in zip(
        raw.annotations.onset, raw.annotations.duration, raw.annotations.description, strict=True
    ):
        sample = int(round((onset - (raw.first_time if raw.annotations.orig_time else 0)) * sfreq))
        if sample < 0 or sample >= raw.n_times:
            continue
        m = re.fullmatch(r"\s*(Stimulus|Response)/\s*([SR])\s*(\d+)\s*", str(desc))
        ev: dict[str, Any] = {"onset": sample, "duration": max(int(round(dur * sfreq)), 1)}
        if m:
            ev.update(type=m.group(1), description=int(m.group(3)))
        else:
            ev.update(type="Comment", description=str(desc).replace(",", r"\1"))
        out.append(ev)
    return out


def write_clean_eeg(raw, vhdr: str | Path, *, sidecar: dict[str, Any]) -> dict[str, Path]:
    """Write the cleaned recording as a BIDS derivative (BrainVision), atomically per file.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The cleaned EEG (volts) with its annotations.
    vhdr : path
        ``<run>_desc-clean_eeg.vhdr``; the ``.vmrk``, ``.eeg``, ``_channels.tsv`` and
        ``.json`` go next to it.
    sidecar : dict
        Extra ``eeg.json`` entries (filters, provenance, ...).

    Returns
    -------
    paths : dict
        The files written.
    """
    import pybv

    paths = clean_eeg_sidecars(vhdr)
    folder = paths["vhdr"].parent
    folder.mkdir(parents=True, exist_ok=True)
    data = raw.get_data()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-bv-") as tmp:
        pybv.write_brainvision(
            data=data,
            sfreq=raw.info["sfreq"],
            ch_names=list(raw.ch_names),
            fname_base=paths["vhdr"].stem,
            folder_out=tmp,
            events=_events(raw),
            resolution=1e-3,
            unit="µV",
            fmt="binary_float32",
            meas_date=raw.info["meas_date"],
            overwrite=True,
        )
        rows = ["name\ttype\tunits\tsampling_frequency\tlow_cutoff\thigh_cutoff\tstatus"]
        low = sidecar.get("_low_cutoff", "n/a")
        high = sidecar.get("_high_cutoff", "n/a")
        for name in raw.ch_names:
            rows.append(f"{name}\tEEG\tµV\t{raw.info['sfreq']:g}\t{low}\t{high}\tgood")
        # every file goes to the temporary folder first, then moved into place below
        (Path(tmp) / paths["channels"].name).write_text("\n".join(rows) + "\n", encoding="utf-8")
        meta = {
            "TaskName": sidecar.pop("TaskName", "rest"),
            "SamplingFrequency": float(raw.info["sfreq"]),
            "EEGChannelCount": len(raw.ch_names),
            "EEGReference": sidecar.pop("EEGReference", "n/a"),
            "PowerLineFrequency": raw.info.get("line_freq") or "n/a",
            "SoftwareFilters": sidecar.pop("SoftwareFilters", "n/a"),
            "RecordingDuration": raw.n_times / raw.info["sfreq"],
            **{k: v for k, v in sidecar.items() if not k.startswith("_")},
        }
        (Path(tmp) / paths["json"].name).write_text(
            json.dumps(meta, indent=2, default=str), encoding="utf-8"
        )
        # data and markers first, the header (which names them) last
        for key in ("eeg", "vmrk", "channels", "json", "vhdr"):
            shutil.move(str(Path(tmp) / paths[key].name), paths[key])
    return paths


def read_clean_eeg(path: str | Path, *, preload: bool = True):
    """Read the EEG stage's output (BrainVision ``.vhdr``, or ``.fif`` of older runs)."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix.lower() == ".vhdr":
            raw = mne.io.read_raw_brainvision(path, preload=preload, verbose=False)
            raw.set_channel_types(dict.fromkeys(raw.ch_names, "eeg"), verbose=False)
            return raw
        return mne.io.read_raw_fif(path, preload=preload, verbose=False)


# ------------------------------------------------------------------------------------------
# Checks of the raw BrainVision input (used by clean_eeg and validate)
# ------------------------------------------------------------------------------------------


def _vhdr_fields(vhdr: Path) -> dict[str, str]:
    fields = {}
    for line in vhdr.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if "=" in line and not line.startswith(";"):
            key, value = line.split("=", 1)
            fields.setdefault(key.strip(), value.strip())
    return fields


def brainvision_files(vhdr: str | Path) -> dict[str, Path]:
    """The data and marker files a BrainVision header names (``DataFile``, ``MarkerFile``)."""
    vhdr = Path(vhdr)
    fields = _vhdr_fields(vhdr)
    return {
        "eeg": vhdr.parent / fields.get("DataFile", vhdr.with_suffix(".eeg").name),
        "vmrk": vhdr.parent / fields.get("MarkerFile", vhdr.with_suffix(".vmrk").name),
    }


def check_eeg_size(vhdr: str | Path, *, eeg_json: str | Path | None = None) -> int:
    """Refuse a truncated BrainVision ``.eeg`` file from its size alone (nothing is read).

    The size must be a whole number of samples (channels x bytes per value, from the
    ``.vhdr``) and, when the BIDS ``eeg.json`` gives ``RecordingDuration``, hold that
    many seconds of data (within 1 s).

    Returns
    -------
    n_times : int
        Samples in the file (0 when the binary format is not a fixed-size one).

    Raises
    ------
    EEGInputError
        With the file, its size and what the header expects.
    """
    vhdr = Path(vhdr)
    if not vhdr.is_file():
        raise EEGInputError(f"{vhdr}: the EEG header file does not exist")
    fields = _vhdr_fields(vhdr)
    data_file = brainvision_files(vhdr)["eeg"]
    if not data_file.is_file():
        raise EEGInputError(f"{vhdr}: its data file {data_file} does not exist")
    sizes = {"INT_16": 2, "UINT_16": 2, "INT_32": 4, "IEEE_FLOAT_32": 4}
    fmt = fields.get("BinaryFormat", "INT_16").upper()
    n_ch = int(fields.get("NumberOfChannels", "0") or 0)
    if fmt not in sizes or n_ch <= 0:
        return 0
    frame = sizes[fmt] * n_ch
    size = data_file.stat().st_size
    if size == 0 or size % frame:
        raise EEGInputError(
            f"{data_file}: truncated EEG data file: {size} bytes is not a whole number of"
            f" samples ({n_ch} channels x {sizes[fmt]} bytes = {frame} bytes per sample)."
            " Re-export or re-copy the recording."
        )
    n_times = size // frame
    interval = float(fields.get("SamplingInterval", "0") or 0)  # microseconds
    if eeg_json is not None and Path(eeg_json).is_file() and interval > 0:
        duration = json.loads(Path(eeg_json).read_text(encoding="utf-8")).get("RecordingDuration")
        sfreq = 1e6 / interval
        # 1 s of slack: converters round RecordingDuration (a cut inside the scan is also
        # found by the volume markers, which then run past the end of the data).
        if isinstance(duration, int | float) and n_times / sfreq < duration - 1.0:
            raise EEGInputError(
                f"{data_file}: truncated EEG data file: it holds {n_times / sfreq:.3f} s"
                f" ({size} bytes = {n_times} samples of {n_ch} channels x {sizes[fmt]} bytes)"
                f" but {Path(eeg_json).name} gives RecordingDuration {duration:g} s."
                " Re-export or re-copy the recording."
            )
    return n_times


def check_channel_names(vhdr: str | Path, channels_tsv: str | Path) -> None:
    """Refuse ``.vhdr`` channel names that disagree with the BIDS ``channels.tsv``.

    Raises
    ------
    EEGInputError
        Naming both files and the channels found in only one of them.
    """
    import pandas as pd

    tsv = pd.read_csv(channels_tsv, sep="\t", dtype=str, keep_default_na=False)
    tsv_names = [str(n) for n in tsv["name"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdr = mne.io.read_raw_brainvision(vhdr, preload=False, verbose=False)
    vhdr_names = list(hdr.ch_names)
    if vhdr_names != tsv_names:
        only_v = [n for n in vhdr_names if n not in tsv_names]
        only_t = [n for n in tsv_names if n not in vhdr_names]
        if only_v or only_t:
            detail = (
                f"only in the .vhdr: {', '.join(only_v) or 'none'}; only in channels.tsv:"
                f" {', '.join(only_t) or 'none'}"
            )
        else:
            detail = "the same names in a different order"
        raise EEGInputError(
            f"{vhdr}: channel names disagree with {channels_tsv} ({detail}). Make"
            " channels.tsv list the recording's channels, in the recording's order."
        )


def check_brainvision(
    vhdr: str | Path,
    channels_tsv: str | Path | None = None,
    *,
    eeg_json: str | Path | None = None,
) -> None:
    """Refuse a truncated ``.eeg`` file or ``.vhdr`` channel names that disagree with BIDS.

    Raises
    ------
    EEGInputError
        With the file and the problem.
    """
    check_eeg_size(vhdr, eeg_json=eeg_json)
    if channels_tsv is not None and Path(channels_tsv).is_file():
        check_channel_names(vhdr, channels_tsv)
