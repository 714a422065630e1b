"""fMRI stage: DiFuMo ROI signals and the global signal as model targets.

See :mod:`neurobolt.fmri.atlas` (finding the atlas, matching ROI names) and
:mod:`neurobolt.fmri.signals` (extraction, cleaning, normalisation, file I/O).
"""
