"""Job of the ``clean_eeg`` rule: read a BIDS EEG run, clean it, write the BIDS derivative.

It checks the BIDS files (truncated ``.eeg``, ``.vhdr`` channel names against
``channels.tsv``), reads the recording with mne-bids, takes the TR, slice timing and
number of volumes from the BOLD run, cleans it with :func:`neurobolt.eeg.clean.clean_raw`
and writes ``<run>_desc-clean_eeg.vhdr/.vmrk/.eeg`` (+ ``_channels.tsv``, ``_eeg.json``),
the QC record ``<run>_desc-clean_qc.json`` and the QC signals the subject report plots,
``<run>_desc-clean_qc.h5`` (:mod:`neurobolt.eeg.qc_signals`).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import config as nbconfig
from ..eeg.brainvision import EEGInputError, check_brainvision, write_clean_eeg
from ..eeg.clean import clean_raw
from ..eeg.markers import MarkerError
from ..eeg.qc_signals import write_qc_signals
from ..provenance import atomic_path, provenance, write_json

__all__ = ["bold_meta", "run"]


def bold_meta(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """TR, slice timing and number of volumes of the paired BOLD run (when given).

    Parameters
    ----------
    inputs : mapping
        Optional ``bold`` (the ``_bold.nii.gz``: number of volumes) and ``bold_json`` (its
        sidecar; default: next to it).

    Returns
    -------
    meta : dict
        ``tr``, ``slice_timing``, ``n_volumes`` (None where unknown).
    """
    meta: dict[str, Any] = {"tr": None, "slice_timing": None, "n_volumes": None}
    bold = inputs.get("bold")
    side = inputs.get("bold_json")
    if bold:
        bold = Path(bold)
        if side is None:
            name = re.sub(r"\.nii(\.gz)?$", ".json", bold.name)
            side = bold.with_name(name)
        import nibabel as nib

        img = nib.load(str(bold))
        meta["n_volumes"] = int(img.shape[3]) if len(img.shape) == 4 else 1
    if side and Path(side).is_file():
        sidecar = json.loads(Path(side).read_text(encoding="utf-8"))
        meta["tr"] = sidecar.get("RepetitionTime")
        meta["slice_timing"] = sidecar.get("SliceTiming")
    elif bold:
        raise EEGInputError(
            f"{side}: the BOLD sidecar is missing; it must give RepetitionTime (and SliceTiming)"
        )
    return meta


def run(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    threads: int = 1,
) -> dict:
    """Read, check, clean, write one EEG run.

    Parameters
    ----------
    inputs : mapping
        ``eeg``: the BIDS ``_eeg.vhdr`` (read with mne-bids, so ``channels.tsv``
        and ``events.tsv`` next to it apply); optional ``bold``: the paired
        ``_bold.nii.gz`` (number of volumes) whose ``.json`` sidecar gives
        ``RepetitionTime`` and ``SliceTiming``; optional ``bold_json`` to name
        the sidecar explicitly.
    outputs : mapping
        ``eeg``: ``<run>_desc-clean_eeg.vhdr`` (BrainVision, with ``.vmrk``, ``.eeg``,
        ``<run>_desc-clean_channels.tsv`` and ``<run>_desc-clean_eeg.json`` next to it;
        a ``.fif`` name writes FIF as before); ``qc``: ``<run>_desc-clean_qc.json``;
        optional ``qc_signals``: ``<run>_desc-clean_qc.h5`` (the subject report's EEG
        figures).
    params : mapping
        ``cfg``: the ``eeg`` config section; optional ``dummy_markers``: volume markers
        the scanner sent for dummy scans it did not save (``store.dummy_markers``): the
        recording must hold this many markers more than the BOLD run has volumes (their
        gradient artifacts are removed like the others).
    threads : int
        Unused: the stage runs on one thread.

    Returns
    -------
    qc : dict
        The quality-control record that was written.
    """
    import mne_bids

    eeg_cfg = dict(params.get("cfg") or {})
    dummy_markers = int(params.get("dummy_markers") or 0)
    vhdr = Path(inputs["eeg"])
    out_eeg, out_qc = Path(outputs["eeg"]), Path(outputs["qc"])
    out_signals = outputs.get("qc_signals")
    bids_path = mne_bids.get_bids_path_from_fname(vhdr)
    channels_tsv = bids_path.copy().update(suffix="channels", extension=".tsv").fpath
    if vhdr.suffix.lower() == ".vhdr":
        eeg_json = bids_path.copy().update(extension=".json").fpath
        check_brainvision(vhdr, channels_tsv, eeg_json=eeg_json)
    meta = bold_meta(inputs)
    if meta["n_volumes"] is not None:
        meta["n_volumes"] += dummy_markers
    run_name = re.sub(r"_eeg$", "", vhdr.stem)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            raw = mne_bids.read_raw_bids(bids_path, verbose=False)
        except (RuntimeError, ValueError) as err:
            raise EEGInputError(f"{vhdr}: cannot be read as BIDS EEG: {err}") from err
    try:
        clean, qc, *signals = clean_raw(
            raw,
            config=eeg_cfg,
            tr=meta["tr"],
            n_volumes=meta["n_volumes"],
            slice_timing=meta["slice_timing"],
            run=run_name,
            return_qc=True,
            return_signals=bool(out_signals),
        )
    except MarkerError as err:
        raise EEGInputError(f"{vhdr}: {err}") from err
    qc.update(
        {
            "inputs": {k: str(v) for k, v in inputs.items()},
            **provenance(eeg_cfg),
        }
    )
    cfg = nbconfig.section("eeg", eeg_cfg)
    band = cfg["bandpass"]
    sidecar = {
        "TaskName": bids_path.task or "rest",
        "SoftwareFilters": {
            "gradient and BCG artifact removal": "neurobolt.eeg (see the QC JSON)",
            "band-pass (Hz)": band or "none",
            "notch (Hz)": cfg["notch"] or "none",
            "anti-aliasing low-pass (Hz)": cfg["passband"] or 0.4 * float(cfg["sfreq"]),
        },
        "_low_cutoff": float(band[0]) if band else "n/a",
        "_high_cutoff": float(band[1]) if band else "n/a",
        "Sources": [str(vhdr)],
        "GeneratedBy": [{"Name": "neurobolt", "Description": "clean_eeg stage"}],
        "neurobolt": provenance(eeg_cfg),
    }
    if out_eeg.suffix.lower() == ".fif":  # older layouts
        with atomic_path(out_eeg) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clean.save(tmp, overwrite=True, verbose=False)
        written = [out_eeg]
    else:
        written = list(write_clean_eeg(clean, out_eeg, sidecar=sidecar).values())
    try:
        if out_signals:
            attrs = {"run": run_name, "source": str(vhdr), **provenance(eeg_cfg)}
            written.append(write_qc_signals(out_signals, signals[0], attrs=attrs))
        write_json(out_qc, qc)
    except BaseException:
        for path in written:
            Path(path).unlink(missing_ok=True)
        raise
    return qc
