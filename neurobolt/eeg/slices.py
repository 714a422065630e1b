"""Each volume's own mean slice: what changed in the slices of one volume.

The slices of one volume share its head position and, when the triggers jitter per
volume, its sampling phase. :func:`volume_slice_means` is the part of a volume's slices
that they have in common (per sampling-phase group), shrunk by how far it stands above the
EEG that averaging the slices leaves in it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["volume_slice_means"]


def volume_slice_means(stack: np.ndarray, groups: list, *, shrink: bool = True) -> np.ndarray:
    """Each volume's mean slice per group, as a fit of every slice (same shape as ``stack``).

    Parameters
    ----------
    stack : ndarray, shape (n_volumes, n_slices, slice_length)
        Aligned slice epochs of the residual.
    groups : list of array of int
        Slices grouped by sampling phase (one group: all slices).
    shrink : bool
        Wiener per frequency of the slice: a volume's mean slice carries its slices' EEG
        divided by their number; it is kept in proportion to how far its power over volumes
        stands above that noise, but never below one half (a common slice residue left
        behind shows as lines at the slice frequency).

    Returns
    -------
    fit : ndarray, shape (n_volumes, n_slices, slice_length)
        Zero-mean per slice, but with interleaved phase groups (the phases repeat every
        few slices) each group's level against the volume's level over all groups: the
        aliased part of the artifact has a mean (folded onto 0 Hz) that differs between
        sampling phases, a step pattern repeating every few slices (lines at the slice
        frequency over the number of groups), while slow EEG, sampled alike by interleaved
        groups, has the same level in all of them; the volume's own level is left to the
        EEG. (Groups of neighbouring slices, whose phases drift slowly, would take its
        trend: they keep no level.)
    """
    fit = np.zeros_like(stack)
    ls = stack.shape[2]
    p = len(groups)
    levels = p > 1 and all(m.size > 1 and np.all(np.diff(m) % p == 0) for m in groups)
    if levels:
        level = stack[:, np.concatenate(groups)].mean(axis=(1, 2), keepdims=True)
    for members in groups:
        mean = stack[:, members].mean(axis=1, keepdims=True)
        if shrink and members.size > 1:
            spec = np.fft.rfft(mean, axis=2)
            dev = np.fft.rfft(stack[:, members] - mean, axis=2)
            noise = np.mean(np.abs(dev) ** 2, axis=(0, 1)) / (members.size - 1)
            power = np.mean(np.abs(spec) ** 2, axis=(0, 1))
            h = np.clip(1.0 - noise / np.maximum(power, 1e-300), 0.5, 1.0)
            mean = np.fft.irfft(spec * h, n=ls, axis=2)
        fit[:, members] = mean - mean.mean(axis=2, keepdims=True)
        if levels:
            # the group's level against the volume's, shrunk like the slice shape (its
            # noise is the spread of the group's single slice levels)
            dcs = stack[:, members].mean(axis=2, keepdims=True)  # (n_v, n_m, 1)
            contrast = dcs.mean(axis=1, keepdims=True) - level
            noise = np.mean(np.var(dcs, axis=1, ddof=1)) / members.size
            keep = max(1.0 - noise / max(float(np.mean(contrast**2)), 1e-300), 0.0)
            fit[:, members] += keep * contrast if shrink else contrast
    return fit
