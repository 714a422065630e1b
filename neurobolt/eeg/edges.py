"""The gradient artifact at a scan's two edges, which no volume template holds.

Within a scan every volume's epoch holds the ringing that the previous volume's last
gradients leave behind (cable vibration, eddy currents) and the onset of the next
volume's (ramps that begin before its marker); the volume templates average both. The
first volume has no predecessor and the last no successor: their templates subtract a
ringing and an onset that are not there, and the ringing after the last volume and the
onset before the first are in no epoch at all. Both are observed once: the ringing is
what is left after the scan, the onset what is left before it.
"""

from __future__ import annotations

import numpy as np

from .resample import highpass_rows

__all__ = ["scan_edges"]

#: The band of the edge artifact (vibration and ramps, above the EEG's strong slow part),
#: how far its power must stand above the scan's residual power, how strongly
#: (correlation) its negative must show where the edge volume's template subtracted it,
#: and its longest extent (s).
EDGE_HIGHPASS_HZ = 10.0
EDGE_SNR = 3.0
EDGE_MIRROR = 0.3
EDGE_MAX_S = 0.25


def _bin_power(x: np.ndarray, bin_len: int) -> np.ndarray:
    """Mean power of ``x`` in consecutive bins of ``bin_len`` samples (a partial bin dropped)."""
    n_bins = x.size // bin_len
    return np.mean(x[: n_bins * bin_len].reshape(n_bins, bin_len) ** 2, axis=1)


def _extent(seg: np.ndarray, floor: float, bin_len: int) -> int:
    """Samples from the start of ``seg`` while its power stays ``EDGE_SNR`` x ``floor``.

    Power in bins of ``bin_len`` samples; the extent ends at the first bin below the
    threshold (0 when the first bin is already below it).
    """
    power = _bin_power(seg, bin_len)
    low = np.flatnonzero(power < EDGE_SNR * floor)
    return int((low[0] if low.size else power.size) * bin_len)


def scan_edges(
    x: np.ndarray, art: np.ndarray, lo: int, hi: int, *, rate: float, longest: float
) -> tuple[np.ndarray, list[int]]:
    """The artifact estimate ``art`` completed at the scan's edges.

    The ringing after the scan and the onset before it are their part of the residual
    ``x - art`` above ``EDGE_HIGHPASS_HZ``, as far as it stands ``EDGE_SNR`` times above
    the scan's residual power, and only when its negative shows where the edge volume's
    template subtracted it (correlation below ``-EDGE_MIRROR``): otherwise what stands out
    there is no scan edge (a movement, a burst). Each is subtracted where it is and added
    back where a template subtracted it that was not there. Only the EEG above
    ``EDGE_HIGHPASS_HZ`` in those few tens of milliseconds is lost.

    Parameters
    ----------
    x : ndarray, shape (n_times,)
        One channel.
    art : ndarray, shape (n_times,)
        Its artifact estimate from the volume templates (zero outside the scan).
    lo, hi : int
        First sample of the scan and the sample after it.
    rate : float
        Sampling rate (Hz).
    longest : float
        Longest extent (samples; at most ``EDGE_MAX_S``).

    Returns
    -------
    art : ndarray, shape (n_times,)
        The completed estimate (a copy when anything was found).
    found : list of int
        Extents (samples) after and before the scan (0: none).
    """
    n = x.size
    longest = int(min(EDGE_MAX_S * rate, longest, hi - lo))
    if longest < 2:
        return art, [0, 0]
    pad = int(round(0.25 * rate))
    a, b = max(0, lo - longest - pad), min(n, hi + longest + pad)
    resid = highpass_rows((x - art)[a:b], rate, EDGE_HIGHPASS_HZ)
    bin_len = max(int(round(0.005 * rate)), 1)
    floor = float(np.median(_bin_power(resid[lo - a : hi - a], bin_len)))
    if not floor > 0:
        return art, [0, 0]
    out = art
    found = []
    for side in ("after", "before"):
        if side == "after":
            seg = resid[hi - a : min(hi + longest, b) - a]
            mirror = resid[lo - a : lo - a + seg.size]
        else:
            seg = resid[max(lo - longest, a) - a : lo - a][::-1]  # outwards from lo
            mirror = resid[hi - a - seg.size : hi - a][::-1]
        k = _extent(seg, floor, bin_len)
        if k:
            norm = np.linalg.norm(mirror[:k]) * np.linalg.norm(seg[:k])
            if not np.dot(mirror[:k], seg[:k]) < -EDGE_MIRROR * norm:
                k = 0
        found.append(k)
        if not k:
            continue
        taper = np.ones(k)
        t = min(bin_len * 2, k)
        taper[k - t :] = 0.5 * (1 + np.cos(np.pi * (np.arange(t) + 0.5) / t))
        edge = seg[:k] * taper
        if out is art:
            out = art.copy()
        if side == "after":
            out[hi : hi + k] += edge  # the last volume's ringing, after the scan
            out[lo : lo + k] -= edge  # ... that the first volume's template subtracts
        else:
            out[lo - k : lo] += edge[::-1]  # the first volume's onset, before the scan
            out[hi - k : hi] -= edge[::-1]  # ... that the last volume's template subtracts
    return out, found
