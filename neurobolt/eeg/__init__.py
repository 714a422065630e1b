"""EEG cleaning for simultaneous EEG-fMRI: the ``clean_eeg`` stage.

Volume markers (:mod:`.markers`) → gradient artifact (:mod:`.gradient`) →
R-peaks and BCG artifact (:mod:`.bcg`) → channel selection and anti-aliased
resampling (:mod:`.clean`).
"""

from .bcg import detect_r_peaks, remove_bcg
from .clean import EEGInputError, clean_raw, resample, run_clean_eeg
from .gradient import remove_gradient
from .markers import MarkerError, volume_onsets

__all__ = [
    "EEGInputError",
    "MarkerError",
    "clean_raw",
    "detect_r_peaks",
    "remove_bcg",
    "remove_gradient",
    "resample",
    "run_clean_eeg",
    "volume_onsets",
]
