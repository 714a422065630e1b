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
from pathlib import Path
from typing import Any

__all__ = ["clean_eeg_sidecars", "read_clean_eeg", "write_clean_eeg"]


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
        tsv = Path(tmp) / paths["channels"].name
        rows = ["name\ttype\tunits\tsampling_frequency\tlow_cutoff\thigh_cutoff\tstatus"]
        low = sidecar.get("_low_cutoff", "n/a")
        high = sidecar.get("_high_cutoff", "n/a")
        for name in raw.ch_names:
            rows.append(f"{name}\tEEG\tµV\t{raw.info['sfreq']:g}\t{low}\t{high}\tgood")
        tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
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
    import warnings

    import mne

    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix.lower() == ".vhdr":
            raw = mne.io.read_raw_brainvision(path, preload=preload, verbose=False)
            raw.set_channel_types(dict.fromkeys(raw.ch_names, "eeg"), verbose=False)
            return raw
        return mne.io.read_raw_fif(path, preload=preload, verbose=False)
