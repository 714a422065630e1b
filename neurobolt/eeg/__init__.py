"""EEG cleaning for simultaneous EEG-fMRI: the ``clean_eeg`` stage.

Volume markers (:mod:`.markers`) → gradient artifact (:mod:`.gradient`) →
R-peaks and BCG artifact (:mod:`.bcg`) → channel selection and anti-aliased
resampling (:mod:`.resample`), all run by :func:`.clean.clean_raw`. The rule's file
I/O is :mod:`neurobolt.jobs.clean_eeg`.
"""

from .bcg import detect_r_peaks, remove_bcg
from .clean import EEGInputError, clean_raw, resample
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
    "volume_onsets",
]
