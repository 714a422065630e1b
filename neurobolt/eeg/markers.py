"""fMRI volume markers in an EEG recording: reading and validation.

The scanner sends one trigger per volume (BrainVision writes it as a
``Response/R128`` marker by default). Every later step hangs on these
markers, so they are checked before anything else: a missing, duplicated or
irregular marker, or a marker count that does not match the BOLD run, stops
the run with a message that names the run, the expected and found counts and
the offending times.
"""

from __future__ import annotations

import numpy as np

from .. import config as nbconfig

__all__ = [
    "MarkerError",
    "complete_missing_markers",
    "find_volume_markers",
    "validate_volume_onsets",
    "volume_onsets",
]

_MAX_LISTED = 8


class MarkerError(ValueError):
    """The volume markers of a recording cannot be used."""


def _norm(text: str) -> str:
    return "".join(str(text).split()).lower()


def matches_marker(description: str, marker: str) -> bool:
    """Whether an annotation ``description`` is a volume marker named ``marker``.

    The comparison ignores case and white space and accepts any prefix, so
    ``"R128"`` matches ``"Response/R128"``, ``"R128"`` and ``"Response/R 128"``.
    """
    return _norm(description).endswith(_norm(marker))


def find_volume_markers(raw, *, marker: str = nbconfig.defaults("eeg.volume_marker")) -> np.ndarray:
    """Sample indices (from the first sample of ``raw``) of the volume markers.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The recording; markers are read from ``raw.annotations`` (for a BIDS
        recording read with mne-bids these come from ``events.tsv``).
    marker : str
        Description of a volume marker (matched at the end of the annotation
        description, ignoring case and spaces).

    Returns
    -------
    onsets : ndarray of int
        Sorted sample indices (duplicates kept, for validation to report).
    """
    ann = raw.annotations
    sfreq = raw.info["sfreq"]
    keep = np.array([matches_marker(d, marker) for d in ann.description], dtype=bool)
    onset = np.asarray(ann.onset, dtype=float)[keep] if keep.size else np.zeros(0)
    if ann.orig_time is not None and raw.info["meas_date"] is not None:
        onset = onset - raw.first_time  # annotations count from meas_date
    return np.sort(np.round(onset * sfreq).astype(np.int64))


def _times(samples, sfreq) -> str:
    samples = list(samples)
    shown = ", ".join(f"{s / sfreq:.3f} s" for s in samples[:_MAX_LISTED])
    more = len(samples) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def validate_volume_onsets(
    onsets,
    sfreq: float,
    *,
    tr: float | None = None,
    n_volumes: int | None = None,
    n_times: int | None = None,
    tolerance: float = 0.002,
    run: str = "recording",
    marker: str = nbconfig.defaults("eeg.volume_marker"),
    descriptions=None,
    complete: bool = True,
) -> np.ndarray:
    """Check volume onsets against the TR and the BOLD run; raise :class:`MarkerError`.

    A gap that is a whole number of TRs (within ``tolerance``) between otherwise regular
    markers is completed with the missing markers (a warning names them) when
    ``complete``; anything else irregular is refused.

    Parameters
    ----------
    onsets : array of int
        Marker samples (from :func:`find_volume_markers`).
    sfreq : float
        EEG sampling rate (Hz).
    tr : float | None
        Repetition time (s) from the BOLD sidecar; None uses the median
        marker interval.
    n_volumes : int | None
        Number of BOLD volumes; None skips the count check.
    n_times : int | None
        Length of the EEG (samples); None skips the end-of-data check.
    tolerance : float
        Largest accepted deviation of a marker interval from the TR (s).
    run : str
        Name of the run, used in messages.
    marker : str
        The marker description, used in messages.
    descriptions : iterable of str | None
        The annotation descriptions present, listed when no marker is found.

    Returns
    -------
    onsets : ndarray of int
        The validated onsets.
    """
    onsets = np.sort(np.asarray(onsets, dtype=np.int64))
    if complete:
        onsets = complete_missing_markers(onsets, sfreq, tr=tr, tolerance=tolerance, run=run)
    n = onsets.size
    if n == 0:
        found = sorted(set(map(str, descriptions))) if descriptions is not None else []
        listed = ", ".join(repr(d) for d in found[:10]) or "none"
        raise MarkerError(
            f"{run}: no volume markers: expected {n_volumes if n_volumes else 'one per volume'}"
            f" annotations ending in {marker!r}, found 0 (annotation descriptions present:"
            f" {listed}). Set `eeg.volume_marker` to the scanner trigger's description."
        )
    problems: list[str] = []
    if n_volumes is not None and n != int(n_volumes):
        problems.append(
            f"expected {int(n_volumes)} volume markers (one per BOLD volume), found {n}"
            f" (first at {onsets[0] / sfreq:.3f} s, last at {onsets[-1] / sfreq:.3f} s)"
        )
    if n >= 2:
        d = np.diff(onsets) / sfreq
        period = float(tr) if tr else float(np.median(d))
        if tr and abs(np.median(d) - period) > tolerance:
            problems.append(
                f"the median marker interval is {np.median(d):.4f} s but the BOLD TR is"
                f" {period:.4f} s"
            )
        dup = np.flatnonzero(d < 0.5 * period)
        gap = np.flatnonzero(d > 1.5 * period)
        odd = np.flatnonzero((np.abs(d - period) > tolerance) & (d >= 0.5 * period))
        odd = np.setdiff1d(odd, gap)
        if dup.size:
            problems.append(
                f"{dup.size} duplicated marker(s) (closer than half a TR to the previous one)"
                f" at {_times(onsets[dup + 1], sfreq)}"
            )
        if gap.size:
            missing = int(np.sum(np.round(d[gap] / period) - 1))
            problems.append(
                f"about {missing} missing marker(s): gaps of"
                f" {', '.join(f'{g:.3f} s' for g in d[gap][:_MAX_LISTED])} after"
                f" {_times(onsets[gap], sfreq)}"
            )
        if odd.size:
            problems.append(
                f"{odd.size} irregular marker interval(s) (more than {tolerance * 1e3:g} ms"
                f" from the TR of {period:.4f} s): intervals"
                f" {', '.join(f'{v:.4f} s' for v in d[odd][:_MAX_LISTED])} ending at"
                f" {_times(onsets[odd + 1], sfreq)}"
            )
        if n_times is not None and onsets[-1] + round(period * sfreq) > n_times + 1:
            problems.append(
                f"the last volume (marker at {onsets[-1] / sfreq:.3f} s) ends after the end of"
                f" the EEG data at {n_times / sfreq:.3f} s: the recording is truncated"
            )
    if n_times is not None and onsets[0] < 0:
        problems.append(f"markers before the start of the recording at {_times(onsets[:1], sfreq)}")
    if problems:
        raise MarkerError(
            f"{run}: volume markers {marker!r} are not usable:\n  - "
            + "\n  - ".join(problems)
            + "\nFix the marker file (or events.tsv) or exclude the run."
        )
    return onsets


def complete_missing_markers(
    onsets, sfreq: float, *, tr: float | None = None, tolerance: float = 0.002, run: str = ""
) -> np.ndarray:
    """Insert the markers missing from gaps that are a whole number of TRs.

    Only when every other interval is regular (within ``tolerance`` of the TR) and each
    gap is ``k * TR`` within ``tolerance``; the inserted markers are evenly spaced in the
    gap. Anything else is returned unchanged (for :func:`validate_volume_onsets` to
    refuse). Each completion is logged as a warning.
    """
    import logging

    onsets = np.sort(np.asarray(onsets, dtype=np.int64))
    if onsets.size < 3:
        return onsets
    d = np.diff(onsets) / sfreq
    period = float(tr) if tr else float(np.median(d))
    k = np.round(d / period)
    regular = np.abs(d - period) <= tolerance
    whole = (k >= 2) & (np.abs(d - k * period) <= tolerance * np.sqrt(k))
    if not whole.any() or not np.all(regular | whole):
        return onsets
    parts = [onsets[:1]]
    added = []
    for i in range(d.size):
        if whole[i]:
            n_add = int(k[i]) - 1
            new = onsets[i] + np.round(
                (onsets[i + 1] - onsets[i]) * np.arange(1, n_add + 1) / k[i]
            ).astype(np.int64)
            parts.append(new)
            added.extend(new.tolist())
        parts.append(onsets[i + 1 : i + 2])
    logging.getLogger("neurobolt.eeg.markers").warning(
        "%s: %d missing volume marker(s) completed (gaps of a whole number of TRs) at %s",
        run,
        len(added),
        _times(added, sfreq),
    )
    return np.concatenate(parts)


def volume_onsets(
    raw,
    *,
    marker: str = nbconfig.defaults("eeg.volume_marker"),
    tr: float | None = None,
    n_volumes: int | None = None,
    tolerance: float = 0.002,
    run: str | None = None,
) -> np.ndarray:
    """Read and validate the volume markers of ``raw``.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The recording.
    marker : str
        Description of a volume marker.
    tr : float | None
        Repetition time (s); None uses the median marker interval.
    n_volumes : int | None
        Expected number of volumes (the BOLD run's); None skips the check.
    tolerance : float
        Largest accepted deviation of a marker interval from the TR (s).
    run : str | None
        Name used in messages (default: the recording's file name).

    Returns
    -------
    onsets : ndarray of int
        Sample index of every volume start (from the first sample of ``raw``).
    """
    if run is None:
        names = getattr(raw, "filenames", None) or [None]
        run = str(names[0]) if names[0] is not None else "recording"
    onsets = find_volume_markers(raw, marker=marker)
    return validate_volume_onsets(
        onsets,
        raw.info["sfreq"],
        tr=tr,
        n_volumes=n_volumes,
        n_times=raw.n_times,
        tolerance=tolerance,
        run=run,
        marker=marker,
        descriptions=raw.annotations.description,
    )
