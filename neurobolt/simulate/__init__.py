"""Simulated simultaneous EEG-fMRI in BIDS, with known ground truth.

The simulator writes a dataset that looks like a real in-scanner recording, so
the whole pipeline can run, and be checked, on a fresh machine with no
download. The generative model, what is random per subject and site, and what
the ceiling means are documented in ``docs/simulator.md``. In short:

* EEG (BrainVision, 5 kHz, int16 at 0.5 µV like a BrainAmp MR) = clean EEG
  (1/f background, infraslow activity, alpha/theta/beta/gamma rhythms whose
  frequency, topography and amplitude differ per subject and whose envelopes
  follow slow latent sources and arousal; blinks leaking into frontal
  electrodes) + MR gradient artifact built slice by slice (synchronised or
  unsynchronised clocks, fractional slice periods, moving with the head) +
  ballistocardiogram with per-channel and per-beat shape and latency + 50 Hz
  mains + amplifier noise. ECG with an MR-enlarged T wave and heart-rate
  variability, EOG with blinks. One volume marker per BOLD volume.
* BOLD (4-D NIfTI in MNI space on a coarse grid) from DiFuMo-64-labelled maps:
  coupled ROIs follow several EEG bands' log power through a saturating
  non-linearity, a lag and a subject- and ROI-specific HRF; every component
  shares a global fluctuation (EEG-visible vigilance + EEG-invisible
  respiration and heart-rate responses), a network factor and its own
  activity; motion, pulsatility, thermal noise and non-steady-state volumes
  are added. The atlas written for extraction is smoothed and shifted.
* fMRIPrep-style derivatives: preprocessed BOLD, brain mask, confounds TSV.
* Ground truth under ``derivatives/simulation/``: the clean EEG at 200 Hz, the
  true R-peaks, each target's EEG-coupled part (``desc-truth``) and its neural
  signal (``desc-neural``), the generating and the extraction atlas, and
  ``simulation.json`` with every parameter, the seed, each subject's traits and
  each ROI's ceiling.

``easy=True`` gives the earlier, deliberately simple model for fast unit tests.
"""

from __future__ import annotations

from .artifacts import (
    add_bcg,
    add_gradient_artifact,
    add_line_noise,
    blink_topography,
    gradient_axis_waveforms,
    slice_waveforms,
)
from .core import _RunData, make_grid, simulate_dataset, simulate_run
from .eeg import Latents, simulate_eeg
from .fmri import (
    _mni_grid,
    _roi_maps,
    extraction_maps,
    head_motion,
    pipeline_ceilings,
    pipeline_process,
    simulate_bold,
)
from .params import (
    COUPLING,
    DEFAULT_EEG_CHANNELS,
    DIFUMO64_LABELS,
    EEG_RESOLUTION_UV,
    EVOKED_ELECTRODES,
    EXTRA_EEG_CHANNELS,
    GLOBAL_SIGNAL,
    NULL_ROIS,
    PAPER_EEG_CHANNELS,
    REALISTIC_COUPLING,
    RHYTHMS,
    ROI_CENTRES,
    SECOND_SITE_EEG_CHANNELS,
    SPACE,
    TASK_DESIGN_DEFAULTS,
    TRUTH_SFREQ,
    WINDOW_S,
    SimParams,
    SimRun,
    check_channels,
    check_task_design,
    usable_channels,
)
from .plan import atlas_files, planned_runs, run_files, simulation_json
from .signals import (
    Traits,
    canonical_hrf,
    double_gamma_hrf,
    draw_traits,
    ecg_beat,
    evoked_waveform,
    heartbeat_times,
    pink_noise,
    slow_envelopes,
    stimulus_times,
)

__all__ = [
    "COUPLING",
    "DEFAULT_EEG_CHANNELS",
    "DIFUMO64_LABELS",
    "EEG_RESOLUTION_UV",
    "EVOKED_ELECTRODES",
    "EXTRA_EEG_CHANNELS",
    "GLOBAL_SIGNAL",
    "NULL_ROIS",
    "PAPER_EEG_CHANNELS",
    "REALISTIC_COUPLING",
    "RHYTHMS",
    "ROI_CENTRES",
    "SECOND_SITE_EEG_CHANNELS",
    "SPACE",
    "TASK_DESIGN_DEFAULTS",
    "TRUTH_SFREQ",
    "WINDOW_S",
    "Latents",
    "SimParams",
    "SimRun",
    "Traits",
    "_RunData",
    "_mni_grid",
    "_roi_maps",
    "add_bcg",
    "add_gradient_artifact",
    "add_line_noise",
    "atlas_files",
    "blink_topography",
    "canonical_hrf",
    "check_channels",
    "check_task_design",
    "double_gamma_hrf",
    "draw_traits",
    "ecg_beat",
    "evoked_waveform",
    "extraction_maps",
    "gradient_axis_waveforms",
    "head_motion",
    "heartbeat_times",
    "make_grid",
    "pink_noise",
    "pipeline_ceilings",
    "pipeline_process",
    "planned_runs",
    "run_files",
    "simulate_bold",
    "simulate_dataset",
    "simulate_eeg",
    "simulate_run",
    "simulation_json",
    "slice_waveforms",
    "slow_envelopes",
    "stimulus_times",
    "usable_channels",
]
