"""Parameters of the simulator: caps, atlas labels, rhythms, couplings and :class:`SimParams`.

Two presets share one generative model (see ``docs/simulator.md``):

* the realistic default (``easy=False``): every subject (and site) draws its own
  alpha frequency, rhythm topographies, coupling strengths, lags and HRFs; the
  EEG-BOLD link is multi-band, saturating and lagged (:data:`REALISTIC_COUPLING`);
  arousal, respiration, heart rate and head motion are shared by EEG and fMRI;
  the atlas written for extraction differs from the generating maps.
* ``easy=True``: the earlier, deliberately simple simulator for fast unit tests
  (one canonical HRF, one band per ROI, :data:`COUPLING`, identical subjects,
  extraction maps = generating maps, no physiological BOLD noise).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mne

# the atlas's labels, written once in the fMRI stage (re-exported for the simulator)
from .. import config as nbconfig
from ..fmri.whole_brain import DIFUMO64_LABELS as DIFUMO64_LABELS

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

#: ``easy`` preset: which EEG band-power feature drives which BOLD signal, with its sign and
#: the amplitude ``a`` of the coupled part (the ROI's time course is a*coupled +
#: sqrt(1-a²)*noise).
COUPLING = {
    "Cuneus": ({"alpha_occipital": -1.0}, 0.80),
    "Heschl\u2019s gyrus": ({"gamma_temporal": 1.0}, 0.70),
    "Middle frontal gyrus anterior": ({"theta_frontal": 1.0}, 0.70),
    "Precuneus anterior": ({"alpha_parietal": -1.0}, 0.75),
    "Putamen": ({"beta_central": 1.0}, 0.65),
    "Thalamus": ({"alpha_occipital": 0.6, "alpha_parietal": 0.4}, 0.70),
    GLOBAL_SIGNAL: ({"alpha_occipital": -0.5, "alpha_parietal": -0.5}, 0.80),
}
#: Realistic preset: each ROI's BOLD follows several bands' log power (alpha and beta
#: decrease with BOLD, gamma and frontal theta increase; Goldman 2002, Laufs 2003,
#: Mukamel 2005, Scheeringa 2011), through a saturating non-linearity and a lag; ``a``
#: is the nominal amplitude of the coupled part, varied per subject. The global entry
#: is the vigilance index (theta up, alpha down when drowsy) and its ``a`` the share of
#: the global fluctuation it explains.
REALISTIC_COUPLING = {
    "Cuneus": ({"alpha_occipital": -1.0, "beta_central": -0.4, "gamma_temporal": 0.3}, 0.35),
    "Heschl\u2019s gyrus": ({"gamma_temporal": 1.0, "alpha_parietal": -0.3}, 0.35),
    "Middle frontal gyrus anterior": ({"theta_frontal": 1.0, "beta_central": -0.3}, 0.33),
    "Precuneus anterior": (
        {"alpha_parietal": -1.0, "beta_central": -0.3, "gamma_temporal": 0.2},
        0.35,
    ),
    "Putamen": ({"beta_central": -1.0, "gamma_temporal": 0.3}, 0.33),
    "Thalamus": ({"alpha_occipital": 0.6, "alpha_parietal": 0.4, "beta_central": 0.2}, 0.55),
    GLOBAL_SIGNAL: ({"alpha_occipital": -0.5, "alpha_parietal": -0.5, "theta_frontal": 0.5}, 0.4),
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
#: The EEG window a model sees before each volume (the store's default window).
WINDOW_S = float(nbconfig.defaults("store.window_s"))
EEG_RESOLUTION_UV = 0.5  # BrainAmp MR: 0.5 µV per bit, ±16.38 mV
TRUTH_SFREQ = 200.0
ENV_SFREQ = 10.0  # sampling rate of the slow envelopes and the HRF convolution
FINE_SFREQ = 200_000.0  # resolution at which the gradient waveform is built
GLOBAL_SHARE = 0.6  # weight of the global factor in the components that carry it
EVOKED_S = 0.6  # length of the evoked response


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

    ``easy`` (False) switches to the simple preset for fast unit tests (see the
    module docstring). ``gradient_clock`` is ``"synced"`` (scanner and EEG
    clocks locked: every slice starts at its nominal, possibly fractional,
    sample time) or ``"unsynced"`` (each slice trigger jitters by
    ``gradient_jitter_samples`` rms and the scanner clock drifts by a few ppm
    against the EEG's). ``slice_gap_s`` is the silent gap at the end of every
    TR (0: continuous acquisition, the slices fill the TR). ``line_noise_v`` is
    the 50 Hz mains amplitude (V) at the electrodes. ``coupling`` (None: the
    preset's table, :data:`REALISTIC_COUPLING` or :data:`COUPLING`) maps each
    coupled ROI to ``[{rhythm: weight}, a]``.

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
    easy: bool = False
    gradient_clock: str = "synced"
    slice_gap_s: float = 0.0
    line_noise_v: float = 2e-6
    coupling: dict | None = None
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
        if self.gradient_clock not in ("synced", "unsynced"):
            raise ValueError(
                "simulate: gradient_clock must be 'synced' or 'unsynced', got"
                f" {self.gradient_clock!r}"
            )
        if not 0 <= self.slice_gap_s < self.tr:
            raise ValueError(
                f"simulate: slice_gap_s must be in [0, tr), got {self.slice_gap_s} (tr {self.tr})"
            )
        if self.coupling is None:
            table = COUPLING if self.easy else REALISTIC_COUPLING
            self.coupling = {k: [dict(v[0]), v[1]] for k, v in table.items()}
        self.channels = check_channels(self.channels)
        self.task_design = check_task_design(self.task_design, marker=self.marker)

    @property
    def n_volumes(self) -> int:
        """Number of BOLD volumes (= volume markers) per run."""
        return int(self.duration_s // self.tr)


def _montage_names() -> dict[str, str]:
    """Upper-case name -> name of every electrode in MNE's standard 10-20 montage."""
    return {k.upper(): k for k in montage().ch_names}


def montage():
    try:
        return mne.channels.make_standard_montage("colin27_1020")
    except ValueError:  # older MNE
        return mne.channels.make_standard_montage("standard_1020")


def usable_channels() -> list[str]:
    """Electrode names a simulated cap may use: LaBraM's 10-20 table ∩ MNE's standard montage."""
    from ..channels import LABRAM_CHANNELS

    known = _montage_names()
    return [name for name in LABRAM_CHANNELS if name.upper() in known]


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


def check_task_design(
    design: dict | None, *, marker: str = nbconfig.defaults("simulate.marker")
) -> dict | None:
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
    from ..eeg.markers import matches_marker

    if not d["trial_type"].strip() or matches_marker(
        _marker_description(d["stimulus_marker"]), marker
    ):
        raise ValueError(
            f"simulate: task_design.stimulus_marker {d['stimulus_marker']!r} would be read as a"
            f" volume marker {marker!r} (or trial_type is empty): choose another stimulus marker"
        )
    return d


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
