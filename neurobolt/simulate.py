"""Simulated simultaneous EEG-fMRI in BIDS, with known ground truth.

The simulator writes a dataset that looks like a real in-scanner recording, so
the whole pipeline can run, and be checked, on a fresh machine with no
download:

* EEG (BrainVision, 5 kHz, int16 at 0.5 µV like a BrainAmp MR) = clean EEG
  (1/f background plus alpha, theta, beta and gamma rhythms whose amplitude
  follows slow latent sources) + MR gradient artifact (slice-periodic, a few
  mV, channel-specific gain, slow drift, sub-sample timing jitter) +
  ballistocardiogram (BCG) locked to the ECG's R-peaks + amplifier noise.
  ECG with QRS complexes and heart-rate variability, EOG with blinks. One
  volume marker (``Response/R128`` by default) per BOLD volume. The cap is
  configurable (:data:`DEFAULT_EEG_CHANNELS`, :data:`SECOND_SITE_EEG_CHANNELS`
  or any electrodes of LaBraM's 10-20 table).
* Rest by default; with a ``task_design`` (see :class:`SimParams`) stimuli at
  random intervals, written to ``func/<run>_events.tsv`` and as ``Stimulus``
  markers in the EEG, add an evoked response at temporal/central electrodes
  and raise the temporal gamma envelope, whose band power drives Heschl's
  gyrus through :data:`COUPLING` like any other EEG-BOLD link.
* BOLD (4-D NIfTI in MNI space on a coarse grid) built from atlas-like maps
  that carry the DiFuMo-64 labels. Each coupled ROI's time course is
  ``a * HRF ⊗ feature + b * HRF ⊗ white`` where *feature* is an EEG band
  power (the squared amplitude envelope of one rhythm, see :data:`COUPLING`)
  and the HRF is the canonical double gamma restricted to the 16 s window a
  model sees. Null ROIs carry no EEG coupling. Motion-driven signal,
  non-steady-state volumes and thermal noise are added.
* fMRIPrep-style derivatives: preprocessed BOLD, brain mask and a confounds
  TSV with the 6 rigid-body parameters, their derivatives (first row ``n/a``)
  and non-steady-state outlier columns.
* Ground truth under ``derivatives/simulation/``: the clean EEG at 200 Hz
  (FIF), the true R-peaks, the ROI signals' EEG-coupled part (``desc-truth``)
  and their full neural signal without motion and thermal noise
  (``desc-neural``), the atlas, and
  ``simulation.json`` with every parameter, the seed and each ROI's ceiling
  (the best Pearson R any EEG-based prediction can reach).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pandas as pd
from scipy import signal as sps
from tqdm.auto import tqdm

from . import __version__
from .provenance import atomic_path, provenance, write_json, write_text

logger = logging.getLogger("neurobolt.simulate")

#: The 26 EEG channels of the paper's cap (after dropping ECG/EOG/EMG).
PAPER_EEG_CHANNELS = (
    "FP1 FP2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 FPZ FZ CZ PZ POZ OZ FT9 FT10 TP9 TP10"
).split()
#: Further 10-20 electrodes of the simulated 32-channel cap.
EXTRA_EEG_CHANNELS = ("FC1", "FC2", "CP1", "CP2")
#: The default cap: the paper's 26 channels and the 4 extra ones (30 EEG channels + ECG + EOG).
DEFAULT_EEG_CHANNELS = (*PAPER_EEG_CHANNELS, *EXTRA_EEG_CHANNELS)
#: A second site's cap (an MR 32-electrode cap: 28 EEG channels + ECG + EOG, reference FCz,
#: ground AFz). It shares 20 electrodes with :data:`PAPER_EEG_CHANNELS` (the frontal,
#: central, temporal, parietal and occipital ones every coupled rhythm needs) but lacks FPZ,
#: POZ, FT9, FT10, TP9 and TP10, and adds FC5, FC1, FC2, FC6, CP5, CP1, CP2 and CP6.
SECOND_SITE_EEG_CHANNELS = (
    "FP1 FP2 F7 F3 FZ F4 F8 FC5 FC1 FC2 FC6 T7 C3 CZ C4 T8 CP5 CP1 CP2 CP6 P7 P3 PZ P4 P8 O1 OZ O2"
).split()
#: Electrodes where the evoked response of a task design peaks (auditory N1/P2: bilateral
#: temporal and vertex).
EVOKED_ELECTRODES = ("T7", "T8", "CZ")
#: Defaults of a task design (see :class:`SimParams`); a given design overrides any of them.
TASK_DESIGN_DEFAULTS = {
    "trial_type": "tone",
    "isi_s": [12.0, 24.0],
    "duration_s": 1.0,
    "evoked_v": 10e-6,
    "gamma_gain": 4.0,
    "rhythm": "gamma_temporal",
    "stimulus_marker": "S1",
}

#: DiFuMo-64 component labels in atlas order (U+2019 in "Heschl’s gyrus", as the atlas has it).
DIFUMO64_LABELS = (
    "Superior frontal sulcus",
    "Fusiform gyrus",
    "Calcarine cortex posterior",
    "Cingulate cortex posterior",
    "Parieto-occipital sulcus superior",
    "Insula antero-superior",
    "Superior temporal sulcus with angular gyrus",
    "Planum temporale",
    "Cerebellum Crus II",
    "Superior parts of Postcentral and Precentral gyri",
    "Transverse sinus",
    "Paracentral gyrus RH",
    "Superior occipital gyrus",
    "Cingulate gyrus mid-posterior",
    "ventricles",
    "Fusiform gyrus posterior",
    "Superior frontal gyrus medial",
    "Precuneus superior",
    "Planum polare",
    "Parieto-occipital sulcus middle",
    "Cerebellum I-V",
    "Superior fornix and isthmus",
    "Anterior Cingulate Cortex",
    "Descending occipital gyrus",
    "Putamen",
    "Cingulate gyrus mid-anterior",
    "Superior parietal lobule posterior",
    "Paracentral lobule",
    "Inferior occipital gyrus",
    "Superior rostral gyrus",
    "Calcarine sulcus anterior",
    "Intraparietal sulcus",
    "Superior parietal lobule anterior",
    "Precentral gyrus medial",
    "Lingual gyrus anterior",
    "Angular gyrus superior",
    "Supramarginal gyrus",
    "Intraparietal sulcus LH",
    "Dorsomedial prefrontal cortex antero-superior",
    "Precentral gyrus superior",
    "Postcentral gyrus inferior",
    "Lateral occipital cortex",
    "Callosomarginal sulcus",
    "Paracentral lobule superior",
    "Heschl\u2019s gyrus",
    "Occipital pole",
    "Thalamus",
    "Intraparietal sulcus RH",
    "Inferior frontal sulcus",
    "Postcentral gyrus LH",
    "Middle frontal gyrus",
    "Inferior frontal gyrus",
    "Parieto-occipital sulcus anterior",
    "Precuneus anterior",
    "Lingual gyrus",
    "Superior occipital sulcus",
    "Superior parietal lobule",
    "Middle frontal gyrus anterior",
    "Angular gyrus inferior",
    "Cuneus",
    "Middle temporal gyrus",
    "Superior frontal gyrus",
    "Central sulcus",
    "Caudate",
)

#: Name of the whole-brain (global) signal column, in the truth TSV and the ROI TSVs.
GLOBAL_SIGNAL = "global signal"

#: EEG rhythms: centre frequency (Hz), half bandwidth (Hz), peak amplitude (V), and the
#: electrodes where the rhythm peaks.
RHYTHMS = {
    "alpha_occipital": (10.0, 1.5, 14e-6, ("O1", "O2", "OZ", "POZ")),
    "alpha_parietal": (10.5, 1.5, 9e-6, ("P3", "P4", "PZ", "P7", "P8")),
    "theta_frontal": (6.0, 1.0, 7e-6, ("FZ", "F3", "F4", "FPZ")),
    "beta_central": (20.0, 3.0, 4e-6, ("C3", "C4", "CZ", "FC1", "FC2")),
    "gamma_temporal": (38.0, 4.0, 2e-6, ("T7", "T8", "TP9", "TP10", "FT9", "FT10")),
}

#: Which EEG band-power features drive which BOLD signal, with their sign and the design
#: amplitude ``a`` of the coupled part (the ROI's time course is a*coupled + sqrt(1-a²)*noise).
COUPLING = {
    "Cuneus": ({"alpha_occipital": -1.0}, 0.80),
    "Heschl\u2019s gyrus": ({"gamma_temporal": 1.0}, 0.70),
    "Middle frontal gyrus anterior": ({"theta_frontal": 1.0}, 0.70),
    "Precuneus anterior": ({"alpha_parietal": -1.0}, 0.75),
    "Putamen": ({"beta_central": 1.0}, 0.65),
    "Thalamus": ({"alpha_occipital": 0.6, "alpha_parietal": 0.4}, 0.70),
    GLOBAL_SIGNAL: ({"alpha_occipital": -0.5, "alpha_parietal": -0.5}, 0.80),
}
#: ROIs with no EEG coupling at all, kept as targets to check that nothing leaks.
NULL_ROIS = ("Cerebellum Crus II",)

#: Approximate MNI centres (mm) for the labelled ROIs; other components are placed at random.
ROI_CENTRES = {
    "Cuneus": [(0, -80, 25)],
    "Heschl\u2019s gyrus": [(-45, -20, 8), (45, -20, 8)],
    "Middle frontal gyrus anterior": [(-35, 45, 25), (35, 45, 25)],
    "Precuneus anterior": [(0, -55, 45)],
    "Putamen": [(-25, 5, 0), (25, 5, 0)],
    "Thalamus": [(-10, -18, 8), (10, -18, 8)],
    "Cerebellum Crus II": [(-28, -60, -25), (28, -60, -25)],
}

SPACE = "MNI152NLin6Asym"
WINDOW_S = 16.0  # the EEG window a model sees before each volume
EEG_RESOLUTION_UV = 0.5  # BrainAmp MR: 0.5 µV per bit, ±16.38 mV
TRUTH_SFREQ = 200.0
_ENV_SFREQ = 10.0  # sampling rate of the slow envelopes and the HRF convolution
_FINE_SFREQ = 200_000.0  # resolution at which the gradient waveform is built
_GLOBAL_SHARE = 0.6  # weight of the global factor in the components that carry it
_EVOKED_S = 0.6  # length of the evoked response


@dataclass(frozen=True)
class SimRun:
    """One simulated recording: EEG + BOLD of one subject, session and task."""

    subject: str
    session: str
    task: str = "rest"
    inverted_ecg: bool = False
    stimuli: bool = False  # the run has a task design (a func events.tsv is written)

    @property
    def stem(self) -> str:
        """BIDS file-name stem, e.g. ``sub-01_ses-01_task-rest``."""
        return f"sub-{self.subject}_ses-{self.session}_task-{self.task}"

    @property
    def rel_dir(self) -> Path:
        """Directory of the run relative to the dataset root."""
        return Path(f"sub-{self.subject}", f"ses-{self.session}")


@dataclass
class SimParams:
    """Every parameter of a simulated dataset (written to ``simulation.json``).

    The fields that differ between real sites, and that a second simulated
    dataset is expected to change, are the acquisition (``tr``, ``n_slices``,
    ``sfreq``, ``marker``, ``task``), the cap (``channels``), the design
    (``task_design``) and the noise levels: ``noise_v`` (amplifier noise, V
    rms), ``gradient_peak_v`` (gradient artifact peak, V),
    ``gradient_jitter_samples`` (sub-sample trigger jitter), ``bcg_peak_v``
    (ballistocardiogram peak, V), ``motion_scale`` (head-motion scale) and
    ``thermal_noise`` (BOLD voxel noise as a fraction of the baseline).

    ``channels`` lists the EEG electrodes (None: :data:`DEFAULT_EEG_CHANNELS`).
    Every name must be in LaBraM's 10-20 channel table and in MNE's standard
    10-20 montage (positions come from it). Rhythms and the evoked response are
    placed by the standard positions of their named electrodes, so they exist
    whether or not those electrodes are on the cap.

    ``task_design`` is None for rest, or a mapping whose keys override
    :data:`TASK_DESIGN_DEFAULTS`:

    * ``trial_type`` (str, ``"tone"``): the stimuli's ``trial_type`` in the BOLD
      run's ``events.tsv``.
    * ``isi_s`` ([float, float], ``[12, 24]``): the onset-to-onset interval is
      drawn uniformly from this range (s); the first stimulus comes one interval
      after the first volume. Onsets are seeded per run.
    * ``duration_s`` (float, ``1.0``): stimulus duration (s).
    * ``evoked_v`` (float, ``10e-6``): peak of the evoked response (an N1/P2-like
      transient, N1 at 100 ms) at :data:`EVOKED_ELECTRODES`, in V; per-trial
      amplitudes vary by ~20 %.
    * ``gamma_gain`` (float, ``4.0``): during each stimulus the envelope of
      ``rhythm`` is multiplied by ``1 + gamma_gain``. Through :data:`COUPLING`
      this is what makes the BOLD response (Heschl's gyrus for the temporal
      gamma rhythm): band power ⊗ HRF stays the only link from EEG to BOLD, so
      the ceilings remain exact.
    * ``rhythm`` (str, ``"gamma_temporal"``): the :data:`RHYTHMS` entry the
      stimuli drive.
    * ``stimulus_marker`` (str, ``"S1"``): the BrainVision marker of a stimulus
      (``S1`` is written as ``Stimulus,S  1``; it reads back as
      ``Stimulus/S  1``).
    """

    n_subjects: int = 4
    n_two_session: int = 1
    duration_s: float = 360.0
    tr: float = 2.1
    n_slices: int = 30
    sfreq: float = 5000.0
    seed: int = 42
    marker: str = "R128"
    task: str = "rest"
    voxel_mm: float = 8.0
    lead_in_s: float = 10.0
    lead_out_s: float = 5.0
    n_dummy: int = 2
    gradient_peak_v: float = 5e-3
    gradient_jitter_samples: float = 0.5
    bcg_peak_v: float = 120e-6
    noise_v: float = 0.3e-6
    motion_scale: float = 1.0
    thermal_noise: float = 0.002
    signal_change: float = 0.01
    hrf_delay_s: float = 6.0
    coupling: dict = field(default_factory=lambda: {k: [v[0], v[1]] for k, v in COUPLING.items()})
    null_rois: list = field(default_factory=lambda: list(NULL_ROIS))
    channels: list | None = None
    task_design: dict | None = None

    def __post_init__(self):
        samples_per_tr = self.tr * self.sfreq
        if abs(samples_per_tr - round(samples_per_tr)) > 1e-6:
            raise ValueError(
                f"tr * sfreq must be a whole number of samples, got {self.tr} s * {self.sfreq} Hz"
                f" = {samples_per_tr}"
            )
        if self.n_two_session > self.n_subjects:
            raise ValueError(
                f"n_two_session ({self.n_two_session}) cannot exceed n_subjects ({self.n_subjects})"
            )
        if self.duration_s < 10 * self.tr + WINDOW_S:
            raise ValueError(
                f"duration_s={self.duration_s} is too short: need at least 10 volumes after the"
                f" first {WINDOW_S:g} s window"
            )
        if not str(self.marker).strip():
            raise ValueError("simulate: marker (the volume markers' description) is empty")
        self.channels = check_channels(self.channels)
        self.task_design = check_task_design(self.task_design, marker=self.marker)

    @property
    def n_volumes(self) -> int:
        """Number of BOLD volumes (= volume markers) per run."""
        return int(self.duration_s // self.tr)


def _montage_names() -> dict[str, str]:
    """Upper-case name -> name of every electrode in MNE's standard 10-20 montage."""
    return {k.upper(): k for k in _montage().ch_names}


def _montage():
    try:
        return mne.channels.make_standard_montage("colin27_1020")
    except ValueError:  # older MNE
        return mne.channels.make_standard_montage("standard_1020")


def usable_channels() -> list[str]:
    """Electrode names a simulated cap may use: LaBraM's 10-20 table ∩ MNE's standard montage."""
    from .models.labram import LABRAM_CHANNELS  # imports torch: only when a cap is checked

    montage = _montage_names()
    return [name for name in LABRAM_CHANNELS if name.upper() in montage]


def check_channels(channels: Sequence[str] | None) -> list[str]:
    """Return the cap as a list (None: :data:`DEFAULT_EEG_CHANNELS`), or raise ValueError.

    Every name must be in LaBraM's channel table and MNE's standard montage
    (case-insensitive), once; the spelling given is kept.
    """
    if channels is None:
        return list(DEFAULT_EEG_CHANNELS)
    if isinstance(channels, str):
        raise ValueError(
            f"simulate: channels must be a list of electrode names, got the string {channels!r}"
        )
    channels = [str(c) for c in channels]
    if [c.upper() for c in channels] == [c.upper() for c in DEFAULT_EEG_CHANNELS]:
        return channels
    if len(channels) < 2:
        raise ValueError(f"simulate: channels needs at least 2 electrodes, got {channels}")
    upper = [c.upper() for c in channels]
    dup = sorted({c for c in upper if upper.count(c) > 1})
    if dup:
        raise ValueError(f"simulate: channels lists these electrodes more than once: {dup}")
    usable = usable_channels()
    known = {c.upper() for c in usable}
    unknown = [c for c in channels if c.upper() not in known]
    if unknown:
        raise ValueError(
            f"simulate: unknown EEG channel name(s) {unknown}: a simulated cap takes standard"
            " 10-20/10-10 electrodes that are both in LaBraM's channel table and in MNE's"
            f" standard montage (ECG and EOG are added by the simulator). Use names from: {usable}"
        )
    return channels


def check_task_design(design: dict | None, *, marker: str = "R128") -> dict | None:
    """Return the task design with :data:`TASK_DESIGN_DEFAULTS` filled in, or raise ValueError."""
    if design is None:
        return None
    if not isinstance(design, dict):
        raise ValueError(
            f"simulate: task_design must be a mapping (or None for rest), got {design!r}"
        )
    unknown = sorted(set(design) - set(TASK_DESIGN_DEFAULTS))
    if unknown:
        raise ValueError(
            f"simulate: unknown task_design key(s) {unknown};"
            f" known keys: {list(TASK_DESIGN_DEFAULTS)}"
        )
    d = {**TASK_DESIGN_DEFAULTS, **design}
    try:
        lo, hi = (float(x) for x in d["isi_s"])
    except (TypeError, ValueError):
        raise ValueError(
            f"simulate: task_design.isi_s must be [min, max] in seconds, got {d['isi_s']!r}"
        ) from None
    d["isi_s"] = [lo, hi]
    d["duration_s"] = float(d["duration_s"])
    d["evoked_v"] = float(d["evoked_v"])
    d["gamma_gain"] = float(d["gamma_gain"])
    d["trial_type"] = str(d["trial_type"])
    d["stimulus_marker"] = str(d["stimulus_marker"])
    if not 0 < d["duration_s"] <= lo <= hi:
        raise ValueError(
            "simulate: task_design needs 0 < duration_s <= isi_s[0] <= isi_s[1] (stimuli must"
            f" not overlap), got duration_s={d['duration_s']}, isi_s={d['isi_s']}"
        )
    if d["evoked_v"] < 0 or d["gamma_gain"] < 0:
        raise ValueError(
            "simulate: task_design.evoked_v and gamma_gain must be >= 0, got"
            f" {d['evoked_v']} and {d['gamma_gain']}"
        )
    if d["rhythm"] not in RHYTHMS:
        raise ValueError(
            f"simulate: task_design.rhythm {d['rhythm']!r} is not a rhythm; use one of"
            f" {list(RHYTHMS)}"
        )
    from .eeg.markers import matches_marker

    if not d["trial_type"].strip() or matches_marker(
        _marker_description(d["stimulus_marker"]), marker
    ):
        raise ValueError(
            f"simulate: task_design.stimulus_marker {d['stimulus_marker']!r} would be read as a"
            f" volume marker {marker!r} (or trial_type is empty): choose another stimulus marker"
        )
    return d


def planned_runs(
    *,
    n_subjects: int = 4,
    n_two_session: int = 1,
    task: str = "rest",
    task_design: dict | None = None,
) -> list[SimRun]:
    """Return the runs :func:`simulate_dataset` writes, without writing anything.

    The first ``n_two_session`` subjects have two sessions; every other
    subject has one. Every second subject has an inverted ECG lead. With a
    ``task_design`` the runs have stimuli (and :func:`run_files` lists their
    ``func/*_events.tsv``).
    """
    runs = []
    for i in range(1, n_subjects + 1):
        for ses in range(1, 3 if i <= n_two_session else 2):
            runs.append(
                SimRun(
                    f"{i:02d}",
                    f"{ses:02d}",
                    task,
                    inverted_ecg=(i % 2 == 0),
                    stimuli=task_design is not None,
                )
            )
    return runs


def run_files(bids_root: str | Path, run: SimRun, *, space: str = SPACE) -> dict[str, Path]:
    """Paths of the files :func:`simulate_dataset` writes for one run.

    ``bold_events`` (the BOLD run's stimuli) is listed only for a run with stimuli.
    """
    root = Path(bids_root)
    eeg = root / run.rel_dir / "eeg"
    func = root / run.rel_dir / "func"
    prep = root / "derivatives" / "fmriprep" / run.rel_dir / "func"
    truth = root / "derivatives" / "simulation" / run.rel_dir
    s = run.stem
    files = {
        "vhdr": eeg / f"{s}_eeg.vhdr",
        "eeg": eeg / f"{s}_eeg.eeg",
        "vmrk": eeg / f"{s}_eeg.vmrk",
        "events": eeg / f"{s}_events.tsv",
        "channels": eeg / f"{s}_channels.tsv",
        "eeg_json": eeg / f"{s}_eeg.json",
        "bold": func / f"{s}_bold.nii.gz",
        "bold_json": func / f"{s}_bold.json",
        "preproc_bold": prep / f"{s}_space-{space}_desc-preproc_bold.nii.gz",
        "preproc_json": prep / f"{s}_space-{space}_desc-preproc_bold.json",
        "mask": prep / f"{s}_space-{space}_desc-brain_mask.nii.gz",
        "confounds": prep / f"{s}_desc-confounds_timeseries.tsv",
        "truth_eeg": truth / "eeg" / f"{s}_desc-clean_eeg.fif",
        "truth_rpeaks": truth / "eeg" / f"{s}_desc-rpeaks_events.tsv",
        "truth_rois": truth / "func" / f"{s}_desc-truth_timeseries.tsv",
        "neural_rois": truth / "func" / f"{s}_desc-neural_timeseries.tsv",
    }
    if run.stimuli:
        files["bold_events"] = func / f"{s}_events.tsv"
    return files


def atlas_files(bids_root: str | Path) -> dict[str, Path]:
    """Paths of the simulator's atlas (maps on the BOLD grid, DiFuMo-style labels CSV)."""
    atlas = Path(bids_root) / "derivatives" / "simulation" / "atlas"
    return {"maps": atlas / "maps.nii.gz", "labels": atlas / "labels_64_dictionary.csv"}


def simulation_json(bids_root: str | Path) -> Path:
    """Path of the JSON that records the simulation (written last: its presence means done)."""
    return Path(bids_root) / "derivatives" / "simulation" / "simulation.json"


# --------------------------------------------------------------------------------------------
# Signals (pure functions)
# --------------------------------------------------------------------------------------------


def _standard_positions(ch_names: Sequence[str]) -> np.ndarray:
    """3-D positions (m) of 10-20 electrodes from MNE's standard montage (case-insensitive)."""
    pos = {k.upper(): v for k, v in _montage().get_positions()["ch_pos"].items()}
    return np.array([pos[name.upper()] for name in ch_names])


def _bandlimited_noise(rng, n_times, sfreq, f_lo, f_hi, n=1):
    """Unit-variance Gaussian noise with a flat spectrum between ``f_lo`` and ``f_hi`` Hz."""
    spec = rng.standard_normal((n, n_times // 2 + 1)) + 1j * rng.standard_normal(
        (n, n_times // 2 + 1)
    )
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    spec[:, (freqs < f_lo) | (freqs > f_hi)] = 0
    x = np.fft.irfft(spec, n=n_times, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def pink_noise(rng, n_times, sfreq, *, n=1, f_min=0.5, exponent=1.0):
    """Unit-variance noise with power ∝ 1/f**exponent above ``f_min`` Hz."""
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    gain = np.zeros_like(freqs)
    gain[freqs >= f_min] = freqs[freqs >= f_min] ** (-exponent / 2)
    spec = (rng.standard_normal((n, freqs.size)) + 1j * rng.standard_normal((n, freqs.size))) * gain
    x = np.fft.irfft(spec, n=n_times, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def canonical_hrf(sfreq: float, *, length_s: float = WINDOW_S, delay_s: float = 6.0) -> np.ndarray:
    """SPM's canonical double-gamma HRF sampled at ``sfreq``, cut to ``length_s`` seconds.

    Cut to the 16 s window by default so that every BOLD value is a function of
    the EEG inside the window a model sees (the ceiling is then reachable).
    ``delay_s`` is the response's gamma shape (SPM's 6: a peak at 5 s); the undershoot
    follows 10 s later. HRFs differ between people, regions and sites by a second or two.
    """
    from scipy.stats import gamma

    t = np.arange(0, length_s, 1 / sfreq)
    h = gamma.pdf(t, delay_s) - gamma.pdf(t, delay_s + 10.0) / 6.0
    return h / h.sum()


def slow_envelopes(rng, n_env, n_times, sfreq, *, n_latent=3, f_max=0.1):
    """Log-normal amplitude envelopes driven by shared slow latent sources.

    Returns ``(n_env, n_times)`` envelopes with mean ≈ 1; their squares are the
    band-power features that drive the BOLD signal.
    """
    latent = _bandlimited_noise(rng, n_times, sfreq, 0.005, f_max, n=n_latent)
    own = _bandlimited_noise(rng, n_times, sfreq, 0.005, f_max, n=n_env)
    mix = rng.normal(0, 1, (n_env, n_latent))
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    log_amp = 0.45 * (0.7 * mix @ latent + 0.7 * own)
    env = np.exp(log_amp)
    return env / env.mean(axis=1, keepdims=True)


def gradient_axis_waveforms(tr: float, n_slices: int, *, fine_sfreq: float = _FINE_SFREQ):
    """Induced voltage (dG/dt) of the three gradient axes over one volume, at ``fine_sfreq``.

    Each slice repeats: a slice-select trapezoid with its refocusing lobe
    (z), an EPI read-out train of alternating trapezoids (x) and phase blips
    (y). A short navigator pulse at the start of the volume makes the volume
    differ slightly from a plain repetition of slices. The waveforms pass a
    1 kHz first-order low-pass, as the amplifier's hardware filter does.
    Returns ``(3, n)`` normalised to a peak of 1.
    """
    n_vol = int(round(tr * fine_sfreq))
    slice_len = tr / n_slices
    t = np.arange(n_vol) / fine_sfreq
    ts = np.mod(t, slice_len)
    g = np.zeros((3, n_vol))

    def trapezoid(tt, start, flat, ramp):
        up = np.clip((tt - start) / ramp, 0, 1)
        down = np.clip((start + ramp + flat + ramp - tt) / ramp, 0, 1)
        return np.minimum(up, down)

    ramp = 1e-4
    g[2] = trapezoid(ts, 0.0005, 0.0025, ramp) - 0.55 * trapezoid(ts, 0.0034, 0.0020, ramp)
    esp = 0.0006  # echo spacing
    readout_start = 0.006
    n_echo = int(min(48, (slice_len - readout_start - 0.002) // esp))
    lobe = np.floor((ts - readout_start) / esp).astype(int)
    in_train = (ts >= readout_start) & (lobe < n_echo)
    phase = ts - readout_start - lobe * esp
    sign = np.where(lobe % 2 == 0, 1.0, -1.0)
    g[0] = np.where(in_train, sign * trapezoid(phase, 0.0, esp - 2 * 0.00012, 0.00012), 0.0)
    g[1] = np.where(in_train, trapezoid(phase, esp - 0.00012, 0.00002, 0.00005), 0.0) * 0.3
    g[1] -= 0.5 * trapezoid(ts, 0.0042, 0.0012, ramp)  # phase pre-winder
    g[2] += 0.4 * trapezoid(t, 0.0, 0.004, ramp)  # volume navigator (first slice only)
    emf = np.gradient(g, axis=1) * fine_sfreq
    sos = sps.butter(1, 1000.0, fs=fine_sfreq, output="sos")
    # Periodic steady state: filter three periods and keep the last.
    emf = sps.sosfilt(sos, np.tile(emf, 3), axis=1)[:, 2 * n_vol :]
    return emf / np.abs(emf).max(axis=1, keepdims=True)


def ecg_beat(t: np.ndarray, rr: float) -> np.ndarray:
    """One ECG beat (V) with P, Q, R, S and T waves, ``t`` in s relative to the R-peak."""
    waves = (  # amplitude (V), centre (s), width (s)
        (0.12e-3, -0.20, 0.025),
        (-0.12e-3, -0.035, 0.010),
        (1.20e-3, 0.0, 0.011),
        (-0.30e-3, 0.035, 0.011),
        (0.30e-3, 0.26 * np.sqrt(rr), 0.045),
    )
    return sum(a * np.exp(-0.5 * ((t - c) / w) ** 2) for a, c, w in waves)


def heartbeat_times(rng, t_start: float, t_stop: float) -> np.ndarray:
    """R-peak times (s) with heart-rate variability (respiratory and Mayer waves)."""
    mean_rr = 60.0 / rng.uniform(58, 78)
    resp_f, resp_phase = rng.uniform(0.2, 0.3), rng.uniform(0, 2 * np.pi)
    lf_phase = rng.uniform(0, 2 * np.pi)
    times = [t_start + rng.uniform(0, mean_rr)]
    while times[-1] < t_stop:
        t = times[-1]
        rr = (
            mean_rr
            + 0.04 * np.sin(2 * np.pi * resp_f * t + resp_phase)
            + 0.03 * np.sin(2 * np.pi * 0.1 * t + lf_phase)
            + rng.normal(0, 0.015)
        )
        times.append(t + max(rr, 0.4))
    return np.asarray(times)


def _roi_maps(params: SimParams, shape, affine, mask) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


@dataclass
class _RunData:
    raw: tuple  # in-scanner recording (data in V, channel names) at params.sfreq
    clean_200: mne.io.RawArray  # ground-truth clean EEG at 200 Hz
    onsets: np.ndarray  # volume-marker samples
    r_peaks: np.ndarray  # true R-peak samples
    features: dict  # rhythm -> band power at the volume onsets (HRF-convolved)
    bold: np.ndarray  # (x, y, z, t) float32
    truth: pd.DataFrame  # EEG-coupled (predictable) part of each ROI signal, per volume
    neural: pd.DataFrame  # coupled part + neural noise: the ROI signal without motion/thermal noise
    ceiling: dict  # ROI -> Pearson R between truth and truth + neural noise
    confounds: pd.DataFrame
    stimuli: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # stimulus samples


def _simulate_eeg(params: SimParams, run: SimRun, rng, progress):
    sfreq, tr = params.sfreq, params.tr
    n_vol = params.n_volumes
    spt = int(round(tr * sfreq))
    total_s = params.lead_in_s + n_vol * tr + params.lead_out_s
    n_times = int(round(total_s * sfreq))
    eeg_names = list(params.channels)
    n_eeg = len(eeg_names)
    pos = _standard_positions(eeg_names)

    # Slow envelopes (from WINDOW_S + 4 s before the recording, so early windows are defined).
    pad_s = WINDOW_S + 4.0
    n_env = int(np.ceil((total_s + pad_s) * _ENV_SFREQ)) + 1
    names = list(RHYTHMS)
    env = slow_envelopes(rng, len(names), n_env, _ENV_SFREQ)
    t_env = np.arange(n_env) / _ENV_SFREQ - pad_s
    # Stimuli (task design only) raise one rhythm's envelope while they last: its band
    # power, and through COUPLING the BOLD signal, respond to them.
    design = params.task_design
    stim_s = stimulus_times(params, run)
    if design is not None and stim_s.size:
        on = np.zeros(n_env, bool)
        for ts in stim_s:
            on |= (t_env >= ts) & (t_env < ts + design["duration_s"])
        env[names.index(design["rhythm"])] *= 1.0 + design["gamma_gain"] * on

    # Recording buffer: EEG channels, ECG, EOG (V). Components are added in place to bound memory.
    n_ch = n_eeg + 2
    data = np.zeros((n_ch, n_times))
    clean = data[:n_eeg]  # a view: the clean EEG is built first, then artifacts are added

    # Clean EEG: 1/f background sources + rhythms with focal topographies + channel noise.
    n_bg = 8
    bg = pink_noise(rng, n_times, sfreq, n=n_bg)
    bg_topo = rng.normal(0, 1, (n_eeg, n_bg))
    bg_topo *= 9e-6 / np.sqrt((bg_topo**2).sum(axis=1, keepdims=True))
    for sl in _chunks(n_times, 1 << 18):
        clean[:, sl] += bg_topo @ bg[:, sl]
    del bg
    t = np.arange(n_times) / sfreq
    for r, name in enumerate(names):
        f0, half_bw, amp, peaks = RHYTHMS[name]
        # Placed by the standard positions of its electrodes, on the cap or not.
        centre = _standard_positions(peaks).mean(axis=0)
        dist = np.linalg.norm(pos - centre, axis=1)
        topo = amp * np.exp(-0.5 * (dist / 0.04) ** 2)
        carrier = _bandlimited_noise(rng, n_times, sfreq, f0 - half_bw, f0 + half_bw)[0]
        carrier *= np.interp(t, t_env, env[r])
        for sl in _chunks(n_times, 1 << 18):
            clean[:, sl] += topo[:, None] * carrier[None, sl]
    if design is not None and stim_s.size:  # evoked responses (own random stream)
        erp_rng = np.random.default_rng(
            [params.seed, int(run.subject), int(run.session), sum(run.task.encode()), 0xE7]
        )
        topo = design["evoked_v"] * _evoked_topography(pos)
        n_erp = int(round(_EVOKED_S * sfreq))
        for ts in stim_s:
            start = int(round(ts * sfreq))
            stop = min(start + n_erp, n_times)
            wave = evoked_waveform(np.arange(stop - start) / sfreq) * erp_rng.lognormal(0, 0.2)
            clean[:, start:stop] += topo[:, None] * wave[None]
    for sl in _chunks(n_eeg, 8):
        clean[sl] += pink_noise(rng, n_times, sfreq, n=sl.stop - sl.start) * 2e-6
    # Ground-truth clean EEG at 200 Hz (MNE's anti-aliased FFT resampling), before artifacts.
    down = sfreq / TRUTH_SFREQ
    clean_200 = np.concatenate(
        [mne.filter.resample(clean[sl], down=down, verbose=False) for sl in _chunks(n_eeg, 8)]
    )
    progress.update(1)

    # Volume onsets: whole samples for the markers, true onsets with sub-sample jitter.
    first = int(round(params.lead_in_s * sfreq))
    onsets = first + spt * np.arange(n_vol)
    jitter = rng.uniform(-1, 1, n_vol) * params.gradient_jitter_samples

    # ECG, R-peaks, BCG.
    beats = heartbeat_times(rng, -1.0, total_s + 1.0)
    r_peaks_s = beats[(beats >= 0) & (beats < total_s)]
    ecg = np.zeros(n_times)
    half = int(0.45 * sfreq)
    for i, tb in enumerate(beats):
        rr = beats[i + 1] - tb if i + 1 < len(beats) else beats[i] - beats[i - 1]
        c = int(round(tb * sfreq))
        lo, hi = max(c - half, 0), min(c + half, n_times)
        if hi > lo:
            ecg[lo:hi] += ecg_beat((np.arange(lo, hi) / sfreq) - tb, rr)
    ecg *= rng.uniform(0.8, 1.3)
    if run.inverted_ecg:
        ecg = -ecg
    ecg += 50e-6 * np.sin(2 * np.pi * 0.25 * t)  # respiration-driven baseline wander

    n_bcg = int(0.7 * sfreq)
    tb_rel = np.arange(n_bcg) / sfreq
    bumps = np.array([[0.19, 0.025], [0.27, 0.035], [0.40, 0.06]])  # delay, width (s)
    shape_weights = rng.normal(0, 1, (n_eeg, len(bumps)))
    shape_weights[:, 0] += 1.0
    lateral = 1.0 + 2.0 * np.abs(pos[:, 0]) / np.abs(pos[:, 0]).max()
    basis = np.exp(-0.5 * ((tb_rel[None] - bumps[:, :1]) / bumps[:, 1:]) ** 2)
    template = shape_weights @ basis
    template *= (params.bcg_peak_v * lateral / np.abs(template).max(axis=1))[:, None] / 2
    drift = 1 + 0.15 * np.sin(2 * np.pi * t_env / rng.uniform(120, 300) + rng.uniform(0, 6))
    for tb in r_peaks_s:
        start = int(round((tb + rng.normal(0, 0.004)) * sfreq))
        stop = min(start + n_bcg, n_times)
        scale = rng.normal(1.0, 0.08) * np.interp(tb, t_env, drift)
        data[:n_eeg, start:stop] += scale * template[:, : stop - start]
    progress.update(1)

    # EOG: blinks and slow drifts.
    eog = pink_noise(rng, n_times, sfreq, n=1)[0] * 15e-6
    for tb in np.cumsum(rng.uniform(2.5, 6.0, int(total_s / 2.5) + 1)):
        c = int(tb * sfreq)
        lo, hi = max(c - 1000, 0), min(c + 1000, n_times)
        if hi > lo:
            eog[lo:hi] += 150e-6 * np.exp(-0.5 * ((np.arange(lo, hi) - c) / (0.06 * sfreq)) ** 2)

    # Gradient artifact: three axis waveforms, channel-specific gains, drift and jitter.
    axes = gradient_axis_waveforms(tr, params.n_slices)
    fine_t = np.arange(axes.shape[1]) / _FINE_SFREQ
    gains = rng.normal(0, 1, (n_ch, 3))
    gains *= (params.gradient_peak_v * rng.uniform(0.4, 1.0, n_ch) / np.abs(gains).sum(axis=1))[
        :, None
    ]
    gains[n_eeg] *= 1.5  # the ECG lead runs across the chest: bigger loop, bigger artifact
    drift_phase = rng.uniform(0, 2 * np.pi, n_ch)
    k = np.arange(spt)
    for v in range(n_vol):
        tt = (k - jitter[v]) / sfreq
        wave = np.stack([np.interp(tt, fine_t, a, left=0.0, right=0.0) for a in axes])  # (3, spt)
        vol_t = (onsets[v] / sfreq) / 240.0
        vol_gain = 1.0 + 0.04 * np.sin(2 * np.pi * vol_t + drift_phase)
        data[:, onsets[v] : onsets[v] + spt] += (gains * vol_gain[:, None]) @ wave
    progress.update(1)

    # ECG and EOG channels, amplifier noise, quantisation to 0.5 µV (int16 in the file).
    data[n_eeg] += ecg
    data[n_eeg + 1] += eog
    res = EEG_RESOLUTION_UV * 1e-6
    for sl in _chunks(n_ch, 8):
        data[sl] += rng.normal(0, params.noise_v, (sl.stop - sl.start, n_times))
        data[sl] = np.round(data[sl] / res) * res
    ch_names = eeg_names + ["ECG", "EOG"]
    clean_200 = mne.io.RawArray(
        clean_200, mne.create_info(eeg_names, TRUTH_SFREQ, "eeg"), verbose=False
    )
    progress.update(1)

    # Band-power features seen by the BOLD signal at each volume onset (the window's end).
    hrf = canonical_hrf(_ENV_SFREQ, delay_s=params.hrf_delay_s)
    feats = {}
    onset_s = onsets / sfreq
    for r, name in enumerate(names):
        power = env[r] ** 2
        conv = np.convolve(power - power.mean(), hrf)[: power.size]
        feats[name] = np.interp(onset_s, t_env, conv)
    r_peak_samples = np.round(r_peaks_s * sfreq).astype(int)
    stimuli = np.round(stim_s * sfreq).astype(int)
    return (data, ch_names), clean_200, onsets, r_peak_samples, feats, stimuli


def stimulus_times(params: SimParams, run: SimRun) -> np.ndarray:
    """Stimulus onsets (s from the start of the EEG recording) of one run; empty for rest.

    Intervals are drawn uniformly from ``task_design["isi_s"]`` with a random
    stream of their own (seeded by the seed, subject, session and task), so
    they do not shift any other random draw. The first stimulus comes one
    interval after the first volume; the last one ends (with its 0.6 s evoked
    response) before the last volume does.
    """
    design = params.task_design
    if design is None:
        return np.zeros(0)
    rng = np.random.default_rng(
        [params.seed, int(run.subject), int(run.session), sum(run.task.encode()), 0x57_1D]
    )
    lo, hi = design["isi_s"]
    start = round(params.lead_in_s * params.sfreq) / params.sfreq  # the first volume
    stop = start + params.n_volumes * params.tr - max(design["duration_s"], _EVOKED_S)
    times, t = [], start
    while True:
        t += rng.uniform(lo, hi)
        if t > stop:
            return np.asarray(times)
        times.append(t)


def evoked_waveform(t: np.ndarray) -> np.ndarray:
    """Shape of the evoked response (peak |value| 1): N1 at 100 ms, P2 at 190 ms."""
    w = -np.exp(-0.5 * ((t - 0.100) / 0.020) ** 2) + 0.6 * np.exp(-0.5 * ((t - 0.190) / 0.035) ** 2)
    return w * ((t >= 0) & (t < _EVOKED_S))


def _evoked_topography(pos: np.ndarray) -> np.ndarray:
    """Weight of the evoked response at each electrode position: 1 at the peak electrodes."""
    peaks = _standard_positions(EVOKED_ELECTRODES)

    def field_at(p):
        d = np.linalg.norm(p[:, None, :] - peaks[None], axis=2)
        return np.exp(-0.5 * (d / 0.04) ** 2).sum(axis=1)

    return field_at(pos) / field_at(peaks).max()


def _chunks(n: int, size: int):
    """Consecutive slices of ``range(n)`` of at most ``size`` elements."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _zscore(x):
    return (x - x.mean()) / x.std()


def _simulate_bold(params: SimParams, rng, feats, grid):
    shape, affine, mask, maps = grid
    n_vol = params.n_volumes
    hrf = canonical_hrf(_ENV_SFREQ, delay_s=params.hrf_delay_s)
    # Volume i's value is read at its onset, hrf.size samples into the noise series.
    idx = hrf.size + np.round(np.arange(n_vol) * params.tr * _ENV_SFREQ).astype(int)
    n_env = idx[-1] + 1

    def neural_noise():
        """HRF-convolved white noise: neural activity that the EEG does not show."""
        conv = np.convolve(rng.standard_normal(n_env), hrf)[:n_env]
        return _zscore(conv[idx])

    def coupled(weights):
        return _zscore(sum(sign * _zscore(feats[name]) for name, sign in weights.items()))

    coupling = {k: (dict(v[0]), float(v[1])) for k, v in params.coupling.items()}
    labels = list(DIFUMO64_LABELS)
    comp_true = np.zeros((len(labels), n_vol))
    comp_noise = np.zeros((len(labels), n_vol))
    # The global (vigilance) factor reaches the brain through every component that is
    # neither a coupled target nor a null ROI, so the data stay in the span of the maps.
    g_weights, g_a = coupling[GLOBAL_SIGNAL]
    glob_true = g_a * coupled(g_weights)
    glob_noise = np.sqrt(1 - g_a**2) * neural_noise()
    share = _GLOBAL_SHARE
    for k, label in enumerate(labels):
        if label in params.null_rois:
            comp_noise[k] = neural_noise()
        elif label in coupling:
            weights, a = coupling[label]
            comp_true[k] = a * coupled(weights)
            comp_noise[k] = np.sqrt(1 - a**2) * neural_noise()
        else:
            comp_true[k] = share * glob_true
            comp_noise[k] = share * glob_noise + np.sqrt(1 - share**2) * neural_noise()

    n_vox = int(mask.sum())
    m = maps.reshape(len(labels), -1)[:, mask.ravel()]  # (64, n_vox)
    baseline = (1000.0 * (1 + 0.1 * rng.standard_normal(n_vox))).astype(np.float64)
    frac_true = m.T @ comp_true
    frac_noise = m.T @ comp_noise

    # Motion: slow random walks with a few jumps; the signal it drives depends on the voxel.
    steps = rng.normal(0, 0.01, (n_vol, 6)) * params.motion_scale
    for _ in range(2):
        steps[rng.integers(5, n_vol), rng.integers(6)] += rng.normal(0, 0.15) * params.motion_scale
    motion = np.cumsum(steps, axis=0)
    motion[:, 3:] *= np.pi / 180.0  # rotations in rad
    edge = m.sum(axis=0)
    edge = 1.0 + 2.0 * (edge.max() - edge) / edge.max()
    loadings = rng.normal(0, 1, (6, n_vox)) * edge[None, :]
    loadings[3:] *= 180.0 / np.pi
    motion_frac = (motion @ loadings).T * 0.02

    sc = params.signal_change
    bold_vox = baseline[:, None] * (1.0 + sc * (frac_true + frac_noise) + motion_frac)
    bold_vox += baseline[:, None] * params.thermal_noise * rng.standard_normal(bold_vox.shape)
    for i in range(params.n_dummy):  # T1 saturation: first volumes brighter
        bold_vox[:, i] *= 1.0 + 0.4 * 0.35**i
    bold = np.zeros((*shape, n_vol), np.float32)
    bold[mask] = bold_vox.astype(np.float32)

    # Noise-free ROI signals; the global one is the mask mean of the coupled part.
    truth = {}
    targets = [k for k in coupling if k != GLOBAL_SIGNAL] + list(params.null_rois)
    noise = {}
    for label in targets:
        k = labels.index(label)
        truth[label], noise[label] = comp_true[k], comp_noise[k]
    truth[GLOBAL_SIGNAL] = (baseline[:, None] * frac_true).mean(axis=0) * sc
    noise[GLOBAL_SIGNAL] = (baseline[:, None] * frac_noise).mean(axis=0) * sc
    # Ceiling on the target as the pipeline defines it: steady-state volumes, the motion
    # parameters regressed out (of the truth too: that is what a model can still predict).
    keep = slice(params.n_dummy, None)
    ceiling = {
        label: _corr(
            _residual(truth[label][keep], motion[keep]),
            _residual(truth[label][keep] + noise[label][keep], motion[keep]),
        )
        for label in truth
    }
    confounds = _confounds(motion, bold_vox, mask, n_dummy=params.n_dummy)
    neural = pd.DataFrame({label: truth[label] + noise[label] for label in truth})
    return bold, pd.DataFrame(truth), neural, ceiling, confounds


def _residual(y, confounds):
    """``y`` minus its least-squares fit on an intercept and ``confounds``."""
    design = np.column_stack([np.ones(len(y)), confounds])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ beta


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


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _marker_fields(marker: str) -> dict:
    """BrainVision marker type and description: ``R128`` → Response 128, else a Comment."""
    m = re.fullmatch(r"([RS])\s*(\d+)", marker.strip())
    if m:
        return {"type": "Response" if m[1] == "R" else "Stimulus", "description": int(m[2])}
    return {"type": "Comment", "description": marker}


def _marker_description(marker: str) -> str:
    """The annotation a marker reads back as with MNE: ``S1`` → ``Stimulus/S  1``."""
    f = _marker_fields(marker)
    if f["type"] == "Comment":
        return f"Comment/{f['description']}"
    return f"{f['type']}/{f['type'][0]}{f['description']:>3}"


def _write_eeg(raw, onsets, params: SimParams, run: SimRun, files, stimuli=()):
    """BrainVision (int16, 0.5 µV) with volume and stimulus markers, then BIDS sidecars.

    ``raw`` is ``(data, ch_names)``: ``data`` in V, ``(n_channels, n_times)``;
    ``onsets`` and ``stimuli`` are samples.
    """
    data, ch_names = raw
    import mne_bids
    from pybv import write_brainvision

    events = [{"onset": int(s), "duration": 1, **_marker_fields(params.marker)} for s in onsets]
    if len(stimuli):
        stim = _marker_fields(params.task_design["stimulus_marker"])
        events += [{"onset": int(s), "duration": 1, **stim} for s in stimuli]
        events.sort(key=lambda e: e["onset"])
    with tempfile.TemporaryDirectory(prefix="neurobolt-sim-") as tmp:
        write_brainvision(
            data=data,
            sfreq=params.sfreq,
            ch_names=ch_names,
            fname_base=run.stem,
            folder_out=tmp,
            events=events,
            resolution=EEG_RESOLUTION_UV,
            unit="µV",
            fmt="binary_int16",
        )
        recorded = mne.io.read_raw_brainvision(Path(tmp, f"{run.stem}.vhdr"), verbose=False)
        recorded.set_channel_types({"ECG": "ecg", "EOG": "eog"}, verbose=False)
        recorded.info["line_freq"] = 50.0
        bids_path = mne_bids.BIDSPath(
            subject=run.subject,
            session=run.session,
            task=run.task,
            datatype="eeg",
            root=files["vhdr"].parents[3],
        )
        # mne-bids writes to the final names itself; the simulation is only marked done
        # (simulation.json) after every run is complete, so a killed run is redone whole.
        mne_bids.write_raw_bids(recorded, bids_path, overwrite=True, verbose=False)
    sidecar = pd.read_json(files["eeg_json"], typ="series").to_dict()
    on_cap = {c.upper() for c in params.channels}
    # Reference and ground are electrodes that are not recorded channels.
    reference = next(e for e in ("FCz", "CPz", "Nose") if e.upper() not in on_cap)
    ground = next(e for e in ("AFz", "Fpz", "Forehead") if e.upper() not in on_cap)
    sidecar.update(
        {
            "EEGReference": reference,
            "EEGGround": ground,
            "CapManufacturer": "EasyCap (simulated)",
            "HardwareFilters": {"Anti-aliasing low-pass": {"cutoff": "1000 Hz"}},
            "SoftwareFilters": "n/a",
            "Manufacturer": "Brain Products (simulated)",
            "ManufacturersModelName": "BrainAmp MR plus (simulated)",
        }
    )
    write_json(files["eeg_json"], sidecar)


def _write_nifti(path, data, affine, tr=None):
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        zooms = img.header.get_zooms()
        img.header.set_zooms((*zooms[:3], tr))
    with atomic_path(path) as tmp:
        nib.save(img, tmp)


def _write_bold(bold, mask, params: SimParams, run: SimRun, files, affine):
    # Raw BOLD: the acquisition grid has n_slices axial slices.
    from scipy.ndimage import zoom

    factor = params.n_slices / bold.shape[2]
    raw_bold = zoom(bold, (1, 1, factor, 1), order=1).astype(np.float32)
    raw_affine = affine.copy()
    raw_affine[2, 2] = affine[2, 2] * bold.shape[2] / raw_bold.shape[2]
    _write_nifti(files["bold"], raw_bold, raw_affine, params.tr)
    slice_times = [round(i * params.tr / params.n_slices, 6) for i in range(params.n_slices)]
    write_json(
        files["bold_json"],
        {
            "TaskName": run.task,
            "RepetitionTime": params.tr,
            "SliceTiming": slice_times,
            "EchoTime": 0.03,
            "FlipAngle": 90,
            "MagneticFieldStrength": 3,
            "Manufacturer": "Siemens (simulated)",
            "PhaseEncodingDirection": "j-",
            **_task_description(params),
        },
    )
    _write_nifti(files["preproc_bold"], bold, affine, params.tr)
    _write_nifti(files["mask"], mask.astype(np.uint8), affine)
    write_json(
        files["preproc_json"],
        {"RepetitionTime": params.tr, "SkullStripped": False, "TaskName": run.task},
    )


def _task_description(params: SimParams) -> dict:
    """``TaskDescription`` for the sidecars of a run with a task design (else nothing)."""
    d = params.task_design
    if d is None:
        return {}
    lo, hi = d["isi_s"]
    return {
        "TaskDescription": (
            f"Simulated stimuli ({d['trial_type']!r}, {d['duration_s']:g} s) at random"
            f" intervals of {lo:g}-{hi:g} s; EEG marker {d['stimulus_marker']!r}"
        )
    }


def _write_tsv(path, df: pd.DataFrame):
    write_text(path, df.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.8g"))


def _write_static(root: Path, params: SimParams, runs: Sequence[SimRun], grid):
    """Dataset-level files: description, README, participants, atlas, fMRIPrep description."""
    write_json(
        root / "dataset_description.json",
        {
            "Name": "neurobolt simulated EEG-fMRI",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["neurobolt simulator", "The neurobolt developers"],
            "GeneratedBy": [{"Name": "neurobolt", "Version": __version__}],
        },
    )
    write_text(
        root / "README",
        "Simulated simultaneous EEG-fMRI written by neurobolt.simulate (seed "
        f"{params.seed}).\nGround truth lives in derivatives/simulation/.\n",
    )
    subjects = sorted({r.subject for r in runs})
    rng = np.random.default_rng(params.seed)
    _write_tsv(
        root / "participants.tsv",
        pd.DataFrame(
            {
                "participant_id": [f"sub-{s}" for s in subjects],
                "age": rng.integers(20, 40, len(subjects)),
                "sex": rng.choice(["M", "F"], len(subjects)),
            }
        ),
    )
    write_json(
        root / "participants.json",
        {"age": {"Description": "age", "Units": "year"}, "sex": {"Description": "sex"}},
    )
    if params.task_design is not None:
        d = params.task_design
        write_json(
            root / f"task-{params.task}_events.json",
            {
                "trial_type": {
                    "LongName": "Stimulus type",
                    "Levels": {d["trial_type"]: _task_description(params)["TaskDescription"]},
                },
                "value": {"Description": "BrainVision marker code (EEG events only)"},
            },
        )
    write_json(
        root / "derivatives" / "fmriprep" / "dataset_description.json",
        {
            "Name": "fMRIPrep-style outputs (simulated)",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "neurobolt.simulate", "Version": __version__}],
        },
    )
    write_json(
        root / "derivatives" / "simulation" / "dataset_description.json",
        {
            "Name": "neurobolt simulation ground truth",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "neurobolt", "Version": __version__}],
        },
    )
    shape, affine, mask, maps = grid
    af = atlas_files(root)
    _write_nifti(af["maps"], np.moveaxis(maps, 0, -1).astype(np.float32), affine)
    labels = pd.DataFrame(
        {
            "Component": np.arange(1, len(DIFUMO64_LABELS) + 1),
            "Difumo_names": DIFUMO64_LABELS,
            "Yeo_networks7": "n/a",
            "Yeo_networks17": "n/a",
            "GM": 1.0,
            "WM": 0.0,
            "CSF": 0.0,
        }
    )
    write_text(af["labels"], labels.to_csv(index=False))


def simulate_run(params: SimParams, run: SimRun, *, grid, progress=None) -> _RunData:
    """Simulate one run in memory (EEG, BOLD, ground truth); see the module docstring."""
    seed = [params.seed, int(run.subject), int(run.session), sum(run.task.encode())]
    rng = np.random.default_rng(seed)
    progress = progress or tqdm(total=6, disable=True)
    raw, clean_200, onsets, r_peaks, feats, stimuli = _simulate_eeg(params, run, rng, progress)
    bold, truth, neural, ceiling, confounds = _simulate_bold(params, rng, feats, grid)
    progress.update(1)
    return _RunData(
        raw, clean_200, onsets, r_peaks, feats, bold, truth, neural, ceiling, confounds, stimuli
    )


def simulate_dataset(
    bids_root: str | Path,
    *,
    n_subjects: int = 4,
    duration_s: float = 360.0,
    tr: float = 2.1,
    n_slices: int = 30,
    sfreq: float = 5000.0,
    seed: int = 42,
    n_two_session: int = 1,
    marker: str = "R128",
    task: str = "rest",
    voxel_mm: float = 8.0,
    progress: bool = True,
    **options,
) -> Path:
    """Write a simulated BIDS EEG-fMRI dataset with fMRIPrep-style derivatives and ground truth.

    Parameters
    ----------
    bids_root : path-like
        Where to write the dataset. Existing simulated files are overwritten.
    n_subjects : int
        Number of subjects.
    duration_s : float
        Scan duration per run (s); ``duration_s // tr`` volumes are acquired.
    tr : float
        Repetition time (s). ``tr * sfreq`` must be a whole number.
    n_slices : int
        Slices per volume; the gradient artifact repeats every ``tr / n_slices`` s.
    sfreq : float
        EEG sampling rate (Hz).
    seed : int
        Random seed; the dataset is a deterministic function of the parameters.
    n_two_session : int
        How many subjects (the first ones) have a second session.
    marker : str
        Description of the volume markers (written as ``Response`` markers).
    task : str
        BIDS task label.
    voxel_mm : float
        Isotropic voxel size of the (MNI) BOLD grid.
    progress : bool
        Show a progress bar per run.
    **options
        Any other field of :class:`SimParams`, keyword only: ``channels`` (the
        EEG cap, None: :data:`DEFAULT_EEG_CHANNELS`; e.g.
        :data:`SECOND_SITE_EEG_CHANNELS`), ``task_design`` (None: rest; a
        mapping over :data:`TASK_DESIGN_DEFAULTS` writes stimuli, an evoked
        EEG response and a BOLD response, see :class:`SimParams`), the noise
        levels ``noise_v``, ``gradient_peak_v``, ``gradient_jitter_samples``,
        ``bcg_peak_v``, ``motion_scale``, ``thermal_noise`` (a second site is
        expected to differ in them as it does in ``tr``, ``marker``, ``task``
        and the cap), and ``lead_in_s``, ``lead_out_s``, ``n_dummy``,
        ``signal_change``, ``hrf_delay_s``, ``coupling``, ``null_rois``.

    Returns
    -------
    bids_root : pathlib.Path
        The dataset root.
    """
    params = SimParams(
        n_subjects=n_subjects,
        n_two_session=n_two_session,
        duration_s=duration_s,
        tr=tr,
        n_slices=n_slices,
        sfreq=sfreq,
        seed=seed,
        marker=marker,
        task=task,
        voxel_mm=voxel_mm,
        **options,
    )
    unknown = (set(params.coupling) - {GLOBAL_SIGNAL} | set(params.null_rois)) - set(
        DIFUMO64_LABELS
    )
    if unknown:
        raise ValueError(f"simulate: ROI names not in the DiFuMo-64 labels: {sorted(unknown)}")
    root = Path(bids_root)
    root.mkdir(parents=True, exist_ok=True)
    done = simulation_json(root)
    if done.exists():
        done.unlink()  # not done until every run is rewritten
    runs = planned_runs(
        n_subjects=n_subjects,
        n_two_session=n_two_session,
        task=task,
        task_design=params.task_design,
    )
    shape, affine, mask = _mni_grid(voxel_mm)
    grid = (shape, affine, mask, _roi_maps(params, shape, affine, mask))
    _write_static(root, params, runs, grid)
    record = {"runs": {}}
    for run in runs:
        files = run_files(root, run)
        with tqdm(total=7, desc=f"simulate {run.stem}", disable=not progress, leave=False) as bar:
            data = simulate_run(params, run, grid=grid, progress=bar)
            _write_eeg(data.raw, data.onsets, params, run, files, data.stimuli)
            _write_bold(data.bold, mask, params, run, files, affine)
            if "bold_events" in files:
                d = params.task_design
                first_volume = data.onsets[0] / params.sfreq
                _write_tsv(
                    files["bold_events"],
                    pd.DataFrame(
                        {
                            "onset": np.round(data.stimuli / params.sfreq - first_volume, 4),
                            "duration": d["duration_s"],
                            "trial_type": d["trial_type"],
                        }
                    ),
                )
            _write_tsv(files["confounds"], data.confounds)
            with atomic_path(files["truth_eeg"]) as tmp:
                data.clean_200.save(tmp, verbose=False)
            onset_s = data.r_peaks / params.sfreq
            _write_tsv(
                files["truth_rpeaks"],
                pd.DataFrame(
                    {"onset": onset_s, "duration": 0.0, "trial_type": "R", "sample": data.r_peaks}
                ),
            )
            _write_tsv(files["truth_rois"], data.truth)
            _write_tsv(files["neural_rois"], data.neural)
            for path in files.values():
                logger.info("wrote %s", path)
            bar.update(1)
        record["runs"][run.stem] = {
            "subject": run.subject,
            "session": run.session,
            "task": run.task,
            "inverted_ecg": run.inverted_ecg,
            "n_volumes": params.n_volumes,
            "n_r_peaks": int(data.r_peaks.size),
            **({"n_stimuli": int(data.stimuli.size)} if params.task_design else {}),
            "ceiling": data.ceiling,
        }
        del data
    ceilings = pd.DataFrame([r["ceiling"] for r in record["runs"].values()])
    record = {
        "parameters": asdict(params),
        "seed": params.seed,
        "rhythms": {k: {"freq_hz": v[0], "half_bandwidth_hz": v[1]} for k, v in RHYTHMS.items()},
        "coupled_rois": [k for k in params.coupling],
        "null_rois": list(params.null_rois),
        **(
            {
                "stimuli": {
                    "bold_events": "func/<run>_events.tsv: onset (s from the first volume),"
                    " duration, trial_type",
                    "eeg_marker": _marker_description(params.task_design["stimulus_marker"]),
                    "evoked_electrodes": list(EVOKED_ELECTRODES),
                    "driven_rhythm": params.task_design["rhythm"],
                }
            }
            if params.task_design
            else {}
        ),
        "ceiling_definition": (
            "Pearson R between the noise-free (EEG-coupled) ROI signal and the ROI signal"
            " with its neural noise, i.e. the best R a prediction from the EEG in the"
            f" {WINDOW_S:g} s window before each volume can reach (the HRF is cut to that window)."
            " Computed on the steady-state volumes after regressing the 6 rigid-body motion"
            " parameters out of both signals (as the fMRI stage does); voxel thermal noise"
            " is left out."
        ),
        "ceiling": ceilings.mean().to_dict(),
        "hrf": f"SPM canonical double gamma, cut to {WINDOW_S:g} s",
        **record,
        **provenance(asdict(params)),
    }
    write_json(done, record)
    logger.info("simulation complete: %s", done)
    return root


def run_simulate(inputs: Iterable, outputs: dict, params: dict) -> None:
    """Snakemake adapter: write the simulated dataset described by the ``simulate`` section."""
    opts = {k: v for k, v in params.items() if k not in {"enabled", "root"}}
    simulate_dataset(Path(outputs["done"]).parents[2], **opts)
    missing = [str(p) for p in outputs.get("files", []) if not Path(p).exists()]
    if missing:
        raise RuntimeError(f"simulate: expected outputs were not written: {missing[:5]}")
