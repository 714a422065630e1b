"""The ``clean_eeg`` stage: from an in-scanner recording to clean EEG at 200 Hz.

``clean_raw`` runs the whole stage on an :class:`mne.io.BaseRaw`: volume
markers → gradient artifact removal → R-peaks on the ECG → BCG removal →
ECG/EOG/EMG dropped and the configured EEG channels kept → anti-aliased
resampling to the output rate (:mod:`.resample`). Channels are processed one at
a time at the recording's rate and only the resampled result is kept, so memory
stays near the size of the recording itself.

The rule's file I/O (BIDS checks, reading with mne-bids, the BOLD run's TR and
slice timing, the BIDS derivative and the QC files) is :mod:`neurobolt.jobs.clean_eeg`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import warnings
from collections.abc import Mapping
from typing import Any

import mne
import numpy as np

from .. import config as nbconfig
from ..provenance import provenance
from .brainvision import (  # noqa: F401 - re-exported (validate imports them from here)
    EEGInputError,
    brainvision_files,
    check_brainvision,
    check_channel_names,
    check_eeg_size,
    write_clean_eeg,
)
from .gradient import blas_single_thread, detect_n_slices
from .markers import MarkerError, find_volume_markers, volume_onsets  # noqa: F401
from .qc_signals import stage_signals
from .resample import apply_stages, resample, resample_stages
from .stage import clean_array, intermediate_rate

logger = logging.getLogger("neurobolt.eeg.clean")

__all__ = [
    "DEFAULT_CONFIG",
    "EEGInputError",
    "clean_raw",
    "estimate_memory_mb",
    "resample",
    "resample_stages",
]

#: Defaults of the ``eeg`` config section, from the schema (``neurobolt/config.schema.yaml``).
DEFAULT_CONFIG: dict[str, Any] = nbconfig.defaults("eeg")

#: The 26 EEG channels of the paper's cap (REFERENCE-FACTS.md): the default ``eeg.channels``.
PAPER_CHANNELS = tuple(DEFAULT_CONFIG["channels"])

NON_EEG_TYPES = {"ecg", "eog", "emg", "stim", "misc", "resp", "bio", "gsr", "temperature"}


# ------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------


def eeg_options(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``eeg`` section's defaults with ``config`` merged over them.

    An unknown key is ignored with a :class:`FutureWarning` (it was ignored with a warning
    before the options came from the schema; it will be an error in the next release).
    """
    try:
        cfg = nbconfig.section("eeg", config)
    except ValueError as err:
        warnings.warn(
            f"{err}: ignored (an error from the next release)", FutureWarning, stacklevel=2
        )
        cfg = nbconfig.section("eeg", config, strict=False)
    if cfg["missing_channels"] not in ("warn", "error"):
        raise ValueError("eeg.missing_channels must be 'warn' or 'error'")
    if cfg["missing_ecg"] not in ("error", "skip_bcg"):
        raise ValueError("eeg.missing_ecg must be 'error' or 'skip_bcg'")
    return cfg


# ------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------


def estimate_memory_mb(
    *,
    n_channels: int,
    n_times: int,
    sfreq: float,
    sfreq_out: float = nbconfig.defaults("eeg.sfreq"),
    n_ref: int = nbconfig.defaults("eeg.gradient.n_ref"),
) -> float:
    """Peak memory (MB) that cleaning one recording needs, estimated from its size.

    The stage holds the kept channels (+ ECG) once as float32 at the recording's
    rate, the delay-estimation channels and a few single-channel float64 work
    arrays at that rate, and the cleaned EEG four times over (BCG iterations) as
    float64 at ``sfreq_out``, on top of ~350 MB of libraries. Measured peak: 593 MB
    for the demo's 374 s, 27-channel, 5 kHz recording, for an estimate of 734 MB.

    Parameters
    ----------
    n_channels : int
        Channels read (the kept EEG channels and the ECG).
    n_times : int
        Samples of the recording.
    sfreq : float
        The recording's sampling rate (Hz).
    sfreq_out : float
        The output rate (Hz).
    n_ref : int
        Channels used to estimate the gradient delays (``eeg.gradient.n_ref``).

    Returns
    -------
    mb : float
        The estimate in MB (10^6 bytes).
    """
    n_out = n_times * sfreq_out / sfreq
    held = 4.0 * n_channels * n_times
    work = 8.0 * n_times * (n_ref + 4)
    out = 8.0 * 4 * n_channels * n_out
    # bcg.refine_gradient: the uncorrected EEG (float32) and the BCG estimate (float64)
    # at the intermediate rate
    refine = 12.0 * n_channels * n_times * intermediate_rate(sfreq, sfreq_out)[0] / sfreq
    return 350.0 + (held + work + out + refine) / 1e6


def check_memory(
    *, n_channels: int, n_times: int, sfreq: float, config: Mapping[str, Any], run: str
) -> float:
    """Refuse a recording whose estimated cleaning memory exceeds ``eeg.max_memory_mb``.

    Returns
    -------
    mb : float
        The estimate (MB), when it fits.

    Raises
    ------
    EEGInputError
        With the estimate, the limit and the recording's size.
    """
    cfg = eeg_options(config)
    need = estimate_memory_mb(
        n_channels=n_channels,
        n_times=n_times,
        sfreq=sfreq,
        sfreq_out=float(cfg["sfreq"]),
        n_ref=int(cfg["gradient"]["n_ref"]),
    )
    limit = cfg["max_memory_mb"]
    if limit is not None and need > float(limit):
        raise EEGInputError(
            f"{run}: cleaning this recording needs about {need:,.0f} MB ({n_channels} channels x"
            f" {n_times:,} samples at {sfreq:g} Hz = {n_times / sfreq / 60:.1f} min), more than"
            f" eeg.max_memory_mb = {float(limit):,.0f} MB. Raise eeg.max_memory_mb (and give the"
            " clean_eeg rule that much memory), or split the recording."
        )
    return need


# ------------------------------------------------------------------------------------------
# Channels
# ------------------------------------------------------------------------------------------


def select_channels(raw, cfg, run) -> tuple[list[int], list[str], list[str]]:
    """Indices and (config-spelled) names of the EEG channels to keep, and the missing ones.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The recording.
    cfg : mapping
        The merged ``eeg`` section (:func:`eeg_options`): ``channels``, ``missing_channels``.
    run : str
        The run's name, for messages.

    Returns
    -------
    idx, names, missing : list
        Channel indices in ``raw``, their configured names, the configured names missing.
    """
    types = raw.get_channel_types()
    lookup = {}
    for i, (name, kind) in enumerate(zip(raw.ch_names, types, strict=True)):
        if kind not in NON_EEG_TYPES:
            lookup.setdefault(name.strip().upper(), i)
    idx, names, missing = [], [], []
    for wanted in cfg["channels"]:
        i = lookup.get(str(wanted).strip().upper())
        if i is None:
            missing.append(str(wanted))
        else:
            idx.append(i)
            names.append(str(wanted))
    if missing:
        msg = (
            f"{run}: {len(missing)} of the {len(cfg['channels'])} configured EEG channels are"
            f" missing from the recording: {', '.join(missing)}"
        )
        if cfg["missing_channels"] == "error" or not idx:
            raise EEGInputError(
                msg + ". Fix `eeg.channels` in the config or set `eeg.missing_channels: warn`."
            )
        logger.warning(msg)
    return idx, names, missing


def find_ecg(raw, cfg, run) -> int | None:
    """The ECG channel's index: ``eeg.ecg_channel`` when set (an error when missing), else
    the first channel of type ECG or named ECG/EKG; None when there is none."""
    names_upper = [n.strip().upper() for n in raw.ch_names]
    if cfg["ecg_channel"]:
        want = str(cfg["ecg_channel"]).strip().upper()
        if want in names_upper:
            return names_upper.index(want)
        raise EEGInputError(
            f"{run}: the configured ECG channel {cfg['ecg_channel']!r} is not in the recording"
            f" (channels: {', '.join(raw.ch_names)}). Fix `eeg.ecg_channel`."
        )
    types = raw.get_channel_types()
    for i, kind in enumerate(types):
        if kind == "ecg":
            return i
    for i, name in enumerate(names_upper):
        if re.fullmatch(r"(ECG|EKG)\d*", name):
            return i
    return None


class _Source:
    """Per-channel float64 access to a recording without copying all of it."""

    def __init__(self, raw, picks: list[int], *, chunk_s: float = 30.0):
        self.raw = raw
        self.picks = list(picks)
        if raw.preload:
            self._data = None
        else:
            n = raw.n_times
            self._data = np.empty((len(self.picks), n), dtype=np.float32)
            step = int(max(chunk_s * raw.info["sfreq"], 1))
            for a in range(0, n, step):
                b = min(a + step, n)
                self._data[:, a:b] = raw.get_data(picks=self.picks, start=a, stop=b)

    def __call__(self, i: int, sl: slice = slice(None)) -> np.ndarray:
        if self._data is None:
            return np.array(self.raw._data[self.picks[i], sl], dtype=np.float64)
        return self._data[i, sl].astype(np.float64)


# ------------------------------------------------------------------------------------------
# The stage
# ------------------------------------------------------------------------------------------


def clean_raw(
    raw: mne.io.BaseRaw,
    *,
    config: Mapping[str, Any] | None = None,
    tr: float | None = None,
    n_volumes: int | None = None,
    slice_timing=None,
    n_slices: int | None = None,
    run: str | None = None,
    return_qc: bool = False,
    return_signals: bool = False,
):
    """Clean an in-scanner EEG recording: the whole ``clean_eeg`` stage.

    Volume markers → gradient artifact (slice and volume templates with
    sub-sample alignment, OBS of the residual) → R-peaks → BCG (OBS) →
    configured EEG channels only → anti-aliased resampling.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The recording (preloaded or not; it is not modified).
    config : mapping | None
        The ``eeg`` config section; missing keys take the schema's defaults.
    tr : float | None
        BOLD repetition time (s); None uses the median marker interval.
    n_volumes : int | None
        Number of BOLD volumes the markers must match; None skips the check.
    slice_timing : array of float | None
        BIDS ``SliceTiming`` (s) of the BOLD run, for slice templates.
    n_slices : int | None
        Slices per volume when no ``slice_timing`` is known. With neither,
        the slice count is detected from the periodicity of the artifact
        (recorded in the QC as ``slice_timing_source``).
    run : str | None
        Name of the run used in messages.
    return_qc : bool
        Also return the quality-control record.
    return_signals : bool
        Also return the QC signals of every step (spectra, BCG epochs, markers:
        :func:`neurobolt.eeg.qc_signals.stage_signals`), after the QC record.

    Returns
    -------
    clean : mne.io.RawArray
        The configured EEG channels (config spelling and order) at
        ``config['sfreq']``, all annotations kept.
    qc : dict
        Only if ``return_qc``: residual artifact power, heart rate, counts, timings.
    signals : dict
        Only if ``return_signals``: what the subject report plots.
    """
    with blas_single_thread():
        return _clean_raw(
            raw,
            config=config,
            tr=tr,
            n_volumes=n_volumes,
            slice_timing=slice_timing,
            n_slices=n_slices,
            run=run,
            return_qc=return_qc,
            return_signals=return_signals,
        )


def _clean_raw(
    raw, *, config, tr, n_volumes, slice_timing, n_slices, run, return_qc, return_signals
):
    t_start = time.perf_counter()
    cfg = eeg_options(config)
    run = run or (str(raw.filenames[0]) if getattr(raw, "filenames", None) else "recording")
    sfreq = float(raw.info["sfreq"])
    sfreq_out = float(cfg["sfreq"])
    timing = {}

    onsets = volume_onsets(
        raw,
        marker=cfg["volume_marker"],
        tr=tr,
        n_volumes=n_volumes,
        tolerance=float(cfg["marker_tolerance"]),
        run=run,
    )
    markers = find_volume_markers(raw, marker=cfg["volume_marker"])
    completed = int(onsets.size - markers.size)
    keep_idx, keep_names, missing = select_channels(raw, cfg, run)
    ecg_idx = find_ecg(raw, cfg, run)
    if ecg_idx is None and cfg["missing_ecg"] == "error":
        raise EEGInputError(
            f"{run}: no ECG channel (no channel of type ECG and none named ECG/EKG), so the"
            " heartbeats needed for BCG removal cannot be found. Set `eeg.ecg_channel` to the"
            " ECG's name, or `eeg.missing_ecg: skip_bcg` to clean without BCG removal."
        )
    picks = keep_idx + ([ecg_idx] if ecg_idx is not None else [])
    check_memory(n_channels=len(picks), n_times=raw.n_times, sfreq=sfreq, config=cfg, run=run)
    src = _Source(raw, picks)
    timing["read"] = time.perf_counter() - t_start

    g = cfg["gradient"]
    if tr is None:
        tr_eff = float(np.median(np.diff(onsets)) / sfreq)
    else:
        tr_eff = float(tr)
    slice_source = "none"
    fractions = None
    if g["slice_templates"]:
        if slice_timing is not None and len(slice_timing) > 1:
            fractions = np.unique(np.round(np.asarray(slice_timing, float), 6)) / tr_eff
            slice_source = "SliceTiming"
        else:
            if n_slices is None:
                stop = int(min(onsets[min(20, onsets.size - 1)] + 1, raw.n_times))
                probe = np.stack(
                    [src(i, slice(int(onsets[0]), stop)) for i in range(len(keep_idx))]
                )
                n_slices = detect_n_slices(probe, sfreq, onsets - onsets[0])
                slice_source = "detected" if n_slices else "none"
                del probe
            else:
                slice_source = "n_slices"
            if n_slices and int(n_slices) > 1:
                fractions = np.arange(int(n_slices)) / int(n_slices)
    keep: dict | None = {} if return_signals else None
    out, stage_qc, peaks_out = clean_array(
        src,
        len(keep_idx),
        ecg_idx is not None,
        sfreq=sfreq,
        sfreq_out=sfreq_out,
        onsets=onsets,
        tr=tr,
        slice_fractions=fractions,
        cfg=cfg,
        apply_stages=apply_stages,
        out_stages_for=lambda rate: resample_stages(rate, sfreq_out, passband=cfg["passband"]),
        skip_without_ecg=cfg["missing_ecg"] == "skip_bcg",
        keep=keep,
    )
    if stage_qc["bcg"]["events"] == "none" and ecg_idx is not None:
        if cfg["missing_ecg"] == "error":
            raise EEGInputError(
                f"{run}: no heartbeats found in the ECG channel {raw.ch_names[ecg_idx]!r}. Set"
                " `eeg.missing_ecg: skip_bcg` to clean without BCG removal."
            )
    timing.update(stage_qc.pop("timing"))
    timing["total"] = time.perf_counter() - t_start
    dropped = [n for i, n in enumerate(raw.ch_names) if i not in keep_idx]
    stage_qc["gradient"]["reference_channels"] = [
        keep_names[i] for i in stage_qc["gradient"]["reference_channels"]
    ]
    stage_qc["gradient"]["slice_templates"] = fractions is not None
    stage_qc["gradient"]["slice_timing_source"] = slice_source
    bcg_qc = stage_qc["bcg"]
    qc = {
        "run": run,
        "n_volumes": int(onsets.size),
        "tr_s": tr_eff,
        "sfreq_in": sfreq,
        "sfreq_out": sfreq_out,
        "duration_s": raw.n_times / sfreq,
        "channels": keep_names,
        "missing_channels": missing,
        "dropped_channels": dropped,
        "ecg_channel": raw.ch_names[ecg_idx] if ecg_idx is not None else None,
        "heart_rate_bpm": bcg_qc.get("heart_rate_bpm"),
        "n_beats": int(bcg_qc.get("n_beats", 0)),
        "completed_markers": completed,
        **stage_qc,
        "processing_time_s": timing,
        "realtime_factor": (raw.n_times / sfreq) / timing["total"],
    }

    info = mne.create_info(keep_names, sfreq_out, "eeg")
    with info._unlock():
        info["meas_date"] = raw.info["meas_date"]
        info["line_freq"] = raw.info.get("line_freq")
        info["description"] = json.dumps(
            {
                "neurobolt": provenance(dict(config or {})),
                "stage": "clean_eeg",
                "source_sfreq": sfreq,
            }
        )
    first_samp = int(round(raw.first_samp * sfreq_out / sfreq))
    clean = mne.io.RawArray(out, info, first_samp=first_samp, verbose=False)
    clean.set_annotations(raw.annotations.copy())
    logger.info(
        "%s: cleaned %.0f s of EEG in %.1f s (%.0fx real time)",
        run,
        qc["duration_s"],
        timing["total"],
        qc["realtime_factor"],
    )
    result = [clean] + ([qc] if return_qc else [])
    if return_signals:
        result.append(
            stage_signals(
                raw_of=src,
                channels=keep_names,
                sfreq=sfreq,
                n_times=raw.n_times,
                markers=markers,
                tr=tr,
                slice_timing=slice_timing,
                after_gradient=keep["after_gradient"],
                clean=out,
                sfreq_out=sfreq_out,
                r_peaks=peaks_out,
            )
        )
    return tuple(result) if len(result) > 1 else clean
