"""One run's BOLD: components, shared physiology, motion, the atlas, and the ceilings.

Each DiFuMo-64 component's time course mixes an EEG-coupled part (coupled ROIs), a
global fluctuation (an arousal-driven vigilance part, and a physiological part: breathing
depth and heart rate through their response functions, which the EEG shows through its
artifacts and arousal, and a systemic low-frequency oscillation it does not show), a
network factor and its own HRF-filtered 1/f activity. The null ROI, and the components
its map overlaps, share only the systemic oscillation. Voxels add head motion, aliased
cardiac and respiratory pulsatility, thermal noise and the T1 saturation of the first
volumes. See ``docs/simulator.md`` for the equations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .params import (
    DIFUMO64_LABELS,
    ENV_SFREQ,
    GLOBAL_SHARE,
    GLOBAL_SIGNAL,
    ROI_CENTRES,
    WINDOW_S,
    SimParams,
)
from .signals import cardiac_response, pink_noise, respiration_response, zscore

#: Weights of the global fluctuation, a network factor and the own activity in a
#: component (realistic preset); they set the inter-ROI and ROI-global correlations.
GLOBAL_WEIGHT = 0.82
NETWORK_WEIGHT = 0.15
N_NETWORKS = 6
#: Weights of breathing depth (RVT), heart rate and the systemic low-frequency oscillation
#: (sLFO) in the physiological part of the global fluctuation. The null ROI (and the
#: components overlapping it) share only the sLFO, which the EEG does not show.
PHYSIO_WEIGHTS = (0.5, 0.4, 0.75)
#: Spectral exponent of the neural activity before the HRF (1/f**exponent).
NOISE_EXPONENT = 0.5
#: Saturation of the EEG drive: tanh(SATURATION * u) of the z-scored drive u.
SATURATION = 1.2
#: Largest amplitude of a coupled part (keeps the ceilings below ~0.75).
MAX_COUPLING = 0.6
#: How far (mm) the extraction atlas's maps are shifted from the generating ones (about a
#: voxel of a 4-5 mm grid; 0.6 voxel of the demo's 8 mm grid), and their extra smoothing.
ATLAS_SHIFT_MM = 5.0
ATLAS_SMOOTH_MM = 5.0
#: The pipeline's default fMRI filtering, applied when computing the ceilings.
PIPELINE_LOWPASS_HZ = 0.15
PIPELINE_DETREND = 1


def _roi_maps(params: SimParams | None, shape, affine, mask) -> np.ndarray:
    """Non-negative Gaussian blob maps, one per DiFuMo-64 label, on the BOLD grid."""
    rng = np.random.default_rng(12345)  # the atlas is the same for every subject and seed
    ijk = np.indices(shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4]).T
    inside = xyz[mask.ravel()]
    maps = np.zeros((len(DIFUMO64_LABELS), int(np.prod(shape))), np.float32)
    for k, label in enumerate(DIFUMO64_LABELS):
        centres = ROI_CENTRES.get(label)
        if centres is None:
            c = inside[rng.integers(len(inside))]
            centres = [c, (-c[0], c[1], c[2])] if rng.random() < 0.5 else [c]
        sigma = rng.uniform(9.0, 13.0)
        blob = sum(
            np.exp(-0.5 * np.sum((xyz - np.asarray(c, float)) ** 2, axis=1) / sigma**2)
            for c in centres
        )
        blob[blob < 0.05] = 0
        maps[k] = blob * mask.ravel()
    return maps.reshape(len(DIFUMO64_LABELS), *shape)


def _mni_grid(voxel_mm: float):
    """Grid, affine and brain mask covering the MNI brain at ``voxel_mm``."""
    lo, hi = np.array([-90.0, -126.0, -72.0]), np.array([90.0, 90.0, 108.0])
    shape = tuple(int(s) for s in np.floor((hi - lo) / voxel_mm) + 1)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = lo
    ijk = np.indices(shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4]).T
    centre, radii = np.array([0.0, -17.0, 12.0]), np.array([68.0, 90.0, 70.0])
    mask = (np.sum(((xyz - centre) / radii) ** 2, axis=1) <= 1.0).reshape(shape)
    return shape, affine, mask


def extraction_maps(maps: np.ndarray, mask: np.ndarray, *, voxel_mm: float, easy: bool):
    """The atlas written for extraction: the generating maps smoothed and shifted.

    A real atlas is not a brain's true modes: each map is smoothed (Gaussian,
    :data:`ATLAS_SMOOTH_MM` sd) and shifted by about :data:`ATLAS_SHIFT_MM` (at most one
    voxel) in a random direction (fixed seed, the same for every dataset), then masked.
    ``easy`` returns the generating maps.
    """
    if easy:
        return maps
    from scipy.ndimage import gaussian_filter, shift

    rng = np.random.default_rng(54321)
    out = np.empty_like(maps)
    for k in range(maps.shape[0]):
        direction = rng.normal(0, 1, 3)
        length = min(ATLAS_SHIFT_MM, voxel_mm) / voxel_mm * rng.uniform(0.7, 1.3)
        direction *= length / np.linalg.norm(direction)
        m = gaussian_filter(maps[k].astype(np.float64), ATLAS_SMOOTH_MM / voxel_mm)
        m = shift(m, direction, order=1, mode="constant")
        out[k] = np.where(mask, np.clip(m, 0, None), 0)
    return out.astype(np.float32)


def head_motion(rng, n_vol: int, scale: float) -> np.ndarray:
    """Head position per volume (mm, rad): slow random walks with two jumps."""
    steps = rng.normal(0, 0.01, (n_vol, 6)) * scale
    for _ in range(2):
        steps[rng.integers(5, n_vol), rng.integers(6)] += rng.normal(0, 0.15) * scale
    motion = np.cumsum(steps, axis=0)
    motion[:, 3:] *= np.pi / 180.0  # rotations in rad
    return motion


@dataclass
class BoldRun:
    """The simulated BOLD of one run and its ground truth."""

    bold: np.ndarray  # (x, y, z, t) float32
    truth: pd.DataFrame  # EEG-coupled part of each target's generating component (+ global)
    neural: pd.DataFrame  # target components without motion, physiology and thermal noise
    ceiling: dict  # target -> best R of an EEG-based prediction of the pipeline's target
    confounds: pd.DataFrame
    components: np.ndarray  # (64, n_vol) generating component time courses


def _sample(x, idx):
    """``x`` (1-D or rows) at the volume indices ``idx``, z-scored along time."""
    y = x[..., idx]
    return (y - y.mean(axis=-1, keepdims=True)) / y.std(axis=-1, keepdims=True)


def coupled_drive(latents, bands: dict, *, easy: bool) -> np.ndarray:
    """The EEG drive of one ROI on the envelope grid (before lag and HRF).

    ``easy``: the signed sum of z-scored band powers (linear). Otherwise the weighted
    sum of z-scored log band powers, z-scored, through ``tanh(SATURATION * u)``.
    """
    if easy:
        return zscore(sum(w * zscore(latents.env[b] ** 2) for b, w in bands.items()))
    u = zscore(sum(w * zscore(np.log(latents.env[b] ** 2)) for b, w in bands.items()))
    return np.tanh(SATURATION * u)


def _hrf_filter(x, h, lag_samples=0):
    """``x`` delayed by ``lag_samples`` and convolved with ``h`` (causal, same length)."""
    x = x - x.mean()
    if lag_samples:
        x = np.r_[np.zeros(lag_samples), x[:-lag_samples]]
    return np.convolve(x, h)[: x.size]


def simulate_bold(params: SimParams, rng, traits, latents, onset_s, motion, beats_s, grid):
    """Simulate one run's BOLD (see the module docstring) on ``grid``.

    ``grid`` is ``(shape, affine, mask, maps)`` or ``(..., extraction_maps)``;
    ``onset_s`` the volume onsets (s from the EEG start); ``beats_s`` the heartbeats.
    """
    shape, affine, mask, maps = grid[:4]
    ext = (
        grid[4]
        if len(grid) > 4
        else extraction_maps(maps, mask, voxel_mm=params.voxel_mm, easy=params.easy)
    )
    easy = params.easy
    n_vol = params.n_volumes
    t_env = latents.t
    n_env = t_env.size
    idx = np.round((onset_s - t_env[0]) * ENV_SFREQ).astype(int)
    labels = list(DIFUMO64_LABELS)
    n_comp = len(labels)
    coupling = {k: (dict(v[0]), float(v[1])) for k, v in params.coupling.items()}
    default_hrf = traits.hrf_kernel("default", ENV_SFREQ)

    def activity(n):
        """HRF-filtered neural activity the EEG does not show, sampled at the volumes."""
        if easy:
            x = rng.standard_normal((n, n_env))
        else:
            x = pink_noise(rng, n_env, ENV_SFREQ, n=n, f_min=0.003, exponent=NOISE_EXPONENT)
        return _sample(np.stack([_hrf_filter(row, default_hrf) for row in x]), idx)

    def drive(label, key):
        bands = traits.weights[label]
        lag = traits.lag[label]
        h = traits.hrf_kernel(key, ENV_SFREQ, length_s=WINDOW_S - lag)
        x = _hrf_filter(coupled_drive(latents, bands, easy=easy), h, int(round(lag * ENV_SFREQ)))
        return zscore(x[idx])

    g_a = min(coupling[GLOBAL_SIGNAL][1] * traits.gain[GLOBAL_SIGNAL], 0.9)
    vigilance = drive(GLOBAL_SIGNAL, "global")
    comp = np.zeros((n_comp, n_vol))
    truth_comp = np.zeros((n_comp, n_vol))
    own = activity(n_comp)
    if easy:
        glob_true = g_a * vigilance
        glob_noise = np.sqrt(1 - g_a**2) * activity(1)[0]
        share = GLOBAL_SHARE
        for k, label in enumerate(labels):
            if label in params.null_rois:
                comp[k] = own[k]
            elif label in coupling:
                a = coupling[label][1]
                truth_comp[k] = a * drive(label, label)
                comp[k] = truth_comp[k] + np.sqrt(1 - a**2) * own[k]
            else:
                truth_comp[k] = share * glob_true
                comp[k] = truth_comp[k] + share * glob_noise + np.sqrt(1 - share**2) * own[k]
    else:
        rrf = respiration_response(ENV_SFREQ)
        crf = cardiac_response(ENV_SFREQ)
        # The systemic low-frequency oscillation: vascular, independent of arousal, heart
        # rate, breathing and motion, so invisible in the EEG; the null ROI's global share.
        slfo = activity(1)[0]
        physio = zscore(
            PHYSIO_WEIGHTS[0] * _sample(_hrf_filter(latents.rvt, rrf), idx)
            + PHYSIO_WEIGHTS[1] * _sample(_hrf_filter(latents.heart_rate, crf), idx)
            + PHYSIO_WEIGHTS[2] * slfo
        )
        networks = activity(N_NETWORKS)
        member = np.random.default_rng(777).integers(0, N_NETWORKS, n_comp)
        quiet = _quiet_components(maps, params.null_rois)
        g, s = GLOBAL_WEIGHT, NETWORK_WEIGHT
        o = np.sqrt(1 - g**2 - s**2)
        for k, label in enumerate(labels):
            shared = s * networks[member[k]] + o * own[k]
            if quiet[k] or label in params.null_rois:
                comp[k] = g * slfo + shared
                continue
            truth_comp[k] = g * g_a * vigilance
            comp[k] = truth_comp[k] + g * np.sqrt(1 - g_a**2) * physio + shared
            if label in coupling:
                a = min(coupling[label][1] * traits.gain[label], MAX_COUPLING)
                rest = np.sqrt(1 - a**2)
                coupled = a * drive(label, label)
                truth_comp[k] = coupled + rest * truth_comp[k]
                comp[k] = coupled + rest * comp[k]

    n_vox = int(mask.sum())
    m = maps.reshape(n_comp, -1)[:, mask.ravel()].astype(np.float64)  # (64, n_vox)
    baseline = 1000.0 * (1 + 0.1 * rng.standard_normal(n_vox))
    sc = params.signal_change
    neural_vox = baseline[:, None] * sc * (m.T @ comp)
    truth_vox = baseline[:, None] * sc * (m.T @ truth_comp)

    # Motion: the signal it drives depends on the voxel (more at the brain's edge).
    edge = m.sum(axis=0)
    edge = 1.0 + 2.0 * (edge.max() - edge) / edge.max()
    loadings = rng.normal(0, 1, (6, n_vox)) * edge[None, :]
    loadings[3:] *= 180.0 / np.pi
    motion_frac = (motion @ loadings).T * 0.02

    bold_vox = baseline[:, None] * (1.0 + motion_frac) + neural_vox
    if not easy:
        bold_vox += baseline[:, None] * _pulsatility(
            rng, params, onset_s, beats_s, mask, edge, latents
        )
    bold_vox += baseline[:, None] * params.thermal_noise * rng.standard_normal(bold_vox.shape)
    for i in range(params.n_dummy):  # T1 saturation: first volumes brighter
        bold_vox[:, i] *= 1.0 + 0.4 * 0.35**i
    bold = np.zeros((*shape, n_vol), np.float32)
    bold[mask] = bold_vox.astype(np.float32)

    targets = [k for k in coupling if k != GLOBAL_SIGNAL] + list(params.null_rois)
    tk = [labels.index(label) for label in targets]
    truth = {label: truth_comp[k] for label, k in zip(targets, tk, strict=True)}
    neural = {label: comp[k] for label, k in zip(targets, tk, strict=True)}
    truth[GLOBAL_SIGNAL] = truth_vox.mean(axis=0)
    neural[GLOBAL_SIGNAL] = neural_vox.mean(axis=0)
    ceiling = pipeline_ceilings(
        bold_vox, truth_vox, ext.reshape(n_comp, -1)[:, mask.ravel()], motion,
        [*tk, GLOBAL_SIGNAL], [*targets, GLOBAL_SIGNAL], tr=params.tr, n_dummy=params.n_dummy,
    )  # fmt: skip
    confounds = _confounds(motion, bold_vox, mask, n_dummy=params.n_dummy)
    return BoldRun(bold, pd.DataFrame(truth), pd.DataFrame(neural), ceiling, confounds, comp)


def _quiet_components(maps, null_rois) -> np.ndarray:
    """Components whose maps overlap a null ROI's: they carry no EEG-visible signal either,
    so that no EEG information reaches a null ROI through the atlas mismatch."""
    labels = list(DIFUMO64_LABELS)
    m = maps.reshape(len(labels), -1).astype(np.float64)
    m /= np.linalg.norm(m, axis=1, keepdims=True) + 1e-12
    quiet = np.zeros(len(labels), bool)
    for label in null_rois:
        quiet |= m @ m[labels.index(label)] > 0.05
    return quiet


def _pulsatility(rng, params, onset_s, beats_s, mask, edge, latents):
    """Aliased cardiac and respiratory pulsatility (fraction of baseline) per voxel.

    Each axial slice is acquired at its own time in the TR (ascending); the cardiac phase
    is read from the heartbeats, the respiratory phase from a 0.2-0.3 Hz breathing cycle
    whose depth follows ``latents.rvt``. Largest at the brain's edge (vessels, CSF).
    """
    nz = mask.shape[2]
    z = np.nonzero(mask)[2]
    slice_t = (np.arange(nz) / nz) * (params.tr - params.slice_gap_s)
    t = onset_s[None, :] + slice_t[:, None]  # (nz, n_vol)
    k = np.clip(np.searchsorted(beats_s, t) - 1, 0, beats_s.size - 2)
    phase_c = 2 * np.pi * (t - beats_s[k]) / (beats_s[k + 1] - beats_s[k])
    f_r = rng.uniform(0.2, 0.3)
    depth = 1 + 0.3 * np.interp(t, latents.t, latents.rvt)
    phase_r = 2 * np.pi * f_r * t
    n_vox = z.size
    w = (edge / edge.max())[:, None] * rng.normal(0, 1, (n_vox, 4))
    w[:, :2] *= 0.004
    w[:, 2:] *= 0.003
    pc, pr = phase_c[z], phase_r[z]
    return (
        w[:, :1] * np.cos(pc) + w[:, 1:2] * np.sin(pc)
        + depth[z] * (w[:, 2:3] * np.cos(pr) + w[:, 3:4] * np.sin(pr))
    )  # fmt: skip


def pipeline_process(y, motion, *, tr, n_dummy):
    """What the fMRI stage does to a series: drop the non-steady-state volumes, regress
    the 6 motion parameters and a linear trend, low-pass at 0.15 Hz (its defaults)."""
    from ..fmri.signals import lowpass_filter, regress_out

    keep = slice(n_dummy, None)
    x = regress_out(y[keep], motion[keep], detrend_order=PIPELINE_DETREND)
    return lowpass_filter(x, sfreq=1.0 / tr, cutoff=PIPELINE_LOWPASS_HZ)


def pipeline_ceilings(bold_vox, truth_vox, ext, motion, index, labels, *, tr, n_dummy):
    """Pearson R between the pipeline's target and its EEG-coupled part, per target.

    Both are extracted as the fMRI stage does (least squares on the extraction maps, or
    the mask mean for the global signal) from the full BOLD and from the BOLD of the
    EEG-coupled parts alone, then passed through :func:`pipeline_process`. Everything
    else (neural activity the EEG does not show, physiology, residual motion, thermal
    noise, the atlas mismatch) limits the R any EEG-based prediction can reach.
    """
    unmix = _unmixing(ext)  # least squares, as NiftiMapsMasker
    y, t = unmix @ bold_vox, unmix @ truth_vox
    out = {}
    for k, label in zip(index, labels, strict=True):
        if k == GLOBAL_SIGNAL:
            a, b = truth_vox.mean(axis=0), bold_vox.mean(axis=0)
        else:
            a, b = t[k], y[k]
        if not np.any(a):
            out[label] = 0.0
            continue
        pa = pipeline_process(a[:, None], motion, tr=tr, n_dummy=n_dummy)[:, 0]
        pb = pipeline_process(b[:, None], motion, tr=tr, n_dummy=n_dummy)[:, 0]
        out[label] = round(_corr(pa, pb), 6)
    return out


_UNMIXING: dict = {}


def _unmixing(ext) -> np.ndarray:
    """``pinv(ext.T)`` in double precision, computed once per atlas (every run of a
    dataset shares it; the cache holds the last atlas only)."""
    key = (ext.shape, ext.dtype.str, hashlib.sha1(np.ascontiguousarray(ext).tobytes()).digest())
    if key not in _UNMIXING:
        _UNMIXING.clear()
        _UNMIXING[key] = np.linalg.pinv(ext.T.astype(np.float64))
    return _UNMIXING[key]


def _corr(a, b) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _confounds(motion, bold_vox, mask, *, n_dummy):
    """An fMRIPrep-like confounds table (first-row ``n/a`` for derivatives and FD)."""
    names = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    df = pd.DataFrame({"global_signal": bold_vox.mean(axis=0)})
    for j, name in enumerate(names):
        col = motion[:, j]
        deriv = np.r_[np.nan, np.diff(col)]
        df[name] = col
        df[f"{name}_derivative1"] = deriv
        df[f"{name}_power2"] = col**2
        df[f"{name}_derivative1_power2"] = deriv**2
    disp = np.abs(np.diff(motion, axis=0))
    disp[:, 3:] *= 50.0  # rotations as arc length on a 50 mm sphere
    df["framewise_displacement"] = np.r_[np.nan, disp.sum(axis=1)]
    for i in range(n_dummy):
        col = np.zeros(len(df))
        col[i] = 1
        df[f"non_steady_state_outlier{i:02d}"] = col
    return df
